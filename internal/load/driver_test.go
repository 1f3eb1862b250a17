package load_test

import (
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
)

// TestDriverPin pins what the schema relies on in clickhouse-go against the
// server CI runs (ClickHouse 18.16): every column type the schema uses goes in
// through a batch with an explicit column list and comes back unchanged.
// Upstream does not test old servers, so a driver upgrade that breaks this
// fails here first.
func TestDriverPin(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	err := db.Exec(ctx, `CREATE TABLE pin
(
    k UInt32,
    s String,
    d Decimal(18, 8),
    t DateTime('UTC'),
    b UInt8,
    i Int64,
    a Array(String),
    v UInt64
)
ENGINE = ReplacingMergeTree(v)
ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		k uint32
		s string
		d string
		t time.Time
		b uint8
		i int64
		a []string
		v uint64
	}
	rows := []row{
		{1, "", "0.00", time.Unix(0, 0).UTC(), 0, 0, []string{}, 1},
		{2, "plain", "-3.15", time.Date(2024, 1, 15, 10, 20, 30, 0, time.UTC), 1, -1, []string{"a"}, 2},
		{3, `quote ' backslash \ tab	nul` + "\x00" + ` ünïcødé 😀`, "32252.1922", time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), 255, 9223372036854775807, []string{"", "b,c", `"x"`, "'y'"}, 18446744073709551615},
		{4, `{"json":[1,2]}`, "12345678.12345678", time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC), 1, -9223372036854775808, []string{"ü"}, 4},
		{5, "neg", "-9999999999.99999999", time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC), 0, 42, []string{}, 5},
	}
	batch, err := db.Conn().PrepareBatch(ctx, "INSERT INTO pin (k, s, d, t, b, i, a, v)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := batch.Append(r.k, r.s, decimal.RequireFromString(r.d), r.t, r.b, r.i, r.a, r.v); err != nil {
			t.Fatalf("append %d: %v", r.k, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	got, err := db.Query(ctx, "SELECT k, s, d, t, b, i, a, v FROM pin FINAL ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	n := 0
	for got.Next() {
		var g row
		var d decimal.Decimal
		if err := got.Scan(&g.k, &g.s, &d, &g.t, &g.b, &g.i, &g.a, &g.v); err != nil {
			t.Fatal(err)
		}
		w := rows[n]
		n++
		if g.k != w.k || g.s != w.s || g.b != w.b || g.i != w.i || g.v != w.v {
			t.Errorf("row %d: got %+v, want %+v", w.k, g, w)
		}
		if !d.Equal(decimal.RequireFromString(w.d)) {
			t.Errorf("row %d: decimal %s, want %s", w.k, d, w.d)
		}
		if !g.t.Equal(w.t) || g.t.Location() != time.UTC {
			t.Errorf("row %d: time %s (%s), want %s UTC", w.k, g.t, g.t.Location(), w.t)
		}
		if !slices.Equal(g.a, w.a) || g.a == nil {
			t.Errorf("row %d: array %#v, want %#v", w.k, g.a, w.a)
		}
	}
	if err := got.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(rows) {
		t.Fatalf("read %d rows, want %d", n, len(rows))
	}

	// Client-side binding escapes strings (the stores bind ids this way).
	var k uint32
	if err := db.QueryRow(ctx, "SELECT k FROM pin WHERE s = ?", rows[2].s).Scan(&k); err != nil || k != 3 {
		t.Fatalf("bound string lookup: k=%d err=%v", k, err)
	}
	// Decimal text comes back exactly.
	var text string
	if err := db.QueryRow(ctx, "SELECT toString(d) FROM pin WHERE k = 4").Scan(&text); err != nil || text != "12345678.12345678" {
		t.Fatalf("decimal as text: %q %v", text, err)
	}
}
