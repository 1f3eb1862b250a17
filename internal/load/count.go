package load

import (
	"context"
	"maps"
	"strings"
	"sync"
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

	mu     sync.Mutex
	byKind map[string]int64 // statementKind → count
}

func (s *statementCounter) since(start time.Time) { s.wait.Add(int64(time.Since(start))) }

func (s *statementCounter) add(query string) {
	s.n.Add(1)
	k := statementKind(query)
	s.mu.Lock()
	if s.byKind == nil {
		s.byKind = map[string]int64{}
	}
	s.byKind[k]++
	s.mu.Unlock()
}

// statementKind names a statement by its verb and the first table it names:
// "INSERT sync_runs", "SELECT sync_state", "OPTIMIZE actions".
func statementKind(query string) string {
	f := strings.Fields(query)
	if len(f) == 0 {
		return "?"
	}
	verb := strings.ToUpper(f[0])
	after := map[string]string{"INSERT": "INTO", "SELECT": "FROM", "WITH": "FROM", "OPTIMIZE": "TABLE", "ALTER": "TABLE"}[verb]
	if after == "" {
		return verb
	}
	for i, w := range f[:len(f)-1] {
		if strings.EqualFold(w, after) && !strings.HasPrefix(f[i+1], "(") {
			t := f[i+1]
			if j := strings.LastIndexByte(t, '.'); j >= 0 {
				t = t[j+1:]
			}
			t = strings.Trim(t, "`\"(),;")
			return verb + " " + t
		}
	}
	return verb
}

func (c countingConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.c.add(query)
	defer c.c.since(time.Now())
	return c.Conn.Query(ctx, query, args...)
}

func (c countingConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	c.c.add(query)
	defer c.c.since(time.Now())
	return c.Conn.QueryRow(ctx, query, args...)
}

func (c countingConn) Exec(ctx context.Context, query string, args ...any) error {
	c.c.add(query)
	defer c.c.since(time.Now())
	return c.Conn.Exec(ctx, query, args...)
}

func (c countingConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.c.add(query)
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

// StatementsByKind returns how many statements of each kind (verb and first
// table, see statementKind) this DB sent so far.
func (d *DB) StatementsByKind() map[string]int64 {
	d.statements.mu.Lock()
	defer d.statements.mu.Unlock()
	return maps.Clone(d.statements.byKind)
}
