package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Planner makes the decisions of a pass that need no I/O: which date windows
// each scan reads (incremental, first sync, backfill), which clock they end
// at, what an entity run's error means, and which permissions the token
// lacks afterwards. It holds no state: watermarks come in through a
// function, and what planning needs stored comes back in the Plan. A pass
// asks it; planner_test.go tests it table by table.
type Planner struct {
	Options Options // zero fields take the defaults
	// CalendarRefused: the API refused a start 3 calendar years back, so
	// the reach is Options.Reach (see Reach).
	CalendarRefused bool
}

// Reach is the oldest start the API serves at now: 3 calendar years back
// less reachMargin (1,096 days when they hold a 29 February), or
// Options.Reach once the API refused the calendar limit or when Reach is not
// the default. Never less than Options.Reach.
func (pl Planner) Reach(now time.Time) time.Time {
	o := pl.Options
	o.defaults()
	fixed := now.Add(-o.Reach)
	if o.Reach != MaxReach || pl.CalendarRefused {
		return fixed
	}
	if cal := now.UTC().AddDate(-3, 0, 0).Add(reachMargin); cal.Before(fixed) {
		return cal
	}
	return fixed
}

// NewPlanner returns a planner with o's zero fields set to the defaults.
func NewPlanner(o Options) Planner {
	o.defaults()
	return Planner{Options: o}
}

// Scan is one date-filtered sweep of Actions or ActionUpdates for one
// campaign scope: read [From, To] in windows, oldest first, and advance the
// watermark Key to each window's end once its rows are in ClickHouse.
type Scan struct {
	Key      WatermarkKey
	Filter   DateFilter
	From, To time.Time
	// Covers are watermarks of scans this one makes redundant (the clearing
	// re-scan, when this scan re-reads everything it would): once every
	// window is committed they are set to To as well.
	Covers []WatermarkKey
}

// Windows is the scan cut into the windows it reads.
func (s Scan) Windows() []Window { return ChunkWindows(s.From, s.To, MaxWindow) }

// Plan is what one campaign scope of Actions or ActionUpdates reads in a
// pass.
type Plan struct {
	Scans []Scan
	// Pin holds watermarks to store before any scan reads: the end of the
	// first sync's sweeps, fixed when the first sync starts so a resumed
	// first sync sweeps up to the same point.
	Pin map[WatermarkKey]time.Time
	// Clamped says a backfill's --from was older than the API's reach and
	// starts at the limit instead.
	Clamped bool
}

// Marks reads one stored watermark: the time and true, or false when there
// is none. Its errors are the StateStore's.
type Marks func(WatermarkKey) (time.Time, bool, error)

// Plan lists the scans of entity e (Actions or ActionUpdates) for one
// campaign scope ("" for a partner's account-wide scope) of req, with
// impact.com's clock at now.
func (pl Planner) Plan(e Entity, req Request, accountID, campaign string, now time.Time, marks Marks) (Plan, error) {
	o := pl.Options
	o.defaults()
	plan := Plan{Pin: map[WatermarkKey]time.Time{}}
	reach := pl.Reach(now)
	key := func(name string) WatermarkKey {
		return WatermarkKey{AccountID: accountID, Entity: e, CampaignID: campaign, Scan: name}
	}
	wm := func(name string) (time.Time, bool, error) {
		if t, ok := plan.Pin[key(name)]; ok {
			return t, true, nil
		}
		return marks(key(name))
	}
	clamp := func(t time.Time) time.Time {
		if t.Before(reach) {
			return reach
		}
		return t
	}
	if req.Kind == RunBackfill {
		return pl.backfill(e, req, now, reach, key, marks)
	}

	// incremental sweeps: from the watermark less the overlap (or the API's
	// full reach on the first sync) to now
	incremental := func(name string, f DateFilter) (int, error) {
		t, ok, err := wm(name)
		if err != nil {
			return -1, err
		}
		from := reach
		if ok {
			from = clamp(t.Add(-o.Overlap))
		}
		plan.Scans = append(plan.Scans, Scan{Key: key(name), Filter: f, From: from, To: now})
		return len(plan.Scans) - 1, nil
	}
	// clearing: ClearedDate (ActionUpdates: ClearingDate) fills in after
	// approval without counting as an update, so every ClearingInterval the
	// actions that locked in the last ClearingLookback are read again. The
	// re-scan reaches back from the previous one's end too, so an action that
	// locked before a long pause and cleared during it is not left behind.
	// cover, when >= 0, is the index of a scan of this pass that already
	// re-reads every such action: it stands in for the re-scan.
	clearing := func(cover int) error {
		last, ok, err := wm(ScanClearing)
		if err != nil {
			return err
		}
		if ok && now.Sub(last) < o.ClearingInterval {
			return nil
		}
		from := now.Add(-o.ClearingLookback)
		if ok && last.Add(-o.ClearingLookback).Before(from) {
			from = last.Add(-o.ClearingLookback)
		}
		from = clamp(from)
		if cover >= 0 && !plan.Scans[cover].From.After(from) {
			plan.Scans[cover].Covers = append(plan.Scans[cover].Covers, key(ScanClearing))
			return nil
		}
		plan.Scans = append(plan.Scans, Scan{Key: key(ScanClearing), Filter: ByLocking, From: from, To: now})
		return nil
	}
	_, haveUpdated, err := wm(ScanUpdated)
	if err != nil {
		return Plan{}, err
	}
	// firstSweep is a sweep of the first sync only, over the API's whole
	// reach up to the first sync's now (pinned under name+"_until"), resumed
	// where it stopped. It returns the scan's index, or -1 when it is done.
	firstSweep := func(name string, f DateFilter) (int, error) {
		until, haveUntil, err := wm(name + "_until")
		if err != nil {
			return -1, err
		}
		if !haveUntil && !haveUpdated {
			until, haveUntil = now, true
			plan.Pin[key(name+"_until")] = until
		}
		if !haveUntil {
			return -1, nil
		}
		done, ok, err := wm(name)
		if err != nil {
			return -1, err
		}
		if ok && !done.Before(until) {
			return -1, nil
		}
		from := reach
		if ok {
			from = clamp(done.Add(time.Second))
		}
		plan.Scans = append(plan.Scans, Scan{Key: key(name), Filter: f, From: from, To: until})
		return len(plan.Scans) - 1, nil
	}
	if e == ActionUpdates {
		// The first sync also sweeps LockingDate: the initial update of an
		// action whose event is older than the reach but which locks
		// within it can be read no other way. That sweep reads every update
		// whose action can still clear, so it stands in for the first
		// clearing re-scan.
		sweep, err := firstSweep(ScanLocking, ByLocking)
		if err != nil {
			return Plan{}, err
		}
		if _, err := incremental(ScanUpdated, ByUpdated); err != nil {
			return Plan{}, err
		}
		return plan, clearing(sweep)
	}
	// The first sync also sweeps EventDate over the whole reach: together
	// with the last-updated and locking sweeps it reaches every action any of
	// the API's three date filters can still return.
	if _, err := firstSweep(ScanEvent, ByEvent); err != nil {
		return Plan{}, err
	}
	if _, err := incremental(ScanUpdated, ByUpdated); err != nil {
		return Plan{}, err
	}
	// The locking sweep re-reads every action that locked since the last
	// run in its present state; when it reaches back as far as the clearing
	// re-scan would (the first sync), it stands in for it.
	lock, err := incremental(ScanLocking, ByLocking)
	if err != nil {
		return Plan{}, err
	}
	if err := clearing(lock); err != nil {
		return Plan{}, err
	}
	return plan, nil
}

// backfill lists the scans of a backfill. Its progress is kept under keys
// named after its arguments, so the same command resumes where it stopped;
// it never touches the incremental watermarks.
func (pl Planner) backfill(e Entity, req Request, now, reach time.Time, key func(string) WatermarkKey, marks Marks) (Plan, error) {
	var plan Plan
	from, to := req.From, req.To
	fromName, toName := "reach", "now"
	if !from.IsZero() {
		fromName = from.UTC().Format(time.RFC3339)
		if from.Before(reach) {
			plan.Clamped = true
			from = reach
		}
	} else {
		from = reach
	}
	if !to.IsZero() {
		toName = to.UTC().Format(time.RFC3339)
		if to.After(now) {
			to = now
		}
	} else {
		to = now
	}
	// A range is read by EventDate (ActionUpdates: UpdateDate); without
	// --from the backfill reaches everything the API's date filters can
	// still return, as the first sync does.
	filters := []DateFilter{ByEvent}
	switch {
	case e == ActionUpdates && req.From.IsZero():
		filters = []DateFilter{ByUpdated, ByLocking}
	case e == ActionUpdates:
		filters = []DateFilter{ByUpdated}
	case req.From.IsZero():
		filters = []DateFilter{ByEvent, ByUpdated, ByLocking}
	}
	for _, f := range filters {
		k := key(fmt.Sprintf("backfill:%s:%s..%s", f, fromName, toName))
		start := from
		if t, ok, err := marks(k); err != nil {
			return Plan{}, err
		} else if ok {
			if !t.Before(to) {
				continue // this part of the backfill is done
			}
			start = t.Add(time.Second)
		}
		if start.After(to) {
			continue
		}
		plan.Scans = append(plan.Scans, Scan{Key: k, Filter: f, From: start, To: to})
	}
	return plan, nil
}

// MaxSkew is how far impact.com's clock may differ from this machine's before
// a pass warns about it.
const MaxSkew = time.Minute

// Clock is the time a pass's windows end at, in UTC to the second:
// impact.com's clock (api, from its Date header, when apiKnown); before any
// response carried one, the Source's stand-in (api when not zero), else the
// local clock. skew is impact.com's clock minus the local one (0 when
// unknown); warn says it exceeds MaxSkew. Windows follow impact.com's clock
// whatever the skew: the API's date limits are by its clock.
func (Planner) Clock(api time.Time, apiKnown bool, local time.Time) (now time.Time, skew time.Duration, warn bool) {
	if !apiKnown {
		if api.IsZero() {
			api = local
		}
		return api.UTC().Truncate(time.Second), 0, false
	}
	skew = api.Sub(local)
	return api.UTC().Truncate(time.Second), skew, skew.Abs() > MaxSkew
}

// Outcome is what an entity run's end means for the run and the pass.
type Outcome struct {
	Status RunStatus
	Error  string // for sync_runs; empty on success
	// Granted is the permission that worked (the run succeeded), Missing the
	// one the token lacks (a 403); either may be empty.
	Granted, Missing string
	// Dead says the credential no longer works: the pass stops and the
	// account is flagged for reconnection.
	Dead bool
}

// Outcome classifies how a run of e ended: err is its error (nil on
// success), ctxDone whether the pass's context had ended by then. A run cut
// short by a stop or a cancelled context is interrupted, not failed.
func (Planner) Outcome(e Entity, err error, ctxDone bool) Outcome {
	var forbidden *ForbiddenError
	switch {
	case err == nil:
		return Outcome{Status: RunSucceeded, Granted: e.Permission()}
	case errors.Is(err, ErrStopped) || errors.Is(err, ErrLockLost) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctxDone:
		return Outcome{Status: RunInterrupted, Error: "interrupted: " + err.Error()}
	case errors.As(err, &forbidden):
		return Outcome{Status: RunFailed, Error: err.Error(), Missing: forbidden.Permission}
	}
	return Outcome{Status: RunFailed, Error: err.Error(), Dead: IsCredentialDead(err)}
}

// Permissions is the permission bookkeeping at the end of a pass over a:
// the token lacks the permissions that answered 403 in this pass (missing),
// plus those a had recorded as missing that this pass did not see work
// (granted). It returns the sorted list, the account's status reason to go
// with it, and whether either differs from what a has recorded.
func (Planner) Permissions(a Account, granted, missing map[string]bool) (list []string, reason string, changed bool) {
	set := map[string]bool{}
	for _, m := range a.MissingPermissions {
		if !granted[m] {
			set[m] = true
		}
	}
	for m := range missing {
		set[m] = true
	}
	for m := range set {
		list = append(list, m)
	}
	sort.Strings(list)
	if slices.Equal(list, a.MissingPermissions) {
		return a.MissingPermissions, a.StatusReason, false
	}
	reason = a.StatusReason
	if len(list) > 0 {
		reason = "the API token lacks: " + strings.Join(list, "; ")
	} else if strings.HasPrefix(reason, "the API token lacks") {
		reason = ""
	}
	return list, reason, true
}
