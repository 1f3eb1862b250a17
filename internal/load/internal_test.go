package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestVersionClockIsStrictlyIncreasing(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, 0, time.Second, -time.Hour, -time.Hour, 2 * time.Second, 2 * time.Second}
	i := 0
	c := versionClock{now: func() time.Time { d := steps[i%len(steps)]; i++; return base.Add(d) }}
	var prev uint64
	for range steps {
		v := c.Next()
		if v <= prev {
			t.Fatalf("version %d after %d: not increasing", v, prev)
		}
		prev = v
	}
	if v := c.After(prev + 1000); v != prev+1001 {
		t.Fatalf("After(floor) = %d, want %d", v, prev+1001)
	}
}

type netErr struct{}

func (netErr) Error() string   { return "connection reset" }
func (netErr) Timeout() bool   { return false }
func (netErr) Temporary() bool { return true }

func TestRetryDecision(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{netErr{}, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("send: %w", io.EOF), true},
		{&clickhouse.Exception{Code: codeTooManyParts}, true},
		{&clickhouse.Exception{Code: codeUnknownStatusOfInsert}, true},
		{&clickhouse.Exception{Code: 62}, false}, // syntax error
		{describe(&clickhouse.Exception{Code: codeNoSuchColumnInTable}), false},
		{context.Canceled, false},
		{fmt.Errorf("%w: x", ErrBadValue), false},
	} {
		if got, reason := retryDecision(tc.err); got != tc.retry {
			t.Errorf("retryDecision(%v) = %v (%s), want %v", tc.err, got, reason, tc.retry)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	p := retryPolicy{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond}
	log := zap.NewNop()
	t.Run("transient then success", func(t *testing.T) {
		calls := 0
		err := p.do(t.Context(), log, "x", func() error {
			if calls++; calls < 3 {
				return netErr{}
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		calls := 0
		err := p.do(t.Context(), log, "x", func() error { calls++; return netErr{} })
		if err == nil || calls != 4 {
			t.Fatalf("err %v after %d calls, want an error after 4", err, calls)
		}
	})
	t.Run("schema error is final", func(t *testing.T) {
		calls := 0
		err := p.do(t.Context(), log, "x", func() error {
			calls++
			return describe(&clickhouse.Exception{Code: codeUnknownTable, Message: "Table x.y doesn't exist."})
		})
		if !errors.Is(err, ErrSchema) || calls != 1 {
			t.Fatalf("err %v after %d calls, want ErrSchema after 1", err, calls)
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		slow := retryPolicy{Attempts: 5, Base: time.Hour, Max: time.Hour}
		calls := 0
		err := slow.do(ctx, log, "x", func() error { calls++; cancel(); return netErr{} })
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("err %v after %d calls, want context.Canceled after 1", err, calls)
		}
	})
}

func TestCheckValue(t *testing.T) {
	for _, tc := range []struct {
		typ syncer.Type
		v   any
		ok  bool
	}{
		{syncer.String, "x", true},
		{syncer.String, 3, false},
		{syncer.JSON, `{"a":1}`, true},
		{syncer.Decimal, decimal.RequireFromString("12345678.12345678"), true},
		{syncer.Decimal, decimal.RequireFromString("-3.15"), true},
		{syncer.Decimal, decimal.RequireFromString("1.123456789"), false},
		{syncer.Decimal, decimal.RequireFromString("1.100000000"), true},
		{syncer.Decimal, decimal.RequireFromString("10000000000"), false},
		{syncer.Decimal, "1.5", false},
		{syncer.DateTime, time.Unix(0, 0).UTC(), true},
		{syncer.DateTime, time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{syncer.Bool, uint8(1), true},
		{syncer.Bool, true, false},
		{syncer.Int, int64(-3), true},
		{syncer.Int, 3, false},
		{syncer.Strings, []string{}, true},
		{syncer.Strings, []string(nil), true},
		{syncer.Strings, "a", false},
	} {
		if err := checkValue(tc.typ, tc.v); (err == nil) != tc.ok {
			t.Errorf("checkValue(%s, %#v) = %v, want ok=%v", ColumnType(tc.typ), tc.v, err, tc.ok)
		}
	}
}

func TestSchemaErrorMessage(t *testing.T) {
	err := describeTable(&clickhouse.Exception{Code: codeNoSuchColumnInTable, Message: "No such column note in table db.actions"}, "actions")
	var se *schemaError
	if !errors.As(err, &se) || !errors.Is(err, ErrSchema) {
		t.Fatalf("%v: want a schemaError matching ErrSchema", err)
	}
	se.missing = []string{"note"}
	want := "clickhouse schema mismatch (run `syncer migrate`): table actions lacks columns [note]: ClickHouse code 16: No such column note in table db.actions"
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err.Error(), want)
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != codeNoSuchColumnInTable {
		t.Fatal("exception not reachable with errors.As")
	}
}

// MigrateFS applies the migrations in fsys instead of the embedded schema;
// the external migrate tests use it through the package's test build.
func (d *DB) MigrateFS(ctx context.Context, fsys fs.FS) ([]string, error) {
	return d.migrate(ctx, fsys)
}

// droppingConn fails the first reads the way a pooled connection to a server
// that died fails, then answers.
type droppingConn struct {
	driver.Conn // nil: only the reads below are called
	failures    int
	calls       int
}

func (c *droppingConn) QueryRow(context.Context, string, ...any) driver.Row {
	c.calls++
	if c.calls <= c.failures {
		return errRow{fmt.Errorf("query processing: failed to read packet from 127.0.0.1:9000 (conn_id=3): %w", io.EOF)}
	}
	return errRow{nil}
}

func (c *droppingConn) Query(context.Context, string, ...any) (driver.Rows, error) {
	c.calls++
	if c.calls <= c.failures {
		return nil, fmt.Errorf("query processing: failed to read packet from 127.0.0.1:9000 (conn_id=3): %w", io.EOF)
	}
	return nil, nil
}

type errRow struct{ err error }

func (r errRow) Err() error                { return r.err }
func (r errRow) Scan(dest ...any) error    { return r.err }
func (r errRow) ScanStruct(dest any) error { return r.err }

// A read that meets a connection the server closed (a replica killed since
// the connection was pooled) is sent again instead of failing the pass; a
// read that keeps failing still fails, after defaultRetry's attempts. (Which
// errors are final, such as a missing table, is TestRetryDecision's.)
func TestReadsRetryAClosedConnection(t *testing.T) {
	conn := &droppingConn{failures: 1}
	d := &DB{conn: conn, log: zap.NewNop()}
	var v uint64
	if err := d.queryRow(t.Context(), "SELECT 1", nil, &v); err != nil || conn.calls != 2 {
		t.Fatalf("queryRow: err %v after %d calls, want nil after 2", err, conn.calls)
	}
	conn = &droppingConn{failures: 1}
	d.conn = conn
	if _, err := d.query(t.Context(), "SELECT 1"); err != nil || conn.calls != 2 {
		t.Fatalf("query: err %v after %d calls, want nil after 2", err, conn.calls)
	}
	conn = &droppingConn{failures: 100}
	d.conn = conn
	if err := d.queryRow(t.Context(), "SELECT 1", nil, &v); !errors.Is(err, io.EOF) || conn.calls != defaultRetry.Attempts {
		t.Fatalf("queryRow: err %v after %d calls, want EOF after %d", err, conn.calls, defaultRetry.Attempts)
	}
}
