package load

import (
	"context"
	"fmt"
	"time"
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

// LeaseHeldError is returned when another holder has a live lease.
type LeaseHeldError struct {
	AccountID string
	Holder    string
	Since     time.Time
	Expires   time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("account %s is being synced by %s (since %s, lease expires %s)",
		e.AccountID, e.Holder, e.Since.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339))
}

// LeaseStore keeps per-account leases in account_leases, so at most one run
// per account happens at a time, across the daemon and CLI backfills.
//
// ClickHouse has no compare-and-set, so acquiring is check, insert, wait
// Settle, re-read: the row with the highest version wins and the loser gets
// a LeaseHeldError. What remains is a narrow race: if B read "free" before
// A's insert but inserts only after A's confirming re-read (B stalled for
// longer than Settle between its read and its insert), both believe they
// hold the lease until one of them renews; Renew then tells the loser. Runs
// must therefore stay idempotent (they are: every write is versioned).
type LeaseStore struct {
	db  *DB
	now func() time.Time
	// Settle is how long Acquire waits between its insert and the confirming
	// read (default 200ms).
	Settle time.Duration
}

// NewLeaseStore returns a LeaseStore on db; now is the clock for
// acquisition and expiry (nil means the DB's).
func NewLeaseStore(db *DB, now func() time.Time) *LeaseStore {
	if now == nil {
		now = db.now
	}
	return &LeaseStore{db: db, now: now, Settle: 200 * time.Millisecond}
}

var leaseInsertColumns = []string{"account_id", "holder", "acquired_at", "expires_at", "version"}

// Acquire takes the account's lease for holder for ttl. If another holder
// has a lease that has not expired, it returns *LeaseHeldError. A holder
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
	if s.Settle > 0 {
		t := time.NewTimer(s.Settle)
		select {
		case <-ctx.Done():
			t.Stop()
			return Lease{}, fmt.Errorf("acquire lease of account %s: %w", accountID, ctx.Err())
		case <-t.C:
		}
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

// Renew extends a lease the caller holds by ttl from now. If another holder
// took the lease meanwhile, it returns *LeaseHeldError: stop working.
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
	rows, err := s.db.conn.Query(ctx,
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

func (l Lease) held() *LeaseHeldError {
	return &LeaseHeldError{AccountID: l.AccountID, Holder: l.Holder, Since: l.AcquiredAt, Expires: l.ExpiresAt}
}

func (s *LeaseStore) write(ctx context.Context, l Lease) error {
	row := []any{l.AccountID, l.Holder, toDateTime(l.AcquiredAt), toDateTime(l.ExpiresAt), l.version}
	if err := s.db.insertRows(ctx, defaultRetry, "account_leases", leaseInsertColumns, [][]any{row}); err != nil {
		return fmt.Errorf("write lease of account %s: %w", l.AccountID, err)
	}
	return nil
}
