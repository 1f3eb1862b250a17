package syncer

import (
	"errors"
	"fmt"
	"time"
)

// The API client turns every failed response into one of these, and callers
// use errors.As, never string matching.

// UnauthorizedError is a 401: the credential is wrong, reset, disabled or
// deleted (or an OAuth access token could not be renewed). The account needs
// reconnecting; retrying cannot help.
type UnauthorizedError struct {
	Endpoint string
	Message  string
}

func (e *UnauthorizedError) Error() string {
	return fmt.Sprintf("impact.com refused the credentials (401) on %s: %s", e.Endpoint, e.Message)
}

// ForbiddenError is a 403: a scoped token lacks one endpoint's permission.
// Other entities can still be synced.
type ForbiddenError struct {
	Endpoint   string
	Permission string // as an admin sees it, e.g. "Promo Codes → Retrieve promo codes"
	Message    string
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("impact.com denied %s (403 %s): the API token lacks the permission %q",
		e.Endpoint, e.Message, e.Permission)
}

// RateLimitedError is a 429 that could not be waited out (for example the
// context ended first).
type RateLimitedError struct {
	Endpoint string
	RetryAt  time.Time
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("impact.com rate limit reached on %s; retry after %s", e.Endpoint, e.RetryAt.UTC().Format(time.RFC3339))
}

// TransientError is a failure that may pass: 5xx, a network error, a truncated
// or non-JSON body.
type TransientError struct {
	Endpoint string
	Status   int // 0 for network errors
	Err      error
}

func (e *TransientError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("impact.com %s: %v", e.Endpoint, e.Err)
	}
	return fmt.Sprintf("impact.com %s: HTTP %d: %v", e.Endpoint, e.Status, e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// InvalidError is any other 4xx, carrying the error envelope's Message and
// Errors.
type InvalidError struct {
	Endpoint string
	Status   int
	Message  string
	Errors   []string
}

func (e *InvalidError) Error() string {
	s := fmt.Sprintf("impact.com rejected %s (HTTP %d): %s", e.Endpoint, e.Status, e.Message)
	for _, d := range e.Errors {
		s += "; " + d
	}
	return s
}

// TooOldError is the date rule that a start may be at most 3 years in the
// past: the API refused a window starting before the limit it serves. It
// wraps the InvalidError the response also is.
type TooOldError struct {
	Endpoint string
	Message  string
	Err      *InvalidError
}

func (e *TooOldError) Error() string {
	return fmt.Sprintf("impact.com %s: start date older than the API serves: %s", e.Endpoint, e.Message)
}

func (e *TooOldError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// DecodeError is a record that could not be decoded. The rest of its page is
// still delivered.
type DecodeError struct {
	AccountID string
	Entity    Entity
	RecordID  string
	Field     string
	Err       error
}

func (e *DecodeError) Error() string {
	id := e.RecordID
	if id == "" {
		id = "(no id)"
	}
	return fmt.Sprintf("account %s: %s record %s: field %s: %v", e.AccountID, e.Entity, id, e.Field, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNeedsReconnect marks an account whose credential is dead: an OAuth
// invalid_grant or a 401 on a Basic token.
var ErrNeedsReconnect = errors.New("account needs reconnecting")

// IsCredentialDead reports whether err means the account's credential no
// longer works.
func IsCredentialDead(err error) bool {
	var u *UnauthorizedError
	return errors.As(err, &u) || errors.Is(err, ErrNeedsReconnect)
}
