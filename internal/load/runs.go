package load

import (
	"context"
	"fmt"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var _ syncer.RunStore = (*RunStore)(nil)

// RunStore records sync_runs. A run's rows share the key (account_id,
// entity, started_at, run_id), so its second row (the outcome) replaces the
// first (running) for readers using FINAL: pass the same StartedAt both
// times (it is stored to the second).
type RunStore struct {
	db *DB
}

// NewRunStore returns a RunStore on db.
func NewRunStore(db *DB) *RunStore { return &RunStore{db: db} }

var runInsertColumns = []string{"run_id", "account_id", "entity", "kind", "started_at", "finished_at", "status",
	"rows", "requests", "rate_limit_waits", "windows", "error", "version"}

// RecordRun writes r with a fresh version.
func (s *RunStore) RecordRun(ctx context.Context, r syncer.Run) error {
	if r.ID == "" || r.AccountID == "" {
		return fmt.Errorf("record run: run id and account id are required")
	}
	row := []any{r.ID, r.AccountID, string(r.Entity), string(r.Kind), toDateTime(r.StartedAt), toDateTime(r.FinishedAt),
		string(r.Status), r.Rows, r.Requests, r.RateLimitWaits, r.Windows, r.Error, s.db.versions.Next()}
	if err := s.db.insertRows(ctx, defaultRetry, "sync_runs", runInsertColumns, [][]any{row}); err != nil {
		return fmt.Errorf("record run %s (account %s %s): %w", r.ID, r.AccountID, r.Entity, err)
	}
	return nil
}

// CloseAbandoned records the account's runs still shown as running as
// interrupted with reason, finished now. The caller holds the account's
// lock, so none of them is alive.
func (s *RunStore) CloseAbandoned(ctx context.Context, accountID, reason string) (int, error) {
	runs, err := s.Runs(ctx, accountID, 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range runs {
		if r.Status != syncer.RunRunning {
			continue
		}
		r.Status, r.Error, r.FinishedAt = syncer.RunInterrupted, reason, s.db.now()
		if err := s.RecordRun(ctx, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Runs returns the account's latest runs, newest first; limit <= 0 means 100.
func (s *RunStore) Runs(ctx context.Context, accountID string, limit int) ([]syncer.Run, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.conn.Query(ctx,
		"SELECT run_id, account_id, entity, kind, started_at, finished_at, status, `rows`, requests, rate_limit_waits, windows, error"+
			" FROM sync_runs FINAL WHERE account_id = ? ORDER BY started_at DESC, run_id DESC, entity LIMIT ?",
		accountID, limit)
	if err != nil {
		return nil, fmt.Errorf("read runs of account %s: %w", accountID, describeTable(err, "sync_runs"))
	}
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
			return nil, fmt.Errorf("read runs of account %s: %w", accountID, err)
		}
		r.Entity, r.Kind, r.Status = syncer.Entity(entity), syncer.RunKind(kind), syncer.RunStatus(status)
		r.StartedAt, r.FinishedAt = fromDateTime(started), fromDateTime(finished)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read runs of account %s: %w", accountID, err)
	}
	return out, nil
}
