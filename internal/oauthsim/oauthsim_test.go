package oauthsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clientID     = "impact-syncer-test"
	clientSecret = "s3cret-client"
	redirectURI  = "https://syncer.example/oauth/callback"
	verifier     = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789"
	state        = "0123456789abcdef0123456789abcdef-state"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bundle struct {
	sim    *Server
	srv    *httptest.Server
	clock  *clock
	issued map[string]string // access token → sid
	mu     sync.Mutex
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, issued: map[string]string{}}
	b.sim = New(Options{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI},
		Now: b.clock.Now,
		OnAccessIssued: func(sid, token string, _ time.Time) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.issued[token] = sid
		},
	})
	b.srv = httptest.NewServer(b.sim.Handler())
	t.Cleanup(b.srv.Close)
	return b
}

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func authorizeParams() url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {"offline_access Actions"},
		"state":                 {state},
		"code_challenge":        {challenge(verifier)},
		"code_challenge_method": {"S256"},
		"login_hint":            {"IRabc123"},
	}
}

// authorize performs the authorize request and returns the status and the
// redirect's query (nil without a redirect).
func (b *bundle) authorize(t *testing.T, q url.Values) (int, url.Values) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(b.srv.URL + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	return resp.StatusCode, loc.Query()
}

type tokenResult struct {
	Status           int
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (b *bundle) token(t *testing.T, form url.Values, basic bool) tokenResult {
	t.Helper()
	if basic {
		form.Del("client_secret")
		form.Del("client_id")
	} else if !form.Has("client_id") {
		form.Set("client_id", clientID)
		form.Set("client_secret", clientSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r tokenResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	r.Status = resp.StatusCode
	return r
}

func (b *bundle) codeFlow(t *testing.T) tokenResult {
	t.Helper()
	_, q := b.authorize(t, authorizeParams())
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	return b.token(t, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier},
	}, false)
}

func TestCodeFlowAndRotation(t *testing.T) {
	b := setup(t)
	r := b.codeFlow(t)
	if r.Status != 200 || r.AccessToken == "" || r.RefreshToken == "" || r.TokenType != "Bearer" || r.ExpiresIn != 300 {
		t.Fatalf("exchange: %+v", r)
	}
	if sid, ok := b.sim.ValidateAccess(r.AccessToken); !ok || sid != "IRabc123" {
		t.Fatalf("ValidateAccess = %q, %v", sid, ok)
	}
	if b.issued[r.AccessToken] != "IRabc123" {
		t.Fatal("OnAccessIssued not called")
	}
	b.clock.Advance(301 * time.Second)
	if _, ok := b.sim.ValidateAccess(r.AccessToken); ok {
		t.Fatal("expired access token accepted")
	}

	old := r.RefreshToken
	r2 := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}, true)
	if r2.Status != 200 || r2.RefreshToken == "" || r2.RefreshToken == old {
		t.Fatalf("refresh: %+v", r2)
	}
	if b.sim.LiveRefreshToken("grant-1") != r2.RefreshToken {
		t.Fatal("live refresh token is not the rotated one")
	}

	// Reusing the rotated token is theft: the whole family goes.
	r3 := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}, false)
	if r3.Status != 400 || r3.Error != "invalid_grant" {
		t.Fatalf("reuse: %+v", r3)
	}
	if !b.sim.Revoked("grant-1") {
		t.Fatal("grant not revoked after reuse")
	}
	r4 := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2.RefreshToken}}, false)
	if r4.Error != "invalid_grant" {
		t.Fatalf("newest token after theft: %+v", r4)
	}
	if _, ok := b.sim.ValidateAccess(r2.AccessToken); ok {
		t.Fatal("access token of a revoked grant accepted")
	}
	if got := b.sim.TokenRequests(); got != 4 {
		t.Fatalf("TokenRequests = %d, want 4", got)
	}
	if got := b.sim.TokenRequestsFor("IRabc123"); got != 4 {
		t.Fatalf("TokenRequestsFor(sid) = %d, want 4", got)
	}
}

func TestCodeReuseRevokes(t *testing.T) {
	b := setup(t)
	_, q := b.authorize(t, authorizeParams())
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	r := b.token(t, form, false)
	if r.Status != 200 {
		t.Fatalf("%+v", r)
	}
	form.Del("client_id")
	r2 := b.token(t, form, false)
	if r2.Error != "invalid_grant" || !b.sim.Revoked("grant-1") {
		t.Fatalf("reuse: %+v revoked=%v", r2, b.sim.Revoked("grant-1"))
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name   string
		form   func(code string) url.Values
		advan  time.Duration
		status int
		err    string
	}{
		{"wrong verifier", func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}, "code_verifier": {strings.Repeat("x", 43)}}
		}, 0, 400, "invalid_grant"},
		{"missing verifier", func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}}
		}, 0, 400, "invalid_grant"},
		{"wrong redirect", func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {"https://evil.example/cb"}, "code_verifier": {verifier}}
		}, 0, 400, "invalid_grant"},
		{"expired code", func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		}, 11 * time.Minute, 400, "invalid_grant"},
		{"bad client secret", func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}, "client_id": {clientID}, "client_secret": {"nope"}}
		}, 0, 401, "invalid_client"},
		{"unknown grant type", func(string) url.Values { return url.Values{"grant_type": {"password"}} }, 0, 400, "unsupported_grant_type"},
		{"unknown refresh token", func(string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}
		}, 0, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			_, q := b.authorize(t, authorizeParams())
			b.clock.Advance(tt.advan)
			r := b.token(t, tt.form(q.Get("code")), false)
			if r.Status != tt.status || r.Error != tt.err || r.ErrorDescription == "" {
				t.Fatalf("got %+v, want %d %s", r, tt.status, tt.err)
			}
		})
	}
}

func TestRefreshIdleExpiry(t *testing.T) {
	b := setup(t)
	_, rt := b.sim.IssueGrant("IRabc123")
	b.clock.Advance(89 * 24 * time.Hour)
	r := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, false)
	if r.Status != 200 {
		t.Fatalf("within 90 days: %+v", r)
	}
	b.clock.Advance(90*24*time.Hour + time.Second)
	r2 := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, false)
	if r2.Error != "invalid_grant" {
		t.Fatalf("after 90 idle days: %+v", r2)
	}
}

func TestRevoke(t *testing.T) {
	b := setup(t)
	g, rt := b.sim.IssueGrant("IRabc123")
	if n := b.sim.Revoke("IRabc123"); n != 1 {
		t.Fatalf("Revoke = %d", n)
	}
	r := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, false)
	if r.Error != "invalid_grant" || b.sim.LiveRefreshToken(g) != "" {
		t.Fatalf("%+v", r)
	}
}

func TestAuthorizeValidation(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(url.Values)
		status int
		err    string
	}{
		{"ok", func(url.Values) {}, 302, ""},
		{"unknown client", func(q url.Values) { q.Set("client_id", "x") }, 400, ""},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/") }, 400, ""},
		{"response type", func(q url.Values) { q.Set("response_type", "token") }, 302, "unsupported_response_type"},
		{"no offline_access", func(q url.Values) { q.Set("scope", "Actions") }, 302, "invalid_scope"},
		{"short state", func(q url.Values) { q.Set("state", "abc") }, 302, "invalid_request"},
		{"plain method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, 302, "invalid_request"},
		{"no challenge", func(q url.Values) { q.Del("code_challenge") }, 302, "invalid_request"},
		{"no account", func(q url.Values) { q.Del("login_hint") }, 302, "invalid_request"},
		{"deny", func(q url.Values) { q.Set("sim_deny", "1") }, 302, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			q := authorizeParams()
			tt.edit(q)
			status, rq := b.authorize(t, q)
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			if rq == nil {
				return
			}
			if rq.Get("error") != tt.err {
				t.Fatalf("error %q, want %q (%v)", rq.Get("error"), tt.err, rq)
			}
			if rq.Get("state") != q.Get("state") {
				t.Fatal("state not echoed")
			}
			if (tt.err == "") == (rq.Get("code") == "") {
				t.Fatalf("code presence wrong: %v", rq)
			}
		})
	}
}
