package impactsim

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Actions and ActionUpdates rules (docs/impact-api.md §3.4, §4.2).
const (
	maxSpan        = 45 * day
	maxLookback    = 3 * 365 * day
	defaultWindow  = 7 * day
	maxPages       = 10
	minActionsPage = 2000
	maxEventLag    = 605 // creation - event, seconds (see newAction)
)

var actionPaging = pageLimits{def: 20000, min: minActionsPage, max: MaxPageSize}

// window is an inclusive [from, to] range in Unix seconds.
type window struct {
	set      bool
	from, to int64
}

func (w window) has(t int64) bool { return !w.set || (t >= w.from && t <= w.to) }

const (
	anyCampaign = -1
	noCampaign  = -2 // an unknown CampaignId: matches nothing
)

type actionQuery struct {
	campaign int // index into a.camps, or anyCampaign/noCampaign
	state    string
	updated  window // StartDate/EndDate: lastUpdated (ActionUpdates: UpdateDate)
	event    window // ActionDateStart/End: EventDate
	locking  window // LockingDateStart/End: LockingDate
	pg       paging
}

// parseAPIDate accepts YYYY-MM-DDTHH:MM:SSZ and YYYY-MM-DDTHH:MM:SS±hh:mm.
func parseAPIDate(s string) (time.Time, bool) {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) != 20 && len(s) != 25 {
		return time.Time{}, false
	}
	for k := 0; k < len(layout); k++ {
		c := s[k]
		if layout[k] == 'd' {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
		} else if c != layout[k] {
			return time.Time{}, false
		}
	}
	zone := s[len(layout):]
	if zone != "Z" && !(len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// parseWindow validates one StartX/EndX pair.
func parseWindow(q url.Values, startKey, endKey string, now time.Time, calendar bool) (window, *apiError) {
	sv, hasS := first(q, startKey)
	ev, hasE := first(q, endKey)
	if !hasS && !hasE {
		return window{}, nil
	}
	if !hasS || !hasE {
		missing := endKey
		if !hasS {
			missing = startKey
		}
		return window{}, badRequest(startKey+" and "+endKey+" must be provided together", fieldError{missing, "Required when " + map[bool]string{true: startKey, false: endKey}[hasS] + " is provided"})
	}
	from, ok := parseAPIDate(sv)
	if !ok {
		return window{}, badRequest("Invalid date format for "+startKey+"; use YYYY-MM-DDTHH:MM:SSZ", fieldError{startKey, "Invalid date"})
	}
	to, ok := parseAPIDate(ev)
	if !ok {
		return window{}, badRequest("Invalid date format for "+endKey+"; use YYYY-MM-DDTHH:MM:SSZ", fieldError{endKey, "Invalid date"})
	}
	w := window{set: true, from: from.Unix(), to: to.Unix()}
	switch {
	case w.to < w.from:
		return w, badRequest(endKey+" must not be before "+startKey, fieldError{endKey, "Before " + startKey})
	case w.to-w.from > maxSpan:
		return w, badRequest(startKey+" and "+endKey+" cannot be more than 45 days apart", fieldError{endKey, "Range exceeds 45 days"})
	case !calendar && w.from < now.Unix()-maxLookback, calendar && w.from < now.UTC().AddDate(-3, 0, 0).Unix():
		return w, badRequest(startKey+" cannot be more than 3 years in the past", fieldError{startKey, "More than 3 years in the past"})
	}
	return w, nil
}

// parseActionQuery validates an Actions or ActionUpdates list request.
func parseActionQuery(rq *request) (actionQuery, *apiError) {
	aq := actionQuery{campaign: anyCampaign}
	q, err := url.ParseQuery(rq.rawQuery)
	if err != nil {
		return aq, badRequest("Malformed query string")
	}
	a := rq.a
	if v, ok := first(q, "CampaignId"); ok {
		if _, err := strconv.ParseUint(v, 10, 63); err != nil {
			return aq, badRequest("CampaignId must be numeric", fieldError{"CampaignId", "Not a numeric value"})
		}
		aq.campaign = noCampaign
		if k, found := a.campaignByID(v); found {
			aq.campaign = k
		}
	} else if a.persona == Brand {
		return aq, badRequest("CampaignId is required", fieldError{"CampaignId", "Required"})
	}
	var e *apiError
	if aq.pg, e = parsePaging(q, actionPaging); e != nil {
		return aq, e
	}
	if aq.updated, e = parseWindow(q, "StartDate", "EndDate", rq.now, rq.quirks.CalendarLookback); e != nil {
		return aq, e
	}
	if aq.event, e = parseWindow(q, "ActionDateStart", "ActionDateEnd", rq.now, rq.quirks.CalendarLookback); e != nil {
		return aq, e
	}
	if aq.locking, e = parseWindow(q, "LockingDateStart", "LockingDateEnd", rq.now, rq.quirks.CalendarLookback); e != nil {
		return aq, e
	}
	if !aq.updated.set && !aq.event.set && !aq.locking.set {
		now := rq.now.Unix()
		aq.updated = window{set: true, from: now - defaultWindow, to: now}
	}
	if v, ok := first(q, "State"); ok {
		switch v {
		case statePending, stateApproved, stateReversed:
			aq.state = v
		default:
			return aq, badRequest("State must be PENDING, APPROVED or REVERSED", fieldError{"State", "Invalid value"})
		}
	}
	return aq, nil
}

func tooManyPages(total int, pg paging) *apiError {
	if total <= maxPages*pg.size {
		return nil
	}
	return badRequest("The result contains more than 10 pages (" + strconv.Itoa(total) + " records at PageSize " + strconv.Itoa(pg.size) + "); adjust the PageSize or the StartDate or EndDate so the response has at most 10 pages")
}

// creationBounds narrows the CreationDate range that can match q:
// creation >= event, creation <= event + maxEventLag, lastUpdated >= creation
// and LockingDate > EventDate + 28 days.
func (a *account) creationBounds(q *actionQuery, updatesFeed bool) (lo, hi int64) {
	lo, hi = -1<<62, 1<<62
	if q.event.set {
		lo, hi = max(lo, q.event.from), min(hi, q.event.to+maxEventLag)
	}
	if q.locking.set {
		hi = min(hi, q.locking.to-28*day+maxEventLag)
	}
	if q.updated.set {
		hi = min(hi, q.updated.to)
		from := q.updated.from
		if !updatesFeed && a.minTouchedCreation != 0 {
			from = min(from, a.minTouchedCreation)
		}
		lo = max(lo, from)
	}
	return lo, hi
}

// orderRange is the slice of a.order with CreationDate in [lo, hi].
func (a *account) orderRange(lo, hi int64) []uint32 {
	i := sort.Search(len(a.order), func(k int) bool { return a.acts[a.order[k]].creation <= hi })
	j := sort.Search(len(a.order), func(k int) bool { return a.acts[a.order[k]].creation < lo })
	if j < i {
		return nil
	}
	return a.order[i:j]
}

func (q *actionQuery) campaignOK(c uint16) bool {
	return q.campaign == anyCampaign || int(c) == q.campaign
}

func (a *account) actionMatches(q *actionQuery, i uint32, now int64) bool {
	x := &a.acts[i]
	return q.campaignOK(x.campaign) &&
		q.event.has(x.creation-int64(x.eventLag)) &&
		q.locking.has(x.locking) &&
		q.updated.has(a.lastUpdated(i)) &&
		(q.state == "" || a.state(i, now) == q.state)
}

// matchActions returns the matching actions in the Actions order.
func (a *account) matchActions(q *actionQuery, now int64) []uint32 {
	var out []uint32
	lo, hi := a.creationBounds(q, false)
	for _, i := range a.orderRange(lo, hi) {
		if a.actionMatches(q, i, now) {
			out = append(out, i)
		}
	}
	return out
}

// updRef names an ActionUpdate: k < 0 is action i's initial update,
// otherwise a.updates[k].
type updRef struct {
	i uint32
	k int32
}

func (a *account) updAt(r updRef) int64 {
	if r.k < 0 {
		return a.acts[r.i].creation
	}
	return a.updates[r.k].at
}

func (a *account) updLess(x, y updRef) bool {
	ax, ay := a.updAt(x), a.updAt(y)
	if ax != ay {
		return ax > ay
	}
	if x.i != y.i {
		return a.idLess(x.i, y.i)
	}
	return x.k < y.k // the initial (-1) first, then by seq
}

func (a *account) updView(r updRef, now int64) updateView {
	if r.k < 0 {
		return a.initialUpdate(r.i, now)
	}
	return a.laterUpdate(int(r.k), now)
}

// matchUpdates returns the matching ActionUpdates, newest UpdateDate first.
func (a *account) matchUpdates(q *actionQuery, now int64) []updRef {
	match := func(i uint32, at int64, reversed bool) bool {
		x := &a.acts[i]
		st := statePending
		if reversed {
			st = stateReversed
		}
		return q.campaignOK(x.campaign) &&
			q.updated.has(at) &&
			q.event.has(x.creation-int64(x.eventLag)) &&
			q.locking.has(x.locking) &&
			(q.state == "" || q.state == st)
	}
	var initial, later []updRef
	lo, hi := a.creationBounds(q, true)
	for _, i := range a.orderRange(lo, hi) {
		if match(i, a.acts[i].creation, false) {
			initial = append(initial, updRef{i: i, k: -1})
		}
	}
	for k := range a.updates {
		u := &a.updates[k]
		if match(u.action, u.at, u.reversed) {
			later = append(later, updRef{i: u.action, k: int32(k)})
		}
	}
	if len(later) == 0 {
		return initial
	}
	sort.Slice(later, func(x, y int) bool { return a.updLess(later[x], later[y]) })
	out := make([]updRef, 0, len(initial)+len(later))
	x, y := 0, 0
	for x < len(initial) && y < len(later) {
		if a.updLess(later[y], initial[x]) {
			out = append(out, later[y])
			y++
		} else {
			out = append(out, initial[x])
			x++
		}
	}
	out = append(out, initial[x:]...)
	return append(out, later[y:]...)
}

func (s *Server) actions(rq *request) ([]byte, *apiError) {
	a, now := rq.a, rq.now.Unix()
	if rq.id != "" {
		i, ok := a.actionIndex(rq.id)
		if !ok {
			return nil, notFound("Action " + rq.id + " not found")
		}
		v := a.view(i, now)
		return s.single(rq, "Action", func(w *writer, name string) { a.writeAction(w, name, &v) }), nil
	}
	q, e := parseActionQuery(rq)
	if e != nil {
		return nil, e
	}
	matched := a.matchActions(&q, now)
	if e := tooManyPages(len(matched), q.pg); e != nil {
		return nil, e
	}
	return s.list(rq, "Actions", len(matched), q.pg, func(w *writer, name string, k int) {
		v := a.view(matched[k], now)
		a.writeAction(w, name, &v)
	}), nil
}

func (s *Server) actionUpdates(rq *request) ([]byte, *apiError) {
	a, now := rq.a, rq.now.Unix()
	if rq.id != "" {
		r, ok := a.updateByID(rq.id)
		if !ok {
			return nil, notFound("ActionUpdate " + rq.id + " not found")
		}
		u := a.updView(r, now)
		return s.single(rq, "ActionUpdate", func(w *writer, name string) { a.writeUpdate(w, name, &u) }), nil
	}
	q, e := parseActionQuery(rq)
	if e != nil {
		return nil, e
	}
	matched := a.matchUpdates(&q, now)
	if e := tooManyPages(len(matched), q.pg); e != nil {
		return nil, e
	}
	return s.list(rq, "ActionUpdates", len(matched), q.pg, func(w *writer, name string, k int) {
		u := a.updView(matched[k], now)
		a.writeUpdate(w, name, &u)
	}), nil
}

// updateByID resolves "{ActionId}.{seq}".
func (a *account) updateByID(id string) (updRef, bool) {
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return updRef{}, false
	}
	i, ok := a.actionIndex(id[:dot])
	seq, err := strconv.Atoi(id[dot+1:])
	if !ok || err != nil || seq < 1 || strconv.Itoa(seq) != id[dot+1:] {
		return updRef{}, false
	}
	if seq == 1 {
		return updRef{i: i, k: -1}, true
	}
	for k := range a.updates {
		if u := &a.updates[k]; u.action == i && int(u.seq) == seq {
			return updRef{i: i, k: int32(k)}, true
		}
	}
	return updRef{}, false
}
