package load_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestMigrateTwiceIsNoOp(t *testing.T) {
	db := chtest.Open(t)
	ctx := t.Context()
	if ok, err := db.SchemaCurrent(ctx); err != nil || ok {
		t.Fatalf("SchemaCurrent before migrating = %v, %v; want false, nil", ok, err)
	}
	first, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 10 || first[0] != "0001_accounts.sql" {
		t.Fatalf("first run applied %v", first)
	}
	second, err := db.Migrate(ctx)
	if err != nil || len(second) != 0 {
		t.Fatalf("second run applied %v, %v; want none", second, err)
	}
	if ok, err := db.SchemaCurrent(ctx); err != nil || !ok {
		t.Fatalf("SchemaCurrent after migrating = %v, %v; want true", ok, err)
	}
	var n uint64
	if err := db.QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&n); err != nil || n != uint64(len(first)) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(first))
	}
}

func TestMigrateAddColumnIsIdempotent(t *testing.T) {
	db := chtest.Open(t)
	ctx := t.Context()
	fsys := fstest.MapFS{
		"0001_t.sql": {Data: []byte("-- a table\nCREATE TABLE IF NOT EXISTS t (a String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a;\n")},
	}
	if _, err := db.MigrateFS(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	// The column exists already (added by hand, or by a migrator that died
	// before recording the step): the step is recorded without running.
	if err := db.Exec(ctx, "ALTER TABLE t ADD COLUMN b String AFTER a"); err != nil {
		t.Fatal(err)
	}
	fsys["0002_t_b.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE t ADD COLUMN b String AFTER a")}
	fsys["0003_t_c.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE t ADD COLUMN c Int64 AFTER b")}
	applied, err := db.MigrateFS(ctx, fsys)
	if err != nil || !slices.Equal(applied, []string{"0002_t_b.sql", "0003_t_c.sql"}) {
		t.Fatalf("applied %v, %v", applied, err)
	}
	if cols := columns(t, db, "t"); strings.Join(cols, ",") != "a String,b String,c Int64,v UInt64" {
		t.Fatalf("columns %v", cols)
	}
	// A renamed migration is refused.
	delete(fsys, "0003_t_c.sql")
	fsys["0003_t_renamed.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE t ADD COLUMN c Int64 AFTER b")}
	if _, err := db.MigrateFS(ctx, fsys); err == nil || !strings.Contains(err.Error(), "never be renamed") {
		t.Fatalf("renamed migration: err %v", err)
	}
}

// TestEntityTablesMatchDomain keeps schema/ and syncer.Tables from drifting:
// the migrated tables must have exactly the columns the loader writes, in
// order, and the engine, sorting and partition keys the design says.
func TestEntityTablesMatchDomain(t *testing.T) {
	db := chtest.New(t)
	for _, e := range syncer.AllEntities {
		tb := syncer.Tables[e]
		catalog := slices.Contains(syncer.CatalogEntities, e)
		want := []string{"account_id String"}
		for _, c := range tb.Columns {
			want = append(want, c.Name+" "+load.ColumnType(c.Type))
		}
		want = append(want, "raw String", "version UInt64", "synced_at DateTime('UTC')")
		if catalog {
			want = append(want, "first_seen_at DateTime('UTC')", "last_seen_at DateTime('UTC')", "is_present UInt8")
		}
		got := columns(t, db, string(e))
		if !slices.Equal(got, want) {
			t.Errorf("table %s does not match syncer.Tables:\n%s", e, columnDiff(string(e), got, want))
		}

		var engine, sorting, partition string
		err := db.QueryRow(t.Context(), "SELECT engine_full, sorting_key, partition_key FROM system.tables WHERE database = currentDatabase() AND name = ?", string(e)).
			Scan(&engine, &sorting, &partition)
		if err != nil {
			t.Fatal(err)
		}
		wantSorting, wantPartition := "account_id", ""
		if tb.Key >= 0 {
			wantSorting = "account_id, " + tb.Columns[tb.Key].Name
		}
		if tb.Partition >= 0 {
			wantPartition = "toYYYYMM(" + tb.Columns[tb.Partition].Name + ")"
		}
		if !strings.HasPrefix(engine, "ReplacingMergeTree(version)") || sorting != wantSorting || partition != wantPartition {
			t.Errorf("table %s: engine %q sorting key %q partition key %q; want ReplacingMergeTree(version), %q, %q",
				e, engine, sorting, partition, wantSorting, wantPartition)
		}
	}
}

// columnDiff explains a mismatch and suggests the migration that fixes a
// column added to syncer.Tables.
func columnDiff(table string, got, want []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  got  %v\n  want %v\n", got, want)
	have := map[string]bool{}
	for _, g := range got {
		have[strings.SplitN(g, " ", 2)[0]] = true
	}
	for i, w := range want {
		name, typ, _ := strings.Cut(w, " ")
		if !have[name] && i > 0 {
			after := strings.SplitN(want[i-1], " ", 2)[0]
			fmt.Fprintf(&b, "  add a migration: ALTER TABLE %s ADD COLUMN %s %s AFTER %s\n", table, name, typ, after)
		}
	}
	return b.String()
}

func columns(t *testing.T, db *load.DB, table string) []string {
	t.Helper()
	// system.columns lists a table's columns in declaration order; 18.16 has
	// no position column to sort by.
	rows, err := db.Query(t.Context(), "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, name+" "+typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
