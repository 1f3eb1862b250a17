package load

import (
	"context"
	"fmt"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// AccountEntity names one entity of one account.
type AccountEntity struct {
	AccountID string
	Entity    syncer.Entity
}

// LastSuccesses returns, per account and entity, when its latest successful
// run finished: what a freshly started worker reports before its own first
// success. One query over sync_runs, without FINAL: a run's succeeded row
// is written once (a retry writes the same values), so the maximum over those
// rows is the same with or without merging, and reading a year of runs stays
// cheap.
func (s *RunStore) LastSuccesses(ctx context.Context) (map[AccountEntity]time.Time, error) {
	rows, err := s.db.query(ctx,
		"SELECT account_id, entity, max(finished_at) FROM sync_runs WHERE status = ? GROUP BY account_id, entity",
		string(syncer.RunSucceeded))
	if err != nil {
		return nil, fmt.Errorf("read the last successful runs: %w", describeTable(err, "sync_runs"))
	}
	defer rows.Close()
	out := map[AccountEntity]time.Time{}
	for rows.Next() {
		var (
			acct, entity string
			t            time.Time
		)
		if err := rows.Scan(&acct, &entity, &t); err != nil {
			return nil, err
		}
		out[AccountEntity{acct, syncer.Entity(entity)}] = fromDateTime(t)
	}
	return out, rows.Err()
}

// IncrementalWatermarks returns every stored watermark of the incremental
// scans (last-updated and locking date) of every account, read with argMax as
// Watermark reads one: what the worker's watermark lag starts from.
func (s *StateStore) IncrementalWatermarks(ctx context.Context) (map[syncer.WatermarkKey]time.Time, error) {
	rows, err := s.db.query(ctx,
		"SELECT account_id, entity, campaign_id, scan, argMax(watermark, version) FROM sync_state"+
			" WHERE scan IN (?, ?) GROUP BY account_id, entity, campaign_id, scan",
		syncer.ScanUpdated, syncer.ScanLocking)
	if err != nil {
		return nil, fmt.Errorf("read the watermarks: %w", describeTable(err, "sync_state"))
	}
	defer rows.Close()
	out := map[syncer.WatermarkKey]time.Time{}
	for rows.Next() {
		var (
			k syncer.WatermarkKey
			e string
			t time.Time
		)
		if err := rows.Scan(&k.AccountID, &e, &k.CampaignID, &k.Scan, &t); err != nil {
			return nil, err
		}
		k.Entity = syncer.Entity(e)
		out[k] = fromDateTime(t)
	}
	return out, rows.Err()
}
