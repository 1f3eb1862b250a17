package impactsim

import (
	"slices"
	"strconv"
	"time"
)

func (a *account) unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return a.inLoc(sec)
}

func str(fn func([]byte) []byte) string { return string(fn(nil)) }

// truthAction builds the typed Action for view v, the same values writeAction serves.
func (a *account) truthAction(v *actionView) Action {
	brand := a.persona == Brand
	x := Action{
		Id:                str(v.appendID),
		CampaignId:        v.c.idStr,
		CampaignName:      v.c.name,
		ActionTrackerId:   v.tr.id,
		ActionTrackerName: v.tr.name,
		State:             v.state,
		AdId:              strconv.FormatUint(uint64(v.ad), 10),
		Payout:            formatMoney(v.payout, true),
		DeltaPayout:       formatMoney(v.deltaPayout, true),
		IntendedPayout:    formatMoney(v.intendedPayout, true),
		Amount:            formatMoney(v.amount, false),
		DeltaAmount:       formatMoney(v.deltaAmount, false),
		IntendedAmount:    formatMoney(v.intendedAmount, false),
		Currency:          a.currency,
		ReferringDate:     a.unixTime(v.referring),
		EventDate:         a.unixTime(v.event),
		CreationDate:      a.unixTime(v.creation),
		LockingDate:       a.unixTime(v.locking),
		ClearedDate:       a.unixTime(v.cleared),
		ReferringType:     v.refType,
		ReferringDomain:   v.refDomain,
		PromoCode:         v.promo,
		Oid:               str(v.appendOid),
		CustomerArea:      v.cloc.area,
		CustomerCity:      v.cloc.city,
		CustomerRegion:    v.cloc.region,
		CustomerCountry:   v.cloc.country,
		LastUpdated:       a.unixTime(v.lastUpdated),
	}
	x.Uri = a.root + "/Actions/" + x.Id
	if brand {
		if v.mp != nil {
			x.MediaPartnerId, x.MediaPartnerName = v.mp.id, v.mp.name
		}
		x.ClientCost = formatMoney(v.clientCost, false)
		x.CustomerId = str(v.appendCustomerID)
		x.CustomerStatus = v.customerStatus()
		x.CustomerPostCode = v.cloc.post
		x.IpAddress = str(v.appendIP)
	} else {
		x.SubId1, x.SubId2, x.SubId3 = str(v.subID1), v.subID2(), v.subID3()
	}
	return x
}

// truthUpdate builds the typed ActionUpdate, the same values writeUpdate serves.
func (a *account) truthUpdate(u *updateView) ActionUpdate {
	v := &u.av
	x := ActionUpdate{
		Id:              str(u.appendID),
		ActionId:        str(v.appendID),
		CampaignId:      v.c.idStr,
		ActionTrackerId: v.tr.id,
		EventTypeId:     v.tr.id,
		EventTypeName:   v.tr.name,
		State:           u.state(),
		AdId:            strconv.FormatUint(uint64(v.ad), 10),
		DeltaPayout:     formatMoney(u.deltaPayout, true),
		DeltaAmount:     formatMoney(u.deltaAmount, false),
		Currency:        a.currency,
		Category:        v.c.category,
		Sku:             str(v.sku),
		Quantity:        strconv.FormatInt(v.quantity(), 10),
		PayoutLevel:     "ORDER",
		ContractId:      v.c.contractID,
		UpdateDate:      a.unixTime(u.at),
		LockingDate:     a.unixTime(v.locking),
		ClearingDate:    a.unixTime(v.cleared),
		ActionDate:      a.unixTime(v.event),
		Oid:             str(v.appendOid),
		CustomerId:      str(v.appendCustomerID),
		CustomerStatus:  v.customerStatus(),
	}
	x.ActionUri = a.root + "/Actions/" + x.ActionId
	x.Uri = a.root + "/ActionUpdates/" + x.Id
	if a.persona == Brand {
		if v.mp != nil {
			x.MediaPartnerId = v.mp.id
		}
		x.Disposition = u.disposition
		x.DefaultPayoutRate = strconv.Itoa(v.c.rate)
	} else {
		x.ReportingState = u.state()
		x.DefaultPayout = formatMoney(v.intendedPayout, true)
		x.DefaultPayoutCurrency = a.currency
		x.SubId1, x.SubId2, x.SubId3 = str(v.subID1), v.subID2(), v.subID3()
	}
	return x
}

// allUpdates lists every ActionUpdate (as views) newest UpdateDate first.
func (a *account) allUpdates(now int64) []updateView {
	out := make([]updateView, 0, len(a.acts)+len(a.updates))
	for _, i := range a.order {
		out = append(out, a.initialUpdate(i, now))
	}
	for k := range a.updates {
		out = append(out, a.laterUpdate(k, now))
	}
	slices.SortStableFunc(out, func(x, y updateView) int { return a.compareUpdates(&x, &y) })
	return out
}

// compareUpdates is the ActionUpdates order: UpdateDate desc, then Id asc.
func (a *account) compareUpdates(x, y *updateView) int {
	if x.at != y.at {
		if x.at > y.at {
			return -1
		}
		return 1
	}
	if x.av.i != y.av.i {
		if a.idLess(x.av.i, y.av.i) {
			return -1
		}
		return 1
	}
	return int(x.seq) - int(y.seq)
}

func (a *account) truth(now time.Time) Truth {
	t := Truth{SID: a.sid, Persona: a.persona, Now: now, Home: a.home, CompanyInformation: a.company}
	for _, c := range a.camps {
		if c.brand != nil {
			t.Campaigns = append(t.Campaigns, *c.brand)
		} else {
			t.PartnerCampaigns = append(t.PartnerCampaigns, *c.partner)
		}
	}
	t.MediaPartners = slices.Clone(a.partners)
	t.PromoCodes = slices.Clone(a.promos)
	t.PartnerPromoCodes = slices.Clone(a.ppromos)
	nowU := now.Unix()
	t.Actions = make([]Action, 0, len(a.order))
	for _, i := range a.order {
		v := a.view(i, nowU)
		t.Actions = append(t.Actions, a.truthAction(&v))
	}
	ups := a.allUpdates(nowU)
	t.ActionUpdates = make([]ActionUpdate, 0, len(ups))
	for k := range ups {
		t.ActionUpdates = append(t.ActionUpdates, a.truthUpdate(&ups[k]))
	}
	return t
}
