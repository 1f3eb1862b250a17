package extract

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// limiter paces one account's requests from the rate-limit headers impact.com
// sends, so that in steady state no request is spent that the API would
// refuse. Both header families are read, in any letter case:
//
//	brand:   X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset
//	partner: X-RateLimit-Limit-hour, X-RateLimit-Remaining-hour, RateLimit-Reset, Retry-After
//
// A reset value above 10⁹ is an epoch; smaller values are seconds from the
// response's Date.
type limiter struct {
	mu        sync.Mutex
	known     bool      // remaining is known from a response
	remaining int       // requests left in the current period, minus those in flight
	resetAt   time.Time // when the period renews (local clock)
	blocked   time.Time // a 429 asked us to wait until then (local clock)
	inflight  int
}

// reserve returns how long to wait before the next request may be sent, or
// zero after counting the request as in flight.
func (l *limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.blocked) {
		return l.blocked.Sub(now)
	}
	if l.known && !l.resetAt.IsZero() && !now.Before(l.resetAt) {
		l.known = false // a new period: the next response tells its budget
	}
	if l.known && l.remaining-l.inflight <= 0 {
		if l.resetAt.IsZero() {
			l.known = false
		} else {
			return l.resetAt.Sub(now)
		}
	}
	l.inflight++
	return 0
}

// done records a response (or its absence: h nil) for a reserved request.
func (l *limiter) done(h http.Header, status int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight > 0 {
		l.inflight--
	}
	if h == nil {
		return
	}
	info := readLimitHeaders(h, now)
	if info.hasRemaining {
		l.known = true
		l.remaining = info.remaining
		if !info.reset.IsZero() {
			l.resetAt = info.reset
		}
	}
	if status == http.StatusTooManyRequests {
		until := info.retryAt
		if until.IsZero() {
			until = info.reset
		}
		if !until.IsZero() && until.After(l.blocked) {
			l.blocked = until
		}
		l.known, l.remaining = true, 0
		if !until.IsZero() {
			l.resetAt = until
		}
	}
}

type limitInfo struct {
	hasRemaining bool
	remaining    int
	reset        time.Time // period renewal, local clock
	retryAt      time.Time // from Retry-After, local clock
}

// readLimitHeaders reads both header families. now is the local time the
// response arrived; epoch resets are converted through the response's Date so
// that a skewed local clock does not distort the wait.
func readLimitHeaders(h http.Header, now time.Time) limitInfo {
	var info limitInfo
	serverNow := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = d
	}
	for _, name := range []string{"X-RateLimit-Remaining", "X-RateLimit-Remaining-Hour"} {
		if v, ok := headerInt(h, name); ok {
			if !info.hasRemaining || int(v) < info.remaining {
				info.remaining = int(v)
			}
			info.hasRemaining = true
		}
	}
	for _, name := range []string{"X-RateLimit-Reset", "RateLimit-Reset", "X-RateLimit-Reset-Hour"} {
		if v, ok := headerInt(h, name); ok {
			t := resetTime(v, now, serverNow)
			if t.After(info.reset) {
				info.reset = t
			}
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			info.retryAt = now.Add(time.Duration(n) * time.Second)
		} else if t, err := http.ParseTime(v); err == nil {
			info.retryAt = now.Add(t.Sub(serverNow))
		}
	}
	return info
}

// resetTime interprets a reset header value: epoch seconds when above 10⁹,
// otherwise seconds from now.
func resetTime(v int64, now, serverNow time.Time) time.Time {
	if v > 1_000_000_000 {
		return now.Add(time.Unix(v, 0).Sub(serverNow))
	}
	return now.Add(time.Duration(v) * time.Second)
}

// headerInt reads an integer header; http.Header.Get canonicalises the name,
// so lower-case headers from the wire are found too.
func headerInt(h http.Header, name string) (int64, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
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
