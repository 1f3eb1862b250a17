package schema_test

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/schema"
)

var update = flag.Bool("update", false, "write the CREATE TABLE migration of every entity that has none yet")

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// TestFiles checks the naming and one-statement rules.
func TestFiles(t *testing.T) {
	entries, err := fs.ReadDir(schema.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("%s: want NNNN_name.sql", e.Name())
			continue
		}
		if want := fmt.Sprintf("%04d", i+1); m[1] != want {
			t.Errorf("%s: want number %s (numbers are consecutive from 0001)", e.Name(), want)
		}
		b, err := fs.ReadFile(schema.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		body := stripComments(string(b))
		if strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(body), ";")) == "" {
			t.Errorf("%s: empty", e.Name())
		}
		if strings.Contains(strings.TrimSuffix(strings.TrimSpace(body), ";"), ";") {
			t.Errorf("%s: more than one statement (one per file: ClickHouse runs one per query)", e.Name())
		}
		for _, bad := range []string{"DateTime64", "LowCardinality", "Map(", "JSON", " TTL ", "ADD COLUMN IF NOT EXISTS", "ON CLUSTER"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: uses %q, which ClickHouse 18.16 rejects", e.Name(), bad)
			}
		}
	}
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestEntityTablesHaveMigrations checks that every entity has a CREATE TABLE
// migration. With -update it writes the missing ones, generated from
// syncer.Tables; the committed file is then the source of truth and is never
// regenerated. Columns added to syncer.Tables later need an ALTER migration,
// which the integration test in internal/load prints.
func TestEntityTablesHaveMigrations(t *testing.T) {
	entries, err := fs.ReadDir(schema.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	next := len(entries) + 1
	for _, e := range syncer.AllEntities {
		found := false
		for _, f := range entries {
			b, _ := fs.ReadFile(schema.FS, f.Name())
			if strings.Contains(string(b), "CREATE TABLE IF NOT EXISTS "+string(e)+"\n") {
				found = true
			}
		}
		if found {
			continue
		}
		if !*update {
			t.Errorf("no migration creates table %s; run: go test ./schema -run TestEntityTablesHaveMigrations -update", e)
			continue
		}
		name := fmt.Sprintf("%04d_%s.sql", next, e)
		next++
		if err := os.WriteFile(name, []byte(EntityDDL(syncer.Tables[e])), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", name)
	}
}

// EntityDDL renders an entity's CREATE TABLE: account_id, the typed columns in
// order, raw, version, synced_at, and for catalog entities first_seen_at,
// last_seen_at and is_present.
func EntityDDL(tb *syncer.Table) string {
	var b strings.Builder
	catalog := false
	for _, c := range syncer.CatalogEntities {
		catalog = catalog || c == tb.Entity
	}
	fmt.Fprintf(&b, "-- Generated once from internal/syncer.Tables[%q]; edit by adding a migration.\n", tb.Entity)
	if catalog {
		b.WriteString("-- Catalog entity: refreshed whole each run; is_present = 0 marks records the API stopped returning.\n")
	} else {
		b.WriteString("-- Activity entity: loaded incrementally by window; re-loads replace rows by (account_id, id).\n")
	}
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s\n(\n    account_id String", tb.Entity)
	for _, c := range tb.Columns {
		fmt.Fprintf(&b, ",\n    %s %s", c.Name, load.ColumnType(c.Type))
	}
	b.WriteString(",\n    raw String,\n    version UInt64,\n    synced_at DateTime('UTC')")
	if catalog {
		b.WriteString(",\n    first_seen_at DateTime('UTC'),\n    last_seen_at DateTime('UTC'),\n    is_present UInt8")
	}
	b.WriteString("\n)\nENGINE = ReplacingMergeTree(version)\n")
	if tb.Partition >= 0 {
		fmt.Fprintf(&b, "PARTITION BY toYYYYMM(%s)\n", tb.Columns[tb.Partition].Name)
	}
	if tb.Key >= 0 {
		fmt.Fprintf(&b, "ORDER BY (account_id, %s)\n", tb.Columns[tb.Key].Name)
	} else {
		b.WriteString("ORDER BY account_id\n")
	}
	return b.String()
}
