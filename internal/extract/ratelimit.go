package extract

import (
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
//
// The API counts some endpoints in separate hourly groups (partner /Actions
// 500/h, everything else 1,000/h; docs/impact-api.md §5.2), and the headers of a
// response describe the group of its endpoint. The limiter therefore keeps
// the budget each endpoint last reported, as well as the budget the latest
// response of any endpoint reported, and a request waits for both — unless
// the two carry different limits, which shows they are different groups.
// So it never spends a request it knows will fail, whether the account has
// one bucket or several.
type limiter struct {
	mu     sync.Mutex
	all    budget             // from the latest response of any endpoint
	groups map[string]*budget // from the latest response of each endpoint
}

// budget is what the headers said about one bucket.
type budget struct {
	known     bool      // remaining is known from a response
	remaining int       // requests left in the current period
	limit     string    // the period's limit(s), telling buckets apart; "" if unknown
	resetAt   time.Time // when the period renews (local clock)
	blocked   time.Time // a 429 asked us to wait until then (local clock)
	inflight  int       // requests sent and not yet answered
}

func (l *limiter) group(name string) *budget {
	if l.groups == nil {
		l.groups = map[string]*budget{}
	}
	g, ok := l.groups[name]
	if !ok {
		g = &budget{}
		l.groups[name] = g
	}
	return g
}

// reserve returns how long to wait before the next request to endpoint group
// may be sent, or zero after counting the request as in flight.
func (l *limiter) reserve(group string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.group(group)
	wait := g.wait(now)
	if g.limit == "" || g.limit == l.all.limit {
		wait = max(wait, l.all.wait(now)) // possibly the same bucket
	}
	if wait > 0 {
		return wait
	}
	g.inflight++
	l.all.inflight++
	return 0
}

// wait is how long the budget asks to wait before the next request.
func (b *budget) wait(now time.Time) time.Duration {
	if now.Before(b.blocked) {
		return b.blocked.Sub(now)
	}
	if b.known && !b.resetAt.IsZero() && !now.Before(b.resetAt) {
		b.known = false // a new period: the next response tells its budget
	}
	if b.known && b.remaining-b.inflight <= 0 {
		if b.resetAt.IsZero() {
			b.known = false
		} else {
			return b.resetAt.Sub(now)
		}
	}
	return 0
}

// done records the response (or its absence: h nil) to a request reserve
// let through.
func (l *limiter) done(group string, h http.Header, status int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.group(group)
	g.inflight = max(g.inflight-1, 0)
	l.all.inflight = max(l.all.inflight-1, 0)
	if h == nil {
		return
	}
	info := readLimitHeaders(h, now)
	g.update(info, status)
	l.all.update(info, status)
}

func (b *budget) update(info limitInfo, status int) {
	if info.limit != "" {
		b.limit = info.limit
	}
	if info.hasRemaining {
		b.known = true
		b.remaining = info.remaining
		if !info.reset.IsZero() {
			b.resetAt = info.reset
		}
	}
	if status == http.StatusTooManyRequests {
		until := info.retryAt
		if until.IsZero() {
			until = info.reset
		}
		if !until.IsZero() && until.After(b.blocked) {
			b.blocked = until
		}
		b.known, b.remaining = true, 0
		if !until.IsZero() {
			b.resetAt = until
		}
	}
}

type limitInfo struct {
	limit        string // the limit headers' values, e.g. "1000" or "1000/500"
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
	var limits []string
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Limit-Hour"} {
		if v, ok := headerInt(h, name); ok {
			limits = append(limits, strconv.FormatInt(v, 10))
		}
	}
	info.limit = strings.Join(limits, "/")
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
			info.retryAt = now.Add(time.Duration(n)*time.Second + deltaMargin)
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
		// Date is truncated to the second, so this errs late, never early
		return now.Add(time.Unix(v, 0).Sub(serverNow))
	}
	return now.Add(time.Duration(v)*time.Second + deltaMargin)
}

// deltaMargin is added to waits given in whole seconds from now (a reset in
// delta seconds, Retry-After): a server that rounds the remaining time down
// would otherwise see the next request up to a second early, and refuse it.
const deltaMargin = time.Second

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
