package impactsim

import (
	"strconv"
)

// actionView is everything served about one action, derived from the compact
// record and the clock. Both the wire encoder and Truth read it.
type actionView struct {
	i, serial      uint32
	c              *campaign
	tr             tracker
	mp             *partnerRef // brand; nil when none
	state          string
	ad             uint32
	clientCost     int64
	payout         int64
	deltaPayout    int64
	intendedPayout int64
	amount         int64
	deltaAmount    int64
	intendedAmount int64
	referring      int64
	event          int64
	creation       int64
	locking        int64
	cleared        int64 // 0: ""
	refType        string
	refDomain      string
	promo          string
	customer       uint32
	newCustomer    bool
	cloc           *custLocation
	lastUpdated    int64
	updates        uint16
}

const (
	statePending  = "PENDING"
	stateApproved = "APPROVED"
	stateReversed = "REVERSED"
)

func (a *account) state(i uint32, now int64) string {
	x := &a.acts[i]
	if x.flags&flagTouched != 0 && a.touched[i].reversed {
		return stateReversed
	}
	if now >= x.locking {
		return stateApproved
	}
	return statePending
}

func (a *account) view(i uint32, now int64) actionView {
	x := &a.acts[i]
	c := a.camps[x.campaign]
	v := actionView{
		i: i, serial: a.serial(i), c: c, tr: c.trackers[0],
		ad:             x.ad,
		clientCost:     int64(x.clientCost),
		payout:         int64(x.payout),
		deltaPayout:    int64(x.payout),
		intendedPayout: int64(x.payout),
		amount:         int64(x.amount),
		deltaAmount:    int64(x.amount),
		intendedAmount: int64(x.amount),
		creation:       x.creation,
		event:          x.creation - int64(x.eventLag),
		locking:        x.locking,
		refType:        refTypes[x.refType],
		customer:       x.customer,
		newCustomer:    x.flags&flagNewCustomer != 0,
		cloc:           &custLocations[x.cloc],
		lastUpdated:    x.creation,
		updates:        1,
	}
	v.referring = v.event - int64(x.referLag)
	if x.flags&flagTracker2 != 0 {
		v.tr = c.trackers[1]
	}
	if x.partner > 0 {
		v.mp = &a.mprefs[x.partner-1]
	}
	if x.promo > 0 {
		v.promo = a.pcodes[x.promo-1].code
	}
	if x.refType == refClickCookie || x.refType == refClickFingerprint {
		if v.mp != nil {
			v.refDomain = v.mp.domain
		} else if a.persona == Partner {
			v.refDomain = a.selfDomain
		}
	}
	v.state = a.state(i, now)
	if x.flags&flagTouched != 0 {
		t := a.touched[i]
		v.amount, v.payout, v.clientCost = t.amount, t.payout, t.clientCost
		v.deltaAmount, v.deltaPayout = t.deltaAmount, t.deltaPayout
		v.lastUpdated, v.updates = t.lastUpdated, t.updates
	}
	if v.state == stateApproved && now >= x.cleared {
		v.cleared = x.cleared
	}
	return v
}

func (v *actionView) customerStatus() string {
	if v.newCustomer {
		return "NEW"
	}
	return "EXISTING"
}

func (v *actionView) appendID(b []byte) []byte {
	b = append(b, v.c.prefix...)
	return strconv.AppendUint(b, uint64(v.serial), 10)
}

func (a *account) appendID(b []byte, i uint32) []byte {
	b = append(b, a.camps[a.acts[i].campaign].prefix...)
	return strconv.AppendUint(b, uint64(a.serial(i)), 10)
}

func (v *actionView) appendOid(b []byte) []byte {
	b = append(b, v.c.oidPrefix...)
	b = append(b, '-')
	return strconv.AppendUint(b, uint64(v.serial)+1000000, 10)
}

func (v *actionView) appendCustomerID(b []byte) []byte {
	b = append(b, 'c', '_')
	return appendHex32(b, uint64(v.customer))
}

// appendIP is a stable 32-hex-digit "hashed IP".
func (v *actionView) appendIP(b []byte) []byte {
	h := mix64(uint64(v.serial)*0x9e3779b97f4a7c15 ^ uint64(v.customer))
	b = appendHex32(b, h>>32)
	b = appendHex32(b, h)
	h = mix64(h)
	b = appendHex32(b, h>>32)
	return appendHex32(b, h)
}

func (v *actionView) subID1(b []byte) []byte {
	b = append(b, "post-"...)
	return strconv.AppendUint(b, uint64(1000+v.customer%9000), 10)
}

func (v *actionView) subID2() string { return subID2s[(v.customer>>13)%uint32(len(subID2s))] }

func (v *actionView) subID3() string {
	if v.customer%7 == 0 {
		return "cmp-" + strconv.Itoa(int(v.customer%97))
	}
	return ""
}

func (v *actionView) sku(b []byte) []byte {
	b = append(b, v.c.skuPrefix...)
	b = append(b, '-')
	return strconv.AppendUint(b, uint64(1000+(v.customer>>7)%9000), 10)
}

func (v *actionView) quantity() int64 { return int64(1 + (v.customer>>20)%3) }

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func appendHex32(b []byte, v uint64) []byte {
	for s := 28; s >= 0; s -= 4 {
		b = append(b, hexDigits[(v>>uint(s))&0xf])
	}
	return b
}

// updateView is one ActionUpdate: seq 1 is the implicit initial update.
type updateView struct {
	av          actionView
	seq         uint16
	at          int64
	reversed    bool
	disposition string
	deltaAmount int64
	deltaPayout int64
}

func (a *account) initialUpdate(i uint32, now int64) updateView {
	v := a.view(i, now)
	return updateView{av: v, seq: 1, at: v.creation, deltaAmount: v.intendedAmount, deltaPayout: v.intendedPayout}
}

func (a *account) laterUpdate(k int, now int64) updateView {
	u := &a.updates[k]
	uv := updateView{av: a.view(u.action, now), seq: u.seq, at: u.at, reversed: u.reversed, deltaAmount: u.deltaAmount, deltaPayout: u.deltaPayout, disposition: "ORDER_UPDATE"}
	if u.reversed {
		uv.disposition = "ITEM_RETURNED"
	}
	return uv
}

func (u *updateView) state() string {
	if u.reversed {
		return stateReversed
	}
	return statePending
}

func (u *updateView) appendID(b []byte) []byte {
	b = u.av.appendID(b)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(u.seq), 10)
}
