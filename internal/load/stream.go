package load

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var _ syncer.StreamWriter = (*Writer)(nil)

// OpenInsert starts one INSERT of e's rows of the account (an activity
// entity: actions or action updates) with a fresh version and synced_at =
// now. Rows go to the server in blocks of blockRows as they are added; the
// insert holds one block, whatever its size. The connection stays with the
// insert until Commit or Abort.
func (w *Writer) OpenInsert(ctx context.Context, accountID string, e syncer.Entity) (syncer.Insert, error) {
	tb, err := table(e)
	if err != nil {
		return nil, err
	}
	if isCatalog(e) {
		return nil, fmt.Errorf("%s is a catalog entity; use Write or ReplaceCatalog", e)
	}
	cols := insertColumns(tb, false)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	query := "INSERT INTO " + quote(string(e)) + " (" + strings.Join(quoted, ", ") + ")"
	batch, err := w.db.conn.PrepareBatch(w.db.insertContext(ctx), query)
	if err != nil {
		err = describe(err)
		if errors.Is(err, ErrSchema) {
			err = w.db.explainSchemaError(ctx, string(e), cols, err)
		}
		return nil, streamError(accountID, e, 0, err)
	}
	return &insertStream{ctx: ctx, db: w.db, batch: batch, accountID: accountID, tb: tb, cols: cols,
		version: w.db.versions.Next(), synced: toDateTime(w.db.now())}, nil
}

// insertStream is a syncer.Insert on one driver batch.
type insertStream struct {
	ctx       context.Context
	db        *DB
	batch     driver.Batch
	accountID string
	tb        *syncer.Table
	cols      []string
	version   uint64
	synced    time.Time
	buf       []any
	rows      int
	done      bool
}

func (s *insertStream) Add(r syncer.Record) error {
	if s.done {
		return fmt.Errorf("insert into %s already ended", s.tb.Entity)
	}
	if err := validateRecord(s.accountID, s.tb, r); err != nil {
		s.Abort()
		return fmt.Errorf("%w: %w", ErrBadValue, err)
	}
	s.buf = appendEntityRow(s.buf[:0], s.accountID, r, s.version, s.synced)
	if err := s.batch.Append(s.buf...); err != nil {
		return s.fail(err)
	}
	s.rows++
	if s.rows%blockRows == 0 {
		if err := s.batch.Flush(); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

func (s *insertStream) Rows() int { return s.rows }

func (s *insertStream) Commit() error {
	if s.done {
		return fmt.Errorf("insert into %s already ended", s.tb.Entity)
	}
	s.done = true
	if err := s.batch.Send(); err != nil {
		return s.fail(err)
	}
	return nil
}

// Abort drops the connection, so the server discards the rows it has not
// written yet.
func (s *insertStream) Abort() {
	if s.batch != nil && !s.batch.IsSent() {
		_ = s.batch.Abort()
	}
	s.done = true
}

func (s *insertStream) fail(err error) error {
	s.Abort()
	err = describe(err)
	if errors.Is(err, ErrSchema) {
		err = s.db.explainSchemaError(s.ctx, string(s.tb.Entity), s.cols, err)
	}
	return streamError(s.accountID, s.tb.Entity, s.rows, err)
}

// streamError names the insert and marks an error that may pass with
// syncer.ErrWriteInterrupted.
func streamError(accountID string, e syncer.Entity, rows int, err error) error {
	if retry, reason := retryDecision(err); retry {
		return fmt.Errorf("account %s: insert of %d %s: %w (%s): %w", accountID, rows, e, syncer.ErrWriteInterrupted, reason, err)
	}
	return fmt.Errorf("account %s: insert of %d %s: %w", accountID, rows, e, err)
}

var _ syncer.PartMerger = (*Writer)(nil)

// mergeTimeout bounds one month's OPTIMIZE: merging is for readers, and a
// server that takes longer leaves the rest to its background merges.
const mergeTimeout = 2 * time.Minute

// DefaultMergeParts is how many active parts a table may hold before
// MergeMonths merges. A FINAL read on 18.16 opens every part of the table at
// once, with a read buffer (max_read_buffer_size, 1 MiB) per column of each:
// 60 parts of the ~50 columns of actions come to about 3 GiB, under the 4 GB
// max_memory_usage of the project's test server and the 10 GB default.
const DefaultMergeParts = 60

// MergeMonths merges the active parts of each given partition month of e's
// table that has more than one into one (OPTIMIZE … PARTITION … FINAL,
// which on a plain MergeTree returns once the merge is done), when the table
// holds more than MergeParts active parts; under it, ClickHouse's background
// merges are left to do it. The merge rewrites the whole month, every
// account's rows of it. On a replicated table the merge is only queued
// (replication_alter_partitions_sync = 0): waiting for it would wait on
// every replica, and a dead one holds the OPTIMIZE indefinitely. One
// month's merge gives up after mergeTimeout.
func (w *Writer) MergeMonths(ctx context.Context, e syncer.Entity, months []time.Time) (int, error) {
	if _, err := table(e); err != nil {
		return 0, err
	}
	if len(months) == 0 {
		return 0, nil
	}
	var total uint64
	if err := w.db.queryRow(ctx, "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active",
		[]any{w.db.opts.Database, string(e)}, &total); err != nil {
		return 0, describeTable(err, string(e))
	}
	if total <= uint64(max(w.MergeParts, 0)) {
		return 0, nil
	}
	ids := make([]string, len(months))
	for i, m := range months {
		ids[i] = "'" + m.UTC().Format("200601") + "'" // digits only
	}
	rows, err := w.db.query(ctx, "SELECT partition_id FROM system.parts WHERE database = ? AND table = ? AND active AND partition_id IN ("+
		strings.Join(ids, ", ")+") GROUP BY partition_id HAVING count() > 1 ORDER BY partition_id", w.db.opts.Database, string(e))
	if err != nil {
		return 0, describeTable(err, string(e))
	}
	var merge []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		merge = append(merge, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for i, id := range merge {
		if !partitionID.MatchString(id) {
			return 0, fmt.Errorf("unexpected partition id %q of %s", id, e)
		}
		if err := w.mergeMonth(ctx, e, id); err != nil {
			return i, fmt.Errorf("merging %s partition %s: %w", e, id, err)
		}
	}
	return len(merge), nil
}

func (w *Writer) mergeMonth(ctx context.Context, e syncer.Entity, id string) error {
	ctx, cancel := context.WithTimeout(ctx, mergeTimeout)
	defer cancel()
	if w.db.layout.Cluster != "" {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"replication_alter_partitions_sync": 0}))
	}
	if err := w.db.conn.Exec(ctx, "OPTIMIZE TABLE "+quote(string(e))+" PARTITION ID '"+id+"' FINAL"); err != nil {
		return describeTable(err, string(e))
	}
	return nil
}

var partitionID = regexp.MustCompile(`^[0-9]{6}$`)
