package syncer

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by stores when the named thing does not exist.
var ErrNotFound = errors.New("not found")

// SealedSecret is a secret encrypted at rest: AES-256-GCM ciphertext (nonce
// first) under the key named by KeyID. Only the auth package opens it.
type SealedSecret struct {
	KeyID      string
	Ciphertext []byte
}

// AccountStore keeps registered accounts and their sealed secrets.
// Every method returns ErrNotFound (wrapped) for an unknown account id.
type AccountStore interface {
	// PutAccount creates or replaces the account and its secret.
	PutAccount(ctx context.Context, a Account, secret SealedSecret) error
	Account(ctx context.Context, id string) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	Secret(ctx context.Context, id string) (SealedSecret, error)
	// SetSecret replaces the sealed secret only (a rotated refresh token, a re-encryption).
	SetSecret(ctx context.Context, id string, secret SealedSecret) error
	// SetStatus records the status, its reason and the permissions the token lacks.
	SetStatus(ctx context.Context, id string, status Status, reason string, missing []string) error
	DeleteAccount(ctx context.Context, id string) error
}

// Writer loads records into ClickHouse.
// Write is idempotent for the same records: retrying after an error whose
// outcome is unknown never makes duplicates visible to readers. It returns
// only after ClickHouse acknowledged every row.
type Writer interface {
	Write(ctx context.Context, accountID string, e Entity, recs []Record) error
}

// StreamWriter is implemented by a Writer that can take one INSERT's rows
// as they are read instead of all at once, so a run holds only a data block
// of them however many the insert carries: ClickHouse squashes the blocks
// of one INSERT and writes one part per partition month, so large inserts
// are cheap for it while a run's memory stays small.
type StreamWriter interface {
	// OpenInsert starts an INSERT of e's rows of the account, all with one
	// version. Its errors are those of Write.
	OpenInsert(ctx context.Context, accountID string, e Entity) (Insert, error)
}

// Insert is one INSERT in progress. Add validates a row and sends rows to
// ClickHouse in data blocks as they fill; Commit sends the rest and returns
// once ClickHouse acknowledged every row. After an error from Add or Commit
// the insert is abandoned (Abort is then a no-op): some, all or none of its
// rows may be stored, with the insert's version, so rows read again and
// written with a later version replace them invisibly to readers. Nothing
// of it may be committed as a watermark; an error that may pass (a lost
// connection, a busy server) matches ErrWriteInterrupted, and the rows can be
// read again and written anew.
type Insert interface {
	Add(r Record) error
	Rows() int
	Commit() error
	Abort()
}

// PartMerger is implemented by a Writer whose table parts can be merged on
// demand. A FINAL read opens every part of the table at once (on 18.16 some
// memory per column of each part), so a run that wrote a month in several
// parts (several scans over the same range: the first sync) merges the
// months it touched before it reports success when the table holds more
// parts than such a read affords, and analysts can read the table right
// after it. It returns how many months it merged. Errors are those of Write.
type PartMerger interface {
	MergeMonths(ctx context.Context, e Entity, months []time.Time) (int, error)
}

// ErrWriteInterrupted marks a failed write whose cause may pass and whose
// rows may or may not be in ClickHouse (see Insert).
var ErrWriteInterrupted = errors.New("clickhouse write interrupted")

// VersionRaiser is implemented by a Writer whose row versions come from the
// local clock. RaiseVersions makes every version written from now on higher
// than those the account's rows of e already have, which a process whose
// clock ran ahead may have written. A pass calls it once per entity while it
// holds the account's lock, before writing.
type VersionRaiser interface {
	RaiseVersions(ctx context.Context, accountID string, e Entity) error
}

// WatermarkKey names one incremental cursor: per account, entity, campaign
// ("" for a partner's account-wide scan) and scan kind.
type WatermarkKey struct {
	AccountID  string
	Entity     Entity
	CampaignID string
	Scan       string
}

// StateStore keeps watermarks. Reading never needs OPTIMIZE.
type StateStore interface {
	// Watermark returns the stored time and true, or the zero time and false.
	Watermark(ctx context.Context, k WatermarkKey) (time.Time, bool, error)
	SetWatermark(ctx context.Context, k WatermarkKey, t time.Time) error
}

// WatermarkBatcher is a StateStore that reads and writes many watermarks
// in one round trip each; a pass uses it when the store offers it (a sync of
// many small accounts is mostly such round trips). Errors as for StateStore.
type WatermarkBatcher interface {
	// Watermarks returns every stored watermark of the account's entity.
	Watermarks(ctx context.Context, accountID string, e Entity) (map[WatermarkKey]time.Time, error)
	// SetWatermarks stores them all at once: readers see all or none.
	SetWatermarks(ctx context.Context, marks map[WatermarkKey]time.Time) error
}

// RunKind says what started a run.
type RunKind string

const (
	RunIncremental RunKind = "incremental"
	RunBackfill    RunKind = "backfill"
)

// RunStatus is the outcome of one entity run.
type RunStatus string

const (
	RunRunning     RunStatus = "running"
	RunSucceeded   RunStatus = "succeeded"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted"
	RunSkipped     RunStatus = "skipped"
)

// Run is one row of sync_runs: one entity of one account, one pass.
type Run struct {
	ID             string
	AccountID      string
	Entity         Entity
	Kind           RunKind
	StartedAt      time.Time
	FinishedAt     time.Time
	Status         RunStatus
	Rows           uint64
	Requests       uint64
	RateLimitWaits uint64
	Windows        uint64
	Error          string
}

// RunStore records sync_runs. A run is written when it starts and again when
// it ends; the later row replaces the earlier one for readers.
type RunStore interface {
	RecordRun(ctx context.Context, r Run) error
	// CloseAbandoned records every run of the account still shown as running
	// as interrupted, with reason, and returns how many there were. Call it
	// holding the account's lock: no run of the account is alive then, so a
	// running row is one whose process died (kill -9, a crash, ClickHouse
	// unreachable when it ended) before it could record its outcome.
	CloseAbandoned(ctx context.Context, accountID, reason string) (int, error)
}

// RunBatcher is a RunStore that writes many run rows at once (Syncer.Prepare
// and the pass use it when the store offers it). Errors as for RunStore.
type RunBatcher interface {
	// RecordRuns stores the runs in one write, each replacing its earlier
	// rows, later runs of the list after earlier ones.
	RecordRuns(ctx context.Context, runs ...Run) error
	// CloseAbandonedOf is CloseAbandoned for several accounts at once; it
	// returns the runs closed per account. The caller holds every lock.
	CloseAbandonedOf(ctx context.Context, accountIDs []string, reason string) (map[string]int, error)
}

// WatermarkPrefetcher is a StateStore that reads the watermarks of many
// accounts in one round trip (Syncer.Prepare). Errors as for StateStore.
type WatermarkPrefetcher interface {
	// WatermarksOf returns every stored watermark of the accounts' entities.
	// The caller holds the accounts' locks: the store may rely on what it
	// read (to write the account's watermarks without reading first) until
	// DropPrefetched(accountID), which the caller calls before releasing
	// the lock.
	WatermarksOf(ctx context.Context, accountIDs []string, entities []Entity) (map[WatermarkKey]time.Time, error)
	DropPrefetched(accountID string)
}

// VersionBatchRaiser is a VersionRaiser that raises the versions above
// those of many accounts at once: RaiseVersionsOf is RaiseVersions for every
// account and entity given, in a round trip per entity. The caller holds
// every account's lock.
type VersionBatchRaiser interface {
	RaiseVersionsOf(ctx context.Context, accountIDs []string, entities []Entity) error
}

// CatalogPrefetcher is a CatalogWriter that reads what ReplaceCatalog reads
// first (the stored state of the account's catalog entity) for many
// accounts at once. PrefetchCatalog reads it for accounts whose locks the
// caller holds; the next ReplaceCatalog of each account and entity uses it
// instead of reading, once. DropPrefetched forgets what an account's pass
// did not use; call it before the account's lock is released, since what was
// read is only true while the lock is held.
type CatalogPrefetcher interface {
	PrefetchCatalog(ctx context.Context, accountIDs []string, entities []Entity) error
	DropPrefetched(accountID string)
}

// AccountRecords are one account's records of an entity.
type AccountRecords struct {
	AccountID string
	Records   []Record
}

// BatchWriter is a Writer that writes the rows of several accounts in one
// insert (a staged commit, see committer). WriteBatch returns one error per
// item, nil for those stored: an item that cannot be written (a bad value)
// fails alone, a failed insert fails every item it carried.
type BatchWriter interface {
	WriteBatch(ctx context.Context, e Entity, batch []AccountRecords) []error
}

// CatalogRefresh is what ReplaceCatalog takes for one account.
type CatalogRefresh struct {
	AccountID string
	Records   []Record
	SeenAt    time.Time
}

// CatalogBatchWriter is a CatalogWriter that refreshes one catalog entity
// of several accounts in one insert, each as ReplaceCatalog would, with one
// error per item as BatchWriter.
type CatalogBatchWriter interface {
	ReplaceCatalogs(ctx context.Context, e Entity, batch []CatalogRefresh) []error
}
