package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffDelayIsJitteredDoublingAndCapped(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		n       int
		nominal time.Duration
	}{
		{0, 100 * time.Millisecond}, // n < 1 counts as 1
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second}, // capped
		{60, time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(tc.n)
			if d < tc.nominal/2 || d > tc.nominal {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tc.n, d, tc.nominal/2, tc.nominal)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d) gave the same %v 200 times: no jitter", tc.n, seen)
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Errorf("zero Backoff: Delay = %v, want 0", d)
	}
	if d := (Backoff{Base: time.Second}).Delay(1000); d < time.Second<<19 || d > time.Second<<20 {
		t.Errorf("uncapped Backoff: Delay(1000) = %v, want the 2^20 cap", d)
	}
}

func TestSleepHonoursTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(t.Context(), time.Hour); err != nil || time.Since(start) != time.Hour {
			t.Fatalf("Sleep(1h) = %v after %v, want nil after 1h", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Fatalf("Sleep(1h) with a 1m deadline = %v after %v, want DeadlineExceeded after 1m", err, time.Since(start))
		}
		if err := Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep(0) on a done context = %v, want its error", err)
		}
		if err := Sleep(t.Context(), -time.Second); err != nil {
			t.Fatalf("Sleep(<0) = %v, want nil at once", err)
		}
	})
}

var (
	errTransient = errors.New("transient")
	errFinal     = errors.New("final")
)

func classify(_ int, err error) Decision {
	if errors.Is(err, errTransient) {
		return Retry("transient")
	}
	return Final("final")
}

// setup returns a policy whose sleeps are recorded instead of slept.
func setup(maxAttempts int) (*Policy, *[]time.Duration) {
	var slept []time.Duration
	p := &Policy{
		MaxAttempts: maxAttempts,
		Backoff:     Backoff{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond},
		Sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			return ctx.Err()
		},
	}
	return p, &slept
}

// failing returns fn failing with errs in turn, then succeeding.
func failing(calls *int, errs ...error) func() error {
	return func() error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestDo(t *testing.T) {
	t.Run("retries a transient error until success, with growing backoff", func(t *testing.T) {
		p, slept := setup(5)
		calls := 0
		if err := p.Do(t.Context(), classify, failing(&calls, errTransient, errTransient, errTransient)); err != nil {
			t.Fatal(err)
		}
		if calls != 4 || len(*slept) != 3 {
			t.Fatalf("%d calls, %d sleeps; want 4 and 3", calls, len(*slept))
		}
		for i, d := range *slept {
			nominal := min(10*time.Millisecond<<i, 40*time.Millisecond)
			if d < nominal/2 || d > nominal {
				t.Errorf("wait %d = %v, want within [%v, %v]", i+1, d, nominal/2, nominal)
			}
		}
	})
	t.Run("a final error is returned unchanged after one call", func(t *testing.T) {
		p, slept := setup(5)
		calls := 0
		err := p.Do(t.Context(), classify, failing(&calls, errFinal))
		if err != errFinal || calls != 1 || len(*slept) != 0 {
			t.Fatalf("err %v after %d calls and %d sleeps, want errFinal after 1 and 0", err, calls, len(*slept))
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		p, _ := setup(3)
		calls := 0
		err := p.Do(t.Context(), classify, failing(&calls, errTransient, errTransient, errTransient, errTransient))
		var ex *ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 || !errors.Is(err, errTransient) || calls != 3 {
			t.Fatalf("err %v after %d calls, want ExhaustedError{3} wrapping errTransient after 3", err, calls)
		}
	})
	t.Run("no bound: the classification decides", func(t *testing.T) {
		p, _ := setup(0)
		calls := 0
		err := p.Do(t.Context(), func(n int, err error) Decision {
			if n < 7 {
				return Retry("again")
			}
			return Final("enough")
		}, func() error { calls++; return errTransient })
		if err != errTransient || calls != 7 {
			t.Fatalf("err %v after %d calls, want errTransient after 7", err, calls)
		}
	})
	t.Run("a decision's own wait is honoured exactly", func(t *testing.T) {
		p, slept := setup(5)
		calls := 0
		err := p.Do(t.Context(), func(int, error) Decision {
			return Decision{Retry: true, Wait: 42 * time.Minute, Reason: "429"}
		}, failing(&calls, errTransient))
		if err != nil || len(*slept) != 1 || (*slept)[0] != 42*time.Minute {
			t.Fatalf("err %v, slept %v; want nil and [42m]", err, *slept)
		}
	})
	t.Run("OnRetry sees each retry and can stop it", func(t *testing.T) {
		p, slept := setup(5)
		stop := errors.New("stop")
		var seen []Attempt
		p.OnRetry = func(a Attempt) error {
			seen = append(seen, a)
			if a.N == 2 {
				return stop
			}
			return nil
		}
		calls := 0
		err := p.Do(t.Context(), classify, failing(&calls, errTransient, errTransient, errTransient))
		if err != stop || calls != 2 || len(*slept) != 1 || len(seen) != 2 {
			t.Fatalf("err %v, %d calls, %d sleeps, %d seen; want stop, 2, 1, 2", err, calls, len(*slept), len(seen))
		}
		if a := seen[0]; a.N != 1 || a.Err != errTransient || a.Decision.Reason != "transient" || a.Wait != (*slept)[0] {
			t.Errorf("first attempt = %+v, want N 1, errTransient, reason transient, wait %v", a, (*slept)[0])
		}
	})
	t.Run("a context ended during the wait stops it and names the last error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			p := Policy{MaxAttempts: 5, Backoff: Backoff{Base: time.Hour}}
			calls := 0
			time.AfterFunc(time.Minute, cancel)
			start := time.Now()
			err := p.Do(ctx, classify, func() error { calls++; return errTransient })
			if !errors.Is(err, context.Canceled) || calls != 1 || time.Since(start) != time.Minute {
				t.Fatalf("err %v after %d calls and %v, want Canceled after 1 call and 1m", err, calls, time.Since(start))
			}
			if want := "context canceled (last error: transient)"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	})
}
