package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is impact.com's clock in the planner tests.
var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

const (
	hour = time.Hour
	aDay = 24 * time.Hour
)

// reach is how far back the API serves, by now.
var reach = now.Add(-MaxReach)

// marksOf returns a Marks reading the named watermarks of account a1,
// campaign c1.
func marksOf(e Entity, named map[string]time.Time) Marks {
	return func(k WatermarkKey) (time.Time, bool, error) {
		if k.AccountID != "a1" || k.Entity != e || k.CampaignID != "c1" {
			return time.Time{}, false, fmt.Errorf("unexpected key %+v", k)
		}
		t, ok := named[k.Scan]
		return t, ok, nil
	}
}

// scanOf is a scan of account a1, campaign c1, written compactly for the
// tables: covers names the scans it stands in for.
func scanOf(e Entity, name string, f DateFilter, from, to time.Time, covers ...string) Scan {
	sc := Scan{Key: WatermarkKey{AccountID: "a1", Entity: e, CampaignID: "c1", Scan: name}, Filter: f, From: from, To: to}
	for _, c := range covers {
		sc.Covers = append(sc.Covers, WatermarkKey{AccountID: "a1", Entity: e, CampaignID: "c1", Scan: c})
	}
	return sc
}

func describeScans(scans []Scan) string {
	var b strings.Builder
	for _, s := range scans {
		fmt.Fprintf(&b, "\n  %s %s %s..%s", s.Key.Scan, s.Filter, s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
		for _, c := range s.Covers {
			fmt.Fprintf(&b, " covers %s", c.Scan)
		}
	}
	return b.String()
}

func equalScans(a, b []Scan) bool {
	return slices.EqualFunc(a, b, func(x, y Scan) bool {
		return x.Key == y.Key && x.Filter == y.Filter && x.From.Equal(y.From) && x.To.Equal(y.To) && slices.Equal(x.Covers, y.Covers)
	})
}

func TestPlannerIncremental(t *testing.T) {
	steady := now.Add(-15 * time.Minute) // the previous run's end
	for _, tc := range []struct {
		name   string
		e      Entity
		marks  map[string]time.Time
		want   []Scan
		pinned []string // scans whose _until the plan pins at now
	}{
		{
			name: "first sync of Actions: the whole reach through all three date filters; the locking sweep stands in for the clearing re-scan",
			e:    Actions,
			want: []Scan{
				scanOf(Actions, ScanEvent, ByEvent, reach, now),
				scanOf(Actions, ScanUpdated, ByUpdated, reach, now),
				scanOf(Actions, ScanLocking, ByLocking, reach, now, ScanClearing),
			},
			pinned: []string{ScanEvent},
		},
		{
			name: "steady state: the last-updated and locking scans from the watermark less the 24h overlap; no clearing within its interval",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: steady, ScanLocking: steady, ScanClearing: now.Add(-hour),
				ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
			},
		},
		{
			name: "clearing due: a re-scan of the 90 days of locking dates before the previous one",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: steady, ScanLocking: steady, ScanClearing: now.Add(-7 * hour),
				ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
				scanOf(Actions, ScanClearing, ByLocking, now.Add(-7*hour-90*aDay), now),
			},
		},
		{
			name: "clearing never ran: the last 90 days",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: steady, ScanLocking: steady,
				ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
				scanOf(Actions, ScanClearing, ByLocking, now.Add(-90*aDay), now),
			},
		},
		{
			name: "a first sync cut short resumes its event sweep after the last committed window, up to the first sync's now",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: steady, ScanLocking: steady, ScanClearing: now.Add(-hour),
				ScanEvent + "_until": now.Add(-2 * aDay), ScanEvent: now.Add(-400 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanEvent, ByEvent, now.Add(-400*aDay+time.Second), now.Add(-2*aDay)),
				scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
			},
		},
		{
			name:  "an account synced before the event sweep existed gets none",
			e:     Actions,
			marks: map[string]time.Time{ScanUpdated: steady, ScanLocking: steady, ScanClearing: now.Add(-hour)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
			},
		},
		{
			name: "a watermark older than the API's reach starts at the reach",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: now.Add(-4 * 365 * aDay), ScanLocking: steady, ScanClearing: now.Add(-hour),
				ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, reach, now),
				scanOf(Actions, ScanLocking, ByLocking, steady.Add(-aDay), now),
			},
		},
		{
			name: "a watermark ahead of impact.com's clock (the clock went back) still reads the overlap up to impact.com's now",
			e:    Actions,
			marks: map[string]time.Time{ScanUpdated: now.Add(2 * hour), ScanLocking: now.Add(2 * hour), ScanClearing: now.Add(2 * hour),
				ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(Actions, ScanUpdated, ByUpdated, now.Add(2*hour-aDay), now),
				scanOf(Actions, ScanLocking, ByLocking, now.Add(2*hour-aDay), now),
			},
		},
		{
			name: "first sync of ActionUpdates: by update date and a locking-date sweep, which stands in for the clearing re-scan",
			e:    ActionUpdates,
			want: []Scan{
				scanOf(ActionUpdates, ScanLocking, ByLocking, reach, now, ScanClearing),
				scanOf(ActionUpdates, ScanUpdated, ByUpdated, reach, now),
			},
			pinned: []string{ScanLocking},
		},
		{
			name: "ActionUpdates in the steady state: by update date only",
			e:    ActionUpdates,
			marks: map[string]time.Time{ScanUpdated: steady, ScanClearing: now.Add(-hour),
				ScanLocking + "_until": now.Add(-30 * aDay), ScanLocking: now.Add(-30 * aDay)},
			want: []Scan{scanOf(ActionUpdates, ScanUpdated, ByUpdated, steady.Add(-aDay), now)},
		},
		{
			name: "ActionUpdates with clearing due",
			e:    ActionUpdates,
			marks: map[string]time.Time{ScanUpdated: steady, ScanClearing: now.Add(-6 * hour),
				ScanLocking + "_until": now.Add(-30 * aDay), ScanLocking: now.Add(-30 * aDay)},
			want: []Scan{
				scanOf(ActionUpdates, ScanUpdated, ByUpdated, steady.Add(-aDay), now),
				scanOf(ActionUpdates, ScanClearing, ByLocking, now.Add(-6*hour-90*aDay), now),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := fixedReach(NewPlanner(Options{})).Plan(tc.e, Request{Kind: RunIncremental}, "a1", "c1", now, marksOf(tc.e, tc.marks))
			if err != nil {
				t.Fatal(err)
			}
			if !equalScans(plan.Scans, tc.want) {
				t.Errorf("scans:%s\nwant:%s", describeScans(plan.Scans), describeScans(tc.want))
			}
			wantPin := map[WatermarkKey]time.Time{}
			for _, name := range tc.pinned {
				wantPin[WatermarkKey{AccountID: "a1", Entity: tc.e, CampaignID: "c1", Scan: name + "_until"}] = now
			}
			if fmt.Sprint(plan.Pin) != fmt.Sprint(wantPin) {
				t.Errorf("pinned %v, want %v", plan.Pin, wantPin)
			}
			if plan.Clamped {
				t.Error("an incremental plan says Clamped")
			}
			for _, sc := range plan.Scans {
				for _, w := range sc.Windows() {
					if w.Duration() > MaxWindow || w.Start.Before(reach) || w.End.After(now) {
						t.Errorf("scan %s: window %s outside the API's limits", sc.Key.Scan, w)
					}
				}
			}
		})
	}
}

func TestPlannerOptionsMoveTheWindows(t *testing.T) {
	steady := now.Add(-15 * time.Minute)
	pl := fixedReach(NewPlanner(Options{Overlap: 2 * hour, ClearingLookback: 10 * aDay, ClearingInterval: 30 * time.Minute}))
	marks := map[string]time.Time{ScanUpdated: steady, ScanLocking: steady, ScanClearing: now.Add(-hour),
		ScanEvent + "_until": now.Add(-30 * aDay), ScanEvent: now.Add(-30 * aDay)}
	plan, err := pl.Plan(Actions, Request{}, "a1", "c1", now, marksOf(Actions, marks))
	if err != nil {
		t.Fatal(err)
	}
	want := []Scan{
		scanOf(Actions, ScanUpdated, ByUpdated, steady.Add(-2*hour), now),
		scanOf(Actions, ScanLocking, ByLocking, steady.Add(-2*hour), now),
		scanOf(Actions, ScanClearing, ByLocking, now.Add(-hour-10*aDay), now),
	}
	if !equalScans(plan.Scans, want) {
		t.Errorf("scans:%s\nwant:%s", describeScans(plan.Scans), describeScans(want))
	}
}

func TestPlannerBackfill(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	key := func(f DateFilter, span string) string { return "backfill:" + string(f) + ":" + span }
	rangeName := "2026-01-01T00:00:00Z..2026-03-31T00:00:00Z"
	for _, tc := range []struct {
		name     string
		e        Entity
		from, to time.Time
		marks    map[string]time.Time
		want     []Scan
		clamped  bool
	}{
		{
			name: "a range of Actions is read by event date, under a key named after the range",
			e:    Actions, from: from, to: to,
			want: []Scan{scanOf(Actions, key(ByEvent, rangeName), ByEvent, from, to)},
		},
		{
			name: "without --from: the whole reach through all three filters, as the first sync",
			e:    Actions,
			want: []Scan{
				scanOf(Actions, key(ByEvent, "reach..now"), ByEvent, reach, now),
				scanOf(Actions, key(ByUpdated, "reach..now"), ByUpdated, reach, now),
				scanOf(Actions, key(ByLocking, "reach..now"), ByLocking, reach, now),
			},
		},
		{
			name: "a --from older than the reach starts at the reach and says so; the key keeps the asked range",
			e:    Actions, from: now.Add(-4 * 365 * aDay), to: to,
			want:    []Scan{scanOf(Actions, key(ByEvent, now.Add(-4*365*aDay).Format(time.RFC3339)+"..2026-03-31T00:00:00Z"), ByEvent, reach, to)},
			clamped: true,
		},
		{
			name: "a --to after impact.com's now ends at now",
			e:    Actions, from: from, to: now.Add(48 * hour),
			want: []Scan{scanOf(Actions, key(ByEvent, "2026-01-01T00:00:00Z.."+now.Add(48*hour).Format(time.RFC3339)), ByEvent, from, now)},
		},
		{
			name: "a backfill cut short resumes after its last committed window",
			e:    Actions, from: from, to: to,
			marks: map[string]time.Time{key(ByEvent, rangeName): from.Add(20 * aDay)},
			want:  []Scan{scanOf(Actions, key(ByEvent, rangeName), ByEvent, from.Add(20*aDay+time.Second), to)},
		},
		{
			name: "a finished backfill reads nothing again",
			e:    Actions, from: from, to: to,
			marks: map[string]time.Time{key(ByEvent, rangeName): to},
		},
		{
			name: "the incremental watermarks play no part",
			e:    Actions, from: from, to: to,
			marks: map[string]time.Time{ScanUpdated: now, ScanLocking: now, ScanEvent: now, ScanEvent + "_until": now},
			want:  []Scan{scanOf(Actions, key(ByEvent, rangeName), ByEvent, from, to)},
		},
		{
			name: "a range of ActionUpdates is read by update date",
			e:    ActionUpdates, from: from, to: to,
			want: []Scan{scanOf(ActionUpdates, key(ByUpdated, rangeName), ByUpdated, from, to)},
		},
		{
			name: "ActionUpdates without --from: by update date and locking date",
			e:    ActionUpdates,
			want: []Scan{
				scanOf(ActionUpdates, key(ByUpdated, "reach..now"), ByUpdated, reach, now),
				scanOf(ActionUpdates, key(ByLocking, "reach..now"), ByLocking, reach, now),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Kind: RunBackfill, From: tc.from, To: tc.to}
			plan, err := fixedReach(NewPlanner(Options{})).Plan(tc.e, req, "a1", "c1", now, marksOf(tc.e, tc.marks))
			if err != nil {
				t.Fatal(err)
			}
			if !equalScans(plan.Scans, tc.want) {
				t.Errorf("scans:%s\nwant:%s", describeScans(plan.Scans), describeScans(tc.want))
			}
			if plan.Clamped != tc.clamped {
				t.Errorf("Clamped = %v, want %v", plan.Clamped, tc.clamped)
			}
			if len(plan.Pin) != 0 {
				t.Errorf("a backfill pins %v; it must not touch the incremental watermarks", plan.Pin)
			}
		})
	}
}

func TestPlannerPassesStoreErrorsOn(t *testing.T) {
	boom := errors.New("store down")
	failing := func(WatermarkKey) (time.Time, bool, error) { return time.Time{}, false, boom }
	for _, req := range []Request{{Kind: RunIncremental}, {Kind: RunBackfill}} {
		for _, e := range ActivityEntities {
			if _, err := NewPlanner(Options{}).Plan(e, req, "a1", "c1", now, failing); !errors.Is(err, boom) {
				t.Errorf("%s %s: err %v, want the store's", req.Kind, e, err)
			}
		}
	}
}

func TestPlannerClock(t *testing.T) {
	local := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	berlin := time.FixedZone("CEST", 2*3600)
	for _, tc := range []struct {
		name     string
		api      time.Time
		known    bool
		wantNow  time.Time
		wantSkew time.Duration
		warn     bool
	}{
		{"impact.com's clock, to the second, in UTC", local.Add(1500 * time.Millisecond).In(berlin), true, local.Add(time.Second), 1500 * time.Millisecond, false},
		{"a skew of a minute is no warning", local.Add(-time.Minute), true, local.Add(-time.Minute), -time.Minute, false},
		{"impact.com ahead by more than a minute: windows still end at its clock, with a warning", local.Add(10 * time.Minute), true, local.Add(10 * time.Minute), 10 * time.Minute, true},
		{"impact.com behind by more than a minute", local.Add(-2 * time.Hour), true, local.Add(-2 * time.Hour), -2 * time.Hour, true},
		{"no Date header yet: the source's stand-in", local.Add(-3 * time.Hour), false, local.Add(-3 * time.Hour), 0, false},
		{"no Date header and no stand-in: the local clock", time.Time{}, false, local, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skew, warn := Planner{}.Clock(tc.api, tc.known, local)
			if !got.Equal(tc.wantNow) || got.Location() != time.UTC || skew != tc.wantSkew || warn != tc.warn {
				t.Errorf("Clock = %v, %v, %v; want %v, %v, %v", got, skew, warn, tc.wantNow, tc.wantSkew, tc.warn)
			}
		})
	}
}

func TestPlannerOutcome(t *testing.T) {
	forbidden := &ForbiddenError{Endpoint: "PromoCodes", Permission: PromoCodes.Permission(), Message: "Access Denied"}
	for _, tc := range []struct {
		name    string
		e       Entity
		err     error
		ctxDone bool
		want    Outcome
	}{
		{"success grants the entity's permission", PromoCodes, nil, false,
			Outcome{Status: RunSucceeded, Granted: PromoCodes.Permission()}},
		{"a stop between windows is an interruption", Actions, fmt.Errorf("window: %w", ErrStopped), false,
			Outcome{Status: RunInterrupted, Error: "interrupted: window: stopped for shutdown"}},
		{"a cancelled context is an interruption", Actions, fmt.Errorf("read: %w", context.Canceled), false,
			Outcome{Status: RunInterrupted, Error: "interrupted: read: context canceled"}},
		{"a deadline is an interruption", Actions, context.DeadlineExceeded, false,
			Outcome{Status: RunInterrupted, Error: "interrupted: context deadline exceeded"}},
		{"any error once the pass's context ended is an interruption", Actions, errors.New("connection reset"), true,
			Outcome{Status: RunInterrupted, Error: "interrupted: connection reset"}},
		{"a 403 fails the run and names the missing permission", PromoCodes, fmt.Errorf("x: %w", forbidden), false,
			Outcome{Status: RunFailed, Error: "x: " + forbidden.Error(), Missing: PromoCodes.Permission()}},
		{"a 401 fails the run and the credential is dead", Campaigns, &UnauthorizedError{Endpoint: "Campaigns", Message: "bad"}, false,
			Outcome{Status: RunFailed, Error: (&UnauthorizedError{Endpoint: "Campaigns", Message: "bad"}).Error(), Dead: true}},
		{"an OAuth connection that needs reconnecting is dead", Actions, fmt.Errorf("token: %w", ErrNeedsReconnect), false,
			Outcome{Status: RunFailed, Error: "token: account needs reconnecting", Dead: true}},
		{"anything else fails the run only", Actions, &TransientError{Endpoint: "Actions", Status: 503, Err: errors.New("down")}, false,
			Outcome{Status: RunFailed, Error: "impact.com Actions: HTTP 503: down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Planner{}).Outcome(tc.e, tc.err, tc.ctxDone); got != tc.want {
				t.Errorf("Outcome = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPlannerPermissions(t *testing.T) {
	promo, mp, acts := PromoCodes.Permission(), MediaPartners.Permission(), Actions.Permission()
	set := func(ps ...string) map[string]bool {
		m := map[string]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	for _, tc := range []struct {
		name             string
		had              []string
		reason           string
		granted, missing map[string]bool
		want             []string
		wantReason       string
		changed          bool
	}{
		{"nothing missing before or now: no write", nil, "", set(promo, acts), nil, nil, "", false},
		{"a new 403 is recorded with a reason naming it", nil, "", set(acts), set(promo), []string{promo},
			"the API token lacks: " + promo, true},
		{"still missing: no write", []string{promo}, "the API token lacks: " + promo, set(acts), set(promo), []string{promo},
			"the API token lacks: " + promo, false},
		{"a permission granted since is dropped and the reason cleared", []string{promo}, "the API token lacks: " + promo,
			set(promo, acts), nil, nil, "", true},
		{"a permission this pass did not try stays missing", []string{mp, promo}, "the API token lacks: " + mp + "; " + promo,
			set(promo), nil, []string{mp}, "the API token lacks: " + mp, true},
		{"the list is sorted", nil, "", nil, set(promo, mp), []string{mp, promo}, "the API token lacks: " + mp + "; " + promo, true},
		{"another reason survives when nothing is missing", []string{promo}, "enabled by ops", set(promo), nil, nil, "enabled by ops", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Account{ID: "a1", MissingPermissions: tc.had, StatusReason: tc.reason}
			got, reason, changed := Planner{}.Permissions(a, tc.granted, tc.missing)
			if !slices.Equal(got, tc.want) || reason != tc.wantReason || changed != tc.changed {
				t.Errorf("Permissions = %q, %q, %v; want %q, %q, %v", got, reason, changed, tc.want, tc.wantReason, tc.changed)
			}
		})
	}
}

// fixedReach is pl after the API refused the calendar limit: these tables
// are written for the 3×365-day reach (TestPlannerReach covers the other).
func fixedReach(pl Planner) Planner {
	pl.CalendarRefused = true
	return pl
}

// The reach is 3 calendar years back (less the margin) — a day more than
// 3×365 days when they hold a 29 February — until the API refused that,
// and always with a Reach that is not the default.
func TestPlannerReach(t *testing.T) {
	leap := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)  // the 3 years back hold 29 February 2024
	plain := time.Date(2027, 6, 15, 12, 0, 0, 0, time.UTC) // 2024-06-15..2027-06-15: no 29 February
	for _, tc := range []struct {
		name string
		pl   Planner
		now  time.Time
		want time.Time
	}{
		{"calendar, over a 29 February", NewPlanner(Options{}), leap, leap.AddDate(-3, 0, 0).Add(reachMargin)},
		{"calendar, without one: the same as 3×365 days", NewPlanner(Options{}), plain, plain.Add(-MaxReach)},
		{"refused", fixedReach(NewPlanner(Options{})), leap, leap.Add(-MaxReach)},
		{"a Reach of its own", NewPlanner(Options{Reach: 100 * aDay}), leap, leap.Add(-100 * aDay)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pl.Reach(tc.now); !got.Equal(tc.want) {
				t.Errorf("Reach(%s) = %s, want %s", tc.now, got, tc.want)
			}
		})
	}
	if d := leap.Add(-MaxReach).Sub(NewPlanner(Options{}).Reach(leap)); d != aDay {
		t.Errorf("the calendar reach is %s before 3×365 days over a 29 February, want a day", d)
	}
}
