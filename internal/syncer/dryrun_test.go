package syncer_test

import (
	"testing"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

// A dry run counts exactly the windows the backfill then reads, and reads,
// writes and records nothing of its own.
func TestDryRunPlansTheWindowsTheBackfillReads(t *testing.T) {
	env := setup(t, syncertest.Action{Entity: syncer.Actions, Campaign: "c1", ID: "b1",
		Updated: apiNow.Add(-200 * aDay), Event: apiNow.Add(-200 * aDay), Locking: apiNow.Add(-150 * aDay)})
	acct := brand()
	req := syncer.Request{Kind: syncer.RunBackfill, Entities: []syncer.Entity{syncer.Actions, syncer.ActionUpdates},
		From: apiNow.Add(-365 * aDay), To: apiNow.Add(-100 * aDay)}

	plan, err := env.Syncer.DryRun(t.Context(), acct, req)
	if err != nil {
		t.Fatal(err)
	}
	windowed := func(qs []syncer.Query) map[syncer.Entity]int {
		n := map[syncer.Entity]int{}
		for _, q := range qs {
			if q.Entity == syncer.Actions || q.Entity == syncer.ActionUpdates {
				n[q.Entity]++
			}
		}
		return n
	}
	if n := windowed(env.Source.Queries()); len(n) > 0 {
		t.Errorf("the dry run read windows from the source: %v", n)
	}
	if got := env.Data.IDs("acme", syncer.Actions); len(got) > 0 {
		t.Errorf("the dry run wrote actions %v", got)
	}
	if marks := env.State.All(); len(marks) > 0 {
		t.Errorf("the dry run stored watermarks %v", marks)
	}
	if runs := env.Runs.All(); len(runs) > 0 {
		t.Errorf("the dry run recorded runs %+v", runs)
	}

	before := len(env.Source.Queries())
	if res := syncOnce(t, env, req); res.Failed() {
		t.Fatalf("backfill failed: %v %+v", res.Err, res.Runs)
	}
	read := windowed(env.Source.Queries()[before:])
	for _, e := range req.Entities {
		if plan[e] == 0 || plan[e] != read[e] {
			t.Errorf("%s: planned %d windows, the backfill read %d", e, plan[e], read[e])
		}
	}
}
