package load_test

import (
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// TestReadAheadOfManyAccounts: what syncer.Prepare reads for many accounts
// at once gives what the per-account reads give. WatermarksOf returns the
// watermarks of the accounts and entities asked, latest version winning;
// CloseAbandonedOf closes the running runs of the accounts asked only;
// RecordRuns stores a run's outcome over its start; a ReplaceCatalog after
// PrefetchCatalog keeps first sightings and marks missing records as the
// reading one does, and a prefetch dropped is not used.
func TestReadAheadOfManyAccounts(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	st := load.NewStateStore(db)
	k := func(acct string, e syncer.Entity, scan string) syncer.WatermarkKey {
		return syncer.WatermarkKey{AccountID: acct, Entity: e, CampaignID: "1", Scan: scan}
	}
	if err := st.SetWatermarks(ctx, map[syncer.WatermarkKey]time.Time{
		k("a", syncer.Actions, "updated"): at, k("a", syncer.ActionUpdates, "updated"): at,
		k("b", syncer.Actions, "locking"): at, k("c", syncer.Actions, "updated"): at,
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetWatermark(ctx, k("a", syncer.Actions, "updated"), at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	marks, err := st.WatermarksOf(ctx, []string{"a", "b"}, []syncer.Entity{syncer.Actions})
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != 2 || !marks[k("a", syncer.Actions, "updated")].Equal(at.Add(time.Hour)) || !marks[k("b", syncer.Actions, "locking")].Equal(at) {
		t.Fatalf("WatermarksOf = %v", marks)
	}

	runs := load.NewRunStore(db)
	start := syncer.Run{ID: "r1", AccountID: "a", Entity: syncer.Campaigns, Kind: syncer.RunIncremental, StartedAt: at, Status: syncer.RunRunning}
	left := syncer.Run{ID: "r2", AccountID: "b", Entity: syncer.Actions, Kind: syncer.RunIncremental, StartedAt: at, Status: syncer.RunRunning}
	other := syncer.Run{ID: "r3", AccountID: "c", Entity: syncer.Actions, Kind: syncer.RunIncremental, StartedAt: at, Status: syncer.RunRunning}
	done := start
	done.Status, done.FinishedAt = syncer.RunSucceeded, at.Add(time.Minute)
	if err := runs.RecordRuns(ctx, start, left, other); err != nil {
		t.Fatal(err)
	}
	if err := runs.RecordRuns(ctx, done); err != nil {
		t.Fatal(err)
	}
	n, err := runs.CloseAbandonedOf(ctx, []string{"a", "b"}, "gone")
	if err != nil || n["a"] != 0 || n["b"] != 1 {
		t.Fatalf("CloseAbandonedOf = %v, %v; want b: 1", n, err)
	}
	for _, want := range []struct {
		acct   string
		status syncer.RunStatus
	}{{"a", syncer.RunSucceeded}, {"b", syncer.RunInterrupted}, {"c", syncer.RunRunning}} {
		got, err := runs.Runs(ctx, want.acct, 10)
		if err != nil || len(got) != 1 || got[0].Status != want.status {
			t.Errorf("runs of %s: %+v, %v; want one %s", want.acct, got, err, want.status)
		}
	}

	cw := load.NewCatalogWriter(db)
	e := syncer.Campaigns
	ra, rb := record(e, "A", t0, 1), record(e, "B", t0, 1)
	for _, acct := range []string{"a", "b"} {
		if err := cw.ReplaceCatalog(ctx, acct, e, []syncer.Record{ra, rb}, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.PrefetchCatalog(ctx, []string{"a", "b", "new"}, []syncer.Entity{e, syncer.PromoCodes}); err != nil {
		t.Fatal(err)
	}
	later := at.Add(time.Hour)
	for _, acct := range []string{"a", "new"} {
		if err := cw.ReplaceCatalog(ctx, acct, e, []syncer.Record{ra}, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := catalogRows(t, db, e, "a"); len(got) != 2 || !got["A"].first.Equal(at) || !got["A"].last.Equal(later) || got["B"].present != 0 {
		t.Errorf("a after a prefetched refresh: %+v", got)
	}
	if got := catalogRows(t, db, e, "new"); len(got) != 1 || !got["A"].first.Equal(later) {
		t.Errorf("new after a prefetched refresh: %+v", got)
	}
	// b's prefetch is dropped; meanwhile its rows change: its next refresh
	// reads them
	cw.DropPrefetched("b")
	if err := load.NewWriter(db).WriteVersioned(ctx, "b", e, 0, later, []syncer.Record{record(e, "C", t0, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := cw.ReplaceCatalog(ctx, "b", e, []syncer.Record{ra}, later); err != nil {
		t.Fatal(err)
	}
	if got := catalogRows(t, db, e, "b"); len(got) != 3 || got["C"].present != 0 || got["B"].present != 0 || !got["A"].first.Equal(at) {
		t.Errorf("b after a dropped prefetch: %+v", got)
	}

	if err := load.NewWriter(db).RaiseVersionsOf(ctx, []string{"a", "b"}, []syncer.Entity{syncer.Actions, syncer.ActionUpdates}); err != nil {
		t.Fatal(err)
	}
}
