package load_test

import (
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
