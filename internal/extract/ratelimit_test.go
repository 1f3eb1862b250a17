package extract

import (
	"net/http"
	"testing"
	"time"
)

func TestReadLimitHeaders(t *testing.T) {
	now := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	date := now.Add(-2 * time.Second) // the server's clock is 2 s behind ours
	cases := []struct {
		name         string
		h            map[string]string // names exactly as on the wire
		remaining    int               // -1: none
		limit        string
		reset, retry time.Time
	}{
		{name: "brand family, reset in seconds",
			h:         map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1200"},
			remaining: 7, limit: "1000", reset: now.Add(1200*time.Second + deltaMargin)},
		{name: "partner family with Retry-After",
			h: map[string]string{"X-RateLimit-Limit-hour": "100", "X-RateLimit-Remaining-hour": "0",
				"RateLimit-Reset": "700", "Retry-After": "700"},
			remaining: 0, limit: "100", reset: now.Add(700*time.Second + deltaMargin), retry: now.Add(700*time.Second + deltaMargin)},
		{name: "both families in lower case: the smaller remaining, the later reset",
			h: map[string]string{"x-ratelimit-limit-hour": "500", "x-ratelimit-remaining-hour": "3",
				"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "990", "x-ratelimit-reset": "1200", "ratelimit-reset": "600"},
			remaining: 3, limit: "1000/500", reset: now.Add(1200*time.Second + deltaMargin)},
		{name: "reset as an epoch, measured from the response's Date",
			h:         map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1776254700"}, // 12:05:00Z
			remaining: 0, reset: now.Add(time.Unix(1776254700, 0).Sub(date))},
		{name: "Retry-After as an HTTP date",
			h:         map[string]string{"Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat)},
			remaining: -1, retry: now.Add(90 * time.Second)},
		{name: "garbage is ignored",
			h:         map[string]string{"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "-5", "Retry-After": "soon"},
			remaining: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Date": {date.Format(http.TimeFormat)}}
			for k, v := range tc.h {
				h[k] = []string{v} // as received: net/http canonicalises names on the client
			}
			h = canonical(h)
			info := readLimitHeaders(h, now)
			if got := info.hasRemaining; got != (tc.remaining >= 0) || (got && info.remaining != tc.remaining) {
				t.Errorf("remaining = %v %d, want %d", got, info.remaining, tc.remaining)
			}
			if info.limit != tc.limit {
				t.Errorf("limit = %q, want %q", info.limit, tc.limit)
			}
			if !info.reset.Equal(tc.reset) {
				t.Errorf("reset = %v, want %v", info.reset, tc.reset)
			}
			if !info.retryAt.Equal(tc.retry) {
				t.Errorf("retryAt = %v, want %v", info.retryAt, tc.retry)
			}
		})
	}
}

// canonical re-keys h the way net/http's client does when it reads a
// response, whatever case the server wrote.
func canonical(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

func TestLimiterWaitsForTheResetAndCountsInFlight(t *testing.T) {
	now := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	var l limiter
	if w := l.reserve("Campaigns", now); w != 0 {
		t.Fatalf("first request waits %v", w)
	}
	l.done("Campaigns", http.Header{"X-Ratelimit-Remaining": {"2"}, "X-Ratelimit-Reset": {"60"}}, 200, now)
	// two left: two concurrent requests go, the third waits for the reset
	for i := range 2 {
		if w := l.reserve("Campaigns", now); w != 0 {
			t.Fatalf("request %d waits %v", i, w)
		}
	}
	if w := l.reserve("Campaigns", now); w != 60*time.Second+deltaMargin {
		t.Fatalf("third request waits %v, want the reset", w)
	}
	// after the reset the budget is unknown until the next response
	if w := l.reserve("Campaigns", now.Add(61*time.Second)); w != 0 {
		t.Fatalf("after the reset: waits %v", w)
	}
	// a 429 blocks until its Retry-After
	l.done("Campaigns", http.Header{"Retry-After": {"30"}}, http.StatusTooManyRequests, now.Add(61*time.Second))
	if w := l.reserve("Campaigns", now.Add(62*time.Second)); w != 29*time.Second+deltaMargin {
		t.Fatalf("after the 429: waits %v", w)
	}
}
