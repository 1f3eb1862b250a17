package load_test

import (
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// SetWatermarks stores several watermarks in one insert and Watermarks reads
// an account's entity back in one query, agreeing with Watermark.
func TestStateStoreWatermarksAtOnce(t *testing.T) {
	db := chtest.New(t)
	st := load.NewStateStore(db)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := func(e syncer.Entity, campaign, scan string) syncer.WatermarkKey {
		return syncer.WatermarkKey{AccountID: "acct", Entity: e, CampaignID: campaign, Scan: scan}
	}
	if err := st.SetWatermarks(ctx, map[syncer.WatermarkKey]time.Time{
		k(syncer.Actions, "1", "updated"):       at,
		k(syncer.Actions, "1", "locking"):       at.Add(time.Hour),
		k(syncer.Actions, "2", "updated"):       at.Add(2 * time.Hour),
		k(syncer.ActionUpdates, "1", "updated"): at.Add(3 * time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	// a later single write replaces one of them
	if err := st.SetWatermark(ctx, k(syncer.Actions, "1", "updated"), at.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := st.Watermarks(ctx, "acct", syncer.Actions)
	if err != nil {
		t.Fatal(err)
	}
	want := map[syncer.WatermarkKey]time.Time{
		k(syncer.Actions, "1", "updated"): at.Add(24 * time.Hour),
		k(syncer.Actions, "1", "locking"): at.Add(time.Hour),
		k(syncer.Actions, "2", "updated"): at.Add(2 * time.Hour),
	}
	if len(got) != len(want) {
		t.Fatalf("Watermarks = %v, want %v", got, want)
	}
	for key, w := range want {
		if !got[key].Equal(w) {
			t.Errorf("%v = %v, want %v", key, got[key], w)
		}
		one, ok, err := st.Watermark(ctx, key)
		if err != nil || !ok || !one.Equal(got[key]) {
			t.Errorf("Watermark(%v) = %v, %v, %v; Watermarks says %v", key, one, ok, err, got[key])
		}
	}
	if none, err := st.Watermarks(ctx, "other", syncer.Actions); err != nil || len(none) != 0 {
		t.Errorf("another account: %v, %v", none, err)
	}

	// rows stored with versions from far ahead (a worker whose clock ran
	// ahead) do not hide a batch written now
	if err := db.Exec(ctx, "INSERT INTO sync_state (account_id, entity, campaign_id, scan, watermark, updated_at, version) "+
		"SELECT account_id, entity, campaign_id, scan, watermark, updated_at, version + 172800000000000 FROM sync_state"); err != nil {
		t.Fatal(err)
	}
	later := at.Add(48 * time.Hour)
	if err := st.SetWatermarks(ctx, map[syncer.WatermarkKey]time.Time{
		k(syncer.Actions, "1", "updated"): later, k(syncer.Actions, "2", "updated"): later,
	}); err != nil {
		t.Fatal(err)
	}
	got, err = st.Watermarks(ctx, "acct", syncer.Actions)
	if err != nil || !got[k(syncer.Actions, "1", "updated")].Equal(later) || !got[k(syncer.Actions, "2", "updated")].Equal(later) {
		t.Errorf("after the versions ran ahead: %v, %v; want both updated at %v", got, err, later)
	}
}
