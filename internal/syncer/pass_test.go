package syncer_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

// A whole pass over in-memory stores and a scripted Source: no ClickHouse, no
// HTTP. These tests check what the pass does with the planner's decisions;
// the decisions themselves are in planner_test.go.

var apiNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

const aDay = 24 * time.Hour

func brand() syncer.Account {
	return syncer.Account{ID: "acme", Persona: syncer.Brand, SID: "IRacme", AuthKind: syncer.AuthBasic, Status: syncer.StatusActive}
}

func catalog() map[syncer.Entity][]syncer.Record {
	return map[syncer.Entity][]syncer.Record{
		syncer.CompanyInformation: {{ID: ""}},
		syncer.Campaigns:          {{ID: "c1"}, {ID: "c2"}},
		syncer.MediaPartners:      {{ID: "mp1"}},
		syncer.PromoCodes:         {{ID: "pc1"}},
	}
}

// setup returns a pass environment with a brand account and a source at
// apiNow holding the catalog and activity.
func setup(t *testing.T, activity ...syncertest.Action) *syncertest.Env {
	t.Helper()
	src := &syncertest.Source{Now: apiNow, Catalog: catalog(), Activity: activity}
	env := syncertest.New(src, syncer.Options{})
	if err := env.Accounts.PutAccount(t.Context(), brand(), syncer.SealedSecret{}); err != nil {
		t.Fatal(err)
	}
	return env
}

func syncOnce(t *testing.T, env *syncertest.Env, req syncer.Request) syncer.AccountResult {
	t.Helper()
	a, err := env.Accounts.Account(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if req.Entities == nil {
		req.Entities = syncer.AllEntities
	}
	return env.Syncer.SyncAccount(t.Context(), a, req)
}

func statuses(runs []syncer.Run) map[syncer.Entity]syncer.RunStatus {
	m := map[syncer.Entity]syncer.RunStatus{}
	for _, r := range runs {
		m[r.Entity] = r.Status
	}
	return m
}

func TestPassFirstSyncReadsTheWholeReachThenOnlyWhatChanged(t *testing.T) {
	old := apiNow.Add(-700 * aDay) // an action long past its last update, still pending
	env := setup(t,
		syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: "a-old", Updated: old, Event: old, Locking: apiNow.Add(10 * aDay)},
		syncertest.Action{Entity: syncer.Actions, Campaign: "c2", ID: "a-new", Updated: apiNow.Add(-aDay), Event: apiNow.Add(-aDay), Locking: apiNow.Add(30 * aDay)},
		syncertest.Action{Entity: syncer.ActionUpdates, Campaign: "c1", ID: "a-old.1", Updated: old, Event: old, Locking: apiNow.Add(10 * aDay)},
	)
	res := syncOnce(t, env, syncer.Request{})
	if res.Failed() {
		t.Fatalf("first sync failed: %v %+v", res.Err, res.Runs)
	}
	if got := env.Data.IDs("acme", syncer.Actions); !slices.Equal(got, []string{"a-new", "a-old"}) {
		t.Errorf("actions after the first sync %v, want both", got)
	}
	if got := env.Data.IDs("acme", syncer.Campaigns); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("campaigns %v", got)
	}
	for _, c := range []string{"c1", "c2"} {
		for _, scan := range []string{syncer.ScanUpdated, syncer.ScanLocking, syncer.ScanEvent, syncer.ScanEvent + "_until"} {
			k := syncer.WatermarkKey{AccountID: "acme", Entity: syncer.Actions, CampaignID: c, Scan: scan}
			if got := env.State.All()[k]; !got.Equal(apiNow) {
				t.Errorf("campaign %s: %s watermark %v, want impact.com's now %v", c, scan, got, apiNow)
			}
		}
	}

	// 15 minutes later one action is modified; the next pass reads each
	// scan's last day and a quarter hour, by last-updated and locking date only.
	env.Source.Now = apiNow.Add(15 * time.Minute)
	env.Source.Activity = append(env.Source.Activity, syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: "a-mod",
		Updated: apiNow.Add(10 * time.Minute), Event: apiNow.Add(-400 * aDay), Locking: apiNow.Add(5 * aDay)})
	before := len(env.Source.Queries())
	res = syncOnce(t, env, syncer.Request{})
	if res.Failed() {
		t.Fatalf("second pass failed: %v %+v", res.Err, res.Runs)
	}
	if got := env.Data.IDs("acme", syncer.Actions); !slices.Contains(got, "a-mod") {
		t.Errorf("actions after the second pass %v, want a-mod", got)
	}
	var actionQueries int
	for _, q := range env.Source.Queries()[before:] {
		if q.Entity != syncer.Actions {
			continue
		}
		actionQueries++
		if q.Filter == syncer.ByEvent {
			t.Errorf("second pass read by event date: %v", q)
		}
		if q.Window.Start.Before(apiNow.Add(-aDay)) || !q.Window.End.Equal(env.Source.Now) {
			t.Errorf("second pass window %v, want from the watermark less a day to impact.com's now", q.Window)
		}
	}
	if actionQueries != 4 { // 2 campaigns × (last-updated, locking)
		t.Errorf("second pass: %d Actions queries, want 4", actionQueries)
	}
}

func TestPassReadsAnApprovalThroughTheLockingScan(t *testing.T) {
	old := apiNow.Add(-100 * aDay)
	lock := apiNow.Add(2 * time.Hour)
	env := setup(t, syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: "a1", Updated: old, Event: old, Locking: lock, Raw: "PENDING"})
	if res := syncOnce(t, env, syncer.Request{Entities: []syncer.Entity{syncer.Campaigns, syncer.Actions}}); res.Failed() {
		t.Fatalf("first sync failed: %v %+v", res.Err, res.Runs)
	}
	// The locking date passes: the action is approved without its
	// last-updated date moving, as impact.com does it.
	env.Source.Now = apiNow.Add(3 * time.Hour)
	env.Source.Activity[0].Raw = "APPROVED"
	if res := syncOnce(t, env, syncer.Request{Entities: []syncer.Entity{syncer.Campaigns, syncer.Actions}}); res.Failed() {
		t.Fatalf("second pass failed: %v %+v", res.Err, res.Runs)
	}
	if r, _ := env.Data.Row("acme", syncer.Actions, "a1"); r.Raw != "APPROVED" {
		t.Errorf("a1 is %q after its locking date, want APPROVED", r.Raw)
	}
}

func TestPassRecordsAMissingPermissionAndSyncsTheRest(t *testing.T) {
	env := setup(t)
	env.Source.Errs = map[syncer.Entity]error{
		syncer.PromoCodes: &syncer.ForbiddenError{Endpoint: "PromoCodes", Permission: syncer.PromoCodes.Permission(), Message: "Access Denied"},
	}
	res := syncOnce(t, env, syncer.Request{})
	st := statuses(res.Runs)
	if st[syncer.PromoCodes] != syncer.RunFailed || st[syncer.Campaigns] != syncer.RunSucceeded || st[syncer.Actions] != syncer.RunSucceeded {
		t.Fatalf("runs %v: want promo codes failed, the rest succeeded", st)
	}
	if res.Err != nil {
		t.Errorf("pass error %v; a 403 fails one entity, not the pass", res.Err)
	}
	a, _ := env.Accounts.Account(t.Context(), "acme")
	if a.Status != syncer.StatusActive || !slices.Equal(a.MissingPermissions, []string{syncer.PromoCodes.Permission()}) {
		t.Errorf("account %s %v, want active, missing the promo codes permission", a.Status, a.MissingPermissions)
	}
	// The admin grants it; the next pass clears it.
	env.Source.Errs = nil
	syncOnce(t, env, syncer.Request{})
	if a, _ = env.Accounts.Account(t.Context(), "acme"); len(a.MissingPermissions) != 0 || a.StatusReason != "" {
		t.Errorf("after the grant: missing %v, reason %q; want none", a.MissingPermissions, a.StatusReason)
	}
}

func TestPassStopsAndFlagsTheAccountOnADeadCredential(t *testing.T) {
	env := setup(t)
	env.Source.Errs = map[syncer.Entity]error{
		syncer.CompanyInformation: &syncer.UnauthorizedError{Endpoint: "CompanyInformation", Message: "Unauthorized"},
	}
	res := syncOnce(t, env, syncer.Request{})
	var ue *syncer.UnauthorizedError
	if !errors.As(res.Err, &ue) || len(res.Runs) != 1 {
		t.Fatalf("pass error %v after %d runs, want the 401 after the first run", res.Err, len(res.Runs))
	}
	a, _ := env.Accounts.Account(t.Context(), "acme")
	if a.Status != syncer.StatusNeedsReconnect || a.StatusReason == "" {
		t.Errorf("account %s (%q), want needs_reconnect with a reason", a.Status, a.StatusReason)
	}
}

func TestPassRefusesAnAccountSomeoneElseHolds(t *testing.T) {
	env := setup(t)
	lk, err := env.Locker.Lock(t.Context(), "acme", "cli@host")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	res := syncOnce(t, env, syncer.Request{})
	var held *syncer.LockHeldError
	if !errors.As(res.Err, &held) || held.Holder != "cli@host" || len(env.Source.Queries()) != 0 {
		t.Fatalf("pass error %v after %d queries, want LockHeldError naming cli@host before any", res.Err, len(env.Source.Queries()))
	}
}

func TestPassOfAPartnerReadsAccountWide(t *testing.T) {
	env := setup(t, syncertest.Action{Entity: syncer.Actions, ID: "p1", Updated: apiNow.Add(-aDay), Event: apiNow.Add(-aDay), Locking: apiNow.Add(aDay)})
	p := brand()
	p.Persona = syncer.Partner
	if err := env.Accounts.PutAccount(t.Context(), p, syncer.SealedSecret{}); err != nil {
		t.Fatal(err)
	}
	res := syncOnce(t, env, syncer.Request{})
	if res.Failed() {
		t.Fatalf("pass failed: %v %+v", res.Err, res.Runs)
	}
	if _, ok := statuses(res.Runs)[syncer.MediaPartners]; ok {
		t.Error("a partner pass ran media partners, which only brands have")
	}
	for _, q := range env.Source.Queries() {
		if q.Entity == syncer.Actions && q.CampaignID != "" {
			t.Errorf("partner query %v names a campaign", q)
		}
	}
	if got := env.Data.IDs("acme", syncer.Actions); !slices.Equal(got, []string{"p1"}) {
		t.Errorf("actions %v, want p1", got)
	}
}

func TestPassBackfillLeavesTheIncrementalWatermarks(t *testing.T) {
	env := setup(t, syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: "b1",
		Updated: apiNow.Add(-200 * aDay), Event: apiNow.Add(-200 * aDay), Locking: apiNow.Add(-150 * aDay)})
	res := syncOnce(t, env, syncer.Request{Kind: syncer.RunBackfill, Entities: []syncer.Entity{syncer.Actions},
		From: apiNow.Add(-365 * aDay), To: apiNow.Add(-100 * aDay)})
	if res.Failed() {
		t.Fatalf("backfill failed: %v %+v", res.Err, res.Runs)
	}
	if got := env.Data.IDs("acme", syncer.Actions); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("actions %v, want b1", got)
	}
	for k := range env.State.All() {
		switch k.Scan {
		case syncer.ScanUpdated, syncer.ScanLocking, syncer.ScanEvent, syncer.ScanClearing, syncer.ScanEvent + "_until":
			t.Errorf("backfill set the incremental watermark %+v", k)
		}
	}
}

// A stop between windows lets the window in progress commit, starts no new
// one, and records the run as interrupted; the next pass resumes after the
// committed window.
func TestPassStopBetweenWindowsCommitsAndResumes(t *testing.T) {
	var acts []syncertest.Action
	for i, d := range []time.Duration{900, 800, 700, 600} { // four 44-day windows of the event sweep apart
		at := apiNow.Add(-d * aDay)
		acts = append(acts, syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: string(rune('a' + i)), Updated: at, Event: at, Locking: at})
	}
	env := setup(t, acts...)
	env.Source.Catalog[syncer.Campaigns] = []syncer.Record{{ID: "c1"}}
	stop := make(chan struct{})
	reads := 0
	env.Source.OnQuery = func(q syncer.Query) {
		if q.Entity == syncer.Actions {
			if reads++; reads == 3 {
				close(stop)
			}
		}
	}
	res := syncOnce(t, env, syncer.Request{Entities: []syncer.Entity{syncer.Campaigns, syncer.Actions}, Stop: stop})
	if st := statuses(res.Runs)[syncer.Actions]; st != syncer.RunInterrupted {
		t.Fatalf("actions run %s, want interrupted", st)
	}
	k := syncer.WatermarkKey{AccountID: "acme", Entity: syncer.Actions, CampaignID: "c1", Scan: syncer.ScanEvent}
	committed, ok := env.State.All()[k]
	if !ok || !committed.Before(apiNow.Add(-700*aDay)) {
		t.Fatalf("event watermark %v (set %v), want inside the first windows", committed, ok)
	}
	env.Source.OnQuery = nil
	before := len(env.Source.Queries())
	if res := syncOnce(t, env, syncer.Request{Entities: []syncer.Entity{syncer.Campaigns, syncer.Actions}}); res.Failed() {
		t.Fatalf("resumed pass failed: %v %+v", res.Err, res.Runs)
	}
	for _, q := range env.Source.Queries()[before:] {
		if q.Filter == syncer.ByEvent && !q.Window.Start.After(committed) {
			t.Errorf("the resumed event sweep read %v again, before its watermark %v", q.Window, committed)
		}
	}
	if got := env.Data.IDs("acme", syncer.Actions); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("actions %v after resuming, want all four", got)
	}
}
