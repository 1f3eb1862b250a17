package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/webhook"
)

// worker runs scheduled passes: each cron tick reloads the accounts (so
// accounts added, disabled, reconnected or removed are picked up without a
// restart) and queues a pass per active account. Passes run at most
// concurrency at a time; an account never runs twice at once: entities asked
// for while it runs are merged into one follow-up pass.
type worker struct {
	a      *app
	svc    *syncer.Syncer
	log    *zap.Logger
	m      *metrics
	spread time.Duration // start offsets are spread over this much

	sem    chan struct{}
	stop   chan struct{} // closed at shutdown: no new pass, no new window
	hard   context.Context
	wg     sync.WaitGroup
	mu     sync.Mutex
	queued map[string][]syncer.Entity // per account: entities waiting for the running pass
	busy   map[string]bool

	// notify, when set, is told when an account turns needs_reconnect,
	// loses a permission or recovers; seen is each account as last compared.
	notify func(webhook.Event)
	seenMu sync.Mutex
	seen   map[string]syncer.Account
}

func newWorker(hard context.Context, a *app, m *metrics, concurrency int, spread time.Duration) *worker {
	return &worker{
		a: a, svc: a.syncer(holderName("syncer run")), log: a.log, m: m, spread: spread,
		sem: make(chan struct{}, concurrency), stop: make(chan struct{}), hard: hard,
		queued: map[string][]syncer.Entity{}, busy: map[string]bool{}, seen: map[string]syncer.Account{},
	}
}

// observe compares accounts with how they were last seen and notifies the
// changes an operator must hear about. The first sight of an account (at
// start, or just registered) only records it; a snapshot older than the one
// seen (a tick's list read before a pass flagged the account) is ignored.
func (w *worker) observe(accts []syncer.Account, all bool) {
	w.seenMu.Lock()
	var events []webhook.Event
	live := map[string]bool{}
	for _, a := range accts {
		live[a.ID] = true
		before, ok := w.seen[a.ID]
		if ok && a.UpdatedAt.Before(before.UpdatedAt) {
			continue
		}
		if ok && w.notify != nil {
			events = append(events, webhook.Changes(before, a, time.Now())...)
		}
		w.seen[a.ID] = a
	}
	if all {
		for id := range w.seen {
			if !live[id] {
				delete(w.seen, id) // removed
			}
		}
	}
	w.seenMu.Unlock()
	for _, e := range events {
		w.log.Info("notifying", zap.String("event", e.Event), zap.String("account_id", e.AccountID))
		w.notify(e)
	}
}

// offset is an account's deterministic start delay within the spread, so
// restarts and many accounts do not hit the API in the same second.
func (w *worker) offset(accountID string) time.Duration {
	if w.spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(accountID))
	return time.Duration(h.Sum64() % uint64(w.spread))
}

// tick starts a pass over every active account for the entities.
func (w *worker) tick(entities []syncer.Entity) {
	select {
	case <-w.stop:
		return
	default:
	}
	accts, err := w.a.accounts.Accounts(w.hard)
	if err != nil {
		w.log.Error("scheduled pass: could not read accounts", zap.Error(err))
		return
	}
	w.m.accountStatuses(accts)
	w.observe(accts, true)
	for _, acct := range accts {
		if !acct.Active() {
			w.m.skipped.WithLabelValues(string(acct.Status)).Inc()
			w.log.Debug("skipping account", zap.String("account_id", acct.ID), zap.String("status", string(acct.Status)))
			continue
		}
		w.enqueue(acct, entities)
	}
}

// enqueue starts a pass for the account, or merges the entities into the
// pass that follows the running one.
func (w *worker) enqueue(acct syncer.Account, entities []syncer.Entity) {
	w.mu.Lock()
	if w.busy[acct.ID] {
		for _, e := range entities {
			if !slices.Contains(w.queued[acct.ID], e) {
				w.queued[acct.ID] = append(w.queued[acct.ID], e)
			}
		}
		w.mu.Unlock()
		w.log.Debug("account still syncing; queued the entities for right after", zap.String("account_id", acct.ID))
		return
	}
	w.busy[acct.ID] = true
	w.mu.Unlock()
	w.wg.Add(1)
	go w.loop(acct, entities)
}

// loop runs passes for one account until nothing is queued for it.
func (w *worker) loop(acct syncer.Account, entities []syncer.Entity) {
	defer w.wg.Done()
	delay := w.offset(acct.ID)
	for {
		if !w.wait(delay) {
			w.release(acct.ID)
			return
		}
		w.pass(acct, entities)
		w.mu.Lock()
		next := w.queued[acct.ID]
		delete(w.queued, acct.ID)
		if len(next) == 0 {
			delete(w.busy, acct.ID)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		entities, delay = next, 0
		// reload: the account may have been disabled or flagged meanwhile
		fresh, err := w.a.accounts.Account(w.hard, acct.ID)
		if err != nil || !fresh.Active() {
			w.release(acct.ID)
			return
		}
		acct = fresh
	}
}

func (w *worker) release(id string) {
	w.mu.Lock()
	delete(w.busy, id)
	delete(w.queued, id)
	w.mu.Unlock()
}

// wait sleeps d, returning false if shutdown began first.
func (w *worker) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
		return false
	case <-t.C:
	}
	select {
	case w.sem <- struct{}{}:
		return true
	case <-w.stop:
		return false
	}
}

// pass runs one account pass with its slot held; a panic is recorded as a
// failed run and never kills the worker.
func (w *worker) pass(acct syncer.Account, entities []syncer.Entity) {
	defer func() { <-w.sem }()
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("panic in account pass; recorded as a failed run", zap.String("account_id", acct.ID),
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			now := time.Now().UTC()
			for _, e := range entities {
				run := syncer.Run{ID: newRunID(), AccountID: acct.ID, Entity: e, Kind: syncer.RunIncremental,
					StartedAt: now, FinishedAt: now, Status: syncer.RunFailed, Error: fmt.Sprintf("panic: %v", r)}
				_ = w.a.runs.RecordRun(context.WithoutCancel(w.hard), run)
				w.m.runs.WithLabelValues(string(e), string(syncer.RunFailed)).Inc()
			}
		}
	}()
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()
	res := w.svc.SyncAccount(w.hard, acct, syncer.Request{Entities: entities, Kind: syncer.RunIncremental, Stop: w.stop})
	w.m.result(res)
	if res.Err != nil {
		w.log.Warn("account pass failed", zap.String("account_id", acct.ID), zap.Error(res.Err))
	}
	if w.notify != nil { // the pass may have flagged the account or found a permission missing
		if fresh, err := w.a.accounts.Account(context.WithoutCancel(w.hard), acct.ID); err == nil {
			w.observe([]syncer.Account{fresh}, false)
		}
	}
}

// shutdown stops new passes and windows, waits up to timeout for running
// passes to finish their window and commit, then cancels them (cancel) and
// waits for them to return.
func (w *worker) shutdown(timeout time.Duration, cancel context.CancelFunc) bool {
	close(w.stop)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		w.log.Warn("shutdown timeout reached; cancelling the passes still running")
		cancel()
		<-done
		return false
	}
}

// schedule registers the two cron schedules, evaluated in UTC.
func (w *worker) schedule(actions, catalog string) (*cron.Cron, error) {
	parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	c := cron.New(cron.WithLocation(time.UTC), cron.WithParser(parser),
		cron.WithChain(cron.Recover(cron.PrintfLogger(zap.NewStdLog(w.log)))))
	if _, err := c.AddFunc(actions, func() { w.tick(syncer.ActivityEntities) }); err != nil {
		return nil, fmt.Errorf("SYNCER_SCHEDULE_ACTIONS: %w", err)
	}
	if _, err := c.AddFunc(catalog, func() { w.tick(syncer.CatalogEntities) }); err != nil {
		return nil, fmt.Errorf("SYNCER_SCHEDULE_CATALOG: %w", err)
	}
	return c, nil
}
