package load

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// countingConn counts the statements sent to ClickHouse (reads, inserts,
// other statements), each at least one round trip to the server, and the
// time callers spent waiting for them: for a sync of many small accounts
// they are most of what is not the API.
type countingConn struct {
	driver.Conn
	c *statementCounter
}

type statementCounter struct {
	n    atomic.Int64
	wait atomic.Int64 // nanoseconds
}

func (s *statementCounter) since(start time.Time) { s.wait.Add(int64(time.Since(start))) }

func (c countingConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.c.n.Add(1)
	defer c.c.since(time.Now())
	return c.Conn.Query(ctx, query, args...)
}

func (c countingConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	c.c.n.Add(1)
	defer c.c.since(time.Now())
	return c.Conn.QueryRow(ctx, query, args...)
}

func (c countingConn) Exec(ctx context.Context, query string, args ...any) error {
	c.c.n.Add(1)
	defer c.c.since(time.Now())
	return c.Conn.Exec(ctx, query, args...)
}

func (c countingConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.c.n.Add(1)
	defer c.c.since(time.Now())
	b, err := c.Conn.PrepareBatch(ctx, query, opts...)
	if err != nil {
		return nil, err
	}
	return countingBatch{Batch: b, c: c.c}, nil
}

// countingBatch adds the time its Send and Flush wait.
type countingBatch struct {
	driver.Batch
	c *statementCounter
}

func (b countingBatch) Send() error {
	defer b.c.since(time.Now())
	return b.Batch.Send()
}

func (b countingBatch) Flush() error {
	defer b.c.since(time.Now())
	return b.Batch.Flush()
}

// Statements returns how many statements this DB sent to ClickHouse so far
// (each a round trip or more; an insert is counted once) and how long
// callers waited for them in all (summed over concurrent callers).
func (d *DB) Statements() (int64, time.Duration) {
	return d.statements.n.Load(), time.Duration(d.statements.wait.Load())
}
