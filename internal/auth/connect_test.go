package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

// follow sends the browser to authURL and returns the query impact.com
// redirects back with.
func (b *bundle) follow(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func TestBeginMakesFreshStateAndVerifier(t *testing.T) {
	b := setup(t)
	u1, err := b.conn.Begin(testAccount, syncer.Brand, testSID)
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
	p1, _ := url.Parse(u1)
	p2, _ := url.Parse(u2)
	q1, q2 := p1.Query(), p2.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": testClientID, "redirect_uri": b.cfg.RedirectURL,
		"scope": "offline_access Actions", "code_challenge_method": "S256", "login_hint": testSID,
	} {
		if q1.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q1.Get(k), want)
		}
	}
	if len(q1.Get("state")) < 32 || len(q1.Get("code_challenge")) != 43 {
		t.Fatalf("state %q, challenge %q", q1.Get("state"), q1.Get("code_challenge"))
	}
	if q1.Get("state") == q2.Get("state") || q1.Get("code_challenge") == q2.Get("code_challenge") {
		t.Fatal("state or verifier reused between attempts")
	}
	if strings.Contains(u1, testClientSecret.Reveal()) || q1.Has("code_verifier") {
		t.Fatal("authorize URL leaks the client secret or the verifier")
	}
	b.conn.mu.Lock()
	for _, a := range b.conn.attempts {
		if len(a.verifier) < 43 || len(a.verifier) > 128 {
			t.Errorf("verifier length %d", len(a.verifier))
		}
	}
	b.conn.mu.Unlock()

	for _, bad := range []struct{ id, persona, sid string }{{"", "brand", "S"}, {"a", "agency", "S"}, {"a", "brand", ""}} {
		if _, err := b.conn.Begin(bad.id, syncer.Persona(bad.persona), bad.sid); err == nil {
			t.Errorf("Begin(%q, %q, %q) accepted", bad.id, bad.persona, bad.sid)
		}
	}
}

func TestCompleteFlow(t *testing.T) {
	b := setup(t)
	u, _ := b.conn.Begin(testAccount, syncer.Partner, testSID)
	q := b.follow(t, u)
	p, tok, err := b.conn.Complete(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if p.AccountID != testAccount || p.Persona != syncer.Partner || p.SID != testSID || !p.StartedAt.Equal(b.clock.Now()) {
		t.Fatalf("pending %+v", p)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if sid, ok := b.sim.ValidateAccess(tok.AccessToken); !ok || sid != testSID {
		t.Fatalf("access token for %q, %v", sid, ok)
	}
	// Replaying the same callback.
	if _, _, err := b.conn.Complete(t.Context(), q); !errors.Is(err, ErrStateReplayed) {
		t.Fatalf("replay: %v", err)
	}
}

func TestCompleteRejectsBadState(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(b *bundle, q url.Values) url.Values
		want    error
	}{
		{"wrong", func(b *bundle, q url.Values) url.Values {
			q.Set("state", q.Get("state")[:42]+"x")
			return q
		}, ErrStateUnknown},
		{"missing", func(b *bundle, q url.Values) url.Values { q.Del("state"); return q }, ErrStateUnknown},
		{"expired", func(b *bundle, q url.Values) url.Values { b.clock.Advance(PendingTTL + time.Second); return q }, ErrStateExpired},
		{"long forgotten", func(b *bundle, q url.Values) url.Values {
			b.clock.Advance(PendingTTL + stateMemory + time.Second)
			return q
		}, ErrStateUnknown},
		{"replayed after a failed exchange", func(b *bundle, q url.Values) url.Values {
			bad := url.Values{"state": {q.Get("state")}, "code": {"not-a-code"}}
			if _, _, err := b.conn.Complete(context.Background(), bad); !InvalidGrant(err) {
				panic(err)
			}
			return q
		}, ErrStateReplayed},
		{"replayed after an expired use", func(b *bundle, q url.Values) url.Values {
			b.clock.Advance(PendingTTL + time.Second)
			b.conn.Complete(context.Background(), q)
			return q
		}, ErrStateReplayed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			u, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
			q := tt.prepare(b, b.follow(t, u))
			before := b.sim.TokenRequests()
			_, tok, err := b.conn.Complete(t.Context(), q)
			if !errors.Is(err, tt.want) || tok != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if b.sim.TokenRequests() != before {
				t.Fatal("code exchanged despite a bad state")
			}
		})
	}
}

func TestCompleteDenied(t *testing.T) {
	b := setup(t)
	u, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
	q := b.follow(t, u+"&sim_deny=1")
	p, _, err := b.conn.Complete(t.Context(), q)
	var ae *AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "access_denied" || p.AccountID != testAccount {
		t.Fatalf("err = %v, pending %+v", err, p)
	}
	if want := "impact.com authorization was denied (access_denied): The user denied the authorization request"; err.Error() != want {
		t.Fatalf("message %q", err)
	}
	// The error is checked first, and the state is used up.
	q.Del("error")
	q.Set("code", "x")
	if _, _, err := b.conn.Complete(t.Context(), q); !errors.Is(err, ErrStateReplayed) {
		t.Fatalf("after denial: %v", err)
	}
	if b.sim.TokenRequests() != 0 {
		t.Fatal("token request after a denial")
	}
}

func TestTamperedVerifierRejectedByServer(t *testing.T) {
	b := setup(t)
	u, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
	b.conn.mu.Lock()
	b.conn.attempts[0].verifier = strings.Repeat("A", 43)
	b.conn.mu.Unlock()
	_, tok, err := b.conn.Complete(t.Context(), b.follow(t, u))
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || !strings.Contains(te.Description, "PKCE") || tok != nil {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "account acme: exchanging the authorization code") {
		t.Fatalf("message %q", err)
	}
}

func TestCompleteWrongClientSecret(t *testing.T) {
	b := setup(t)
	cfg := b.cfg
	cfg.ClientSecret = "wrong-secret"
	c, _ := NewConnector(cfg, b.srv.Client(), nil, b.clock.Now)
	u, _ := c.Begin(testAccount, syncer.Brand, testSID)
	_, _, err := c.Complete(t.Context(), b.follow(t, u))
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || te.Status != 401 {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatal("error shows the client secret")
	}
}

func TestCallbackHandler(t *testing.T) {
	type result struct {
		p  Pending
		rt syncer.Secret
	}
	tests := []struct {
		name       string
		editURL    func(string) string
		editQuery  func(url.Values)
		saveErr    error
		status     int
		connected  bool
		pageSubstr string
	}{
		{"connected", nil, nil, nil, 200, true, "Account acme (SID IRsid0001) is connected"},
		{"denied", func(u string) string { return u + "&sim_deny=1" }, nil, nil, 400, false, "was denied (access_denied)"},
		{"bad state", nil, func(q url.Values) { q.Set("state", "forged-state-forged-state-forged-state") }, nil, 400, false, "OAuth state unknown"},
		{"forged error", nil, func(q url.Values) {
			q.Set("state", "forged")
			q.Set("error", "access_denied")
			q.Set("error_description", "<script>call +1 555</script>")
		}, nil, 400, false, "does not belong to an authorization started by impact-syncer"},
		{"bad code", nil, func(q url.Values) { q.Set("code", "sim_code_bogus") }, nil, 502, false, "invalid_grant"},
		{"save fails", nil, nil, errors.New("disk full"), 500, true, "could not save the connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			var got []result
			var failed []error
			h := b.conn.CallbackHandler(func(_ context.Context, p Pending, rt syncer.Secret) error {
				got = append(got, result{p, rt})
				return tt.saveErr
			})
			h.OnFailed = func(_ context.Context, _ Pending, err error) { failed = append(failed, err) }

			u, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
			if tt.editURL != nil {
				u = tt.editURL(u)
			}
			q := b.follow(t, u)
			if tt.editQuery != nil {
				tt.editQuery(q)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/oauth/callback?"+q.Encode(), nil))
			body, _ := io.ReadAll(rec.Body)
			page := string(body)

			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, page)
			}
			if !strings.Contains(page, tt.pageSubstr) {
				t.Fatalf("page lacks %q: %s", tt.pageSubstr, page)
			}
			if (len(got) == 1) != tt.connected {
				t.Fatalf("OnConnected calls: %d", len(got))
			}
			if tt.connected && (got[0].p.AccountID != testAccount || got[0].rt == "") {
				t.Fatalf("OnConnected got %+v", got[0])
			}
			if (len(failed) == 1) == (tt.status == 200) {
				t.Fatalf("OnFailed calls: %d", len(failed))
			}
			for _, s := range []string{"sim_rt_", "sim_at_", "sim_code_", q.Get("state"), "<script>", testClientSecret.Reveal()} {
				if s != "" && strings.Contains(page, s) {
					t.Fatalf("page contains %q: %s", s, page)
				}
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
				t.Fatal("missing no-store / no-referrer")
			}
		})
	}
}

func TestCallbackPathAndMethod(t *testing.T) {
	b := setup(t)
	if got := b.conn.CallbackPath(); got != "/oauth/callback" {
		t.Fatalf("CallbackPath = %q", got)
	}
	rec := httptest.NewRecorder()
	b.conn.CallbackHandler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth/callback", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

// The whole path: connect through the callback into a real AccountStore
// adapter with a Keyring, then use the account through the Manager.
func TestConnectThenUse(t *testing.T) {
	b := setup(t)
	accounts := &syncertest.Accounts{}
	tokens := NewAccountTokens(accounts, testKeyring(t, 9), b.clock.Now)
	m, err := NewManager(ManagerConfig{OAuth: b.cfg, Store: tokens, TokenClient: b.srv.Client(), Base: b.srv.Client().Transport, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := b.conn.CallbackHandler(func(ctx context.Context, p Pending, rt syncer.Secret) error {
		if err := tokens.Connected(ctx, p, rt); err != nil {
			return err
		}
		m.Forget(p.AccountID)
		return nil
	})
	u, _ := b.conn.Begin(testAccount, syncer.Brand, testSID)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth/callback?"+b.follow(t, u).Encode(), nil))
	if rec.Code != 200 {
		t.Fatalf("callback: %d %s", rec.Code, rec.Body)
	}
	a, _ := accounts.Account(t.Context(), testAccount)
	if a.AuthKind != syncer.AuthOAuth || a.Status != syncer.StatusActive || a.SID != testSID {
		t.Fatalf("account %+v", a)
	}
	if resp := b.get(t, m.Transport(testAccount), "/api/ping"); resp.StatusCode != 200 {
		t.Fatalf("API: %d", resp.StatusCode)
	}
	rt, lastUsed, err := tokens.LoadRefreshToken(t.Context(), testAccount)
	if err != nil || rt == "" || !lastUsed.Equal(b.clock.Now()) {
		t.Fatalf("stored token: %v, %v", lastUsed, err)
	}
	// Revoked by the user: the account ends up needs_reconnect, token deleted.
	b.sim.Revoke(testSID)
	b.clock.Advance(10 * time.Minute)
	resp, err := m.Transport(testAccount).RoundTrip(httptest.NewRequest(http.MethodGet, b.srv.URL+"/api/ping", nil))
	if !errors.Is(err, syncer.ErrNeedsReconnect) || resp != nil {
		t.Fatalf("after revoke: %v", err)
	}
	a, _ = accounts.Account(t.Context(), testAccount)
	if a.Status != syncer.StatusNeedsReconnect || !strings.Contains(a.StatusReason, "invalid_grant") {
		t.Fatalf("account %+v", a)
	}
	if rt, _, _ := tokens.LoadRefreshToken(t.Context(), testAccount); rt != "" {
		t.Fatal("rejected token still stored")
	}
}
