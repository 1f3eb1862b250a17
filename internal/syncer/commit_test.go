package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

// stagedEnv is setup with stores that write many accounts at once, so that
// prepared passes stage their writes (see syncer.Prepare), and n brand
// accounts acct0…acct(n-1).
func stagedEnv(t *testing.T, opt syncer.Options, n int, acts ...syncertest.Action) (*syncertest.Env, *syncertest.BatchData, []syncer.Account) {
	t.Helper()
	src := &syncertest.Source{Now: apiNow, Catalog: catalog(), Activity: acts}
	env := syncertest.New(src, opt)
	bd := &syncertest.BatchData{Data: env.Data}
	env.Syncer.Writer, env.Syncer.Catalog = bd, bd
	return env, bd, addAccounts(t, env, n)
}

func addAccounts(t *testing.T, env *syncertest.Env, n int) []syncer.Account {
	t.Helper()
	var out []syncer.Account
	for i := range n {
		a := brand()
		a.ID, a.SID = fmt.Sprintf("acct%d", i), fmt.Sprintf("IRacct%d", i)
		if err := env.Accounts.PutAccount(t.Context(), a, syncer.SealedSecret{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// firstSync runs each account's first sync alone (many windows: written as
// read), so that the next passes are in the steady state.
func firstSync(t *testing.T, env *syncertest.Env, accts []syncer.Account, req syncer.Request) {
	t.Helper()
	for _, a := range accts {
		if res := env.Syncer.SyncAccount(t.Context(), a, req); res.Failed() {
			t.Fatalf("first sync of %s: %+v", a.ID, res)
		}
	}
}

// newAction is an action updated an hour ago: every account's next pass reads it.
var newAction = syncertest.Action{Entity: syncer.Actions, ID: "a2", Campaign: "c1",
	Updated: apiNow.Add(-time.Hour), Event: apiNow.Add(-time.Hour), Locking: apiNow.Add(aDay)}

// syncStaged prepares the accounts together and runs their passes at once,
// as RunOnce does; it fails the test if a pass returned before calling
// ReadDone. onRead, when set, runs in ReadDone.
func syncStaged(t *testing.T, env *syncertest.Env, accts []syncer.Account, req syncer.Request, onRead func(syncer.Account)) []syncer.AccountResult {
	t.Helper()
	ps := env.Syncer.Prepare(t.Context(), accts, req)
	out := make([]syncer.AccountResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		read := false
		p.ReadDone = func() {
			read = true
			if onRead != nil {
				onRead(p.Account)
			}
		}
		wg.Go(func() {
			out[i] = env.Syncer.SyncPrepared(t.Context(), p, req)
			if !read && p.Account.ID != "" && out[i].Err == nil {
				t.Errorf("%s: the pass returned without calling ReadDone", p.Account.ID)
			}
			env.Syncer.Release(p)
		})
	}
	wg.Wait()
	return out
}

var stagedActs = []syncertest.Action{
	{Entity: syncer.Actions, ID: "a1", Campaign: "c1", Updated: apiNow.Add(-aDay), Event: apiNow.Add(-aDay), Locking: apiNow.Add(aDay)},
	{Entity: syncer.ActionUpdates, ID: "u1", Campaign: "c2", Updated: apiNow.Add(-2 * aDay), Event: apiNow.Add(-2 * aDay), Locking: apiNow.Add(aDay)},
}

// TestStagedPassesStoreWhatSyncAccountStores: the steady-state passes of
// prepared accounts stage their writes and the committer writes them
// together (a batch call per table for all accounts, one write of run
// rows, no start rows), with the same rows, watermarks and outcomes as
// SyncAccount; every lock is released and every pass called ReadDone.
func TestStagedPassesStoreWhatSyncAccountStores(t *testing.T) {
	req := syncer.Request{Entities: syncer.AllEntities, Kind: syncer.RunIncremental}
	const n = 6

	ref := setup(t, stagedActs...)
	refAccts := addAccounts(t, ref, n)
	for range 2 {
		for _, a := range refAccts {
			if res := ref.Syncer.SyncAccount(t.Context(), a, req); res.Failed() {
				t.Fatalf("reference pass of %s: %+v", a.ID, res)
			}
		}
	}
	// the first sync (many windows) writes as it reads; the second, in the
	// steady state, is staged
	env, bd, accts := stagedEnv(t, syncer.Options{}, n, stagedActs...)
	firstSync(t, env, accts, req)
	runWrites, batches := env.Runs.Writes(), bd.Batches()
	for i, res := range syncStaged(t, env, accts, req, nil) {
		if res.Failed() || len(res.Runs) != len(syncer.AllEntities) {
			t.Fatalf("staged pass of %s: %+v", accts[i].ID, res)
		}
		for _, r := range res.Runs {
			if r.Status != syncer.RunSucceeded || r.FinishedAt.IsZero() {
				t.Errorf("%s %s: %+v", r.AccountID, r.Entity, r)
			}
		}
	}
	if got := env.Runs.Writes() - runWrites; got < 1 || got > 2 {
		t.Errorf("%d writes of run rows for %d staged passes; want their outcomes in one or two (no start rows)", got, n)
	}
	// a batch per table with rows to write (the catalogs, actions: the
	// steady state brings no new action update), once or twice as passes
	// end apart
	if got, tables := bd.Batches()-batches, len(syncer.CatalogEntities)+1; got < tables || got > 2*tables {
		t.Errorf("%d batch writes for %d passes over %d tables with rows; want one or two per table", got, n, tables)
	}
	for _, a := range accts {
		if env.Locker.Held(a.ID) {
			t.Errorf("%s still locked", a.ID)
		}
		for _, e := range syncer.AllEntities {
			if got, want := env.Data.IDs(a.ID, e), ref.Data.IDs(a.ID, e); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s: rows %v; SyncAccount stored %v", a.ID, e, got, want)
			}
		}
	}
	if got, want := env.State.All(), ref.State.All(); !maps.EqualFunc(got, want, func(a, b time.Time) bool { return a.Equal(b) }) {
		t.Errorf("watermarks %v; SyncAccount stored %v", got, want)
	}
	for _, r := range env.Runs.All() {
		if r.Status != syncer.RunSucceeded {
			t.Errorf("run %s of %s %s: %s", r.ID, r.AccountID, r.Entity, r.Status)
		}
	}
	if p := env.State.Prefetched(); len(p) != 0 {
		t.Errorf("read-ahead not dropped for %v", p)
	}
}

// TestStagedCommitThatFailsFailsItsRuns: when the commit's writes fail, the
// staged runs with rows are recorded failed with the error, no watermark of
// theirs moves, and the
// pass reports failure: a sync that could not store must not look like a
// success.
func TestStagedCommitThatFailsFailsItsRuns(t *testing.T) {
	req := syncer.Request{Entities: syncer.AllEntities, Kind: syncer.RunIncremental}
	env, _, accts := stagedEnv(t, syncer.Options{}, 3, stagedActs...)
	firstSync(t, env, accts, req)
	before := env.State.All()
	boom := errors.New("clickhouse: connection refused")
	env.Data.Fail = boom
	for i, res := range syncStaged(t, env, accts, req, nil) {
		if !res.Failed() {
			t.Errorf("%s: the pass looks like a success: %+v", accts[i].ID, res)
		}
		for _, r := range res.Runs {
			if r.Entity == syncer.ActionUpdates {
				continue // nothing new to write: only its watermarks, which were stored
			}
			if r.Status != syncer.RunFailed || !strings.Contains(r.Error, boom.Error()) || r.Rows != 0 {
				t.Errorf("%s %s: %s %q (%d rows); want failed with %q and no rows", r.AccountID, r.Entity, r.Status, r.Error, r.Rows, boom)
			}
		}
	}
	if got := env.State.All(); !maps.EqualFunc(got, before, func(a, b time.Time) bool { return a.Equal(b) }) {
		t.Errorf("watermarks moved although no row was stored: %v; were %v", got, before)
	}
	for _, r := range env.Runs.All() {
		if r.Status == syncer.RunRunning {
			t.Errorf("run %s of %s %s left running", r.ID, r.AccountID, r.Entity)
		}
	}
}

// TestStagedPassWhoseLockIsLostWritesNothing: a pass whose lock is lost
// after reading, before its commit, has nothing written (its runs are
// interrupted, its watermarks stay), while the passes sharing the commit
// store theirs.
func TestStagedPassWhoseLockIsLostWritesNothing(t *testing.T) {
	req := syncer.Request{Entities: syncer.AllEntities, Kind: syncer.RunIncremental}
	env, _, accts := stagedEnv(t, syncer.Options{}, 3, stagedActs...)
	firstSync(t, env, accts, req)
	// a new action for every account, seen by the staged passes only
	env.Source.Activity = append(env.Source.Activity, newAction)
	before := env.State.All()
	res := syncStaged(t, env, accts, req, func(a syncer.Account) {
		if a.ID == "acct1" {
			env.Locker.Lose(a.ID)
		}
	})
	for i, r := range res {
		id := accts[i].ID
		has := strings.Contains(fmt.Sprint(env.Data.IDs(id, syncer.Actions)), "a2")
		if id == "acct1" {
			if has {
				t.Errorf("%s: rows written after its lock was lost", id)
			}
			for _, run := range r.Runs {
				if run.Status != syncer.RunInterrupted || !strings.Contains(run.Error, "lock was lost") {
					t.Errorf("%s %s: %s %q; want interrupted, lock lost", id, run.Entity, run.Status, run.Error)
				}
			}
			for k, t0 := range env.State.All() {
				if k.AccountID == id && !t0.Equal(before[k]) {
					t.Errorf("%s: watermark %v moved to %v after the lock was lost", id, k, t0)
				}
			}
			continue
		}
		if r.Failed() || !has {
			t.Errorf("%s: %+v, new action stored %v; want success", id, r, has)
		}
	}
}

// TestStagedRunTooLongWritesAsItReads: a steady-state run that reads more
// rows than BatchSize stops staging: it records its start and writes as an
// unstaged run does; its rows and watermarks are all stored.
func TestStagedRunTooLongWritesAsItReads(t *testing.T) {
	req := syncer.Request{Entities: []syncer.Entity{syncer.Actions}, Kind: syncer.RunIncremental}
	var acts []syncertest.Action
	env, _, accts := stagedEnv(t, syncer.Options{BatchSize: 3}, 2)
	firstSync(t, env, accts, req)
	for i := range 5 {
		acts = append(acts, syncertest.Action{Entity: syncer.Actions, ID: fmt.Sprintf("n%d", i), Campaign: "c1",
			Updated: apiNow.Add(-time.Hour), Event: apiNow.Add(-time.Hour), Locking: apiNow.Add(aDay)})
	}
	env.Source.Activity = acts
	writes := env.Data.Writes
	for i, res := range syncStaged(t, env, accts, req, nil) {
		if res.Failed() || len(res.Runs) != 1 || res.Runs[0].Rows != 5 {
			t.Fatalf("%s: %+v; want one successful run of 5 rows", accts[i].ID, res)
		}
		if got := env.Data.IDs(accts[i].ID, syncer.Actions); len(got) != 5 {
			t.Errorf("%s: stored %v", accts[i].ID, got)
		}
	}
	if env.Data.Writes == writes {
		t.Error("no write of its own: the long run stayed staged")
	}
	for _, r := range env.Runs.All() {
		if r.Status != syncer.RunSucceeded {
			t.Errorf("run %s of %s: %s", r.ID, r.AccountID, r.Status)
		}
	}
}

// panickyCatalog is a CatalogBatchWriter with a bug.
type panickyCatalog struct{ *syncertest.BatchData }

func (panickyCatalog) ReplaceCatalogs(context.Context, syncer.Entity, []syncer.CatalogRefresh) []error {
	panic("index out of range")
}

// TestStagedCommitThatPanicsFailsItsRuns: a store that panics while the
// committer writes fails the staged runs of that commit (recorded, with the
// panic) and every waiting pass returns; the process goes on.
func TestStagedCommitThatPanicsFailsItsRuns(t *testing.T) {
	req := syncer.Request{Entities: syncer.CatalogEntities, Kind: syncer.RunIncremental}
	env, bd, accts := stagedEnv(t, syncer.Options{}, 2)
	env.Syncer.Catalog = panickyCatalog{bd}
	for i, res := range syncStaged(t, env, accts, req, nil) {
		if !res.Failed() || len(res.Runs) == 0 {
			t.Fatalf("%s: %+v; want failed runs", accts[i].ID, res)
		}
		for _, r := range res.Runs {
			if r.Status != syncer.RunFailed || !strings.Contains(r.Error, "panic while writing: index out of range") {
				t.Errorf("%s %s: %s %q", r.AccountID, r.Entity, r.Status, r.Error)
			}
		}
	}
	all := env.Runs.All()
	if len(all) < 2 {
		t.Fatalf("%d runs recorded; want the failed runs of both accounts", len(all))
	}
	for _, r := range all {
		if r.Status != syncer.RunFailed {
			t.Errorf("recorded run %s of %s %s: %s", r.ID, r.AccountID, r.Entity, r.Status)
		}
	}
}

// losingCatalog loses an account's lock once its catalogs are written.
type losingCatalog struct {
	*syncertest.BatchData
	lose func()
}

func (c losingCatalog) ReplaceCatalogs(ctx context.Context, e syncer.Entity, batch []syncer.CatalogRefresh) []error {
	errs := c.BatchData.ReplaceCatalogs(ctx, e, batch)
	if e == syncer.CatalogEntities[len(syncer.CatalogEntities)-1] {
		c.lose()
	}
	return errs
}

// TestStagedCommitChecksTheLockBeforeEachStep: a lock lost during the
// commit, after the account's catalogs were written, stops the rest of its
// writes (its activity runs are interrupted, its watermarks stay), while the
// other passes of the commit store everything.
func TestStagedCommitChecksTheLockBeforeEachStep(t *testing.T) {
	req := syncer.Request{Entities: syncer.AllEntities, Kind: syncer.RunIncremental}
	env, bd, accts := stagedEnv(t, syncer.Options{}, 3, stagedActs...)
	firstSync(t, env, accts, req)
	env.Source.Activity = append(env.Source.Activity, newAction)
	env.Syncer.Catalog = losingCatalog{bd, func() { env.Locker.Lose("acct1") }}
	env.Source.Now = apiNow.Add(2 * time.Hour) // the watermarks of a stored run move
	before := env.State.All()
	for i, res := range syncStaged(t, env, accts, req, nil) {
		id := accts[i].ID
		for _, r := range res.Runs {
			want := syncer.RunSucceeded
			if id == "acct1" && (r.Entity == syncer.Actions || r.Entity == syncer.ActionUpdates) {
				want = syncer.RunInterrupted
			}
			if r.Status != want {
				t.Errorf("%s %s: %s %q; want %s", id, r.Entity, r.Status, r.Error, want)
			}
		}
		has := strings.Contains(fmt.Sprint(env.Data.IDs(id, syncer.Actions)), "a2")
		if has != (id != "acct1") {
			t.Errorf("%s: new action stored %v", id, has)
		}
	}
	for k, t0 := range env.State.All() {
		if k.AccountID == "acct1" && !t0.Equal(before[k]) {
			t.Errorf("acct1: watermark %v moved to %v after the lock was lost", k, t0)
		}
		if k.AccountID == "acct0" && k.Entity == syncer.Actions && k.Scan == syncer.ScanUpdated && !t0.After(before[k]) {
			t.Errorf("acct0: watermark %v did not move (%v)", k, t0)
		}
	}
}

// blockingCatalog blocks its first ReplaceCatalogs until release closes.
type blockingCatalog struct {
	*syncertest.BatchData
	once    *sync.Once
	release chan struct{}
}

func (c blockingCatalog) ReplaceCatalogs(ctx context.Context, e syncer.Entity, batch []syncer.CatalogRefresh) []error {
	c.once.Do(func() { <-c.release })
	return c.BatchData.ReplaceCatalogs(ctx, e, batch)
}

// TestStagedPassesKeepTheirSlotsWhenCommitsFallBehind: while a commit is
// slow, passes that have read go on giving their slots away only until a
// commit's worth of them waits; the next ones keep their slots (their
// caller starts no more passes) until a commit takes them. Nothing is lost.
func TestStagedPassesKeepTheirSlotsWhenCommitsFallBehind(t *testing.T) {
	req := syncer.Request{Entities: syncer.CatalogEntities, Kind: syncer.RunIncremental}
	const n = 80
	env, bd, accts := stagedEnv(t, syncer.Options{}, n)
	release := make(chan struct{})
	env.Syncer.Catalog = blockingCatalog{bd, &sync.Once{}, release}
	ps := env.Syncer.Prepare(t.Context(), accts, req)
	var freed atomic.Int32
	var wg sync.WaitGroup
	res := make([]syncer.AccountResult, n)
	for i, p := range ps {
		p.ReadDone = func() { freed.Add(1) }
		wg.Go(func() {
			res[i] = env.Syncer.SyncPrepared(t.Context(), p, req)
			env.Syncer.Release(p)
		})
	}
	// wait for the slots given away to settle while the first commit hangs
	last, since := int32(-1), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Since(since) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the passes never settled")
		}
		if f := freed.Load(); f != last {
			last, since = f, time.Now()
		}
	}
	if last >= n || last == 0 {
		t.Errorf("%d of %d passes gave their slots away while a commit hung; want some, not all", last, n)
	}
	close(release)
	wg.Wait()
	if freed.Load() != n {
		t.Errorf("%d slots freed in the end; want %d", freed.Load(), n)
	}
	for i, r := range res {
		if r.Failed() || len(r.Runs) != len(syncer.CatalogEntities) {
			t.Errorf("%s: %+v", accts[i].ID, r)
		}
	}
}
