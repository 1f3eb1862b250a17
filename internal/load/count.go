package load

import (
	"context"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// countingConn counts the statements sent to ClickHouse (reads, inserts,
// other statements): each is at least one round trip to the server, and
// for a sync of many small accounts they are most of what is not the API.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c countingConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.Query(ctx, query, args...)
}

func (c countingConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	c.n.Add(1)
	return c.Conn.QueryRow(ctx, query, args...)
}

func (c countingConn) Exec(ctx context.Context, query string, args ...any) error {
	c.n.Add(1)
	return c.Conn.Exec(ctx, query, args...)
}

func (c countingConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.n.Add(1)
	return c.Conn.PrepareBatch(ctx, query, opts...)
}

// Statements returns how many statements this DB sent to ClickHouse so far
// (each a round trip or more; an insert is counted once).
func (d *DB) Statements() int64 { return d.statements.Load() }
