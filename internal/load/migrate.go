package load

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/schema"
)

// migration is one embedded schema step.
type migration struct {
	Version uint32
	Name    string // file name, e.g. 0001_accounts.sql
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d+)_[A-Za-z0-9_]+\.sql$`)

// addColumn recognises "ALTER TABLE t ADD COLUMN c ...", which the migrator
// skips when the column exists (ClickHouse 18.16 has no ADD COLUMN IF NOT
// EXISTS).
var addColumn = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+`?([A-Za-z0-9_]+)`?\\s+ADD\\s+COLUMN\\s+`?([A-Za-z0-9_]+)`?\\s")

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: bad number", e.Name())
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", other, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sql := strings.TrimSpace(stripLineComments(string(b)))
		sql = strings.TrimSpace(strings.TrimSuffix(sql, ";"))
		if sql == "" {
			return nil, fmt.Errorf("migration %s is empty", e.Name())
		}
		out = append(out, migration{Version: uint32(v), Name: e.Name(), SQL: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// stripLineComments drops whole-line "--" comments (the header every
// migration file starts with).
func stripLineComments(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version`

// Migrate creates the database if missing and applies the pending embedded
// migrations in order, recording each in schema_migrations. It returns the
// names of the migrations it applied; a second run applies none.
//
// Two migrators running at once are harmless for CREATE TABLE IF NOT EXISTS
// steps and for ADD COLUMN steps (skipped when the column exists).
//
// With Options.Cluster set, every statement is rendered for the cluster (see
// layout.render): ON CLUSTER, Replicated engines, Distributed tables when
// there is more than one shard. The migration files are the same.
// schema_migrations is then itself replicated, so every host and every
// migrator reads the same record; a step recorded twice by two migrators at
// once is one row through FINAL, and its DDL ran as a no-op the second time.
// A replica that was down runs the queued ON CLUSTER statements when it
// comes back (the server's distributed DDL queue in ZooKeeper) and fetches
// the rows it missed.
func (d *DB) Migrate(ctx context.Context) ([]string, error) {
	return d.migrate(ctx, schema.FS)
}

func (d *DB) migrate(ctx context.Context, fsys fs.FS) ([]string, error) {
	migs, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	if err := d.createDatabase(ctx); err != nil {
		return nil, err
	}
	stmts, err := d.layout.render(createMigrationsTable)
	if err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, q := range stmts {
		if err := d.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("create schema_migrations: %w", d.explainDDL(err))
		}
	}
	done, err := d.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range migs {
		if name, ok := done[m.Version]; ok {
			if name != m.Name {
				return applied, fmt.Errorf("migration %d is recorded as %s but the binary has %s: migrations must never be renamed or renumbered", m.Version, name, m.Name)
			}
			continue
		}
		if err := d.apply(ctx, m); err != nil {
			return applied, err
		}
		applied = append(applied, m.Name)
	}
	if len(applied) > 0 {
		d.log.Info("schema migrated", zap.String("database", d.opts.Database), zap.String("cluster", d.layout.Cluster),
			zap.Int("shards", d.layout.Shards), zap.Strings("applied", applied))
	}
	return applied, nil
}

func (d *DB) createDatabase(ctx context.Context) error {
	boot, err := d.connect("", 1)
	if err != nil {
		return err
	}
	defer boot.Close()
	if err := d.checkMacros(ctx, boot); err != nil {
		return err
	}
	if err := boot.Exec(ctx, d.layout.createDatabase()); err != nil {
		return fmt.Errorf("create database %s: %w", d.opts.Database, d.explainDDL(describe(err)))
	}
	return nil
}

func (d *DB) appliedMigrations(ctx context.Context) (map[uint32]string, error) {
	rows, err := d.Query(ctx, "SELECT version, name FROM schema_migrations FINAL")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[uint32]string{}
	for rows.Next() {
		var v uint32
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[v] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return done, nil
}

func (d *DB) apply(ctx context.Context, m migration) error {
	skip := false
	if am := addColumn.FindStringSubmatch(m.SQL); am != nil {
		exists, err := d.columnExists(ctx, am[1], am[2])
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		skip = exists
	}
	if !skip {
		stmts, err := d.layout.render(m.SQL)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		for _, q := range stmts {
			if err := d.Exec(ctx, q); err != nil {
				code, _ := exceptionCode(err)
				duplicate := code == codeDuplicateColumn || strings.Contains(err.Error(), "Code: 15,")
				if !(duplicate && addColumn.MatchString(m.SQL)) {
					return fmt.Errorf("migration %s: %w", m.Name, d.explainDDL(err))
				}
				// Another migrator added the column first.
			}
		}
	}
	// Inserts go through a batch: an INSERT ... VALUES sent with Exec hangs
	// on ClickHouse 18.16's native protocol.
	err := d.insertRows(ctx, defaultRetry, "schema_migrations", []string{"version", "name", "applied_at"},
		[][]any{{m.Version, m.Name, toDateTime(d.now())}})
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	d.log.Debug("migration applied", zap.String("migration", m.Name), zap.Bool("skipped_existing_column", skip))
	return nil
}

// explainDDL says what an ON CLUSTER statement that timed out means: a host
// of the cluster did not run it in time (down, or behind); the server keeps
// it queued for that host.
func (d *DB) explainDDL(err error) error {
	if code, _ := exceptionCode(err); d.layout.Cluster == "" || code != codeTimeoutExceeded {
		return err
	}
	return fmt.Errorf("a host of cluster %s did not run the statement within the server's distributed_ddl_task_timeout "+
		"(is one down?); it stays queued and runs when the host is back: run `syncer migrate` again then: %w", d.layout.Cluster, err)
}

// checkMacros makes sure, on a cluster, that the server defines every macro
// the replica path and the replica name use, so a missing one is reported
// before any DDL is queued.
func (d *DB) checkMacros(ctx context.Context, conn driver.Conn) error {
	if d.layout.Cluster == "" {
		return nil
	}
	want := map[string]bool{"replica": true}
	for _, m := range macroRef.FindAllStringSubmatch(d.layout.replicaPath("t"), -1) {
		want[m[1]] = true
	}
	rows, err := conn.Query(ctx, "SELECT macro FROM system.macros")
	if err != nil {
		return fmt.Errorf("read system.macros: %w", describe(err))
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("read system.macros: %w", err)
		}
		delete(want, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read system.macros: %w", err)
	}
	if len(want) > 0 {
		var missing []string
		for m := range want {
			missing = append(missing, "{"+m+"}")
		}
		sort.Strings(missing)
		return fmt.Errorf("the server lacks the macros %s that replicated tables need (replica path %q): define them in its <macros>, or set CLICKHOUSE_REPLICA_PATH",
			strings.Join(missing, ", "), d.layout.replicaPath("{table}"))
	}
	return nil
}

var macroRef = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func (d *DB) columnExists(ctx context.Context, table, column string) (bool, error) {
	var n uint64
	err := d.conn.QueryRow(ctx,
		"SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		d.opts.Database, table, column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read system.columns: %w", describe(err))
	}
	return n > 0, nil
}

// SchemaCurrent reports whether the database exists and every embedded
// migration is recorded as applied: a readiness check.
func (d *DB) SchemaCurrent(ctx context.Context) (bool, error) {
	migs, err := loadMigrations(schema.FS)
	if err != nil {
		return false, err
	}
	var n uint64
	err = d.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'").Scan(&n)
	if err != nil {
		if code, _ := exceptionCode(err); code == codeUnknownDatabase {
			return false, nil
		}
		return false, fmt.Errorf("schema check: %w", describe(err))
	}
	if n == 0 {
		return false, nil
	}
	done, err := d.appliedMigrations(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range migs {
		if _, ok := done[m.Version]; !ok {
			return false, nil
		}
	}
	return true, nil
}
