// Package retry is the one retry policy of the project: exponential backoff
// with jitter, a sleep that ends when the context does, and a loop that asks
// the caller's classification whether an error is worth another attempt.
//
// Adapters keep only their knowledge of their own errors (which impact.com
// statuses, ClickHouse exception codes or token-store failures are transient)
// and express it as a Classify function; how long to wait, how often to try
// and how to stop on cancellation live here.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with "equal jitter": before retry
// number n (1-based) the nominal wait is d = Base·2^(n−1), capped at Max, and
// the actual wait is uniformly random in [d/2, d]. Half the wait is
// guaranteed, so a retry never comes back immediately; the random half
// spreads the retries of many workers that failed at the same moment.
type Backoff struct {
	Base time.Duration // the nominal first wait; must be > 0
	Max  time.Duration // the cap on the nominal wait; 0 means no cap beyond 2^20·Base
}

// Delay is the wait before retry number n (1-based; n < 1 counts as 1).
func (b Backoff) Delay(n int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	d := b.Base << min(max(n, 1)-1, 20)
	if d <= 0 || (b.Max > 0 && d > b.Max) {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d, or until ctx is done, whichever comes first. It returns
// nil after the full wait and ctx.Err() when the context ended it (also when
// the context was already done and d ≤ 0).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Decision is a classification's verdict on one failed attempt.
type Decision struct {
	Retry bool
	// Wait, when > 0, is the exact wait the failure asks for (a server's
	// Retry-After); otherwise the Policy's Backoff decides.
	Wait time.Duration
	// Reason is logged with the retry, or says why there is none.
	Reason string
}

// Retry says the error may be retried after the policy's backoff.
func Retry(reason string) Decision { return Decision{Retry: true, Reason: reason} }

// Final says the error is final.
func Final(reason string) Decision { return Decision{Reason: reason} }

// Classify is an adapter's knowledge of its errors. attempt is the 1-based
// number of the attempt that failed with err.
type Classify func(attempt int, err error) Decision

// Attempt describes a retry about to happen, for logging and counting.
type Attempt struct {
	N        int           // the attempt that failed (1-based)
	Err      error         // its error
	Decision Decision      // the classification's verdict
	Wait     time.Duration // the wait before the next attempt
}

// Policy bounds and spaces the attempts of one operation.
type Policy struct {
	// MaxAttempts is the number of calls at most, the first included; 0
	// leaves the bound to the classification.
	MaxAttempts int
	Backoff     Backoff
	// Sleep waits between attempts; nil is Sleep. Tests inject a fake
	// clock's sleep here.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, when set, is told about every retry before its wait; a non-nil
	// error from it ends Do with that error (for example: the wait would
	// outlast the context's deadline, so the caller reports it now).
	OnRetry func(Attempt) error
}

// ExhaustedError is Do's error when every attempt failed with a retryable
// error. It unwraps to the last one.
type ExhaustedError struct {
	Attempts int
	Err      error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("giving up after %d attempts: %v", e.Attempts, e.Err)
}
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Do calls fn until it succeeds or must stop. It returns nil on success; fn's
// error unchanged when classify calls it final; an *ExhaustedError when
// MaxAttempts calls all failed; OnRetry's error when it returns one; and,
// when ctx ends during a wait, an error matching ctx.Err() (errors.Is) that
// also names the last failure. fn is not called again once ctx is done.
func (p Policy) Do(ctx context.Context, classify Classify, fn func() error) error {
	sleep := p.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	for n := 1; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		d := classify(n, err)
		if !d.Retry {
			return err
		}
		if p.MaxAttempts > 0 && n >= p.MaxAttempts {
			return &ExhaustedError{Attempts: n, Err: err}
		}
		wait := d.Wait
		if wait <= 0 {
			wait = p.Backoff.Delay(n)
		}
		if p.OnRetry != nil {
			if herr := p.OnRetry(Attempt{N: n, Err: err, Decision: d, Wait: wait}); herr != nil {
				return herr
			}
		}
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}
