package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var (
	_ syncer.Locker       = (*LeaseStore)(nil)
	_ syncer.HolderLister = (*LeaseStore)(nil)
)

// Lease says that Holder may sync AccountID until ExpiresAt. Times are
// stored to the second.
type Lease struct {
	AccountID  string
	Holder     string
	AcquiredAt time.Time
	ExpiresAt  time.Time
	version    uint64
}

// LeaseStore keeps per-account leases in account_leases, so at most one run
// per account happens at a time, across the daemon and CLI backfills.
//
// ClickHouse has no compare-and-set, so acquiring is check, insert, wait
// Settle, re-read: the row with the highest version wins and the loser gets
// a *syncer.LockHeldError. What remains is a narrow race: if B read "free" before
// A's insert but inserts only after A's confirming re-read (B stalled for
// longer than Settle between its read and its insert), both believe they
// hold the lease until one of them renews; Renew then tells the loser. Runs
// must therefore stay idempotent (they are: every write is versioned).
type LeaseStore struct {
	db  *DB
	now func() time.Time
	// releases gathers the Unlocks of concurrent passes into one read and
	// one insert.
	releases *groupCommit[Lease]
	// Settle is how long Acquire waits between its insert and the confirming
	// read (default 200ms).
	Settle time.Duration
	// TTL is the lease Lock takes and renews every TTL/3 (default 2m).
	TTL time.Duration
	// HolderGone, when set, reports whether a holder's process is known to
	// be dead (killed on this host); Lock then takes its lease over at once
	// instead of waiting for it to expire.
	HolderGone func(holder string) bool
}

// NewLeaseStore returns a LeaseStore on db; now is the clock for
// acquisition and expiry (nil means the DB's).
func NewLeaseStore(db *DB, now func() time.Time) *LeaseStore {
	if now == nil {
		now = db.now
	}
	s := &LeaseStore{db: db, now: now, Settle: 200 * time.Millisecond, TTL: 2 * time.Minute}
	s.releases = newGroupCommit(groupParallel, s.releaseMany)
	return s
}

// releaseMany is Release for several leases: one read, one insert.
func (s *LeaseStore) releaseMany(ctx context.Context, ls []Lease) error {
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.AccountID
	}
	cur, err := s.currentOf(ctx, ids)
	if err != nil {
		return err
	}
	now := toDateTime(s.now())
	var rows [][]any
	for _, l := range ls {
		c, found := cur[l.AccountID]
		if !found || c.Holder != l.Holder {
			continue
		}
		delete(cur, l.AccountID) // once, if listed twice
		rows = append(rows, []any{l.AccountID, "", now, now, s.db.versions.After(c.version)})
	}
	if len(rows) == 0 {
		return nil
	}
	if err := s.db.insertRows(ctx, defaultRetry, "account_leases", leaseInsertColumns, rows); err != nil {
		return fmt.Errorf("release the leases of %d accounts: %w", len(rows), err)
	}
	return nil
}

var leaseInsertColumns = []string{"account_id", "holder", "acquired_at", "expires_at", "version"}

// Acquire takes the account's lease for holder for ttl. If another holder
// has a lease that has not expired, it returns *syncer.LockHeldError. A holder
// that already has the lease gets it extended.
func (s *LeaseStore) Acquire(ctx context.Context, accountID, holder string, ttl time.Duration) (Lease, error) {
	if accountID == "" || holder == "" {
		return Lease{}, fmt.Errorf("acquire lease: account id and holder are required")
	}
	if ttl < time.Second {
		return Lease{}, fmt.Errorf("acquire lease: ttl %s is shorter than a second", ttl)
	}
	cur, found, err := s.current(ctx, accountID)
	if err != nil {
		return Lease{}, err
	}
	now := toDateTime(s.now())
	if found && cur.Holder != holder && cur.Holder != "" && cur.ExpiresAt.After(now) {
		return Lease{}, cur.held()
	}
	l := Lease{AccountID: accountID, Holder: holder, AcquiredAt: now, ExpiresAt: toDateTime(now.Add(ttl)), version: s.db.versions.After(cur.version)}
	if found && cur.Holder == holder && cur.ExpiresAt.After(now) {
		l.AcquiredAt = cur.AcquiredAt
	}
	if err := s.write(ctx, l); err != nil {
		return Lease{}, err
	}
	if err := s.settle(ctx); err != nil {
		return Lease{}, fmt.Errorf("acquire lease of account %s: %w", accountID, err)
	}
	won, _, err := s.current(ctx, accountID)
	if err != nil {
		return Lease{}, err
	}
	if won.Holder != holder || won.version != l.version {
		return Lease{}, won.held()
	}
	return l, nil
}

// AcquireMany is Acquire for several accounts with one read, one insert,
// one Settle and one confirming read, whatever their number. It returns,
// in the order of accountIDs, the lease taken or the error (a
// *syncer.LockHeldError for an account another holder has); an error
// reading or writing the table is every account's error.
func (s *LeaseStore) AcquireMany(ctx context.Context, accountIDs []string, holder string, ttl time.Duration) ([]Lease, []error) {
	leases, errs := make([]Lease, len(accountIDs)), make([]error, len(accountIDs))
	all := func(err error) ([]Lease, []error) {
		for i := range errs {
			errs[i] = err
		}
		return leases, errs
	}
	if holder == "" || slices.Contains(accountIDs, "") {
		return all(fmt.Errorf("acquire lease: account id and holder are required"))
	}
	if ttl < time.Second {
		return all(fmt.Errorf("acquire lease: ttl %s is shorter than a second", ttl))
	}
	if len(accountIDs) == 0 {
		return leases, errs
	}
	cur, err := s.currentOf(ctx, accountIDs)
	if err != nil {
		return all(err)
	}
	now := toDateTime(s.now())
	var rows [][]any
	want := map[string]Lease{}
	for i, id := range accountIDs {
		c, found := cur[id]
		if found && c.Holder != holder && c.Holder != "" && c.ExpiresAt.After(now) {
			errs[i] = c.held()
			continue
		}
		if _, dup := want[id]; dup {
			errs[i] = fmt.Errorf("acquire lease: account %s listed twice", id)
			continue
		}
		l := Lease{AccountID: id, Holder: holder, AcquiredAt: now, ExpiresAt: toDateTime(now.Add(ttl)), version: s.db.versions.After(c.version)}
		if found && c.Holder == holder && c.ExpiresAt.After(now) {
			l.AcquiredAt = c.AcquiredAt
		}
		want[id] = l
		rows = append(rows, []any{l.AccountID, l.Holder, toDateTime(l.AcquiredAt), toDateTime(l.ExpiresAt), l.version})
	}
	if len(rows) == 0 {
		return leases, errs
	}
	if err := s.db.insertRows(ctx, defaultRetry, "account_leases", leaseInsertColumns, rows); err != nil {
		return all(fmt.Errorf("write the leases of %d accounts: %w", len(rows), err))
	}
	if err := s.settle(ctx); err != nil {
		return all(fmt.Errorf("acquire the leases of %d accounts: %w", len(rows), err))
	}
	won, err := s.currentOf(ctx, slices.Collect(maps.Keys(want)))
	if err != nil {
		return all(err)
	}
	for i, id := range accountIDs {
		l, ok := want[id]
		if !ok || errs[i] != nil {
			continue
		}
		if w := won[id]; w.Holder != holder || w.version != l.version {
			errs[i] = w.held()
			continue
		}
		leases[i] = l
	}
	return leases, errs
}

// settle waits Settle, the time a concurrent acquirer's insert has to show.
func (s *LeaseStore) settle(ctx context.Context) error {
	if s.Settle <= 0 {
		return nil
	}
	t := time.NewTimer(s.Settle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// currentOf reads the lease rows of the accounts as Current does; accounts
// without a row are absent.
func (s *LeaseStore) currentOf(ctx context.Context, accountIDs []string) (map[string]Lease, error) {
	rows, err := s.db.query(ctx,
		"SELECT account_id, holder, acquired_at, expires_at, version FROM account_leases FINAL WHERE account_id IN "+inList(accountIDs))
	if err != nil {
		return nil, fmt.Errorf("read the leases of %d accounts: %w", len(accountIDs), describeTable(err, "account_leases"))
	}
	defer rows.Close()
	out := map[string]Lease{}
	for rows.Next() {
		var l Lease
		if err := rows.Scan(&l.AccountID, &l.Holder, &l.AcquiredAt, &l.ExpiresAt, &l.version); err != nil {
			return nil, fmt.Errorf("read the leases of %d accounts: %w", len(accountIDs), err)
		}
		out[l.AccountID] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the leases of %d accounts: %w", len(accountIDs), err)
	}
	return out, nil
}

// Renew extends a lease the caller holds by ttl from now. If another holder
// took the lease meanwhile, it returns *syncer.LockHeldError: stop working.
func (s *LeaseStore) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	cur, found, err := s.current(ctx, l.AccountID)
	if err != nil {
		return Lease{}, err
	}
	now := toDateTime(s.now())
	if found && cur.Holder != l.Holder && cur.Holder != "" && cur.ExpiresAt.After(now) {
		return Lease{}, cur.held()
	}
	n := Lease{AccountID: l.AccountID, Holder: l.Holder, AcquiredAt: l.AcquiredAt, ExpiresAt: toDateTime(now.Add(ttl)),
		version: s.db.versions.After(cur.version)}
	if err := s.write(ctx, n); err != nil {
		return Lease{}, err
	}
	return n, nil
}

// Release gives the lease up if the caller still holds it; otherwise it does
// nothing.
func (s *LeaseStore) Release(ctx context.Context, l Lease) error {
	cur, found, err := s.current(ctx, l.AccountID)
	if err != nil {
		return err
	}
	if !found || cur.Holder != l.Holder {
		return nil
	}
	now := toDateTime(s.now())
	return s.write(ctx, Lease{AccountID: l.AccountID, AcquiredAt: now, ExpiresAt: now, version: s.db.versions.After(cur.version)})
}

// Current returns the account's lease row as readers see it (Holder "" when
// released), and whether there is one.
func (s *LeaseStore) Current(ctx context.Context, accountID string) (Lease, bool, error) {
	return s.current(ctx, accountID)
}

func (s *LeaseStore) current(ctx context.Context, accountID string) (Lease, bool, error) {
	rows, err := s.db.query(ctx,
		"SELECT holder, acquired_at, expires_at, version FROM account_leases FINAL WHERE account_id = ?", accountID)
	if err != nil {
		return Lease{}, false, fmt.Errorf("read lease of account %s: %w", accountID, describeTable(err, "account_leases"))
	}
	defer rows.Close()
	l := Lease{AccountID: accountID}
	found := false
	for rows.Next() {
		if err := rows.Scan(&l.Holder, &l.AcquiredAt, &l.ExpiresAt, &l.version); err != nil {
			return Lease{}, false, fmt.Errorf("read lease of account %s: %w", accountID, err)
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return Lease{}, false, fmt.Errorf("read lease of account %s: %w", accountID, err)
	}
	return l, found, nil
}

func (l Lease) held() *syncer.LockHeldError {
	return &syncer.LockHeldError{AccountID: l.AccountID, Holder: l.Holder, Since: l.AcquiredAt, Expires: l.ExpiresAt}
}

func (s *LeaseStore) write(ctx context.Context, l Lease) error {
	row := []any{l.AccountID, l.Holder, toDateTime(l.AcquiredAt), toDateTime(l.ExpiresAt), l.version}
	if err := s.db.insertRows(ctx, defaultRetry, "account_leases", leaseInsertColumns, [][]any{row}); err != nil {
		return fmt.Errorf("write lease of account %s: %w", l.AccountID, err)
	}
	return nil
}

// Lock takes the account's lease for holder (taking over the lease of a
// holder HolderGone says is dead) and renews it every TTL/3 while the pass
// runs. A renewal that fails or finds the lease taken by someone else closes
// the lock's Lost channel: the pass stops at its next window boundary and
// commits nothing more. Unlock stops renewing and releases the lease.
func (s *LeaseStore) Lock(ctx context.Context, accountID, holder string) (syncer.Lock, error) {
	ttl := s.TTL
	lease, err := s.Acquire(ctx, accountID, holder, ttl)
	var held *syncer.LockHeldError
	if errors.As(err, &held) && s.HolderGone != nil && s.HolderGone(held.Holder) {
		// A process of this host that was killed (or crashed, or lost
		// ClickHouse while releasing) holds the lease: it runs no more.
		s.db.log.Warn("taking over the lease of a process that no longer runs",
			zap.String("account_id", accountID), zap.String("holder", held.Holder))
		if err = s.Release(ctx, Lease{AccountID: accountID, Holder: held.Holder}); err == nil {
			lease, err = s.Acquire(ctx, accountID, holder, ttl)
		}
	}
	if err != nil {
		return nil, err
	}
	return s.hold(ctx, lease), nil
}

var _ syncer.BatchLocker = (*LeaseStore)(nil)

// LockMany is Lock for several accounts, their leases acquired together
// (AcquireMany: one Settle for all). An account held by a holder HolderGone
// says is dead is taken over as Lock does, on its own. Each lock renews and
// releases its lease as Lock's do.
func (s *LeaseStore) LockMany(ctx context.Context, accountIDs []string, holder string) ([]syncer.Lock, []error) {
	locks := make([]syncer.Lock, len(accountIDs))
	leases, errs := s.AcquireMany(ctx, accountIDs, holder, s.TTL)
	for i, id := range accountIDs {
		var held *syncer.LockHeldError
		if errors.As(errs[i], &held) && s.HolderGone != nil && s.HolderGone(held.Holder) {
			locks[i], errs[i] = s.Lock(ctx, id, holder)
			continue
		}
		if errs[i] != nil {
			continue
		}
		locks[i] = s.hold(ctx, leases[i])
	}
	return locks, errs
}

// hold renews the lease in the background until Unlock.
func (s *LeaseStore) hold(ctx context.Context, lease Lease) *leaseLock {
	l := &leaseLock{s: s, lease: lease, ttl: s.TTL, stop: make(chan struct{}), lost: make(chan struct{})}
	l.wg.Add(1)
	go l.renew(context.WithoutCancel(ctx))
	return l
}

// leaseLock is a held lease, renewed in the background.
type leaseLock struct {
	s     *LeaseStore
	ttl   time.Duration
	stop  chan struct{}
	lost  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex
	lease Lease
	cause error // why the lease was lost, set before lost is closed
}

var _ syncer.LossExplainer = (*leaseLock)(nil)

func (l *leaseLock) Lost() <-chan struct{} { return l.lost }

// LossCause is the error of the renewal that lost the lease.
func (l *leaseLock) LossCause() error {
	select {
	case <-l.lost:
		return l.cause
	default:
		return nil
	}
}

func (l *leaseLock) renew(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		cur := l.lease
		l.mu.Unlock()
		renewed, err := l.s.Renew(ctx, cur, l.ttl)
		if err != nil {
			l.s.db.log.Error("the account lease could not be renewed or was taken: the pass stops at the next window boundary",
				zap.String("account_id", cur.AccountID), zap.Error(err))
			l.cause = fmt.Errorf("lease renewal: %w", err)
			close(l.lost)
			return
		}
		l.mu.Lock()
		l.lease = renewed
		l.mu.Unlock()
	}
}

func (l *leaseLock) Unlock() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		select {
		case <-l.lost:
			return // someone else may hold it now; Release would check, but there is nothing of ours to free
		default:
		}
		l.mu.Lock()
		cur := l.lease
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.s.releases.do(ctx, cur); err != nil { // Release, with other passes' Unlocks
			l.s.db.log.Warn("could not release the account lease", zap.String("account_id", cur.AccountID), zap.Error(err))
		}
	})
}

// Holders returns the holder of every account whose lease is live now.
func (s *LeaseStore) Holders(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.query(ctx,
		"SELECT account_id, holder, expires_at FROM account_leases FINAL WHERE holder != ''")
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", describeTable(err, "account_leases"))
	}
	defer rows.Close()
	now := s.now()
	out := map[string]string{}
	for rows.Next() {
		var id, holder string
		var expires time.Time
		if err := rows.Scan(&id, &holder, &expires); err != nil {
			return nil, fmt.Errorf("read leases: %w", err)
		}
		if expires.After(now) {
			out[id] = holder
		}
	}
	return out, rows.Err()
}
