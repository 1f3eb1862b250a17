// Package syncertest holds hand-written fakes of the interfaces the domain
// package consumes: in-memory stores (accounts, rows, watermarks, runs, a
// lock) and a scripted Source. With them a whole pass (syncer.SyncAccount)
// runs in microseconds, without ClickHouse or an HTTP server, so the sync
// logic has fast unit tests; the adapters are tested against the real
// things in their own packages.
package syncertest

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Accounts is an in-memory syncer.AccountStore.
type Accounts struct {
	mu      sync.Mutex
	m       map[string]syncer.Account
	secrets map[string]syncer.SealedSecret
}

var _ syncer.AccountStore = (*Accounts)(nil)

func (s *Accounts) PutAccount(_ context.Context, a syncer.Account, secret syncer.SealedSecret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m, s.secrets = map[string]syncer.Account{}, map[string]syncer.SealedSecret{}
	}
	s.m[a.ID], s.secrets[a.ID] = a, secret
	return nil
}

func (s *Accounts) Account(_ context.Context, id string) (syncer.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[id]
	if !ok {
		return syncer.Account{}, fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	return a, nil
}

func (s *Accounts) Accounts(context.Context) ([]syncer.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.m))
	slices.SortFunc(out, func(a, b syncer.Account) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *Accounts) Secret(_ context.Context, id string) (syncer.SealedSecret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[id]
	if !ok {
		return syncer.SealedSecret{}, fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	return sec, nil
}

func (s *Accounts) SetSecret(_ context.Context, id string, secret syncer.SealedSecret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	s.secrets[id] = secret
	return nil
}

func (s *Accounts) SetStatus(_ context.Context, id string, status syncer.Status, reason string, missing []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[id]
	if !ok {
		return fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	a.Status, a.StatusReason, a.MissingPermissions = status, reason, slices.Clone(missing)
	s.m[id] = a
	return nil
}

func (s *Accounts) DeleteAccount(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	delete(s.m, id)
	delete(s.secrets, id)
	return nil
}

// Data is an in-memory syncer.Writer and syncer.CatalogWriter: the latest
// row per (account, entity, record id), as a reader with FINAL sees it.
type Data struct {
	mu   sync.Mutex
	rows map[dataKey]map[string]syncer.Record
	// Writes counts Write and ReplaceCatalog calls.
	Writes int
	// Fail, when set, is returned by the next writes (it stays set).
	Fail error
}

type dataKey struct {
	accountID string
	entity    syncer.Entity
}

var (
	_ syncer.Writer        = (*Data)(nil)
	_ syncer.CatalogWriter = (*Data)(nil)
)

func (d *Data) Write(_ context.Context, accountID string, e syncer.Entity, recs []syncer.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Writes++
	if d.Fail != nil {
		return d.Fail
	}
	d.put(accountID, e, recs)
	return nil
}

func (d *Data) ReplaceCatalog(_ context.Context, accountID string, e syncer.Entity, recs []syncer.Record, _ time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Writes++
	if d.Fail != nil {
		return d.Fail
	}
	delete(d.rows, dataKey{accountID, e})
	d.put(accountID, e, recs)
	return nil
}

// BatchData is Data that also writes several accounts at once
// (syncer.BatchWriter, syncer.CatalogBatchWriter), as the ClickHouse stores
// do: a Syncer with it stages the writes of prepared passes (see
// syncer.Prepare). Each item is written as Write or ReplaceCatalog would
// (Data.Fail fails them all).
type BatchData struct {
	*Data
	mu      sync.Mutex
	batches int
}

var (
	_ syncer.BatchWriter        = (*BatchData)(nil)
	_ syncer.CatalogBatchWriter = (*BatchData)(nil)
)

func (d *BatchData) WriteBatch(ctx context.Context, e syncer.Entity, batch []syncer.AccountRecords) []error {
	d.count()
	errs := make([]error, len(batch))
	for i, b := range batch {
		errs[i] = d.Write(ctx, b.AccountID, e, b.Records)
	}
	return errs
}

func (d *BatchData) ReplaceCatalogs(ctx context.Context, e syncer.Entity, batch []syncer.CatalogRefresh) []error {
	d.count()
	errs := make([]error, len(batch))
	for i, b := range batch {
		errs[i] = d.ReplaceCatalog(ctx, b.AccountID, e, b.Records, b.SeenAt)
	}
	return errs
}

func (d *BatchData) count() {
	d.mu.Lock()
	d.batches++
	d.mu.Unlock()
}

// Batches counts WriteBatch and ReplaceCatalogs calls.
func (d *BatchData) Batches() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.batches
}

func (d *Data) put(accountID string, e syncer.Entity, recs []syncer.Record) {
	if d.rows == nil {
		d.rows = map[dataKey]map[string]syncer.Record{}
	}
	k := dataKey{accountID, e}
	if d.rows[k] == nil {
		d.rows[k] = map[string]syncer.Record{}
	}
	for _, r := range recs {
		d.rows[k][r.ID] = r
	}
}

// Row returns the account's latest row of e with the id, and whether there
// is one.
func (d *Data) Row(accountID string, e syncer.Entity, id string) (syncer.Record, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.rows[dataKey{accountID, e}][id]
	return r, ok
}

// IDs returns the ids of the account's rows of e, sorted.
func (d *Data) IDs(accountID string, e syncer.Entity) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.rows[dataKey{accountID, e}]))
}

// State is an in-memory syncer.StateStore and syncer.WatermarkBatcher.
type State struct {
	mu         sync.Mutex
	m          map[syncer.WatermarkKey]time.Time
	prefetched []string
}

var (
	_ syncer.StateStore       = (*State)(nil)
	_ syncer.WatermarkBatcher = (*State)(nil)
)

func (s *State) Watermark(_ context.Context, k syncer.WatermarkKey) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[k]
	return t, ok, nil
}

func (s *State) SetWatermark(_ context.Context, k syncer.WatermarkKey, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[syncer.WatermarkKey]time.Time{}
	}
	s.m[k] = t
	return nil
}

func (s *State) Watermarks(_ context.Context, accountID string, e syncer.Entity) (map[syncer.WatermarkKey]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[syncer.WatermarkKey]time.Time{}
	for k, t := range s.m {
		if k.AccountID == accountID && k.Entity == e {
			out[k] = t
		}
	}
	return out, nil
}

func (s *State) SetWatermarks(ctx context.Context, marks map[syncer.WatermarkKey]time.Time) error {
	for k, t := range marks {
		if err := s.SetWatermark(ctx, k, t); err != nil {
			return err
		}
	}
	return nil
}

var _ syncer.WatermarkPrefetcher = (*State)(nil)

func (s *State) WatermarksOf(_ context.Context, accountIDs []string, entities []syncer.Entity) (map[syncer.WatermarkKey]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[syncer.WatermarkKey]time.Time{}
	for k, t := range s.m {
		if slices.Contains(accountIDs, k.AccountID) && slices.Contains(entities, k.Entity) {
			out[k] = t
		}
	}
	s.prefetched = append(s.prefetched, accountIDs...)
	return out, nil
}

func (s *State) DropPrefetched(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.prefetched, accountID); i >= 0 {
		s.prefetched = slices.Delete(s.prefetched, i, i+1)
	}
}

// Prefetched returns the accounts whose watermarks were read ahead
// (WatermarksOf) and not dropped since.
func (s *State) Prefetched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.prefetched)
}

// All returns a copy of every watermark.
func (s *State) All() map[syncer.WatermarkKey]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// Runs is an in-memory syncer.RunStore: the latest row per run id.
type Runs struct {
	mu     sync.Mutex
	order  []string
	m      map[string]syncer.Run
	writes int
}

var (
	_ syncer.RunStore   = (*Runs)(nil)
	_ syncer.RunBatcher = (*Runs)(nil)
)

func (s *Runs) RecordRun(ctx context.Context, r syncer.Run) error {
	return s.RecordRuns(ctx, r)
}

func (s *Runs) RecordRuns(_ context.Context, runs ...syncer.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, r := range runs {
		s.record(r)
	}
	return nil
}

func (s *Runs) CloseAbandonedOf(ctx context.Context, accountIDs []string, reason string) (map[string]int, error) {
	out := map[string]int{}
	for _, id := range accountIDs {
		n, err := s.CloseAbandoned(ctx, id, reason)
		if err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, nil
}

// Writes returns how many writes (RecordRun, RecordRuns) were made.
func (s *Runs) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *Runs) record(r syncer.Run) {
	if s.m == nil {
		s.m = map[string]syncer.Run{}
	}
	if _, ok := s.m[r.ID]; !ok {
		s.order = append(s.order, r.ID)
	}
	s.m[r.ID] = r
}

func (s *Runs) CloseAbandoned(_ context.Context, accountID, reason string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.m {
		if r.AccountID == accountID && r.Status == syncer.RunRunning {
			r.Status, r.Error = syncer.RunInterrupted, reason
			s.m[id] = r
			n++
		}
	}
	return n, nil
}

// All returns the runs in the order they started.
func (s *Runs) All() []syncer.Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]syncer.Run, len(s.order))
	for i, id := range s.order {
		out[i] = s.m[id]
	}
	return out
}

// Locker is an in-memory syncer.Locker: one holder per account. Lose
// takes a held lock away, as a lost lease or keeper session would.
type Locker struct {
	mu      sync.Mutex
	locks   map[string]*lock
	batches int
}

var _ syncer.Locker = (*Locker)(nil)

type lock struct {
	l         *Locker
	accountID string
	holder    string
	lost      chan struct{}
	once      sync.Once
}

func (k *lock) Lost() <-chan struct{} { return k.lost }

func (k *lock) Unlock() {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	if k.l.locks[k.accountID] == k {
		delete(k.l.locks, k.accountID)
	}
}

func (l *Locker) Lock(_ context.Context, accountID, holder string) (syncer.Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.locks[accountID]; ok {
		return nil, &syncer.LockHeldError{AccountID: accountID, Holder: k.holder}
	}
	if l.locks == nil {
		l.locks = map[string]*lock{}
	}
	k := &lock{l: l, accountID: accountID, holder: holder, lost: make(chan struct{})}
	l.locks[accountID] = k
	return k, nil
}

var _ syncer.BatchLocker = (*Locker)(nil)

// LockMany is Lock for each account; Batches counts its calls.
func (l *Locker) LockMany(ctx context.Context, accountIDs []string, holder string) ([]syncer.Lock, []error) {
	l.mu.Lock()
	l.batches++
	l.mu.Unlock()
	locks, errs := make([]syncer.Lock, len(accountIDs)), make([]error, len(accountIDs))
	for i, id := range accountIDs {
		locks[i], errs[i] = l.Lock(ctx, id, holder)
	}
	return locks, errs
}

// Batches returns how many times LockMany was called.
func (l *Locker) Batches() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.batches
}

// Held reports whether the account's lock is held.
func (l *Locker) Held(accountID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.locks[accountID]
	return ok
}

// Lose closes the Lost channel of the account's lock, if it is held, and
// frees the account.
func (l *Locker) Lose(accountID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.locks[accountID]; ok {
		k.once.Do(func() { close(k.lost) })
		delete(l.locks, accountID)
	}
}

// Action is one Actions or ActionUpdates record of a scripted Source, with
// the three dates the API's filters select by.
type Action struct {
	Entity   syncer.Entity // Actions or ActionUpdates
	Campaign string
	ID       string
	Updated  time.Time // the hidden last-updated (ActionUpdates: UpdateDate)
	Event    time.Time
	Locking  time.Time
	Raw      string // the record's raw JSON, for telling versions apart
}

// Source is a scripted syncer.Source: it answers from the records it is
// given, filtering activity by campaign and by the query's date filter and
// window (both ends inclusive, as the API's), and records every query.
type Source struct {
	mu sync.Mutex
	// Now is impact.com's clock as ServerNow reports it; zero means no
	// response has carried a Date yet (ServerNow's ok is false).
	Now      time.Time
	Catalog  map[syncer.Entity][]syncer.Record
	Activity []Action
	// Errs makes every query of an entity fail with that error.
	Errs map[syncer.Entity]error
	// OnQuery, when set, is called with every query before it is answered.
	OnQuery func(syncer.Query)
	queries []syncer.Query
}

var _ syncer.Source = (*Source)(nil)

func (s *Source) ServerNow() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Now, !s.Now.IsZero()
}

func (s *Source) Records(_ context.Context, q syncer.Query) iter.Seq2[syncer.Record, error] {
	s.mu.Lock()
	s.queries = append(s.queries, q)
	onQuery, err := s.OnQuery, s.Errs[q.Entity]
	var recs []syncer.Record
	if err == nil {
		recs = s.answer(q)
	}
	s.mu.Unlock()
	if onQuery != nil {
		onQuery(q)
	}
	return func(yield func(syncer.Record, error) bool) {
		if err != nil {
			yield(syncer.Record{}, err)
			return
		}
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (s *Source) answer(q syncer.Query) []syncer.Record {
	if q.Entity != syncer.Actions && q.Entity != syncer.ActionUpdates {
		return slices.Clone(s.Catalog[q.Entity])
	}
	var out []syncer.Record
	for _, a := range s.Activity {
		if a.Entity != q.Entity || (q.CampaignID != "" && a.Campaign != q.CampaignID) {
			continue
		}
		t := a.Updated
		switch q.Filter {
		case syncer.ByEvent:
			t = a.Event
		case syncer.ByLocking:
			t = a.Locking
		}
		if !t.Before(q.Window.Start) && !t.After(q.Window.End) {
			out = append(out, syncer.Record{ID: a.ID, Raw: a.Raw})
		}
	}
	return out
}

// Queries returns every query asked so far, in order.
func (s *Source) Queries() []syncer.Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// Env is a Syncer wired to in-memory fakes.
type Env struct {
	Syncer   *syncer.Syncer
	Accounts *Accounts
	Data     *Data
	State    *State
	Runs     *Runs
	Locker   *Locker
	Source   *Source
}

// New returns a Syncer whose every collaborator is a fake of this package,
// reading from src. Each run gets a new id ("run-1", "run-2", …).
func New(src *Source, opt syncer.Options) *Env {
	env := &Env{Accounts: &Accounts{}, Data: &Data{}, State: &State{}, Runs: &Runs{}, Locker: &Locker{}, Source: src}
	var mu sync.Mutex
	n := 0
	env.Syncer = &syncer.Syncer{
		Accounts: env.Accounts, Writer: env.Data, Catalog: env.Data, State: env.State, Runs: env.Runs,
		Locker: env.Locker,
		Source: func(context.Context, syncer.Account) (syncer.Source, error) { return src, nil },
		Logger: zap.NewNop(), Options: opt, Holder: "syncertest",
		NewRunID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("run-%d", n)
		},
	}
	return env
}
