// Package worker runs sync passes: on cron schedules for the long-lived
// `syncer run` (Start, Stop, StopAndCancel), or once over a list of accounts
// for `syncer sync` (RunOnce). Both go through one bounded fan-out: at most
// Concurrency passes at a time, a panicking pass recorded as a failed run,
// one account's failure never touching another's.
package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Syncer runs one pass over one account (*syncer.Syncer does). A pass
// whose Request.Stop is closed finishes its window, commits and returns; a
// cancelled context stops it at once.
type Syncer interface {
	SyncAccount(ctx context.Context, a syncer.Account, req syncer.Request) syncer.AccountResult
}

// Preparer is a Syncer that makes several accounts' passes ready at once
// (*syncer.Syncer does): their locks taken and their state read in a query
// each for all of them (syncer.Syncer.Prepare). RunOnce prepares the next
// accounts while the current ones sync.
type Preparer interface {
	Prepare(ctx context.Context, accts []syncer.Account, req syncer.Request) []*syncer.Prepared
	SyncPrepared(ctx context.Context, p *syncer.Prepared, req syncer.Request) syncer.AccountResult
	Release(p *syncer.Prepared)
}

// Accounts reads the registered accounts (load.AccountStore does). Account
// returns syncer.ErrNotFound (wrapped) for an unknown id.
type Accounts interface {
	Accounts(ctx context.Context) ([]syncer.Account, error)
	Account(ctx context.Context, id string) (syncer.Account, error)
}

// Schedule is a cron specification (seconds optional, evaluated in UTC) and
// the entities each of its ticks syncs.
type Schedule struct {
	Name     string // for errors, e.g. SYNCER_SCHEDULE_ACTIONS
	Spec     string
	Entities []syncer.Entity
}

// Config is what a Worker needs. Syncer, Accounts, Runs and Logger are
// required.
type Config struct {
	Syncer   Syncer
	Accounts Accounts
	// Runs records a pass that panicked as failed runs.
	Runs     syncer.RunStore
	Logger   *zap.Logger
	NewRunID func() string

	Schedules   []Schedule
	Concurrency int           // passes at once (at least 1)
	StartSpread time.Duration // scheduled passes start within this much, by a hash of the account id

	// Share, when set, picks the accounts this worker syncs on a tick out
	// of the active ones (a fleet's share of them). An error skips the
	// tick: nothing can be known to be ours.
	Share func(ctx context.Context, active []syncer.Account) ([]syncer.Account, error)

	// Optional observers, for metrics.
	OnAccounts func(all []syncer.Account)   // every tick's account list
	OnSkipped  func(a syncer.Account)       // an account not active, skipped
	OnResult   func(r syncer.AccountResult) // every pass's outcome
}

// ScheduleParser reads a Schedule's Spec: standard cron with an optional
// leading seconds field, and descriptors such as @hourly. It holds no state;
// configuration checks use it too, so a schedule that passes them is one the
// worker runs.
var ScheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Worker schedules and runs passes. Its zero value is not usable: call New.
type Worker struct {
	cfg  Config
	cron *cron.Cron
	sem  chan struct{}
	log  *zap.Logger

	mu      sync.Mutex
	started bool
	stop    chan struct{} // closed by Stop: no new pass, no new window
	stopped bool
	work    context.Context // the passes' context, cancelled by StopAndCancel
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	queued  map[string][]syncer.Entity // per account: entities waiting for the running pass
	busy    map[string]bool
}

// New checks the configuration and parses the schedules.
func New(cfg Config) (*Worker, error) {
	if cfg.Syncer == nil || cfg.Accounts == nil || cfg.Runs == nil {
		return nil, errors.New("worker: Syncer, Accounts and Runs are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.NewRunID == nil {
		cfg.NewRunID = func() string { return fmt.Sprintf("panic-%d", time.Now().UnixNano()) }
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, max(cfg.Concurrency, 1)),
		stop: make(chan struct{}), queued: map[string][]syncer.Entity{}, busy: map[string]bool{}}
	w.work, w.cancel = context.WithCancel(context.Background())
	w.cron = cron.New(cron.WithLocation(time.UTC), cron.WithParser(ScheduleParser),
		cron.WithChain(cron.Recover(cron.PrintfLogger(zap.NewStdLog(w.log)))))
	for _, s := range cfg.Schedules {
		entities := s.Entities
		if _, err := w.cron.AddFunc(s.Spec, func() { w.Tick(entities) }); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return w, nil
}

// Start begins the schedules. The passes run on a context that keeps ctx's
// values but ends only with StopAndCancel. Start fails if the worker was
// started or stopped before.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return errors.New("worker: already started")
	}
	w.started = true
	w.work, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.cron.Start()
	return nil
}

// Stop is the soft stop: no new tick and no new pass; running passes finish
// the window they are in, commit it and return. It waits for them, or
// returns ctx's error when ctx ends first (they go on; StopAndCancel cuts
// them short).
func (w *Worker) Stop(ctx context.Context) error {
	w.halt()
	return w.wait(ctx)
}

// StopAndCancel is the hard stop: as Stop, and the running passes' context
// is cancelled, so they return at once (what they committed stays; the next
// pass resumes from there). It waits for them, or for ctx.
func (w *Worker) StopAndCancel(ctx context.Context) error {
	w.halt()
	w.cancel()
	return w.wait(ctx)
}

func (w *Worker) halt() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	close(w.stop)
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.cron.Stop().Done() // a tick being handed out returns first (it queues nothing more)
	}
}

func (w *Worker) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// offset is an account's deterministic start delay within the spread, so
// restarts and many accounts do not hit the API in the same second.
func (w *Worker) offset(accountID string) time.Duration {
	if w.cfg.StartSpread <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(accountID))
	return time.Duration(h.Sum64() % uint64(w.cfg.StartSpread))
}

// Tick queues a pass for the entities over every active account this
// worker takes (Share). The schedules call it; it returns at once.
func (w *Worker) Tick(entities []syncer.Entity) {
	if w.halted() {
		return
	}
	accts, err := w.cfg.Accounts.Accounts(w.work)
	if err != nil {
		w.log.Error("scheduled pass: could not read accounts", zap.Error(err))
		return
	}
	if w.cfg.OnAccounts != nil {
		w.cfg.OnAccounts(accts)
	}
	var active []syncer.Account
	for _, acct := range accts {
		if !acct.Active() {
			if w.cfg.OnSkipped != nil {
				w.cfg.OnSkipped(acct)
			}
			w.log.Debug("skipping account", zap.String("account_id", acct.ID), zap.String("status", string(acct.Status)))
			continue
		}
		active = append(active, acct)
	}
	if w.cfg.Share != nil {
		if active, err = w.cfg.Share(w.work, active); err != nil {
			w.log.Warn("scheduled pass skipped: this worker's share of the accounts is unknown", zap.Error(err))
			return
		}
	}
	for _, acct := range active {
		w.enqueue(acct, entities)
	}
}

func (w *Worker) halted() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// enqueue starts a pass for the account, or merges the entities into the
// pass that follows the running one.
func (w *Worker) enqueue(acct syncer.Account, entities []syncer.Entity) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.busy[acct.ID] {
		for _, e := range entities {
			if !slices.Contains(w.queued[acct.ID], e) {
				w.queued[acct.ID] = append(w.queued[acct.ID], e)
			}
		}
		w.log.Debug("account still syncing; queued the entities for right after", zap.String("account_id", acct.ID))
		return
	}
	w.busy[acct.ID] = true
	w.wg.Add(1)
	go w.loop(acct, entities)
}

// loop runs passes for one account until nothing is queued for it.
func (w *Worker) loop(acct syncer.Account, entities []syncer.Entity) {
	defer w.wg.Done()
	delay := w.offset(acct.ID)
	for {
		if !w.sleep(delay) || !w.acquire() {
			w.release(acct.ID)
			return
		}
		req := syncer.Request{Entities: entities, Kind: syncer.RunIncremental, Stop: w.stop}
		w.pass(w.work, acct, req, func(ctx context.Context) syncer.AccountResult { return w.cfg.Syncer.SyncAccount(ctx, acct, req) })
		w.mu.Lock()
		next := w.queued[acct.ID]
		delete(w.queued, acct.ID)
		if len(next) == 0 || w.stopped {
			delete(w.busy, acct.ID)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		entities, delay = next, 0
		// reload: the account may have been disabled or flagged meanwhile
		fresh, err := w.cfg.Accounts.Account(w.work, acct.ID)
		if err != nil || !fresh.Active() {
			w.release(acct.ID)
			return
		}
		acct = fresh
	}
}

func (w *Worker) release(id string) {
	w.mu.Lock()
	delete(w.busy, id)
	delete(w.queued, id)
	w.mu.Unlock()
}

// sleep waits d, returning false if stopping began first.
func (w *Worker) sleep(d time.Duration) bool {
	if d <= 0 {
		return !w.halted()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
		return false
	case <-t.C:
		return true
	}
}

// acquire takes a pass slot, returning false if stopping began first.
func (w *Worker) acquire() bool {
	select {
	case w.sem <- struct{}{}:
		return true
	case <-w.stop:
		return false
	}
}

// RunOnce runs one pass per account now, at most Concurrency at a time, and
// returns the results in the order of accts. It needs no Start. Cancelling
// ctx stops the passes at once; req.Stop, when closed, at their window
// boundary. With a Preparer, the accounts are prepared a few at a time
// ahead of their passes (see runPrepared).
func (w *Worker) RunOnce(ctx context.Context, accts []syncer.Account, req syncer.Request) []syncer.AccountResult {
	results := make([]syncer.AccountResult, len(accts))
	if pr, ok := w.cfg.Syncer.(Preparer); ok && len(accts) > 1 {
		w.runPrepared(ctx, pr, accts, req, results)
		return results
	}
	var wg sync.WaitGroup
	for i, acct := range accts {
		wg.Go(func() {
			select {
			case w.sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = syncer.AccountResult{Account: acct, Err: ctx.Err()}
				return
			}
			results[i] = w.pass(ctx, acct, req, func(ctx context.Context) syncer.AccountResult {
				return w.cfg.Syncer.SyncAccount(ctx, acct, req)
			})
		})
	}
	wg.Wait()
	return results
}

// runPrepared is RunOnce with a Preparer: a goroutine prepares the accounts
// in order, 2 × Concurrency at a time (one lease settle time and a query
// per kind of state for all of them), while the prepared ones run; at most
// that many wait prepared, holding their locks, so a lock is held a few
// passes' time before its pass starts. A pass's slot is free once it has
// read everything (syncer.Prepared.ReadDone: a staged pass then waits for
// the commit it shares with others) or ended; its lock is released after
// (RunOnce returns after every release).
func (w *Worker) runPrepared(ctx context.Context, pr Preparer, accts []syncer.Account, req syncer.Request, results []syncer.AccountResult) {
	batch := 2 * cap(w.sem)
	type item struct {
		i int
		p *syncer.Prepared
	}
	ready := make(chan item, batch)
	go func() {
		defer close(ready)
		for start := 0; start < len(accts); start += batch {
			if ctx.Err() != nil {
				for i := start; i < len(accts); i++ {
					results[i] = syncer.AccountResult{Account: accts[i], Err: ctx.Err()}
				}
				return
			}
			end := min(start+batch, len(accts))
			for j, p := range pr.Prepare(ctx, accts[start:end], req) {
				ready <- item{start + j, p}
			}
		}
	}()
	var wg sync.WaitGroup
	for it := range ready {
		slot := false
		if ctx.Err() == nil {
			select {
			case w.sem <- struct{}{}:
				slot = true
			case <-ctx.Done():
			}
		}
		if slot && ctx.Err() != nil { // both were ready: do not start a pass after the end
			<-w.sem
			slot = false
		}
		if !slot {
			pr.Release(it.p)
			results[it.i] = syncer.AccountResult{Account: it.p.Account, Err: ctx.Err()}
			continue
		}
		wg.Go(func() {
			// The slot is freed when the pass has read everything (a staged
			// pass then waits for its commit, see syncer.Prepared.ReadDone),
			// or when it ends.
			var once sync.Once
			free := func() { once.Do(func() { <-w.sem }) }
			it.p.ReadDone = free
			results[it.i] = w.passFreeing(ctx, it.p.Account, req, free, func(ctx context.Context) syncer.AccountResult {
				return pr.SyncPrepared(ctx, it.p, req)
			})
			pr.Release(it.p) // the slot is free already: the next pass need not wait for this
		})
	}
	wg.Wait()
}

// pass runs one account pass with its slot held (released on return); a
// panic is recorded as failed runs and never kills the worker.
func (w *Worker) pass(ctx context.Context, acct syncer.Account, req syncer.Request, run func(context.Context) syncer.AccountResult) syncer.AccountResult {
	return w.passFreeing(ctx, acct, req, func() { <-w.sem }, run)
}

// passFreeing is pass with free releasing the slot (at the latest on return).
func (w *Worker) passFreeing(ctx context.Context, acct syncer.Account, req syncer.Request, free func(), run func(context.Context) syncer.AccountResult) (res syncer.AccountResult) {
	defer free()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		w.log.Error("panic in account pass; recorded as a failed run", zap.String("account_id", acct.ID),
			zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		now := time.Now().UTC()
		res = syncer.AccountResult{Account: acct, Err: fmt.Errorf("account %s: panic: %v", acct.ID, r)}
		for _, e := range req.Entities {
			run := syncer.Run{ID: w.cfg.NewRunID(), AccountID: acct.ID, Entity: e, Kind: req.Kind,
				StartedAt: now, FinishedAt: now, Status: syncer.RunFailed, Error: fmt.Sprintf("panic: %v", r)}
			if run.Kind == "" {
				run.Kind = syncer.RunIncremental
			}
			if err := w.cfg.Runs.RecordRun(context.WithoutCancel(ctx), run); err != nil {
				w.log.Error("could not record the panicked run", zap.String("account_id", acct.ID), zap.Error(err))
			}
			res.Runs = append(res.Runs, run)
		}
		if w.cfg.OnResult != nil {
			w.cfg.OnResult(res)
		}
	}()
	res = run(ctx)
	if w.cfg.OnResult != nil {
		w.cfg.OnResult(res)
	}
	if res.Err != nil {
		var held *syncer.LockHeldError
		if errors.As(res.Err, &held) {
			w.log.Info("account pass skipped: the account is held elsewhere", zap.String("account_id", acct.ID), zap.String("holder", held.Holder))
		} else {
			w.log.Warn("account pass failed", zap.String("account_id", acct.ID), zap.Error(res.Err))
		}
	}
	return res
}
