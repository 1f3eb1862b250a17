package load_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// record builds a record of the entity with a value of the right Go type in
// every column; variant changes every value.
func record(e syncer.Entity, id string, at time.Time, variant int) syncer.Record {
	tb := syncer.Tables[e]
	vals := make([]any, len(tb.Columns))
	for i, c := range tb.Columns {
		switch c.Type {
		case syncer.String:
			vals[i] = fmt.Sprintf("%s-%s-%d", c.Name, id, variant)
		case syncer.JSON:
			vals[i] = fmt.Sprintf(`[{"v":%d}]`, variant)
		case syncer.Decimal:
			vals[i] = decimal.RequireFromString(fmt.Sprintf("%d.15", variant)).Neg()
		case syncer.DateTime:
			vals[i] = at.Add(time.Duration(variant) * time.Hour)
		case syncer.Bool:
			vals[i] = uint8(variant % 2)
		case syncer.Int:
			vals[i] = int64(variant)
		case syncer.Strings:
			vals[i] = []string{}
			if variant%2 == 1 {
				vals[i] = []string{"a", id}
			}
		}
	}
	if tb.Key >= 0 {
		vals[tb.Key] = id
	}
	if tb.Partition >= 0 {
		vals[tb.Partition] = at
	}
	return syncer.Record{ID: id, Values: vals, Raw: fmt.Sprintf(`{"Id":%q,"v":%d}`, id, variant)}
}

func records(e syncer.Entity, n int, at time.Time, variant int) []syncer.Record {
	out := make([]syncer.Record, n)
	for i := range out {
		// Spread over several months so the partitioned tables get several parts.
		out[i] = record(e, fmt.Sprintf("A%04d", i), at.AddDate(0, i%3, 0), variant)
	}
	return out
}

// readValues reads an entity row's typed columns, raw and version with FINAL.
func readValues(t *testing.T, db *load.DB, e syncer.Entity, accountID, id string) ([]any, string, uint64) {
	t.Helper()
	tb := syncer.Tables[e]
	var cols []string
	for _, c := range tb.Columns {
		cols = append(cols, "`"+c.Name+"`")
	}
	q := "SELECT " + strings.Join(cols, ", ") + ", raw, version FROM " + string(e) + " FINAL WHERE account_id = ?"
	args := []any{accountID}
	if tb.Key >= 0 {
		q += " AND " + tb.Columns[tb.Key].Name + " = ?"
		args = append(args, id)
	}
	ptrs := make([]any, len(tb.Columns))
	for i, c := range tb.Columns {
		switch c.Type {
		case syncer.String, syncer.JSON:
			ptrs[i] = new(string)
		case syncer.Decimal:
			ptrs[i] = new(decimal.Decimal)
		case syncer.DateTime:
			ptrs[i] = new(time.Time)
		case syncer.Bool:
			ptrs[i] = new(uint8)
		case syncer.Int:
			ptrs[i] = new(int64)
		case syncer.Strings:
			ptrs[i] = new([]string)
		}
	}
	var raw string
	var version uint64
	if err := db.QueryRow(t.Context(), q, args...).Scan(append(ptrs, &raw, &version)...); err != nil {
		t.Fatalf("read %s %s: %v", e, id, err)
	}
	vals := make([]any, len(ptrs))
	for i, p := range ptrs {
		switch p := p.(type) {
		case *string:
			vals[i] = *p
		case *decimal.Decimal:
			vals[i] = *p
		case *time.Time:
			vals[i] = *p
		case *uint8:
			vals[i] = *p
		case *int64:
			vals[i] = *p
		case *[]string:
			vals[i] = *p
		}
	}
	return vals, raw, version
}

func sameValues(t *testing.T, e syncer.Entity, got, want []any) {
	t.Helper()
	for i, c := range syncer.Tables[e].Columns {
		g, w := got[i], want[i]
		var ok bool
		switch w := w.(type) {
		case decimal.Decimal:
			ok = w.Equal(g.(decimal.Decimal))
		case time.Time:
			ok = w.Equal(g.(time.Time))
		case []string:
			ok = slices.Equal(w, g.([]string))
		default:
			ok = g == w
		}
		if !ok {
			t.Errorf("%s.%s = %#v, want %#v", e, c.Name, g, w)
		}
	}
}

var t0 = time.Date(2024, 3, 10, 12, 30, 45, 0, time.UTC)

func count(t *testing.T, db *load.DB, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestWriterIdempotentAndReplacing(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	w := load.NewWriter(db)
	for _, e := range syncer.ActivityEntities {
		t.Run(string(e), func(t *testing.T) {
			recs := records(e, 50, t0, 1)
			if err := w.Write(ctx, "acc1", e, recs); err != nil {
				t.Fatal(err)
			}
			if n, err := db.CountFinal(ctx, string(e), "acc1"); err != nil || n != 50 {
				t.Fatalf("CountFinal = %d, %v; want 50", n, err)
			}
			got, raw, _ := readValues(t, db, e, "acc1", "A0007")
			sameValues(t, e, got, recs[7].Values)
			if raw != recs[7].Raw {
				t.Errorf("raw %q, want %q", raw, recs[7].Raw)
			}

			// The same records again (a retry after an unknown outcome, or an
			// overlapping window): readers see no duplicates.
			if err := w.Write(ctx, "acc1", e, recs); err != nil {
				t.Fatal(err)
			}
			if n, _ := db.CountFinal(ctx, string(e), "acc1"); n != 50 {
				t.Fatalf("after rewrite CountFinal = %d, want 50", n)
			}

			// Exactly the same batch with the same version: invisible.
			if err := w.WriteVersioned(ctx, "acc1", e, 5, t0, recs[:10]); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteVersioned(ctx, "acc1", e, 5, t0, recs[:10]); err != nil {
				t.Fatal(err)
			}
			if n, _ := db.CountFinal(ctx, string(e), "acc1"); n != 50 {
				t.Fatalf("after same-version retry CountFinal = %d, want 50", n)
			}

			// A re-load with a newer version replaces values.
			newer := records(e, 50, t0, 2)
			if err := w.Write(ctx, "acc1", e, newer[:20]); err != nil {
				t.Fatal(err)
			}
			if n, _ := db.CountFinal(ctx, string(e), "acc1"); n != 50 {
				t.Fatalf("after re-load CountFinal = %d, want 50", n)
			}
			got, _, v1 := readValues(t, db, e, "acc1", "A0007")
			sameValues(t, e, got, newer[7].Values)
			got, _, _ = readValues(t, db, e, "acc1", "A0030")
			sameValues(t, e, got, recs[30].Values)

			// An older version does not win.
			if err := w.WriteVersioned(ctx, "acc1", e, 1, t0, recs[7:8]); err != nil {
				t.Fatal(err)
			}
			got, _, v2 := readValues(t, db, e, "acc1", "A0007")
			sameValues(t, e, got, newer[7].Values)
			if v1 != v2 {
				t.Errorf("version moved from %d to %d", v1, v2)
			}

			// Another account is separate.
			if n, _ := db.CountFinal(ctx, string(e), "acc2"); n != 0 {
				t.Fatalf("acc2 has %d rows", n)
			}
		})
	}
}

func TestWriterBatchesAndSyncedAt(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	w := load.NewWriter(db)
	w.MaxBatchRows = 7
	synced := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	if err := w.WriteVersioned(ctx, "acc", syncer.Actions, 42, synced, records(syncer.Actions, 30, t0, 1)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count() FROM actions WHERE version = 42 AND synced_at = toDateTime('2025-06-01 08:00:00', 'UTC')"); n != 30 {
		t.Fatalf("%d rows with version 42 and synced_at, want 30", n)
	}
	if n := count(t, db, "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'actions' AND active"); n < 5 {
		t.Errorf("%d parts; want at least 5 (30 rows in batches of 7)", n)
	}
	if err := w.Write(ctx, "acc", syncer.Actions, nil); err != nil {
		t.Fatalf("empty write: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	w := load.NewWriter(db)

	t.Run("bad value", func(t *testing.T) {
		r := record(syncer.Actions, "X1", t0, 1)
		r.Values[syncer.Tables[syncer.Actions].ColumnIndex("payout")] = decimal.RequireFromString("1.123456789")
		r.Values[syncer.Tables[syncer.Actions].ColumnIndex("note")] = 17
		err := w.Write(ctx, "acc", syncer.Actions, []syncer.Record{r})
		if !errors.Is(err, load.ErrBadValue) || !strings.Contains(err.Error(), "payout") || !strings.Contains(err.Error(), "note") || !strings.Contains(err.Error(), "X1") {
			t.Fatalf("err = %v; want ErrBadValue naming X1, payout and note", err)
		}
		var de *syncer.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v; want a *syncer.DecodeError inside", err)
		}
	})
	t.Run("missing column", func(t *testing.T) {
		if err := db.Exec(ctx, "ALTER TABLE action_updates DROP COLUMN sku"); err != nil {
			t.Fatal(err)
		}
		err := w.Write(ctx, "acc", syncer.ActionUpdates, records(syncer.ActionUpdates, 2, t0, 1))
		if !errors.Is(err, load.ErrSchema) || !strings.Contains(err.Error(), "action_updates") || !strings.Contains(err.Error(), "[sku]") {
			t.Fatalf("err = %v; want ErrSchema naming action_updates and sku", err)
		}
		t.Log(err)
	})
	t.Run("missing table", func(t *testing.T) {
		if err := db.Exec(ctx, "DROP TABLE promo_codes"); err != nil {
			t.Fatal(err)
		}
		err := w.Write(ctx, "acc", syncer.PromoCodes, records(syncer.PromoCodes, 1, t0, 1))
		if !errors.Is(err, load.ErrSchema) || !strings.Contains(err.Error(), "promo_codes") {
			t.Fatalf("err = %v; want ErrSchema naming promo_codes", err)
		}
		t.Log(err)
	})
	t.Run("unknown entity", func(t *testing.T) {
		if err := w.Write(ctx, "acc", "bogus", records(syncer.Actions, 1, t0, 1)); err == nil {
			t.Fatal("want an error")
		}
	})
}
