package impactsim

import (
	"net/http"
	"strconv"
	"time"
)

// take spends one request from the hourly bucket; false means 429.
// Callers hold a.ctl.
func (c *control) take(now time.Time) bool {
	c.roll(now)
	if c.used >= c.limit {
		return false
	}
	c.used++
	return true
}

// roll starts a new window when the current one is over.
func (c *control) roll(now time.Time) {
	if c.winStart.IsZero() || !now.Before(c.winStart.Add(time.Hour)) {
		c.winStart, c.used = now, 0
	}
}

// rateHeaders writes the rate-limit headers of the family in force;
// limited adds Retry-After for the partner family.
func (c *control) rateHeaders(h http.Header, pathPersona Persona, now time.Time, limited bool) {
	c.roll(now)
	fam := c.family
	if fam&HeadersBoth == 0 {
		fam |= HeadersBrand
		if pathPersona == Partner {
			fam = fam&^HeadersBrand | HeadersPartner
		}
	}
	resetAt := c.winStart.Add(time.Hour)
	delta := max(int64(resetAt.Sub(now)/time.Second), 0)
	reset := strconv.FormatInt(delta, 10)
	if fam&HeadersResetEpoch != 0 {
		reset = strconv.FormatInt(resetAt.Unix(), 10)
	}
	limit, remaining := strconv.Itoa(c.limit), strconv.Itoa(max(c.limit-c.used, 0))
	set := func(name, v string) {
		if fam&HeadersLowerCase != 0 {
			h[lower(name)] = []string{v}
		} else {
			h.Set(name, v)
		}
	}
	if fam&HeadersBrand != 0 {
		set("X-RateLimit-Limit", limit)
		set("X-RateLimit-Remaining", remaining)
		set("X-RateLimit-Reset", reset)
	}
	if fam&HeadersPartner != 0 {
		set("X-RateLimit-Limit-hour", limit)
		set("X-RateLimit-Remaining-hour", remaining)
		set("RateLimit-Reset", reset)
		if limited {
			set("Retry-After", strconv.FormatInt(max(delta, 1), 10))
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
