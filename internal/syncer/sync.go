package syncer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Source reads one account from impact.com (extract.Client implements it).
// Records yields *DecodeError for a record it cannot decode and goes on with
// the rest; any other error ends the sequence.
type Source interface {
	Records(ctx context.Context, q Query) iter.Seq2[Record, error]
	// ServerNow is impact.com's clock, from the latest response's Date
	// header; ok is false when no response carried one yet.
	ServerNow() (t time.Time, ok bool)
}

// CatalogWriter refreshes a whole catalog entity of an account: records
// present get last_seen_at = seenAt, records no longer returned are kept and
// marked as no longer present.
type CatalogWriter interface {
	ReplaceCatalog(ctx context.Context, accountID string, e Entity, recs []Record, seenAt time.Time) error
}

// Locker gives one run at a time per account, across processes (the
// ClickHouse lease in load, the ZooKeeper lock recipe in keeper).
// Lock returns a *LockHeldError when someone else holds the account; any
// other error means the lock could not be taken (its store is unreachable)
// and the pass does not run.
type Locker interface {
	Lock(ctx context.Context, accountID, holder string) (Lock, error)
}

// BatchLocker is a Locker that takes the locks of several accounts at once
// (the ClickHouse lease: one insert, one settle time and one confirming read
// for all). LockMany returns, in the order of accountIDs, each account's lock
// or the error Lock would have returned for it.
type BatchLocker interface {
	LockMany(ctx context.Context, accountIDs []string, holder string) ([]Lock, []error)
}

// Lock is an account lock the caller holds.
type Lock interface {
	// Lost is closed once the holder can no longer vouch for the lock: a
	// renewal failed, someone else took it, or the coordination session
	// was lost. The pass then stops at the next window boundary and commits
	// nothing more.
	Lost() <-chan struct{}
	// Unlock releases the lock (also after Lost; then it only cleans up).
	Unlock()
}

// LossExplainer is a Lock that can say why it was lost (a renewal's error,
// such as ClickHouse refusing the write while ZooKeeper is gone), so that the
// run's error names the cause, not only the loss.
type LossExplainer interface {
	LossCause() error // nil while the lock is held or when the cause is unknown
}

// LockHeldError says who holds an account. Since and Expires are zero when
// the lock does not know them.
type LockHeldError struct {
	AccountID, Holder string
	Since, Expires    time.Time
}

func (e *LockHeldError) Error() string {
	s := fmt.Sprintf("account %s is busy: %s is syncing it", e.AccountID, e.Holder)
	if !e.Since.IsZero() {
		s += " since " + e.Since.UTC().Format(time.RFC3339)
	}
	if !e.Expires.IsZero() {
		s += " (lease expires " + e.Expires.UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// HolderLister tells who holds which account now (the status page and
// syncer status show it). Accounts nobody holds are absent.
type HolderLister interface {
	Holders(ctx context.Context) (map[string]string, error)
}

// Options tune the sync strategy. Zero values take the defaults.
type Options struct {
	// Overlap is how far each incremental scan reaches back before its
	// watermark, for changes the API shows late (default 24h).
	Overlap time.Duration
	// Reach is how far back the API serves Actions when it refuses the
	// calendar limit: 3×365 days, less a small margin so a window's start is
	// still inside the limit when it arrives. With the default, a pass first
	// asks for 3 calendar years (less the margin), a day more when they hold
	// a 29 February, and falls back to Reach once the API refuses that start
	// with its 3-year error (see pass.reach).
	Reach time.Duration
	// ClearingLookback and ClearingInterval drive the re-scan that picks up
	// ClearedDate on recently locked actions (defaults 90 days, every 6h).
	ClearingLookback time.Duration
	ClearingInterval time.Duration
	// BatchSize bounds the decoded rows a run holds before they are sent
	// to ClickHouse, and so its memory (default 2000). With a Writer that
	// cannot stream, an insert carries at most that many.
	BatchSize int
	// InsertRows is the most rows one streamed INSERT carries before it is
	// committed (default DefaultInsertRows); ClickHouse holds them, not the
	// run.
	InsertRows int
}

func (o *Options) defaults() {
	if o.Overlap == 0 {
		o.Overlap = 24 * time.Hour
	}
	if o.Reach == 0 {
		o.Reach = MaxReach
	}
	if o.ClearingLookback == 0 {
		o.ClearingLookback = 90 * 24 * time.Hour
	}
	if o.ClearingInterval == 0 {
		o.ClearingInterval = 6 * time.Hour
	}
	if o.BatchSize == 0 {
		o.BatchSize = 2000
	}
	if o.InsertRows == 0 {
		o.InsertRows = DefaultInsertRows
	}
}

// MaxReach is how far back the Actions date filters reach: 3×365 days less
// five minutes, so that a window's start is still inside the limit by the
// time the request arrives.
const MaxReach = 3*365*24*time.Hour - reachMargin

// reachMargin keeps a window's start inside the API's look-back limit
// however long the pass takes to ask for it.
const reachMargin = 5 * time.Minute

// Syncer runs sync passes. Its collaborators are interfaces so the pass can
// be tested with any store; cmd/syncer wires ClickHouse and impact.com.
type Syncer struct {
	Accounts AccountStore
	Writer   Writer
	Catalog  CatalogWriter
	State    StateStore
	Runs     RunStore
	Locker   Locker
	// Source opens an authenticated client for the account.
	Source  func(ctx context.Context, a Account) (Source, error)
	Logger  *zap.Logger
	Options Options
	// Holder names this process in leases ("worker@host", "cli@host pid 12").
	Holder string
	// NewRunID returns a unique id for a run.
	NewRunID func() string
	// commits writes what staged passes read (see commit.go).
	commits committer
	// calendarRefused: the API refused a start 3 calendar years back, so
	// passes reach back 3×365 days (Options.Reach) instead.
	calendarRefused atomic.Bool
	// Progress, when set, is called after every Actions/ActionUpdates window.
	Progress func(Progress)
}

// Scans of the Actions strategy; they are watermark names in sync_state.
const (
	ScanUpdated  = "updated"  // StartDate/EndDate: creation, modification, reversal
	ScanLocking  = "locking"  // LockingDateStart/End: approvals at the locking date
	ScanEvent    = "event"    // ActionDateStart/End: first sync only
	ScanClearing = "clearing" // LockingDate re-scan of the recent past: ClearedDate
)

// Request is one pass over one account.
type Request struct {
	Entities []Entity
	Kind     RunKind
	// Backfill only: the range; From zero means the full reach of the API
	// through all three date filters.
	From, To time.Time
	// Stop, when closed, ends the pass gracefully: the window in progress
	// finishes and commits, no new window starts. Cancelling the context
	// instead stops at once.
	Stop <-chan struct{}
}

// AbandonedReason is the error recorded for a run whose process died before
// recording its outcome.
const AbandonedReason = "interrupted: the process ended without recording an outcome (killed, crashed, or ClickHouse unreachable at the end); " +
	"the next run of the account resumed from the last committed window"

// ErrStopped ends a run that was asked to stop between windows.
var ErrStopped = errors.New("stopped for shutdown")

// ErrLockLost ends a run whose account lock was lost (see Lock.Lost): it
// stops at the next window boundary and writes nothing more.
var ErrLockLost = errors.New("the account's lock was lost (lease not renewed or taken over, or the keeper session lost): " +
	"stopped at the window boundary, nothing committed after")

// lockLostError is ErrLockLost with the cause of the loss, named before the
// rest so that a report that shortens long errors still shows it. It is a
// comparable value: two made from the same cause are equal, so errors.Is
// tells a loss met by the scan and by the loader apart from other errors.
type lockLostError struct{ cause error }

func (e lockLostError) Error() string {
	return "the account's lock was lost (" + e.cause.Error() + "): stopped at the window boundary, nothing committed after"
}
func (e lockLostError) Is(target error) bool { return target == ErrLockLost }
func (e lockLostError) Unwrap() error        { return e.cause }

func (r Request) stopping() bool {
	select {
	case <-r.Stop:
		return true
	default:
		return false
	}
}

// stopped says why the pass must not start another window: ErrLockLost,
// ErrStopped, or nil to go on.
func (p *pass) stopped() error {
	if err := p.owned(); err != nil {
		return err
	}
	if p.req.stopping() {
		return ErrStopped
	}
	return nil
}

// owned returns ErrLockLost (with the lock's LossCause when it has one) once
// the account's lock is lost; every commit (rows, catalog, watermark) checks
// it first.
func (p *pass) owned() error {
	select {
	case <-p.lost:
		if x, ok := p.pre.lock.(LossExplainer); ok {
			if cause := x.LossCause(); cause != nil {
				return lockLostError{cause: cause}
			}
		}
		return ErrLockLost
	default:
		return nil
	}
}

// AccountResult is the outcome of one pass over one account.
type AccountResult struct {
	Account Account
	Runs    []Run
	Err     error // the pass as a whole failed (lock held, dead credential, ...)
}

// Failed reports whether anything in the pass failed.
func (r AccountResult) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, run := range r.Runs {
		if run.Status != RunSucceeded && run.Status != RunSkipped {
			return true
		}
	}
	return false
}

// pass is the state of one account pass.
type pass struct {
	s       *Syncer
	opt     Options // s.Options with defaults
	planner Planner
	// calendarAsked: this pass planned with the calendar limit (see
	// Planner.Reach).
	calendarAsked bool
	// warnedClamp: the backfill's too-old start was logged once already.
	warnedClamp bool
	acct        Account
	src         Source
	log         *zap.Logger
	req         Request
	missing     map[string]bool // permissions found missing in this pass
	granted     map[string]bool // permissions that worked in this pass
	dead        error           // the credential died during the pass

	campaigns []string // campaign ids, fetched once per pass
	haveCamps bool

	marks map[WatermarkKey]time.Time // the entity's watermarks while it is planned, if read at once

	lost <-chan struct{} // closed when the account's lock is lost; nil without a Locker

	pre    *Prepared // what was read ahead of the pass (see Prepare)
	ending *Run      // the outcome of the run before, stored with the next run's start

	// staging: the pass stages its short runs' writes for the Syncer's
	// committer (see commit.go); staged are its runs so far, cur the one
	// in progress.
	staging bool
	staged  []*stagedRun
	cur     *stagedRun
}

// SyncAccount runs one pass over an account: every requested entity, in
// order. One entity's failure does not stop the others, except a dead
// credential, which stops the pass and flags the account for reconnection.
func (s *Syncer) SyncAccount(ctx context.Context, a Account, req Request) AccountResult {
	pre := &Prepared{Account: a}
	if s.Locker != nil {
		lk, err := s.Locker.Lock(ctx, a.ID, s.Holder)
		if err != nil {
			return AccountResult{Account: a, Err: err}
		}
		defer lk.Unlock()
		pre.lock = lk
		// With the lock held no other run of the account is alive: a run
		// still recorded as running died before recording its outcome.
		s.closeAbandoned(ctx, []string{a.ID})
	}
	return s.sync(ctx, pre, req)
}

// sync runs the pass of a prepared account (see Prepare) whose lock, if
// any, is held.
func (s *Syncer) sync(ctx context.Context, pre *Prepared, req Request) AccountResult {
	a := pre.Account
	opt := s.Options // a copy: passes of many accounts run at once
	opt.defaults()
	log := s.Logger.With(zap.String("account_id", a.ID))
	res := AccountResult{Account: a}
	var lost <-chan struct{}
	if pre.lock != nil {
		lost = pre.lock.Lost()
	}
	src, err := s.Source(ctx, a)
	if err != nil {
		res.Err = fmt.Errorf("account %s: opening credentials: %w", a.ID, err)
		if IsCredentialDead(err) {
			s.flagReconnect(ctx, a, err, log)
		}
		return res
	}
	p := &pass{s: s, opt: opt, planner: Planner{Options: opt}, acct: a, src: src, log: log, req: req,
		missing: map[string]bool{}, granted: map[string]bool{}, lost: lost, pre: pre, staging: pre.staged}
	if req.Kind == "" {
		p.req.Kind = RunIncremental
	}
	for _, e := range req.Entities {
		if !e.AvailableTo(a.Persona) {
			continue
		}
		if p.dead != nil || p.stopped() != nil {
			break
		}
		run := p.runEntity(ctx, e)
		res.Runs = append(res.Runs, run)
		if ctx.Err() != nil {
			break
		}
	}
	if p.staging {
		p.commitStaged(ctx, &res)
	} else {
		p.recordRuns(ctx) // the last run's outcome
	}
	if p.dead != nil {
		res.Err = p.dead
		s.flagReconnect(ctx, a, p.dead, log)
	} else if ctx.Err() == nil && p.owned() == nil {
		p.savePermissions(ctx)
	}
	if p.owned() != nil {
		log.Warn("the account's lock was lost; the pass stopped at the window boundary")
	}
	return res
}

func (s *Syncer) flagReconnect(ctx context.Context, a Account, cause error, log *zap.Logger) {
	reason := ReconnectReason(a, cause)
	log.Warn("credential rejected; account flagged for reconnection", zap.String("reason", reason))
	if err := s.Accounts.SetStatus(context.WithoutCancel(ctx), a.ID, StatusNeedsReconnect, reason, a.MissingPermissions); err != nil {
		log.Error("could not flag the account for reconnection", zap.Error(err))
	}
}

// ReconnectReason explains in plain words why an account needs reconnecting
// and what to do.
func ReconnectReason(a Account, cause error) string {
	if a.AuthKind == AuthOAuth {
		return fmt.Sprintf("impact.com no longer accepts this connection (%v); re-authorize with: syncer connect --account %s", cause, a.ID)
	}
	return fmt.Sprintf("impact.com rejected the Auth Token (401: reset, disabled or deleted); store a new one with: syncer accounts set-token %s --token-stdin", a.ID)
}

// savePermissions records which permissions the token lacks
// (Planner.Permissions).
func (p *pass) savePermissions(ctx context.Context) {
	missing, reason, changed := p.planner.Permissions(p.acct, p.granted, p.missing)
	if !changed {
		return
	}
	if err := p.s.Accounts.SetStatus(ctx, p.acct.ID, StatusActive, reason, missing); err != nil {
		p.log.Error("could not record missing permissions", zap.Error(err))
	}
}

// runEntity runs one entity and records it in sync_runs.
func (p *pass) runEntity(ctx context.Context, e Entity) Run {
	tally := &Tally{}
	ctx = WithTally(ctx, tally)
	run := Run{ID: p.s.NewRunID(), AccountID: p.acct.ID, Entity: e, Kind: p.req.Kind,
		StartedAt: time.Now().UTC(), Status: RunRunning}
	log := p.log.With(zap.String("entity", string(e)), zap.String("run_id", run.ID), zap.String("kind", string(run.Kind)))
	if p.staging {
		p.cur = &stagedRun{run: run, log: log}
	} else {
		p.recordRuns(ctx, run)
	}
	log.Info("run started")
	var rows uint64
	var err error
	if e == Actions || e == ActionUpdates {
		rows, err = p.activity(ctx, e, log)
	} else {
		rows, err = p.catalog(ctx, e)
	}
	run.FinishedAt = time.Now().UTC()
	run.Rows = rows
	run.Requests = tally.Requests.Load()
	run.RateLimitWaits = tally.RateLimitWaits.Load()
	run.Windows = tally.Windows.Load()
	out := p.planner.Outcome(e, err, ctx.Err() != nil)
	run.Status, run.Error = out.Status, out.Error
	if out.Granted != "" {
		p.granted[out.Granted] = true
	}
	if out.Missing != "" {
		p.missing[out.Missing] = true
	}
	if out.Dead {
		p.dead = err
	}
	if p.staging {
		sr := p.cur
		sr.run, sr.readErr, sr.cancel = run, err, ctx.Err() != nil
		p.staged = append(p.staged, sr)
		p.cur = nil
		return run // its outcome is logged once its commit is written
	}
	p.ending = &run // stored with the next run's start, or at the end of the pass
	logOutcome(log, run)
	return run
}

// commitStaged hands the staged runs to the committer, frees the pass's slot
// (Prepared.ReadDone; see committer.submit) and waits for their commit: res
// gets the runs' final outcomes.
func (p *pass) commitStaged(ctx context.Context, res *AccountResult) {
	readDone := p.pre.ReadDone
	if readDone == nil {
		readDone = func() {}
	}
	if len(p.staged) == 0 {
		p.s.doneReading(p.pre)
		readDone()
		return
	}
	reading := p.pre.reading
	p.pre.reading = false
	p.s.commits.submit(p.s, &stagedPass{p: p, ctx: ctx, runs: p.staged}, reading, readDone)
	res.Runs = res.Runs[:0]
	for _, sr := range p.staged {
		res.Runs = append(res.Runs, sr.run)
		logOutcome(sr.log, sr.run)
	}
}

// logOutcome logs how a run ended.
func logOutcome(log *zap.Logger, run Run) {
	fields := []zap.Field{zap.String("outcome", string(run.Status)), zap.Uint64("rows", run.Rows),
		zap.Uint64("requests", run.Requests), zap.Uint64("rate_limit_waits", run.RateLimitWaits),
		zap.Uint64("windows", run.Windows), zap.Duration("duration", run.FinishedAt.Sub(run.StartedAt))}
	switch run.Status {
	case RunSucceeded:
		log.Info("run finished", fields...)
	case RunInterrupted:
		log.Warn("run interrupted", append(fields, zap.String("error", run.Error))...)
	default:
		log.Error("run failed", append(fields, zap.String("error", run.Error))...)
	}
}

// recordRuns stores the outcome of the run that ended (if it is not stored
// yet) and the start of the next, if any: in one write when the store can,
// so a pass of n entities makes n+1 writes of sync_runs rather than 2n. The
// outcome is stored before the next run's work starts, its start before its
// work, as when each is a write of its own.
func (p *pass) recordRuns(ctx context.Context, start ...Run) {
	var runs []Run
	if p.ending != nil {
		runs = append(runs, *p.ending)
		p.ending = nil
	}
	runs = append(runs, start...)
	if len(runs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // an outcome is stored however the pass ends
	var err error
	if rb, ok := p.s.Runs.(RunBatcher); ok {
		err = rb.RecordRuns(ctx, runs...)
	} else {
		for _, r := range runs {
			if err = p.s.Runs.RecordRun(ctx, r); err != nil {
				break
			}
		}
	}
	if err != nil {
		for _, r := range runs {
			what := "could not record the run end"
			if r.Status == RunRunning {
				what = "could not record the run start"
			}
			p.log.Error(what, zap.String("entity", string(r.Entity)), zap.String("run_id", r.ID), zap.Error(err))
		}
	}
}

// serverNow is impact.com's time, or the local clock before any response.
func (p *pass) serverNow() time.Time {
	api, known := p.src.ServerNow()
	now, _, _ := p.planner.Clock(api, known, time.Now())
	return now
}

// catalog refreshes a small entity whole.
func (p *pass) catalog(ctx context.Context, e Entity) (uint64, error) {
	var recs []Record
	var decodeErrs []error
	for r, err := range p.src.Records(ctx, Query{Entity: e}) {
		var de *DecodeError
		if errors.As(err, &de) {
			decodeErrs = append(decodeErrs, err)
			continue
		}
		if err != nil {
			return 0, err
		}
		recs = append(recs, r)
	}
	if len(decodeErrs) > 0 {
		// Refreshing with records missing would mark them as gone.
		return 0, joinDecodeErrors(decodeErrs)
	}
	if err := p.owned(); err != nil {
		return 0, err
	}
	if p.staging {
		p.cur.catalog = &CatalogRefresh{AccountID: p.acct.ID, Records: recs, SeenAt: p.serverNow()}
		p.cur.staged = true
	} else if err := p.s.Catalog.ReplaceCatalog(ctx, p.acct.ID, e, recs, p.serverNow()); err != nil {
		return 0, err
	}
	if e == Campaigns {
		p.campaigns = p.campaigns[:0]
		for _, r := range recs {
			p.campaigns = append(p.campaigns, r.ID)
		}
		p.haveCamps = true
	}
	return uint64(len(recs)), nil
}

func joinDecodeErrors(errs []error) error {
	const show = 5
	msgs := make([]string, 0, show)
	for i, e := range errs {
		if i == show {
			break
		}
		msgs = append(msgs, e.Error())
	}
	more := ""
	if len(errs) > show {
		more = fmt.Sprintf(" (and %d more)", len(errs)-show)
	}
	return fmt.Errorf("%d records could not be decoded: %s%s", len(errs), strings.Join(msgs, "; "), more)
}

// campaignScopes are the campaign ids Actions are read per: every campaign
// for a brand (the API requires CampaignId), one account-wide scope for a
// partner.
func (p *pass) campaignScopes(ctx context.Context) ([]string, error) {
	if p.acct.Persona == Partner {
		return []string{""}, nil
	}
	if !p.haveCamps {
		p.campaigns = p.campaigns[:0]
		for r, err := range p.src.Records(ctx, Query{Entity: Campaigns}) {
			if err != nil {
				var de *DecodeError
				if errors.As(err, &de) && de.RecordID != "" {
					p.campaigns = append(p.campaigns, de.RecordID)
					continue
				}
				return nil, fmt.Errorf("listing campaigns for the Actions fan-out: %w", err)
			}
			p.campaigns = append(p.campaigns, r.ID)
		}
		p.haveCamps = true
	}
	return p.campaigns, nil
}
