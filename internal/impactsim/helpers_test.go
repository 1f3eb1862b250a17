package impactsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testNow is the simulator clock every test starts from (PDT).
var testNow = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

const (
	brandSID     = "IRbrandTest0000000000000000000001"
	brandToken   = "brand-token"
	partnerSID   = "IRpartnerTest00000000000000000001"
	partnerToken = "partner-token"
)

// bundle is what setup returns: the simulator, its test server, and helpers.
type bundle struct {
	t   *testing.T
	sim *Server
	srv *httptest.Server
}

func brandSpec() AccountSpec {
	return AccountSpec{SID: brandSID, Token: brandToken, Persona: Brand, Seed: 7, Campaigns: 3, Actions: 3000, MediaPartners: 30, PromoCodes: 8}
}

func partnerSpec() AccountSpec {
	return AccountSpec{SID: partnerSID, Token: partnerToken, Persona: Partner, Seed: 11, Campaigns: 4, Actions: 1500, PromoCodes: 6}
}

func setup(t *testing.T, specs ...AccountSpec) *bundle {
	t.Helper()
	if len(specs) == 0 {
		specs = []AccountSpec{brandSpec(), partnerSpec()}
	}
	sim := New(Options{Now: testNow})
	for _, sp := range specs {
		if err := sim.AddAccount(sp); err != nil {
			t.Fatalf("AddAccount(%s): %v", sp.SID, err)
		}
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &bundle{t: t, sim: sim, srv: srv}
}

// result is one HTTP exchange.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%.400s", err, r.body)
	}
	return m
}

// do sends a request; opts tweak it before it goes.
func (b *bundle) do(method, path string, opts ...func(*http.Request)) result {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func acceptJSON(r *http.Request) { r.Header.Set("Accept", "application/json") }

// brand GETs path as the test brand with Accept: application/json.
func (b *bundle) brand(path string) result {
	b.t.Helper()
	return b.do("GET", "/Advertisers/"+brandSID+path, basic(brandSID, brandToken), acceptJSON)
}

// partner GETs path as the test partner with Accept: application/json.
func (b *bundle) partner(path string) result {
	b.t.Helper()
	return b.do("GET", "/Mediapartners/"+partnerSID+path, basic(partnerSID, partnerToken), acceptJSON)
}

func wantStatus(t *testing.T, r result, status int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %.500s", r.status, status, r.body)
	}
}

// wantError checks an error envelope with the given status.
func wantError(t *testing.T, r result, status int, msgContains string) map[string]any {
	t.Helper()
	wantStatus(t, r, status)
	m := r.json(t)
	if m["Status"] != "ERROR" {
		t.Errorf(`Status = %v, want "ERROR"`, m["Status"])
	}
	msg, _ := m["Message"].(string)
	if msg == "" || !contains(msg, msgContains) {
		t.Errorf("Message = %q, want it to contain %q", msg, msgContains)
	}
	return m
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
