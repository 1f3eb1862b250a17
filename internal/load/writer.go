package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var (
	_ syncer.Writer = (*Writer)(nil)
	_ syncer.Writer = (*CatalogWriter)(nil)
)

// Writer loads records into the entity tables. Each row carries account_id,
// the entity's typed columns, raw, a version and synced_at; the table is a
// ReplacingMergeTree(version) keyed by (account_id, id), so a re-load with a
// newer version replaces a row for readers using FINAL, and a retry with the
// same version changes nothing they can see.
type Writer struct {
	db *DB
	// MaxBatchRows splits large writes into inserts of at most this many
	// rows (default 100 000).
	MaxBatchRows int
	// MergeParts is how many active parts a table may hold before
	// MergeMonths merges (default DefaultMergeParts).
	MergeParts int
	retry      retryPolicy
}

// NewWriter returns a Writer on db.
func NewWriter(db *DB) *Writer {
	return &Writer{db: db, MaxBatchRows: 100_000, MergeParts: DefaultMergeParts, retry: defaultRetry}
}

// Write loads recs with a fresh version from the DB's clock and synced_at =
// now. For a catalog entity it upserts like ReplaceCatalog but never marks
// missing records absent. It returns after ClickHouse acknowledged every
// row; errors match ErrSchema (missing table or column) or ErrBadValue.
func (w *Writer) Write(ctx context.Context, accountID string, e syncer.Entity, recs []syncer.Record) error {
	return w.WriteVersioned(ctx, accountID, e, 0, w.db.now(), recs)
}

// WriteVersioned is Write with the version and synced_at chosen by the
// caller. Writing the same records with the same version again is invisible
// to readers; a higher version replaces them. Version 0 means a fresh one
// from the DB's clock (for a catalog entity, also above the versions the
// account's rows already have).
func (w *Writer) WriteVersioned(ctx context.Context, accountID string, e syncer.Entity, version uint64, syncedAt time.Time, recs []syncer.Record) error {
	tb, err := table(e)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if isCatalog(e) {
		return w.writeCatalog(ctx, accountID, tb, version, syncedAt, recs, false, nil, nil)
	}
	if err := validate(accountID, tb, recs); err != nil {
		return err
	}
	if version == 0 {
		version = w.db.versions.Next()
	}
	cols := insertColumns(tb, false)
	synced := toDateTime(syncedAt)
	for chunk := range slices.Chunk(recs, max(w.MaxBatchRows, 1)) {
		// Rows are built one at a time into a reused slice and copied into
		// the driver's column buffers: no [][]any copy of the records.
		row := func(i int, buf []any) []any { return appendEntityRow(buf[:0], accountID, chunk[i], version, synced) }
		if err := w.db.insertStream(ctx, w.retry, string(e), cols, len(chunk), row); err != nil {
			return fmt.Errorf("account %s: write %d %s: %w", accountID, len(chunk), e, err)
		}
	}
	return nil
}

var _ syncer.VersionRaiser = (*Writer)(nil)

// RaiseVersions makes every version this process writes from now on higher
// than the versions the account's rows of e already have. A worker whose
// clock ran ahead (or this one, before its clock was stepped back) may have
// written them; a lower version would leave their older state visible to
// readers.
func (w *Writer) RaiseVersions(ctx context.Context, accountID string, e syncer.Entity) error {
	tb, err := table(e)
	if err != nil {
		return err
	}
	floor, err := w.db.maxVersion(ctx, string(tb.Entity), "account_id = ?", accountID)
	if err != nil {
		return fmt.Errorf("account %s: %w", accountID, err)
	}
	w.db.versions.After(floor)
	return nil
}

var _ syncer.VersionBatchRaiser = (*Writer)(nil)

// RaiseVersionsOf is RaiseVersions for every account and entity given, in
// one query per entity.
func (w *Writer) RaiseVersionsOf(ctx context.Context, accountIDs []string, entities []syncer.Entity) error {
	if len(accountIDs) == 0 {
		return nil
	}
	for _, e := range entities {
		tb, err := table(e)
		if err != nil {
			return err
		}
		floor, err := w.db.maxVersion(ctx, string(tb.Entity), "account_id IN "+inList(accountIDs))
		if err != nil {
			return fmt.Errorf("%d accounts: %w", len(accountIDs), err)
		}
		w.db.versions.After(floor)
	}
	return nil
}

// maxVersion is the highest version of the table's rows matching where (0
// when none).
func (d *DB) maxVersion(ctx context.Context, tableName, where string, args ...any) (uint64, error) {
	var v uint64
	if err := d.queryRow(ctx, "SELECT max(version) FROM "+quote(tableName)+" WHERE "+where, args, &v); err != nil {
		return 0, fmt.Errorf("reading the latest version of %s: %w", tableName, describeTable(err, tableName))
	}
	return v, nil
}

func table(e syncer.Entity) (*syncer.Table, error) {
	tb, ok := syncer.Tables[e]
	if !ok {
		return nil, fmt.Errorf("unknown entity %q", e)
	}
	return tb, nil
}

func isCatalog(e syncer.Entity) bool { return slices.Contains(syncer.CatalogEntities, e) }

// insertColumns is the explicit column list of an entity insert.
func insertColumns(tb *syncer.Table, catalog bool) []string {
	cols := make([]string, 0, len(tb.Columns)+7)
	cols = append(cols, "account_id")
	for _, c := range tb.Columns {
		cols = append(cols, c.Name)
	}
	cols = append(cols, "raw", "version", "synced_at")
	if catalog {
		cols = append(cols, "first_seen_at", "last_seen_at", "is_present")
	}
	return cols
}

func entityRow(accountID string, r syncer.Record, version uint64, synced time.Time, extra ...any) []any {
	row := make([]any, 0, len(r.Values)+4+len(extra))
	return append(appendEntityRow(row, accountID, r, version, synced), extra...)
}

// appendEntityRow appends the insert values of r (account_id, the typed
// columns, raw, version, synced_at) to dst.
func appendEntityRow(dst []any, accountID string, r syncer.Record, version uint64, synced time.Time) []any {
	dst = append(dst, accountID)
	for _, v := range r.Values {
		if s, ok := v.([]string); ok && s == nil {
			v = []string{}
		}
		dst = append(dst, v)
	}
	return append(dst, r.Raw, version, synced)
}

var (
	maxDecimal = decimal.New(1, 10) // Decimal(18, 8) holds |x| < 10^10
	maxUint32  = int64(math.MaxUint32)
)

// validate checks every value's Go type against its column and that it fits
// exactly, so a bad record is named instead of failing (or rounding) inside
// the driver.
func validate(accountID string, tb *syncer.Table, recs []syncer.Record) error {
	var errs []error
	for _, r := range recs {
		if err := validateRecord(accountID, tb, r); err != nil {
			errs = append(errs, err)
		}
		if len(errs) >= 10 {
			break
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrBadValue, errors.Join(errs...))
}

// validateRecord is validate for one record.
func validateRecord(accountID string, tb *syncer.Table, r syncer.Record) error {
	if len(r.Values) != len(tb.Columns) {
		return fmt.Errorf("%s record %q has %d values for %d columns", tb.Entity, r.ID, len(r.Values), len(tb.Columns))
	}
	var errs []error
	for i, c := range tb.Columns {
		if err := checkValue(c.Type, r.Values[i]); err != nil {
			errs = append(errs, &syncer.DecodeError{AccountID: accountID, Entity: tb.Entity, RecordID: r.ID, Field: c.Name, Err: err})
		}
	}
	return errors.Join(errs...)
}

func checkValue(t syncer.Type, v any) error {
	switch t {
	case syncer.String, syncer.JSON:
		if _, ok := v.(string); ok {
			return nil
		}
	case syncer.Decimal:
		if d, ok := v.(decimal.Decimal); ok {
			if !d.Equal(d.Truncate(8)) {
				return fmt.Errorf("%s has more than 8 decimal places", d)
			}
			if d.Abs().Cmp(maxDecimal) >= 0 {
				return fmt.Errorf("%s does not fit Decimal(18, 8)", d)
			}
			return nil
		}
	case syncer.DateTime:
		if tm, ok := v.(time.Time); ok {
			if s := tm.Unix(); s < 0 || s > maxUint32 {
				return fmt.Errorf("%s is outside DateTime's range 1970..2106", tm.UTC().Format(time.RFC3339))
			}
			return nil
		}
	case syncer.Bool:
		if _, ok := v.(uint8); ok {
			return nil
		}
	case syncer.Int:
		if _, ok := v.(int64); ok {
			return nil
		}
	case syncer.Strings:
		if _, ok := v.([]string); ok {
			return nil
		}
	}
	return fmt.Errorf("value of Go type %T for a %s column", v, ColumnType(t))
}

// insert sends rows in one batch, retrying the same rows when the outcome is
// unknown.
func (w *Writer) insert(ctx context.Context, tableName string, cols []string, rows [][]any) error {
	return w.db.insertRows(ctx, w.retry, tableName, cols, rows)
}

func (d *DB) insertRows(ctx context.Context, p retryPolicy, tableName string, cols []string, rows [][]any) error {
	return d.insertStream(ctx, p, tableName, cols, len(rows), func(i int, _ []any) []any { return rows[i] })
}

// insertStream sends n rows in one INSERT, retrying the whole insert when
// its outcome is unknown. row(i, buf) returns row i; it may build it in buf,
// which is reused for the next row once the driver has copied the values.
func (d *DB) insertStream(ctx context.Context, p retryPolicy, tableName string, cols []string, n int, row func(i int, buf []any) []any) error {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	query := "INSERT INTO " + quote(tableName) + " (" + strings.Join(quoted, ", ") + ")"
	err := p.do(ctx, d.log, "insert into "+tableName, func() error {
		return d.sendBatch(ctx, query, n, row)
	})
	if err != nil && errors.Is(err, ErrSchema) {
		return d.explainSchemaError(ctx, tableName, cols, err)
	}
	return err
}

func (d *DB) sendBatch(ctx context.Context, query string, n int, row func(i int, buf []any) []any) error {
	batch, err := d.conn.PrepareBatch(d.insertContext(ctx), query)
	if err != nil {
		return describe(err)
	}
	defer batch.Close()
	if err := appendBlocks(batch, batch.Flush, n, row); err != nil {
		return describe(err)
	}
	return describe(batch.Send())
}

// blockRows is how many rows an insert appends before it sends them to the
// server as one data block of the same INSERT. The driver's column buffers
// are reused from block to block, so the memory an insert holds stays
// bounded however many rows it carries; ClickHouse squashes the blocks of
// one INSERT (min_insert_block_size_rows) before writing parts, so the parts
// written are the same as for a single block. Each INSERT starts with empty
// column buffers that grow to one block (about 1.3 KB an action row): 500
// rows keep that to well under a megabyte per insert.
const blockRows = 500

// rowAppender is what appendBlocks fills: a driver batch, or a bare block in
// benchmarks.
type rowAppender interface {
	Append(v ...any) error
}

// appendBlocks appends n rows to b, calling flush after every blockRows rows
// (not after the last ones: Send sends them).
func appendBlocks(b rowAppender, flush func() error, n int, row func(i int, buf []any) []any) error {
	var buf []any
	for i := range n {
		buf = row(i, buf)
		if err := b.Append(buf...); err != nil {
			return err
		}
		if (i+1)%blockRows == 0 && i+1 < n {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// explainSchemaError names the columns the table lacks, or says the table
// is missing.
func (d *DB) explainSchemaError(ctx context.Context, tableName string, cols []string, err error) error {
	var se *schemaError
	if !errors.As(err, &se) {
		return err
	}
	se.table = tableName
	have, qerr := d.tableColumns(ctx, tableName)
	if qerr != nil {
		return err
	}
	if len(have) == 0 {
		se.msg = "table does not exist; " + se.msg
		return err
	}
	for _, c := range cols {
		if _, ok := have[c]; !ok {
			se.missing = append(se.missing, c)
		}
	}
	return err
}

// tableColumns returns the table's column types by name (empty if the
// table does not exist).
func (d *DB) tableColumns(ctx context.Context, tableName string) (map[string]string, error) {
	rows, err := d.query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", d.opts.Database, tableName)
	if err != nil {
		return nil, describe(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		out[name] = typ
	}
	return out, rows.Err()
}

// CatalogWriter refreshes catalog entities (company information, campaigns,
// media partners, promo codes), which are fetched whole on every run. Rows
// keep first_seen_at from their first load, carry last_seen_at of the latest
// refresh that returned them and is_present = 1; records the API stopped
// returning stay, with is_present = 0.
type CatalogWriter struct {
	w *Writer
	// groups gathers the refreshes of concurrent passes into one insert
	// per table.
	groups map[syncer.Entity]*groupCommit[[]any]

	mu       sync.Mutex
	prefetch map[catalogKey]*catalogSnapshot // see PrefetchCatalog
}

type catalogKey struct {
	accountID string
	entity    syncer.Entity
}

// catalogSnapshot is what writeCatalog reads first: the stored rows' state
// and the highest version.
type catalogSnapshot struct {
	states     map[string]catalogState
	maxVersion uint64
}

// NewCatalogWriter returns a CatalogWriter on db.
func NewCatalogWriter(db *DB) *CatalogWriter {
	c := &CatalogWriter{w: NewWriter(db), prefetch: map[catalogKey]*catalogSnapshot{}, groups: map[syncer.Entity]*groupCommit[[]any]{}}
	for _, e := range syncer.CatalogEntities {
		cols := insertColumns(syncer.Tables[e], true)
		c.groups[e] = newGroupCommit(groupParallel, func(ctx context.Context, rows [][]any) error {
			return c.w.insert(ctx, string(e), cols, rows)
		})
	}
	return c
}

var _ syncer.CatalogPrefetcher = (*CatalogWriter)(nil)

// PrefetchCatalog reads the stored state of each catalog entity of the
// accounts, one query per entity for all of them, for their next
// ReplaceCatalog (syncer.CatalogPrefetcher). The caller holds the accounts'
// locks, so nothing else writes these rows until it drops them.
func (c *CatalogWriter) PrefetchCatalog(ctx context.Context, accountIDs []string, entities []syncer.Entity) error {
	got := map[catalogKey]*catalogSnapshot{}
	for _, e := range entities {
		tb, err := table(e)
		if err != nil {
			return err
		}
		if !isCatalog(e) {
			return fmt.Errorf("%s is not a catalog entity", e)
		}
		for _, id := range accountIDs {
			got[catalogKey{id, e}] = &catalogSnapshot{states: map[string]catalogState{}}
		}
		if err := c.w.db.catalogStatesOf(ctx, tb, accountIDs, func(id, k string, st catalogState, version uint64) {
			snap := got[catalogKey{id, e}]
			snap.states[k] = st
			snap.maxVersion = max(snap.maxVersion, version)
		}); err != nil {
			return fmt.Errorf("read %s of %d accounts: %w", e, len(accountIDs), err)
		}
	}
	c.mu.Lock()
	maps.Copy(c.prefetch, got)
	c.mu.Unlock()
	return nil
}

// DropPrefetched forgets what PrefetchCatalog read for the account and its
// ReplaceCatalog did not use.
func (c *CatalogWriter) DropPrefetched(accountID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.prefetch {
		if k.accountID == accountID {
			delete(c.prefetch, k)
		}
	}
}

// take returns, and forgets, what was prefetched for the account's entity.
func (c *CatalogWriter) take(accountID string, e syncer.Entity) *catalogSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := catalogKey{accountID, e}
	snap := c.prefetch[k]
	delete(c.prefetch, k)
	return snap
}

// Write upserts recs (seen now) without marking missing records absent.
func (c *CatalogWriter) Write(ctx context.Context, accountID string, e syncer.Entity, recs []syncer.Record) error {
	return c.w.Write(ctx, accountID, e, recs)
}

// ReplaceCatalog records that recs is the whole of the account's entity as
// of seenAt: they are upserted with is_present = 1 and last_seen_at = seenAt
// (first_seen_at kept for known ones), and rows present before but missing
// from recs are re-inserted unchanged except is_present = 0. An empty recs
// marks every row absent. All of it goes in one insert.
func (c *CatalogWriter) ReplaceCatalog(ctx context.Context, accountID string, e syncer.Entity, recs []syncer.Record, seenAt time.Time) error {
	tb, err := table(e)
	if err != nil {
		return err
	}
	if !isCatalog(e) {
		return fmt.Errorf("%s is not a catalog entity; use Write", e)
	}
	return c.w.writeCatalog(ctx, accountID, tb, 0, seenAt, recs, true, c.take(accountID, e), c.groups[e])
}

type catalogState struct {
	first   time.Time
	present bool
}

// writeCatalog upserts recs of a catalog entity. version 0 means: take one
// above every version the account's rows have. snap, when not nil, is the
// stored state read ahead (PrefetchCatalog). group, when not nil, sends
// rows that fit one insert together with other callers' (a group commit).
func (w *Writer) writeCatalog(ctx context.Context, accountID string, tb *syncer.Table, version uint64, seenAt time.Time, recs []syncer.Record, markMissing bool, snap *catalogSnapshot, group *groupCommit[[]any]) error {
	rows, err := w.replacementRows(ctx, accountID, tb, version, seenAt, recs, markMissing, snap)
	if err != nil || len(rows) == 0 {
		return err
	}
	e := tb.Entity
	if group != nil && len(rows) <= max(w.MaxBatchRows, 1) {
		if err := group.do(ctx, rows...); err != nil {
			return fmt.Errorf("account %s: write %d %s: %w", accountID, len(rows), e, err)
		}
	} else {
		cols := insertColumns(tb, true)
		for chunk := range slices.Chunk(rows, max(w.MaxBatchRows, 1)) {
			if err := w.insert(ctx, string(e), cols, chunk); err != nil {
				return fmt.Errorf("account %s: write %d %s: %w", accountID, len(chunk), e, err)
			}
		}
	}
	w.db.log.Debug("catalog written", zap.String("account_id", accountID), zap.String("entity", string(e)),
		zap.Int("rows", len(rows)), zap.Bool("replace", markMissing))
	return nil
}

// replacementRows builds the rows writeCatalog inserts for the account's recs:
// validated, one per key (the last wins), and with markMissing the stored
// rows no longer returned, marked absent.
func (w *Writer) replacementRows(ctx context.Context, accountID string, tb *syncer.Table, version uint64, seenAt time.Time, recs []syncer.Record, markMissing bool, snap *catalogSnapshot) ([][]any, error) {
	if err := validate(accountID, tb, recs); err != nil {
		return nil, err
	}
	e := tb.Entity
	if snap == nil {
		states, maxVersion, err := w.db.catalogStates(ctx, tb, accountID)
		if err != nil {
			return nil, fmt.Errorf("account %s: read %s: %w", accountID, e, err)
		}
		snap = &catalogSnapshot{states: states, maxVersion: maxVersion}
	}
	states, maxVersion := snap.states, snap.maxVersion
	if version == 0 {
		version = w.db.versions.After(maxVersion)
	}
	seen := toDateTime(seenAt)

	// Last record wins when the API repeated one.
	latest := make(map[string]int, len(recs))
	for i, r := range recs {
		latest[recordKey(tb, r)] = i
	}
	rows := make([][]any, 0, len(latest))
	for i, r := range recs {
		k := recordKey(tb, r)
		if latest[k] != i {
			continue
		}
		first := seen
		if s, ok := states[k]; ok && !s.first.IsZero() && s.first.Unix() != 0 {
			first = s.first
		}
		rows = append(rows, entityRow(accountID, r, version, seen, first, seen, uint8(1)))
	}
	if markMissing {
		var gone []string
		for k, s := range states {
			if _, ok := latest[k]; !ok && s.present {
				gone = append(gone, k)
			}
		}
		if len(gone) > 0 {
			old, err := w.db.catalogRows(ctx, tb, accountID, gone)
			if err != nil {
				return nil, fmt.Errorf("account %s: read %s rows no longer returned: %w", accountID, e, err)
			}
			for _, row := range old {
				row[len(row)-1] = uint8(0)       // is_present
				row[len(tb.Columns)+2] = version // version (after account_id, columns, raw)
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

func keyColumn(tb *syncer.Table) string {
	if tb.Key < 0 {
		return ""
	}
	return tb.Columns[tb.Key].Name
}

func recordKey(tb *syncer.Table, r syncer.Record) string {
	if tb.Key < 0 {
		return ""
	}
	if r.ID != "" {
		return r.ID
	}
	if s, ok := r.Values[tb.Key].(string); ok {
		return s
	}
	return ""
}

// catalogStates reads, with FINAL, each row's first_seen_at and is_present
// for the account, and the highest version.
func (d *DB) catalogStates(ctx context.Context, tb *syncer.Table, accountID string) (map[string]catalogState, uint64, error) {
	keyExpr := "''"
	if k := keyColumn(tb); k != "" {
		keyExpr = quote(k)
	}
	q := fmt.Sprintf("SELECT %s, first_seen_at, is_present, version FROM %s FINAL WHERE account_id = ?", keyExpr, quote(string(tb.Entity)))
	rows, err := d.query(ctx, q, accountID)
	if err != nil {
		return nil, 0, describeTable(err, string(tb.Entity))
	}
	defer rows.Close()
	out := map[string]catalogState{}
	var maxVersion uint64
	for rows.Next() {
		var (
			k       string
			first   time.Time
			present uint8
			version uint64
		)
		if err := rows.Scan(&k, &first, &present, &version); err != nil {
			return nil, 0, err
		}
		out[k] = catalogState{first: first, present: present == 1}
		maxVersion = max(maxVersion, version)
	}
	return out, maxVersion, rows.Err()
}

// catalogStatesOf is catalogStates for several accounts in one query: each
// row's account, key, state and version goes to row.
func (d *DB) catalogStatesOf(ctx context.Context, tb *syncer.Table, accountIDs []string, row func(accountID, key string, st catalogState, version uint64)) error {
	keyExpr := "''"
	if k := keyColumn(tb); k != "" {
		keyExpr = quote(k)
	}
	q := fmt.Sprintf("SELECT account_id, %s, first_seen_at, is_present, version FROM %s FINAL WHERE account_id IN %s", keyExpr, quote(string(tb.Entity)), inList(accountIDs))
	rows, err := d.query(ctx, q)
	if err != nil {
		return describeTable(err, string(tb.Entity))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, k   string
			first   time.Time
			present uint8
			version uint64
		)
		if err := rows.Scan(&id, &k, &first, &present, &version); err != nil {
			return err
		}
		row(id, k, catalogState{first: first, present: present == 1}, version)
	}
	return rows.Err()
}

// catalogRows reads, with FINAL, the full rows of the given keys in insert
// column order. Non-key filters are applied here, not in SQL, so no server
// version can evaluate them before FINAL merges the row versions.
func (d *DB) catalogRows(ctx context.Context, tb *syncer.Table, accountID string, keys []string) ([][]any, error) {
	cols := insertColumns(tb, true)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	q := fmt.Sprintf("SELECT %s FROM %s FINAL WHERE account_id = ?", strings.Join(quoted, ", "), quote(string(tb.Entity)))
	rows, err := d.query(ctx, q, accountID)
	if err != nil {
		return nil, describeTable(err, string(tb.Entity))
	}
	defer rows.Close()
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	var out [][]any
	for rows.Next() {
		ptrs := scanTargets(rows.ColumnTypes())
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = deref(p)
		}
		k := ""
		if tb.Key >= 0 {
			k, _ = row[1+tb.Key].(string)
		}
		if want[k] {
			out = append(out, row)
		}
	}
	return out, rows.Err()
}

// scanTargets allocates a pointer per column of the Go type the driver
// scans it into.
func scanTargets(types []driver.ColumnType) []any {
	out := make([]any, len(types))
	for i, t := range types {
		switch db := t.DatabaseTypeName(); {
		case db == "String":
			out[i] = new(string)
		case strings.HasPrefix(db, "Decimal"):
			out[i] = new(decimal.Decimal)
		case strings.HasPrefix(db, "DateTime"):
			out[i] = new(time.Time)
		case db == "UInt8":
			out[i] = new(uint8)
		case db == "UInt64":
			out[i] = new(uint64)
		case db == "Int64":
			out[i] = new(int64)
		case db == "Array(String)":
			out[i] = new([]string)
		default:
			out[i] = new(string)
		}
	}
	return out
}

func deref(p any) any {
	switch v := p.(type) {
	case *string:
		return *v
	case *decimal.Decimal:
		return *v
	case *time.Time:
		return *v
	case *uint8:
		return *v
	case *uint64:
		return *v
	case *int64:
		return *v
	case *[]string:
		if *v == nil {
			return []string{}
		}
		return *v
	}
	return p
}

var _ syncer.BatchWriter = (*Writer)(nil)

// WriteBatch writes the accounts' rows of e in one insert, with one fresh
// version (a staged commit of many passes: each account's versions were
// raised while its lock was held, see RaiseVersionsOf). An account whose
// rows do not validate gets its error and is left out; the insert's error
// goes to every account it carried.
func (w *Writer) WriteBatch(ctx context.Context, e syncer.Entity, batch []syncer.AccountRecords) []error {
	errs := make([]error, len(batch))
	tb, err := table(e)
	if err == nil && isCatalog(e) {
		err = fmt.Errorf("%s is a catalog entity; use ReplaceCatalogs", e)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	type row struct {
		item int // in batch
		rec  *syncer.Record
	}
	var rows []row
	for i, b := range batch {
		if errs[i] = validate(b.AccountID, tb, b.Records); errs[i] != nil {
			continue
		}
		for j := range b.Records {
			rows = append(rows, row{i, &b.Records[j]})
		}
	}
	if len(rows) == 0 {
		return errs
	}
	version := w.db.versions.Next()
	synced := toDateTime(w.db.now())
	cols := insertColumns(tb, false)
	for start := 0; start < len(rows); start += max(w.MaxBatchRows, 1) {
		chunk := rows[start:min(start+max(w.MaxBatchRows, 1), len(rows))]
		fill := func(i int, buf []any) []any {
			return appendEntityRow(buf[:0], batch[chunk[i].item].AccountID, *chunk[i].rec, version, synced)
		}
		if err := w.db.insertStream(ctx, w.retry, string(e), cols, len(chunk), fill); err != nil {
			failChunk(errs, rows[start:], func(r row) int { return r.item },
				fmt.Errorf("write %d %s of %d accounts: %w", len(rows)-start, e, len(batch), err))
			return errs
		}
	}
	return errs
}

// failChunk gives err to every item with a row in rest (the rows of the
// insert that failed and of those not sent): the items stored whole by the
// earlier inserts keep their nil error.
func failChunk[R any](errs []error, rest []R, item func(R) int, err error) {
	for _, r := range rest {
		if i := item(r); errs[i] == nil {
			errs[i] = err
		}
	}
}

var _ syncer.CatalogBatchWriter = (*CatalogWriter)(nil)

// ReplaceCatalogs is ReplaceCatalog for several accounts, in one insert: an
// account whose rows cannot be built (a bad value, the stored state not
// readable) gets its error and is left out; the insert's error goes to
// every account it carried.
func (c *CatalogWriter) ReplaceCatalogs(ctx context.Context, e syncer.Entity, batch []syncer.CatalogRefresh) []error {
	errs := make([]error, len(batch))
	tb, err := table(e)
	if err == nil && !isCatalog(e) {
		err = fmt.Errorf("%s is not a catalog entity; use WriteBatch", e)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var rows [][]any
	var owner []int // the batch item of each row
	for i, b := range batch {
		r, err := c.w.replacementRows(ctx, b.AccountID, tb, 0, b.SeenAt, b.Records, true, c.take(b.AccountID, e))
		if errs[i] = err; err != nil {
			continue
		}
		rows = append(rows, r...)
		for range r {
			owner = append(owner, i)
		}
	}
	cols := insertColumns(tb, true)
	for start := 0; start < len(rows); start += max(c.w.MaxBatchRows, 1) {
		end := min(start+max(c.w.MaxBatchRows, 1), len(rows))
		if err := c.w.insert(ctx, string(e), cols, rows[start:end]); err != nil {
			failChunk(errs, owner[start:], func(i int) int { return i },
				fmt.Errorf("write %d %s of %d accounts: %w", len(rows)-start, e, len(batch), err))
			return errs
		}
	}
	return errs
}
