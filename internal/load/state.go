package load

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var _ syncer.StateStore = (*StateStore)(nil)

// StateStore keeps watermarks in sync_state. Reads take argMax(watermark,
// version) over the key, so they never depend on merges or OPTIMIZE.
// Watermarks have second precision (DateTime): a stored time is truncated
// down, so a resumed scan re-reads at most one second.
type StateStore struct {
	db *DB

	mu     sync.Mutex
	floors map[floorKey]uint64 // read by WatermarksOf, until DropPrefetched

	group *groupCommit[[]any] // SetWatermarks of concurrent passes, in one insert
}

// floorKey is the scope of a version floor of sync_state.
type floorKey struct {
	account string
	entity  syncer.Entity
}

// NewStateStore returns a StateStore on db.
func NewStateStore(db *DB) *StateStore {
	return &StateStore{db: db, floors: map[floorKey]uint64{}, group: newGroupCommit(groupParallel, func(ctx context.Context, rows [][]any) error {
		return db.insertRows(ctx, defaultRetry, "sync_state", stateInsertColumns, rows)
	})}
}

var stateInsertColumns = []string{"account_id", "entity", "campaign_id", "scan", "watermark", "updated_at", "version"}

// Watermark returns the stored time and true, or the zero time and false.
func (s *StateStore) Watermark(ctx context.Context, k syncer.WatermarkKey) (time.Time, bool, error) {
	var (
		t time.Time
		n uint64
	)
	err := s.db.queryRow(ctx,
		"SELECT argMax(watermark, version), count() FROM sync_state WHERE account_id = ? AND entity = ? AND campaign_id = ? AND scan = ?",
		[]any{k.AccountID, string(k.Entity), k.CampaignID, k.Scan}, &t, &n)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("watermark %s: %w", keyString(k), describeTable(err, "sync_state"))
	}
	if n == 0 {
		return time.Time{}, false, nil
	}
	return fromDateTime(t), true, nil
}

// SetWatermark stores t for k; it replaces the previous value for readers,
// also when that was written by a process whose clock ran ahead.
func (s *StateStore) SetWatermark(ctx context.Context, k syncer.WatermarkKey, t time.Time) error {
	floor, err := s.db.maxVersion(ctx, "sync_state", "account_id = ? AND entity = ? AND campaign_id = ? AND scan = ?",
		k.AccountID, string(k.Entity), k.CampaignID, k.Scan)
	if err != nil {
		return fmt.Errorf("set watermark %s: %w", keyString(k), err)
	}
	row := []any{k.AccountID, string(k.Entity), k.CampaignID, k.Scan, toDateTime(t), toDateTime(s.db.now()), s.db.versions.After(floor)}
	err = s.db.insertRows(ctx, defaultRetry, "sync_state",
		[]string{"account_id", "entity", "campaign_id", "scan", "watermark", "updated_at", "version"}, [][]any{row})
	if err != nil {
		return fmt.Errorf("set watermark %s: %w", keyString(k), err)
	}
	return nil
}

var _ syncer.WatermarkBatcher = (*StateStore)(nil)

// Watermarks returns every watermark of the account's entity, read with
// argMax as Watermark reads one.
func (s *StateStore) Watermarks(ctx context.Context, accountID string, e syncer.Entity) (map[syncer.WatermarkKey]time.Time, error) {
	rows, err := s.db.query(ctx,
		"SELECT campaign_id, scan, argMax(watermark, version) FROM sync_state WHERE account_id = ? AND entity = ? GROUP BY campaign_id, scan",
		accountID, string(e))
	if err != nil {
		return nil, fmt.Errorf("watermarks of account %s %s: %w", accountID, e, describeTable(err, "sync_state"))
	}
	defer rows.Close()
	out := map[syncer.WatermarkKey]time.Time{}
	for rows.Next() {
		var (
			campaign, scan string
			t              time.Time
		)
		if err := rows.Scan(&campaign, &scan, &t); err != nil {
			return nil, err
		}
		out[syncer.WatermarkKey{AccountID: accountID, Entity: e, CampaignID: campaign, Scan: scan}] = fromDateTime(t)
	}
	return out, rows.Err()
}

// SetWatermarks stores every mark in one insert: one part, so readers see
// all of them or none (the insert may carry the marks other passes store
// meanwhile: a group commit). As SetWatermark, it writes versions above
// those stored (read once per account and entity, unless WatermarksOf read
// them while the account's lock was held).
func (s *StateStore) SetWatermarks(ctx context.Context, marks map[syncer.WatermarkKey]time.Time) error {
	if len(marks) == 0 {
		return nil
	}
	type scope struct {
		account string
		entity  syncer.Entity
	}
	floors := map[scope]uint64{}
	for k := range marks {
		sc := scope{k.AccountID, k.Entity}
		if _, ok := floors[sc]; ok {
			continue
		}
		s.mu.Lock()
		floor, known := s.floors[floorKey{k.AccountID, k.Entity}]
		s.mu.Unlock()
		if known { // read ahead by WatermarksOf, the account's lock held since
			floors[sc] = floor
			continue
		}
		floor, err := s.db.maxVersion(ctx, "sync_state", "account_id = ? AND entity = ?", k.AccountID, string(k.Entity))
		if err != nil {
			return fmt.Errorf("set %d watermarks: %w", len(marks), err)
		}
		floors[sc] = floor
	}
	updated := toDateTime(s.db.now())
	rows := make([][]any, 0, len(marks))
	for k, t := range marks {
		v := s.db.versions.After(floors[scope{k.AccountID, k.Entity}])
		rows = append(rows, []any{k.AccountID, string(k.Entity), k.CampaignID, k.Scan, toDateTime(t), updated, v})
	}
	if err := s.group.do(ctx, rows...); err != nil {
		return fmt.Errorf("set %d watermarks: %w", len(marks), err)
	}
	return nil
}

func keyString(k syncer.WatermarkKey) string {
	s := fmt.Sprintf("account %s %s", k.AccountID, k.Entity)
	if k.CampaignID != "" {
		s += " campaign " + k.CampaignID
	}
	if k.Scan != "" {
		s += " scan " + k.Scan
	}
	return s
}

var _ syncer.WatermarkPrefetcher = (*StateStore)(nil)

// WatermarksOf returns every watermark of the accounts' entities, in one
// query, read with argMax as Watermark reads one.
func (s *StateStore) WatermarksOf(ctx context.Context, accountIDs []string, entities []syncer.Entity) (map[syncer.WatermarkKey]time.Time, error) {
	out := map[syncer.WatermarkKey]time.Time{}
	if len(accountIDs) == 0 || len(entities) == 0 {
		return out, nil
	}
	names := make([]string, len(entities))
	for i, e := range entities {
		names[i] = string(e)
	}
	rows, err := s.db.query(ctx,
		"SELECT account_id, entity, campaign_id, scan, argMax(watermark, version), max(version) FROM sync_state"+
			" WHERE account_id IN "+inList(accountIDs)+" AND entity IN "+inList(names)+" GROUP BY account_id, entity, campaign_id, scan")
	if err != nil {
		return nil, fmt.Errorf("watermarks of %d accounts: %w", len(accountIDs), describeTable(err, "sync_state"))
	}
	defer rows.Close()
	floors := map[floorKey]uint64{}
	for _, id := range accountIDs {
		for _, e := range entities {
			floors[floorKey{id, e}] = 0
		}
	}
	for rows.Next() {
		var (
			k       syncer.WatermarkKey
			entity  string
			t       time.Time
			version uint64
		)
		if err := rows.Scan(&k.AccountID, &entity, &k.CampaignID, &k.Scan, &t, &version); err != nil {
			return nil, err
		}
		k.Entity = syncer.Entity(entity)
		out[k] = fromDateTime(t)
		fk := floorKey{k.AccountID, k.Entity}
		floors[fk] = max(floors[fk], version)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// the accounts' locks are held: nobody else writes their watermarks, so
	// these floors hold for SetWatermarks until the locks are released
	s.mu.Lock()
	maps.Copy(s.floors, floors)
	s.mu.Unlock()
	return out, nil
}

// DropPrefetched forgets the version floors WatermarksOf read for the
// account (its lock is about to be released).
func (s *StateStore) DropPrefetched(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.floors {
		if k.account == accountID {
			delete(s.floors, k)
		}
	}
}
