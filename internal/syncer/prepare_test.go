package syncer_test

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

// TestPreparedPassesAreThePassesOfSyncAccount: accounts prepared together
// (Syncer.Prepare: one LockMany, their watermarks read in one call) sync to
// the same data, watermarks and run outcomes as SyncAccount gives them; an
// account held elsewhere gets the holder's error and is not read; a pass
// of n entities makes n+1 writes of run rows (an outcome goes with the next
// run's start); every lock and read-ahead is released at the end, also of a
// prepared account that is discarded.
func TestPreparedPassesAreThePassesOfSyncAccount(t *testing.T) {
	acts := []syncertest.Action{
		{Entity: syncer.Actions, ID: "a1", Campaign: "c1", Updated: apiNow.Add(-aDay), Event: apiNow.Add(-aDay), Locking: apiNow.Add(aDay)},
		{Entity: syncer.ActionUpdates, ID: "u1", Campaign: "c2", Updated: apiNow.Add(-2 * aDay), Event: apiNow.Add(-2 * aDay), Locking: apiNow.Add(aDay)},
	}
	accts := func(env *syncertest.Env) []syncer.Account { return addAccounts(t, env, 3) }
	req := syncer.Request{Entities: syncer.AllEntities, Kind: syncer.RunIncremental}

	// the reference: one SyncAccount per account, twice (first sync, then incremental)
	ref := setup(t, acts...)
	for range 2 {
		for _, a := range accts(ref) {
			if res := ref.Syncer.SyncAccount(t.Context(), a, req); res.Failed() {
				t.Fatalf("reference pass of %s: %+v", a.ID, res)
			}
		}
	}

	env := setup(t, acts...)
	as := accts(env)
	other, err := env.Locker.Lock(t.Context(), "acct2", "cli@host")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		writes := env.Runs.Writes()
		ps := env.Syncer.Prepare(t.Context(), as, req)
		if env.Locker.Batches() != round+1 {
			t.Fatalf("round %d: %d LockMany calls; want one per Prepare", round, env.Locker.Batches())
		}
		for i, p := range ps[:2] {
			res := env.Syncer.SyncPrepared(t.Context(), p, req)
			if res.Failed() || len(res.Runs) != len(syncer.AllEntities) {
				t.Fatalf("round %d: prepared pass of %s: %+v", round, as[i].ID, res)
			}
			if !env.Locker.Held(as[i].ID) {
				t.Errorf("round %d: %s unlocked before Release", round, as[i].ID)
			}
			env.Syncer.Release(p)
			if env.Locker.Held(as[i].ID) {
				t.Errorf("round %d: %s still locked after its pass", round, as[i].ID)
			}
		}
		if got, want := env.Runs.Writes()-writes, 2*(len(syncer.AllEntities)+1); got != want {
			t.Errorf("round %d: %d writes of run rows for two passes; want %d", round, got, want)
		}
		res := env.Syncer.SyncPrepared(t.Context(), ps[2], req)
		env.Syncer.Release(ps[2])
		var held *syncer.LockHeldError
		if !errors.As(res.Err, &held) || held.Holder != "cli@host" || len(res.Runs) != 0 {
			t.Fatalf("round %d: account held elsewhere: %+v; want its holder's error", round, res)
		}
		if p := env.State.Prefetched(); len(p) != 0 {
			t.Errorf("round %d: read-ahead not dropped for %v", round, p)
		}
	}
	for _, r := range env.Runs.All() {
		if r.Status != syncer.RunSucceeded {
			t.Errorf("run %s of %s %s: %s", r.ID, r.AccountID, r.Entity, r.Status)
		}
	}
	for _, id := range []string{"acct0", "acct1"} {
		for _, e := range syncer.AllEntities {
			if got, want := env.Data.IDs(id, e), ref.Data.IDs(id, e); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s: rows %v; SyncAccount stored %v", id, e, got, want)
			}
		}
	}
	got, want := env.State.All(), ref.State.All()
	maps.DeleteFunc(want, func(k syncer.WatermarkKey, _ time.Time) bool { return k.AccountID == "acct2" })
	if !maps.EqualFunc(got, want, func(a, b time.Time) bool { return a.Equal(b) }) {
		t.Errorf("watermarks %v; SyncAccount stored %v", got, want)
	}

	// a prepared account that will not run is released
	other.Unlock()
	ps := env.Syncer.Prepare(t.Context(), as[2:], req)
	if !env.Locker.Held("acct2") {
		t.Fatal("Prepare did not lock acct2")
	}
	env.Syncer.Release(ps[0])
	if env.Locker.Held("acct2") || len(env.State.Prefetched()) != 0 {
		t.Fatalf("Release left the lock held (%v) or the read-ahead (%v)", env.Locker.Held("acct2"), env.State.Prefetched())
	}
}
