package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/retry"
)

// ErrSchema marks a mismatch between the code and the database: an unknown
// database, table or column, or a column of another type. Running
// `syncer migrate` usually fixes it; retrying does not.
var ErrSchema = errors.New("clickhouse schema mismatch (run `syncer migrate`)")

// ErrBadValue marks a record value that cannot be stored exactly, such as a
// decimal with more than 8 fractional digits or a time before 1970.
var ErrBadValue = errors.New("value cannot be stored")

// ClickHouse exception codes this package acts on.
const (
	codeThereIsNoColumn       = 8
	codeNotFoundColumnInBlock = 10
	codeDuplicateColumn       = 15
	codeNoSuchColumnInTable   = 16
	codeUnexpectedEOF         = 32
	codeIllegalColumn         = 44
	codeUnknownIdentifier     = 47
	codeUnknownType           = 50
	codeTypeMismatch          = 53
	codeUnknownTable          = 60
	codeCannotConvertType     = 70
	codeUnknownDatabase       = 81
	codeTimeoutExceeded       = 159
	codeTooSlow               = 160
	codeTooManyQueries        = 202
	codeNoFreeConnection      = 203
	codeSocketTimeout         = 209
	codeNetworkError          = 210
	codeMemoryLimitExceeded   = 241
	codeTableIsReadOnly       = 242
	codeTooManyParts          = 252
	codeTooFewLiveReplicas    = 285
	codeUnknownStatusOfInsert = 319
	codeAllReplicasLost       = 415
	codeKeeperException       = 999
)

func exceptionCode(err error) (int32, bool) {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code, true
	}
	return 0, false
}

func isSchemaCode(code int32) bool {
	switch code {
	case codeThereIsNoColumn, codeNotFoundColumnInBlock, codeNoSuchColumnInTable, codeIllegalColumn,
		codeUnknownIdentifier, codeUnknownType, codeTypeMismatch, codeUnknownTable,
		codeCannotConvertType, codeUnknownDatabase:
		return true
	}
	return false
}

// describe turns a schema exception into an error that matches ErrSchema;
// other errors pass unchanged. The exception stays reachable with errors.As.
func describe(err error) error {
	if err == nil {
		return nil
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return err
	}
	if isSchemaCode(ex.Code) {
		return &schemaError{msg: fmt.Sprintf("ClickHouse code %d: %s", ex.Code, ex.Message), err: err}
	}
	return err
}

// describeTable is describe with the table named.
func describeTable(err error, table string) error {
	err = describe(err)
	var se *schemaError
	if errors.As(err, &se) && se.table == "" {
		se.table = table
	}
	return err
}

// schemaError is an ErrSchema naming what is wrong.
type schemaError struct {
	table   string
	missing []string // columns the table lacks, when known
	msg     string
	err     error
}

func (e *schemaError) Error() string {
	s := ErrSchema.Error()
	if e.table != "" {
		s += ": table " + e.table
	}
	if len(e.missing) > 0 {
		s += fmt.Sprintf(" lacks columns %v", e.missing)
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

func (e *schemaError) Is(target error) bool { return target == ErrSchema }
func (e *schemaError) Unwrap() error        { return e.err }

// retryDecision says whether a failed insert may be retried and why. Retrying
// is safe only because a retry sends the same rows with the same version.
func retryDecision(err error) (bool, string) {
	switch {
	case err == nil:
		return false, "ok"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, "context done"
	case errors.Is(err, ErrSchema):
		return false, "schema mismatch"
	case errors.Is(err, ErrBadValue):
		return false, "bad value"
	}
	if code, ok := exceptionCode(err); ok {
		switch code {
		case codeTimeoutExceeded, codeTooSlow, codeTooManyQueries, codeNoFreeConnection, codeSocketTimeout,
			codeNetworkError, codeMemoryLimitExceeded, codeTableIsReadOnly, codeTooManyParts,
			codeTooFewLiveReplicas, codeUnknownStatusOfInsert, codeAllReplicasLost, codeKeeperException,
			codeUnexpectedEOF:
			return true, fmt.Sprintf("transient server error %d", code)
		}
		return false, fmt.Sprintf("server error %d", code)
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne):
		return true, "network error"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true, "connection closed"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true, "connection error"
	case errors.Is(err, clickhouse.ErrAcquireConnTimeout), errors.Is(err, clickhouse.ErrConnectionClosed):
		return true, "no connection"
	}
	return false, "not retryable"
}

// retryPolicy bounds retries of an operation whose failure has an unknown
// outcome; the waits are internal/retry's jittered backoff.
type retryPolicy struct {
	Attempts int           // total tries, at least 1
	Base     time.Duration // first backoff; doubles, jittered, capped at Max
	Max      time.Duration
}

// RetryLogMessage is the warning logged before each retry of a ClickHouse
// write (the worker counts them for its metrics).
const RetryLogMessage = "clickhouse write failed; retrying the same rows"

// readRetryLogMessage is the warning logged before each retry of a read.
const readRetryLogMessage = "clickhouse read failed; retrying"

var defaultRetry = retryPolicy{Attempts: 5, Base: 250 * time.Millisecond, Max: 10 * time.Second}

// do runs fn until it succeeds, fails for good (retryDecision), runs out of
// attempts or ctx ends.
func (p retryPolicy) do(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	return p.doLogging(ctx, log, RetryLogMessage, what, fn)
}

func (p retryPolicy) doLogging(ctx context.Context, log *zap.Logger, msg, what string, fn func() error) error {
	err := retry.Policy{
		MaxAttempts: max(p.Attempts, 1),
		Backoff:     retry.Backoff{Base: p.Base, Max: p.Max},
		OnRetry: func(a retry.Attempt) error {
			log.Warn(msg,
				zap.String("what", what), zap.Int("attempt", a.N), zap.String("reason", a.Decision.Reason),
				zap.Duration("wait", a.Wait), zap.Error(a.Err))
			return nil
		},
	}.Do(ctx, func(_ int, err error) retry.Decision {
		if ok, reason := retryDecision(err); ok {
			return retry.Retry(reason)
		}
		return retry.Final("")
	}, fn)
	var ex *retry.ExhaustedError
	if errors.As(err, &ex) || (err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}
