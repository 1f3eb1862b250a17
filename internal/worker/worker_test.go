package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// fakeSyncer "syncs" an account in windows of one second each, honouring
// Request.Stop between windows and the context at once; it records every
// pass and the largest number of passes running at once.
type fakeSyncer struct {
	mu       sync.Mutex
	windows  map[string]int // windows per pass, by account (default 1)
	panics   map[string]bool
	running  map[string]int
	now, max int
	passes   map[string][][]syncer.Entity
	done     map[string]int // windows finished (committed)
	overlaps []string
}

func newFakeSyncer() *fakeSyncer {
	return &fakeSyncer{windows: map[string]int{}, panics: map[string]bool{}, running: map[string]int{},
		passes: map[string][][]syncer.Entity{}, done: map[string]int{}}
}

func (f *fakeSyncer) SyncAccount(ctx context.Context, a syncer.Account, req syncer.Request) syncer.AccountResult {
	f.mu.Lock()
	f.running[a.ID]++
	if f.running[a.ID] > 1 {
		f.overlaps = append(f.overlaps, a.ID)
	}
	f.now++
	f.max = max(f.max, f.now)
	f.passes[a.ID] = append(f.passes[a.ID], slices.Clone(req.Entities))
	n, boom := max(f.windows[a.ID], 1), f.panics[a.ID]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[a.ID]--
		f.now--
		f.mu.Unlock()
	}()
	if boom {
		panic("boom in " + a.ID)
	}
	res := syncer.AccountResult{Account: a}
	for i := 0; i < n; i++ {
		select {
		case <-req.Stop:
			res.Err = syncer.ErrStopped
			return res
		default:
		}
		select {
		case <-ctx.Done():
			res.Err = ctx.Err()
			return res
		case <-time.After(time.Second):
		}
		f.mu.Lock()
		f.done[a.ID]++
		f.mu.Unlock()
	}
	return res
}

func (f *fakeSyncer) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.passes[id])
}

type fakeAccounts struct{ accts []syncer.Account }

func (f *fakeAccounts) Accounts(context.Context) ([]syncer.Account, error) { return f.accts, nil }
func (f *fakeAccounts) Account(_ context.Context, id string) (syncer.Account, error) {
	for _, a := range f.accts {
		if a.ID == id {
			return a, nil
		}
	}
	return syncer.Account{}, syncer.ErrNotFound
}

type fakeRuns struct {
	mu   sync.Mutex
	runs []syncer.Run
}

func (f *fakeRuns) RecordRun(_ context.Context, r syncer.Run) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, r)
	return nil
}
func (f *fakeRuns) CloseAbandoned(context.Context, string, string) (int, error) { return 0, nil }

type bundle struct {
	w    *Worker
	sync *fakeSyncer
	runs *fakeRuns
}

func accounts(ids ...string) []syncer.Account {
	var out []syncer.Account
	for _, id := range ids {
		out = append(out, syncer.Account{ID: id, Status: syncer.StatusActive})
	}
	return out
}

// setup builds a worker whose actions tick every 10 s and catalog tick
// every 30 s (at second 5), over accts.
func setup(t *testing.T, accts []syncer.Account, tune func(*Config)) *bundle {
	t.Helper()
	b := &bundle{sync: newFakeSyncer(), runs: &fakeRuns{}}
	cfg := Config{Syncer: b.sync, Accounts: &fakeAccounts{accts}, Runs: b.runs, Concurrency: 4,
		Schedules: []Schedule{
			{Name: "actions", Spec: "*/10 * * * * *", Entities: syncer.ActivityEntities},
			{Name: "catalog", Spec: "5/30 * * * * *", Entities: syncer.CatalogEntities},
		}}
	if tune != nil {
		tune(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.w = w
	return b
}

func TestTicksRunEveryActiveAccount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		accts := accounts("a", "b", "c")
		accts = append(accts, syncer.Account{ID: "off", Status: syncer.StatusDisabled})
		var skipped []string
		b := setup(t, accts, func(c *Config) {
			c.Schedules = c.Schedules[:1]
			c.OnSkipped = func(a syncer.Account) { skipped = append(skipped, a.ID) }
		})
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40*time.Second + 10*time.Millisecond)
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b", "c"} {
			if n := b.sync.count(id); n < 4 || n > 5 {
				t.Errorf("%s: %d passes in 40 s of 10 s ticks", id, n)
			}
		}
		if b.sync.count("off") != 0 || len(skipped) < 4 {
			t.Errorf("the disabled account ran %d times, skipped %d times", b.sync.count("off"), len(skipped))
		}
		if err := b.w.Start(t.Context()); err == nil {
			t.Error("a stopped worker started again")
		}
	})
}

func TestBusyAccountMergesQueuedEntities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, accounts("slow"), nil)
		// each pass takes 25 s; the catalog tick at :05 starts one, the
		// actions ticks at :10 and :20 queue actions for the pass at :30, the
		// catalog tick at :35 and actions tick at :40 and :50 queue both
		// kinds for the pass at :55.
		b.sync.windows["slow"] = 25
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Second)
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(b.sync.overlaps) > 0 {
			t.Fatalf("passes of one account overlapped: %v", b.sync.overlaps)
		}
		passes := b.sync.passes["slow"]
		if len(passes) != 3 {
			t.Fatalf("%d passes in 60 s of 25 s passes: %v", len(passes), passes)
		}
		if !slices.Equal(passes[1], syncer.ActivityEntities) {
			t.Errorf("second pass %v; want the actions queued twice, merged once", passes[1])
		}
		// the third pass carries both schedules' entities, once each
		for _, e := range append(slices.Clone(syncer.ActivityEntities), syncer.CatalogEntities...) {
			if n := countOf(passes[2], e); n != 1 {
				t.Errorf("third pass has %s %d times: %v", e, n, passes[2])
			}
		}
	})
}

func countOf(es []syncer.Entity, e syncer.Entity) int {
	n := 0
	for _, x := range es {
		if x == e {
			n++
		}
	}
	return n
}

func TestAtMostConcurrencyPassesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ids []string
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("acct-%d", i))
		}
		b := setup(t, accounts(ids...), func(c *Config) { c.Concurrency = 3; c.StartSpread = 4 * time.Second })
		for _, id := range ids {
			b.sync.windows[id] = 3
		}
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if b.sync.max != 3 {
			t.Errorf("at most %d passes ran at once; want exactly the limit 3", b.sync.max)
		}
		for _, id := range ids {
			if b.sync.count(id) == 0 {
				t.Errorf("%s never ran", id)
			}
		}

		// RunOnce goes through the same limit
		r := setup(t, accounts(ids...), func(c *Config) { c.Concurrency = 2 })
		res := r.w.RunOnce(t.Context(), accounts(ids...), syncer.Request{Entities: syncer.ActivityEntities})
		for i, got := range res {
			if got.Account.ID != ids[i] || got.Err != nil {
				t.Errorf("result %d: %+v", i, got)
			}
		}
		if r.sync.max != 2 {
			t.Errorf("RunOnce ran %d at once; want 2", r.sync.max)
		}
	})
}

func TestStopFinishesTheWindowAndStopAndCancelCuts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, accounts("long"), func(c *Config) { c.Schedules = c.Schedules[:1] })
		b.sync.windows["long"] = 8
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10*time.Second + 2500*time.Millisecond) // the pass started at :10 is in its third window
		start := time.Now()
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 500*time.Millisecond {
			t.Errorf("Stop took %s; the window in progress had 500ms left", took)
		}
		if b.sync.done["long"] != 3 {
			t.Errorf("%d windows finished; want the 3 begun before Stop", b.sync.done["long"])
		}
		time.Sleep(time.Minute)
		if n := b.sync.count("long"); n != 1 {
			t.Errorf("%d passes; none may start after Stop", n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, accounts("long"), func(c *Config) { c.Schedules = c.Schedules[:1] })
		b.sync.windows["long"] = 8
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10*time.Second + 2500*time.Millisecond)
		soft, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := b.w.Stop(soft); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop with a deadline shorter than the window: %v", err)
		}
		if err := b.w.StopAndCancel(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := b.sync.done["long"]; d != 2 {
			t.Errorf("%d windows finished; the cancelled third must not count", d)
		}
	})
}

func TestPanickingPassIsAFailedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var results []syncer.AccountResult
		var mu sync.Mutex
		b := setup(t, accounts("bad", "good"), func(c *Config) {
			c.Schedules = c.Schedules[:1]
			c.OnResult = func(r syncer.AccountResult) { mu.Lock(); results = append(results, r); mu.Unlock() }
		})
		b.sync.panics["bad"] = true
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second)
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if b.sync.count("bad") != 2 || b.sync.count("good") != 2 {
			t.Fatalf("passes: bad %d, good %d; the worker must go on after a panic", b.sync.count("bad"), b.sync.count("good"))
		}
		failed := 0
		for _, r := range b.runs.runs {
			if r.AccountID != "bad" || r.Status != syncer.RunFailed || r.Error != "panic: boom in bad" {
				t.Errorf("recorded run %+v", r)
			}
			failed++
		}
		if want := 2 * len(syncer.ActivityEntities); failed != want {
			t.Errorf("%d failed runs recorded; want %d (one per entity per pass)", failed, want)
		}
		bad := 0
		for _, r := range results {
			if r.Account.ID == "bad" && r.Failed() {
				bad++
			}
		}
		if bad != 2 {
			t.Errorf("%d failed results reported for the panicking account; want 2", bad)
		}
	})
}

func TestShareLimitsTheTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fail atomic.Bool
		b := setup(t, accounts("mine", "theirs"), func(c *Config) {
			c.Schedules = c.Schedules[:1]
			c.Share = func(_ context.Context, active []syncer.Account) ([]syncer.Account, error) {
				if fail.Load() {
					return nil, errors.New("keeper session lost")
				}
				return slices.DeleteFunc(active, func(a syncer.Account) bool { return a.ID != "mine" }), nil
			}
		})
		if err := b.w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second)
		fail.Store(true)
		time.Sleep(20 * time.Second)
		if err := b.w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if b.sync.count("mine") != 2 || b.sync.count("theirs") != 0 {
			t.Errorf("passes: mine %d (want 2: ticks at 10 and 20 s, none once the share is unknown), theirs %d",
				b.sync.count("mine"), b.sync.count("theirs"))
		}
	})
}

// fakePreparer is a Preparer over a fakeSyncer: it records the batches
// prepared, and which prepared accounts ran or were discarded.
type fakePreparer struct {
	*fakeSyncer
	mu        sync.Mutex
	batches   [][]string
	ran       []string
	released  []string
	discarded []string
	prepared  map[*syncer.Prepared]bool
}

func (f *fakePreparer) Prepare(_ context.Context, accts []syncer.Account, _ syncer.Request) []*syncer.Prepared {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	var out []*syncer.Prepared
	for _, a := range accts {
		ids = append(ids, a.ID)
		p := &syncer.Prepared{Account: a}
		f.prepared[p] = true
		out = append(out, p)
	}
	f.batches = append(f.batches, ids)
	return out
}

func (f *fakePreparer) SyncPrepared(ctx context.Context, p *syncer.Prepared, req syncer.Request) syncer.AccountResult {
	f.mu.Lock()
	if !f.prepared[p] {
		panic("a prepared account run twice or never prepared: " + p.Account.ID)
	}
	f.prepared[p] = false // ran; to be released
	f.ran = append(f.ran, p.Account.ID)
	f.mu.Unlock()
	return f.SyncAccount(ctx, p.Account, req)
}

// Release records a release after the pass, or a discard instead of it.
func (f *fakePreparer) Release(p *syncer.Prepared) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ran, ok := f.prepared[p]
	if !ok {
		panic("a prepared account released twice or never prepared: " + p.Account.ID)
	}
	delete(f.prepared, p)
	if ran {
		f.discarded = append(f.discarded, p.Account.ID)
	} else {
		f.released = append(f.released, p.Account.ID)
	}
}

// TestRunOncePreparesAheadInBatches: with a Preparer, RunOnce prepares the
// accounts in order, 2 × Concurrency at a time, runs each prepared account
// once within the concurrency limit and returns the results in order; when
// the context ends, the accounts prepared but not started are discarded
// (their locks released) and the rest are not prepared.
func TestRunOncePreparesAheadInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ids []string
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("acct-%d", i))
		}
		fs := newFakeSyncer()
		fp := &fakePreparer{fakeSyncer: fs, prepared: map[*syncer.Prepared]bool{}}
		w, err := New(Config{Syncer: fp, Accounts: &fakeAccounts{accounts(ids...)}, Runs: &fakeRuns{}, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		res := w.RunOnce(t.Context(), accounts(ids...), syncer.Request{Entities: syncer.ActivityEntities})
		for i, got := range res {
			if got.Account.ID != ids[i] || got.Err != nil {
				t.Errorf("result %d: %+v", i, got)
			}
		}
		if want := fmt.Sprint([][]string{ids[:4], ids[4:8], ids[8:]}); fmt.Sprint(fp.batches) != want {
			t.Errorf("batches %v; want %s", fp.batches, want)
		}
		if fs.max != 2 || len(fp.ran) != 10 || len(fp.released) != 10 || len(fp.prepared) != 0 || len(fs.overlaps) != 0 {
			t.Errorf("%d at once (want 2), %d ran, %d released, %d left prepared, overlaps %v", fs.max, len(fp.ran), len(fp.released), len(fp.prepared), fs.overlaps)
		}

		// cancelled after the first passes started
		fp.batches, fp.ran, fp.released = nil, nil, nil
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(500*time.Millisecond, cancel)
		res = w.RunOnce(ctx, accounts(ids...), syncer.Request{Entities: syncer.ActivityEntities})
		synctest.Wait()
		if len(fp.prepared) != 0 {
			t.Errorf("%d prepared accounts neither ran nor were discarded", len(fp.prepared))
		}
		if len(fp.ran) != 2 || len(fp.released) != 2 || len(fp.discarded) == 0 {
			t.Errorf("ran %v, discarded %v; want the first two run and the prepared rest discarded", fp.ran, fp.discarded)
		}
		for i, got := range res {
			if !errors.Is(got.Err, context.Canceled) || got.Account.ID != ids[i] {
				t.Errorf("result %d after cancel: %+v", i, got)
			}
		}
	})
}

// readDonePreparer is a Preparer whose passes call ReadDone, then wait
// until every pass has (as staged passes wait for a commit they share).
type readDonePreparer struct {
	fakePreparer
	all     sync.WaitGroup
	mu      sync.Mutex
	reading int
	most    int
}

func (f *readDonePreparer) SyncPrepared(ctx context.Context, p *syncer.Prepared, req syncer.Request) syncer.AccountResult {
	f.mu.Lock()
	f.reading++
	f.most = max(f.most, f.reading)
	f.mu.Unlock()
	time.Sleep(time.Second) // reading
	f.mu.Lock()
	f.reading--
	f.mu.Unlock()
	p.ReadDone()
	f.all.Done()
	f.all.Wait()
	return syncer.AccountResult{Account: p.Account}
}

// TestRunOnceFreesASlotAtReadDone: a pass that has read everything
// (Prepared.ReadDone) gives its slot to the next while it waits for its
// commit, so passes waiting on each other's reads do not deadlock, and no
// more than Concurrency passes read at once.
func TestRunOnceFreesASlotAtReadDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ids []string
		for i := range 7 {
			ids = append(ids, fmt.Sprintf("acct-%d", i))
		}
		fp := &readDonePreparer{fakePreparer: fakePreparer{fakeSyncer: newFakeSyncer(), prepared: map[*syncer.Prepared]bool{}}}
		fp.all.Add(len(ids))
		w, err := New(Config{Syncer: fp, Accounts: &fakeAccounts{accounts(ids...)}, Runs: &fakeRuns{}, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		res := w.RunOnce(t.Context(), accounts(ids...), syncer.Request{Entities: syncer.ActivityEntities})
		for i, got := range res {
			if got.Account.ID != ids[i] || got.Err != nil {
				t.Errorf("result %d: %+v", i, got)
			}
		}
		if fp.most != 2 {
			t.Errorf("%d passes read at once; want 2 (the concurrency)", fp.most)
		}
	})
}
