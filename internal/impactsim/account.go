package impactsim

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
)

// serialBase is the first action serial; ids stay 7 digits up to
// MaxActionsPerAccount actions, so within a campaign Id order is serial order.
const serialBase = 3_000_000

// account is one simulated impact.com account. mu guards the data; ctl guards
// the control plane (credentials, quirks, limits, faults, stats), so that a
// long page render never blocks bookkeeping.
type account struct {
	sid     string
	seed    int64
	persona Persona
	root    string // "/Advertisers/{SID}" or "/Mediapartners/{SID}"
	loc     *time.Location

	mu       sync.RWMutex
	rng      *rand.Rand // for AddActions/AddCampaign; under mu (write)
	currency string
	home     AccountHome
	company  CompanyInformation
	camps    []*campaign // by id
	partners []MediaPartner
	mprefs   []partnerRef // brand: interned partner id/name/domain for actions
	promos   []PromoCode
	ppromos  []PartnerPromoCode
	pcodes   []promoRef // index+1 referenced by action.promo
	acts     []action
	order    []uint32 // action indexes by CreationDate desc, Id asc
	touched  map[uint32]*touch
	updates  []update // ActionUpdates after the initial one, in append order
	// minTouchedCreation is the oldest CreationDate among touched actions, a
	// lower bound for lastUpdated scans; 0 when none.
	minTouchedCreation int64
	selfDomain         string // partner: own website domain for ReferringDomain

	ctl     sync.Mutex
	control control
}

type control struct {
	token    string
	disabled bool
	resets   int
	bearer   map[string]time.Time
	denied   map[string]bool
	quirks   Quirks
	limit    int
	family   HeaderFamily
	winStart time.Time
	used     int
	faults   []Fault
	stats    Stats
}

type campaign struct {
	id         int64
	idStr      string
	name       string
	prefix     string // action id prefix "24125.8812."
	oidPrefix  string
	trackers   [2]tracker
	contractID string
	rate       int // default payout percent
	category   string
	skuPrefix  string
	advID      string // partner: advertiser
	brand      *Campaign
	partner    *PartnerCampaign
}

type tracker struct{ id, name string }

type partnerRef struct{ id, name, domain string }

type promoRef struct {
	code     string
	campaign int
}

// action is the compact per-action record (64 bytes). Times are Unix
// seconds, money is in 1/10000 units. Mutations live in touched.
type action struct {
	creation   int64
	locking    int64
	cleared    int64 // ClearedDate once approved and the clock passes it
	eventLag   uint32
	referLag   uint32
	amount     int32 // intended amount
	payout     int32 // intended payout
	clientCost int32 // intended client cost
	ad         uint32
	customer   uint32
	partner    uint32 // brand: index+1 into mprefs
	campaign   uint16
	promo      uint16 // index+1 into pcodes
	cloc       uint16 // customer location index
	flags      uint8
	refType    uint8
}

const (
	flagTracker2 = 1 << iota
	flagNewCustomer
	flagTouched
)

// touch is the mutable state of a modified or reversed action.
type touch struct {
	lastUpdated              int64
	amount, payout           int64
	clientCost               int64
	deltaAmount, deltaPayout int64
	reversed                 bool
	updates                  uint16 // ActionUpdates so far, the initial one included
}

// update is an ActionUpdate after the initial one (seq >= 2).
type update struct {
	action      uint32
	seq         uint16
	reversed    bool
	at          int64
	deltaAmount int64
	deltaPayout int64
}

func (a *account) serial(i uint32) uint32 { return serialBase + i }

// actionIndex parses an action id back to its index.
func (a *account) actionIndex(id string) (uint32, bool) {
	dot := -1
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(id[dot+1:], 10, 32)
	if err != nil || n < serialBase || n-serialBase >= uint64(len(a.acts)) {
		return 0, false
	}
	i := uint32(n - serialBase)
	if a.camps[a.acts[i].campaign].prefix != id[:dot+1] {
		return 0, false
	}
	return i, true
}

// idLess orders two actions by Id.
func (a *account) idLess(i, j uint32) bool {
	pi, pj := a.camps[a.acts[i].campaign].prefix, a.camps[a.acts[j].campaign].prefix
	if pi != pj {
		return pi < pj
	}
	return i < j
}

// orderLess is the Actions order: CreationDate desc, then Id asc.
func (a *account) orderLess(i, j uint32) bool {
	ci, cj := a.acts[i].creation, a.acts[j].creation
	if ci != cj {
		return ci > cj
	}
	return a.idLess(i, j)
}

// insertOrder adds action i to the order index.
func (a *account) insertOrder(i uint32) {
	pos := sort.Search(len(a.order), func(k int) bool { return !a.orderLess(a.order[k], i) })
	a.order = append(a.order, 0)
	copy(a.order[pos+1:], a.order[pos:])
	a.order[pos] = i
}

func (a *account) lastUpdated(i uint32) int64 {
	if a.acts[i].flags&flagTouched != 0 {
		return a.touched[i].lastUpdated
	}
	return a.acts[i].creation
}

func (a *account) campaignByID(id string) (int, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, false
	}
	k := sort.Search(len(a.camps), func(k int) bool { return a.camps[k].id >= n })
	if k < len(a.camps) && a.camps[k].id == n {
		return k, true
	}
	return 0, false
}
