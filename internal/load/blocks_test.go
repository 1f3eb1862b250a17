package load_test

import (
	"errors"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// A Write larger than one data block is sent as several blocks of one
// INSERT (so the driver's buffers stay small); ClickHouse must still write
// it as one part per partition month, as a single block would be, and every
// row must arrive.
func TestWriteInBlocksWritesOnePartPerMonth(t *testing.T) {
	db := chtest.New(t)
	w := load.NewWriter(db)
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	recs := records(syncer.Actions, 7001, at, 1) // three months, several blocks each
	if err := w.Write(t.Context(), "acct", syncer.Actions, recs); err != nil {
		t.Fatal(err)
	}
	var parts, rows uint64
	if err := db.QueryRow(t.Context(), "SELECT count(), sum(rows) FROM system.parts WHERE database = ? AND table = 'actions' AND active",
		db.Database()).Scan(&parts, &rows); err != nil {
		t.Fatal(err)
	}
	if parts != 3 || rows != 7001 {
		t.Errorf("%d active parts holding %d rows, want 3 parts (one per month) holding 7001", parts, rows)
	}
	if n, err := db.CountFinal(t.Context(), "actions", "acct"); err != nil || n != 7001 {
		t.Errorf("CountFinal = %d, %v; want 7001", n, err)
	}
}

// A streamed insert (OpenInsert) sends its rows in blocks as they are
// added and writes one part per partition month on Commit, all rows with
// one version; an aborted one leaves nothing; a bad value is named and the
// insert is dropped.
func TestOpenInsertStreamsOneInsert(t *testing.T) {
	db := chtest.New(t)
	w := load.NewWriter(db)
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	ctx := t.Context()

	ins, err := w.OpenInsert(ctx, "acct", syncer.Actions)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records(syncer.Actions, 2501, at, 1) { // three months, several blocks
		if err := ins.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if ins.Rows() != 2501 {
		t.Errorf("Rows() = %d", ins.Rows())
	}
	if err := ins.Commit(); err != nil {
		t.Fatal(err)
	}
	var parts, rows, versions uint64
	if err := db.QueryRow(ctx, "SELECT count(), sum(rows) FROM system.parts WHERE database = ? AND table = 'actions' AND active",
		db.Database()).Scan(&parts, &rows); err != nil {
		t.Fatal(err)
	}
	if parts != 3 || rows != 2501 {
		t.Errorf("%d active parts holding %d rows, want 3 parts (one per month) holding 2501", parts, rows)
	}
	if err := db.QueryRow(ctx, "SELECT uniqExact(version) FROM actions").Scan(&versions); err != nil || versions != 1 {
		t.Errorf("%d versions (%v), want 1", versions, err)
	}

	// aborted after blocks were sent: 18.16 may keep some of them (it
	// writes what it received when the connection closes); the same rows
	// read again and sent by a new insert replace them, no duplicates
	again := records(syncer.Actions, 1200, at, 2)
	ins, err = w.OpenInsert(ctx, "other", syncer.Actions)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if err := ins.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	ins.Abort()
	if err := ins.Commit(); err == nil {
		t.Error("Commit after Abort: no error")
	}
	n, err := db.CountFinal(ctx, "actions", "other")
	if err != nil || n > 1200 {
		t.Errorf("after Abort: CountFinal = %d, %v; want at most 1200", n, err)
	}
	t.Logf("rows kept by the server from the aborted insert: %d of 1200", n)
	ins, err = w.OpenInsert(ctx, "other", syncer.Actions)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if err := ins.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ins.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountFinal(ctx, "actions", "other"); err != nil || n != 1200 {
		t.Errorf("after the insert again: CountFinal = %d, %v; want 1200", n, err)
	}

	// a value that does not fit
	ins, err = w.OpenInsert(ctx, "bad", syncer.Actions)
	if err != nil {
		t.Fatal(err)
	}
	bad := records(syncer.Actions, 1, at, 3)[0]
	bad.Values = bad.Values[:3]
	if err := ins.Add(bad); !errors.Is(err, load.ErrBadValue) {
		t.Errorf("Add(bad) = %v, want ErrBadValue", err)
	}
	if _, err := w.OpenInsert(ctx, "acct", syncer.Campaigns); err == nil {
		t.Error("OpenInsert of a catalog entity: no error")
	}
}
