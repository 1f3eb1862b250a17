package impactsim

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawGet sends a GET over a plain connection and returns the raw response,
// header names exactly as written on the wire.
func (b *bundle) rawGet(path, user, pass string) string {
	b.t.Helper()
	conn, err := net.Dial("tcp", b.srv.Listener.Addr().String())
	if err != nil {
		b.t.Fatal(err)
	}
	defer conn.Close()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	_, err = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: sim\r\nAuthorization: Basic "+auth+"\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
	if err != nil {
		b.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(conn)
	return string(raw)
}

func TestRateLimitHeadersByPersona(t *testing.T) {
	b := setup(t)
	br, pr := b.brand("/Campaigns"), b.partner("/Campaigns")
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if br.header.Get(h) == "" {
			t.Errorf("brand response lacks %s", h)
		}
		if pr.header.Get(h) != "" {
			t.Errorf("partner response has brand header %s", h)
		}
	}
	for _, h := range []string{"X-RateLimit-Limit-hour", "X-RateLimit-Remaining-hour", "RateLimit-Reset"} {
		if pr.header.Get(h) == "" {
			t.Errorf("partner response lacks %s", h)
		}
		if br.header.Get(h) != "" {
			t.Errorf("brand response has partner header %s", h)
		}
	}
	if br.header.Get("X-RateLimit-Limit") != strconv.Itoa(DefaultRateLimit) {
		t.Errorf("default limit %s", br.header.Get("X-RateLimit-Limit"))
	}
}

func TestRateLimitBucketAnswers429(t *testing.T) {
	b := setup(t)
	b.sim.SetRateLimit(brandSID, 3, HeadersAuto)
	b.sim.SetRateLimit(partnerSID, 2, HeadersAuto)
	for k, want := range []string{"2", "1", "0"} {
		r := b.brand("/Campaigns")
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("X-RateLimit-Remaining"); got != want {
			t.Errorf("request %d: Remaining %s, want %s", k+1, got, want)
		}
	}
	r := b.brand("/Campaigns")
	wantError(t, r, http.StatusTooManyRequests, "rate limit")
	if r.header.Get("Retry-After") != "" {
		t.Error("brand 429 carries Retry-After (undocumented on the brand side)")
	}
	if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != "3600" {
		t.Errorf("429 headers %v", r.header)
	}
	b.partner("/Campaigns")
	b.partner("/Campaigns")
	p := b.partner("/Actions")
	wantError(t, p, http.StatusTooManyRequests, "rate limit")
	if p.header.Get("Retry-After") != "3600" || p.header.Get("RateLimit-Reset") != "3600" || p.header.Get("X-RateLimit-Remaining-hour") != "0" {
		t.Errorf("partner 429 headers %v", p.header)
	}
	if st := b.sim.Stats(brandSID); st.RateLimited != 1 || st.ByStatus[429] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRateLimitWindowResetsOnSimulatorClock(t *testing.T) {
	b := setup(t)
	b.sim.SetRateLimit(brandSID, 1, HeadersBrand)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
	b.sim.Clock().Advance(20 * time.Minute)
	r := b.brand("/Campaigns")
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("X-RateLimit-Reset") != "2400" {
		t.Errorf("Reset %s, want 2400 seconds", r.header.Get("X-RateLimit-Reset"))
	}
	b.sim.Clock().Advance(40 * time.Minute)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
}

func TestRateLimitHeaderFamilyBothLowerCaseEpoch(t *testing.T) {
	b := setup(t)
	b.sim.SetRateLimit(brandSID, 5, HeadersBoth|HeadersLowerCase|HeadersResetEpoch)
	raw := b.rawGet("/Advertisers/"+brandSID+"/Campaigns", brandSID, brandToken)
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	epoch := strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)
	for _, line := range []string{
		"x-ratelimit-limit: 5", "x-ratelimit-remaining: 4", "x-ratelimit-reset: " + epoch,
		"x-ratelimit-limit-hour: 5", "x-ratelimit-remaining-hour: 4", "ratelimit-reset: " + epoch,
	} {
		if !strings.Contains(head, "\r\n"+line+"\r\n") {
			t.Errorf("missing %q in\n%s", line, head)
		}
	}
	b.sim.SetRateLimit(brandSID, 1, HeadersBoth)
	b.brand("/Campaigns")
	r := b.brand("/Campaigns")
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Limit") != "1" || r.header.Get("X-RateLimit-Limit-hour") != "1" {
		t.Errorf("both families on 429: %d %v", r.status, r.header)
	}
}
