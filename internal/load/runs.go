package load

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var _ syncer.RunStore = (*RunStore)(nil)

// RunStore records sync_runs. A run's rows share the key (account_id,
// entity, started_at, run_id), so its second row (the outcome) replaces the
// first (running) for readers using FINAL: pass the same StartedAt both
// times (it is stored to the second).
//
// Rows recorded by concurrent passes go to ClickHouse together (a group
// commit): each call still returns only once its rows are stored.
type RunStore struct {
	db    *DB
	group *groupCommit[[]any]
}

// NewRunStore returns a RunStore on db.
func NewRunStore(db *DB) *RunStore {
	s := &RunStore{db: db}
	s.group = newGroupCommit(groupParallel, func(ctx context.Context, rows [][]any) error {
		return db.insertRows(ctx, defaultRetry, "sync_runs", runInsertColumns, rows)
	})
	return s
}

var runInsertColumns = []string{"run_id", "account_id", "entity", "kind", "started_at", "finished_at", "status",
	"rows", "requests", "rate_limit_waits", "windows", "error", "version"}

var _ syncer.RunBatcher = (*RunStore)(nil)

// RecordRun writes r with a fresh version.
func (s *RunStore) RecordRun(ctx context.Context, r syncer.Run) error {
	return s.RecordRuns(ctx, r)
}

// RecordRuns writes the runs in one insert (shared with the rows other
// passes record meanwhile), each with a fresh version, later runs of the
// list with later versions.
func (s *RunStore) RecordRuns(ctx context.Context, runs ...syncer.Run) error {
	rows := make([][]any, 0, len(runs))
	for _, r := range runs {
		if r.ID == "" || r.AccountID == "" {
			return fmt.Errorf("record run: run id and account id are required")
		}
		rows = append(rows, []any{r.ID, r.AccountID, string(r.Entity), string(r.Kind), toDateTime(r.StartedAt), toDateTime(r.FinishedAt),
			string(r.Status), r.Rows, r.Requests, r.RateLimitWaits, r.Windows, r.Error, s.db.versions.Next()})
	}
	if err := s.group.do(ctx, rows...); err != nil {
		r := runs[0]
		if len(runs) > 1 {
			return fmt.Errorf("record %d runs (account %s): %w", len(runs), r.AccountID, err)
		}
		return fmt.Errorf("record run %s (account %s %s): %w", r.ID, r.AccountID, r.Entity, err)
	}
	return nil
}

// CloseAbandoned records the account's runs still shown as running as
// interrupted with reason, finished now. The caller holds the account's
// lock, so none of them is alive.
func (s *RunStore) CloseAbandoned(ctx context.Context, accountID, reason string) (int, error) {
	n, err := s.CloseAbandonedOf(ctx, []string{accountID}, reason)
	return n[accountID], err
}

// CloseAbandonedOf is CloseAbandoned for several accounts, in one read and
// at most one write; it returns how many runs it closed per account. As
// CloseAbandoned always did, it looks at each account's latest 1,000 runs.
// The caller holds every account's lock.
func (s *RunStore) CloseAbandonedOf(ctx context.Context, accountIDs []string, reason string) (map[string]int, error) {
	out := map[string]int{}
	if len(accountIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.query(ctx,
		"SELECT run_id, account_id, entity, kind, started_at, finished_at, status, `rows`, requests, rate_limit_waits, windows, error"+
			" FROM sync_runs FINAL WHERE account_id IN "+inList(accountIDs)+" ORDER BY started_at DESC, run_id DESC, entity LIMIT 1000 BY account_id")
	if err != nil {
		return nil, fmt.Errorf("read the running runs of %d accounts: %w", len(accountIDs), describeTable(err, "sync_runs"))
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return nil, fmt.Errorf("read the running runs of %d accounts: %w", len(accountIDs), err)
	}
	// the status is filtered here, not in SQL, where a server could apply it
	// before FINAL merges a run's rows (PREWHERE)
	now := s.db.now()
	var closing []syncer.Run
	for _, r := range runs {
		if r.Status != syncer.RunRunning {
			continue
		}
		r.Status, r.Error, r.FinishedAt = syncer.RunInterrupted, reason, now
		out[r.AccountID]++
		closing = append(closing, r)
	}
	if len(closing) == 0 {
		return out, nil
	}
	if err := s.RecordRuns(ctx, closing...); err != nil {
		return nil, err
	}
	return out, nil
}

// Runs returns the account's latest runs, newest first; limit <= 0 means 100.
func (s *RunStore) Runs(ctx context.Context, accountID string, limit int) ([]syncer.Run, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.query(ctx,
		"SELECT run_id, account_id, entity, kind, started_at, finished_at, status, `rows`, requests, rate_limit_waits, windows, error"+
			" FROM sync_runs FINAL WHERE account_id = ? ORDER BY started_at DESC, run_id DESC, entity LIMIT ?",
		accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("read runs of account %s: %w", accountID, describeTable(err, "sync_runs"))
	}
	out, err := scanRuns(rows)
	if err != nil {
		return nil, fmt.Errorf("read runs of account %s: %w", accountID, err)
	}
	return out, nil
}

// scanRuns reads the rows of a sync_runs query in the column order of Runs
// and closes them.
func scanRuns(rows driver.Rows) ([]syncer.Run, error) {
	defer rows.Close()
	var out []syncer.Run
	for rows.Next() {
		var (
			r                    syncer.Run
			entity, kind, status string
			started, finished    time.Time
		)
		if err := rows.Scan(&r.ID, &r.AccountID, &entity, &kind, &started, &finished, &status,
			&r.Rows, &r.Requests, &r.RateLimitWaits, &r.Windows, &r.Error); err != nil {
			return nil, err
		}
		r.Entity, r.Kind, r.Status = syncer.Entity(entity), syncer.RunKind(kind), syncer.RunStatus(status)
		r.StartedAt, r.FinishedAt = fromDateTime(started), fromDateTime(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}
