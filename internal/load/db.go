// Package load is the ClickHouse adapter: it applies the embedded schema
// migrations and implements the syncer stores (Writer, AccountStore,
// StateStore, RunStore) plus catalog refreshes and per-account leases.
// It is the only package that imports clickhouse-go.
//
// Everything here runs on Debian's ClickHouse 18.16 (what tests and CI use)
// and on modern servers: native protocol only (the driver's HTTP mode sends a
// setting 18.16 rejects), explicit insert column lists, one statement per
// query, and readers that use FINAL or argMax instead of waiting for merges.
package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Options says where ClickHouse is.
type Options struct {
	Addrs    []string // host:port of the native protocol (9000 by default on a server; 19000 for scripts/clickhouse.sh)
	Database string   // created by Migrate if missing
	User     string   // "" means default
	Password string

	// Secure speaks TLS on the native protocol (ClickHouse Cloud, port 9440
	// on most servers). CAFile is a PEM bundle of the CAs to trust instead of
	// the system roots; ServerName is the name the certificate must hold
	// when it is not the host of the address.
	Secure     bool
	CAFile     string
	ServerName string

	// Cluster names a cluster of the server's remote_servers. Migrate then
	// creates the database and every table ON CLUSTER with Replicated
	// engines, plus a Distributed table per table when the cluster has more
	// than one shard. "" is a single node.
	Cluster string
	// ReplicaPath is the ZooKeeper path of each replicated table (default
	// DefaultReplicaPath); {database} and {table} are filled in, other
	// {macros} come from the server.
	ReplicaPath string

	// DialTimeout bounds connecting (default 10s).
	DialTimeout time.Duration
	// Now is the wall clock for timestamps such as synced_at and lease
	// expiry (default time.Now). Versions always come from the real clock.
	Now func() time.Time
}

// DB is a connection pool to one ClickHouse database. Share one DB per
// process: the stores built on it draw their row versions from its clock,
// which is strictly increasing.
type DB struct {
	conn     driver.Conn
	opts     Options
	log      *zap.Logger
	server   driver.ServerVersion
	tls      *tls.Config
	layout   layout
	now      func() time.Time
	versions versionClock
	// statements counts what is sent to ClickHouse (see Statements).
	statements statementCounter
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open connects over the native protocol, probes the server version and
// checks that the credentials work. The database need not exist yet: Migrate
// creates it.
func Open(ctx context.Context, opts Options, log *zap.Logger) (*DB, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("clickhouse: no address")
	}
	if !identifier.MatchString(opts.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q: want letters, digits and underscores", opts.Database)
	}
	if opts.User == "" {
		opts.User = "default"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	d := &DB{opts: opts, log: log, now: opts.Now, layout: layout{Database: opts.Database, Shards: 1, ReplicaPath: opts.ReplicaPath}}
	d.versions.now = time.Now
	if opts.Secure {
		var err error
		if d.tls, err = tlsConfig(opts); err != nil {
			return nil, err
		}
	} else if opts.CAFile != "" || opts.ServerName != "" {
		return nil, errors.New("clickhouse: a CA file or TLS server name is set but TLS is off: set CLICKHOUSE_SECURE=true")
	}

	// Probe with the server's default database, which always exists.
	probe, err := d.connect("", 1)
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	if err := probe.Ping(ctx); err != nil {
		return nil, explainConnect(err, opts)
	}
	sv, err := probe.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: server version: %w", opts.Addrs, err)
	}
	d.server = *sv
	if opts.Cluster != "" {
		if d.layout.Shards, err = clusterShards(ctx, probe, opts.Cluster); err != nil {
			return nil, err
		}
		d.layout.Cluster = opts.Cluster
	}

	// Room for each of SYNCER_CONCURRENCY passes (4 by default) to keep a
	// few streamed inserts open (syncer.StreamWriter) beside its other
	// queries.
	if d.conn, err = d.connect(opts.Database, 24); err != nil {
		return nil, err
	}
	d.conn = countingConn{Conn: d.conn, c: &d.statements}
	log.Info("clickhouse connected",
		zap.Strings("addrs", opts.Addrs),
		zap.String("database", opts.Database),
		zap.String("user", opts.User),
		zap.Bool("secure", opts.Secure),
		zap.String("cluster", opts.Cluster),
		zap.Int("shards", d.layout.Shards),
		zap.String("server_version", d.ServerVersion()))
	return d, nil
}

func (d *DB) connect(database string, maxOpen int) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		// Several addresses are replicas: a connection goes to the first
		// that answers, in order, so a dead replica costs one refused dial.
		Addr:             d.opts.Addrs,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		TLS:              d.tls,
		Auth: clickhouse.Auth{
			Database: database,
			Username: d.opts.User,
			Password: d.opts.Password,
		},
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{"impact-syncer", ""}}},
		// No Settings: the driver would send them with every query, and
		// 18.16 rejects any it does not know.
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout:  d.opts.DialTimeout,
		MaxOpenConns: maxOpen,
		// Idle connections are kept: passes of many small accounts use
		// several at once, and a new one costs a dial and a handshake.
		MaxIdleConns:    maxOpen,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", d.opts.Addrs, err)
	}
	return conn, nil
}

// Close closes the pool.
func (d *DB) Close() error { return d.conn.Close() }

// Ping checks that the server answers and the database exists.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse %v database %s: %w", d.opts.Addrs, d.opts.Database, describe(err))
	}
	return nil
}

// ServerVersion is the server's version as "major.minor.patch", probed once
// at Open.
func (d *DB) ServerVersion() string {
	v := d.server.Version
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Database is the database this DB works in.
func (d *DB) Database() string { return d.opts.Database }

// atLeast reports whether the server is at least major.minor. Use it only to
// opt into something better; never for correctness.
func (d *DB) atLeast(major, minor uint64) bool {
	v := d.server.Version
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// insertContext adds the settings a modern server understands and 18.16 does
// not: async_insert off explicitly (21.11+), so Send returns only after the
// rows are written.
//
// On a cluster of several shards an insert goes through a Distributed table;
// insert_distributed_sync makes it write every shard before it returns
// (otherwise the server queues the rows and acknowledges at once).
func (d *DB) insertContext(ctx context.Context) context.Context {
	settings := clickhouse.Settings{}
	if d.atLeast(21, 11) {
		settings["async_insert"] = 0
	}
	if d.layout.Shards > 1 {
		settings["insert_distributed_sync"] = 1
	}
	if len(settings) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(settings))
}

// Conn is the underlying clickhouse-go connection, for tests and ad hoc
// reads. Writes go through the stores.
func (d *DB) Conn() driver.Conn { return d.conn }

// Query runs a read. Arguments bind to ? placeholders client-side.
func (d *DB) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	rows, err := d.query(ctx, query, args...)
	if err != nil {
		return nil, describe(err)
	}
	return rows, nil
}

// QueryRow runs a read of one row.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return d.conn.QueryRow(ctx, query, args...)
}

// query sends a read, retried (defaultRetry) while it fails before its first
// block arrives for a transient reason: a pooled connection to a replica that
// died since, a server restarting, a busy server. A read changes nothing, so
// sending it again is safe; the driver dials the next address of Addrs when a
// connection is gone.
func (d *DB) query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	var rows driver.Rows
	err := defaultRetry.doLogging(ctx, d.log, readRetryLogMessage, "read", func() error {
		var err error
		rows, err = d.conn.Query(ctx, query, args...)
		return err
	})
	return rows, err
}

// queryRow is query for a read of one row, scanned into dest.
func (d *DB) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return defaultRetry.doLogging(ctx, d.log, readRetryLogMessage, "read", func() error {
		return d.conn.QueryRow(ctx, query, args...).Scan(dest...)
	})
}

// Exec runs one statement.
func (d *DB) Exec(ctx context.Context, query string, args ...any) error {
	return describe(d.conn.Exec(ctx, query, args...))
}

// CountFinal counts an account's rows in a table as readers see them
// (after FINAL deduplication).
func (d *DB) CountFinal(ctx context.Context, table, accountID string) (uint64, error) {
	if !identifier.MatchString(table) {
		return 0, fmt.Errorf("table name %q: want letters, digits and underscores", table)
	}
	var n uint64
	err := d.queryRow(ctx, "SELECT count() FROM `"+table+"` FINAL WHERE account_id = ?", []any{accountID}, &n)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, describeTable(err, table))
	}
	return n, nil
}

// versionClock hands out row versions: Unix nanoseconds of the wall clock,
// strictly increasing even when the wall clock steps back.
type versionClock struct {
	last atomic.Uint64
	now  func() time.Time
}

// Next returns a version above every version this clock returned before.
func (c *versionClock) Next() uint64 { return c.After(0) }

// After is Next, but also above floor (a version read from the table, which
// another process or a faster clock may have written).
func (c *versionClock) After(floor uint64) uint64 {
	for {
		prev := c.last.Load()
		v := uint64(c.now().UnixNano())
		if v <= prev {
			v = prev + 1
		}
		if v <= floor {
			v = floor + 1
		}
		if c.last.CompareAndSwap(prev, v) {
			return v
		}
	}
}

// toDateTime maps a time to what a DateTime('UTC') column stores: the zero
// time becomes the Unix epoch, sub-seconds are dropped.
func toDateTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Second)
}

// fromDateTime maps the Unix epoch back to the zero time.
func fromDateTime(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// quote quotes an identifier for ClickHouse SQL.
func quote(name string) string { return "`" + name + "`" }

// inList renders strings as the parenthesised list of an IN clause (the
// driver binds a slice as an Array, which IN does not take on 18.16).
func inList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quoteString(v)
	}
	return "(" + strings.Join(q, ", ") + ")"
}
