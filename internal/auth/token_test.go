package auth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestConcurrentCallersCauseOneRefresh(t *testing.T) {
	b := setup(t)
	grant := b.connect(t, testAccount)
	ts := b.mgr.Source(testAccount)

	const n = 10
	toks := make([]syncer.Secret, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = ts.Token(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] == "" || toks[i] != toks[0] {
			t.Fatalf("caller %d: %q, %v", i, toks[i].Reveal(), errs[i])
		}
	}
	if got := b.sim.TokenRequests(); got != 1 {
		t.Fatalf("token requests = %d, want 1", got)
	}
	if b.store.token(testAccount).Reveal() != b.sim.LiveRefreshToken(grant) {
		t.Fatal("store does not hold the rotated refresh token")
	}
	if _, ok := b.sim.ValidateAccess(toks[0].Reveal()); !ok {
		t.Fatal("access token not valid on the server")
	}
}

func TestStoreHoldsRotatedTokenAfterEachRefresh(t *testing.T) {
	b := setup(t)
	grant := b.connect(t, testAccount)
	ts := b.mgr.Source(testAccount)
	seen := map[syncer.Secret]bool{b.store.token(testAccount): true}
	for i := range 4 {
		if _, err := ts.Token(t.Context()); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		stored := b.store.token(testAccount)
		if seen[stored] {
			t.Fatalf("refresh %d: stored token was not rotated", i)
		}
		seen[stored] = true
		if stored.Reveal() != b.sim.LiveRefreshToken(grant) {
			t.Fatalf("refresh %d: store holds a token the server no longer accepts", i)
		}
		b.clock.Advance(5 * time.Minute) // the access token is due
		b.simClock.Advance(5 * time.Minute)
	}
	if got := b.sim.TokenRequests(); got != 4 {
		t.Fatalf("token requests = %d, want 4", got)
	}
	// The access token is reused while valid.
	tok1, _ := ts.Token(t.Context())
	tok2, _ := ts.Token(t.Context())
	if tok1 != tok2 || b.sim.TokenRequests() != 5 {
		t.Fatalf("valid access token not reused (requests %d)", b.sim.TokenRequests())
	}
}

func TestInvalidGrantMarksReconnectAndStops(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(b *bundle, grant string)
	}{
		{"revoked by the user", func(b *bundle, grant string) { b.sim.Revoke(testSID) }},
		{"idle for more than 90 days", func(b *bundle, grant string) {
			b.simClock.Advance(91 * 24 * time.Hour)
		}},
		{"stored token rotated by someone else (theft detection)", func(b *bundle, grant string) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.sim.LiveRefreshToken(grant)},
				"client_id": {testClientID}, "client_secret": {testClientSecret.Reveal()}}
			resp, err := http.PostForm(b.srv.URL+"/oauth2/token", form)
			if err != nil || resp.StatusCode != 200 {
				panic(err)
			}
			resp.Body.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			grant := b.connect(t, testAccount)
			tt.break_(b, grant)
			ts := b.mgr.Source(testAccount)

			_, err := ts.Token(t.Context())
			if !errors.Is(err, syncer.ErrNeedsReconnect) || !InvalidGrant(err) || !syncer.IsCredentialDead(err) {
				t.Fatalf("err = %v, want ErrNeedsReconnect with invalid_grant", err)
			}
			if b.store.token(testAccount) != "" {
				t.Fatal("rejected refresh token not deleted")
			}
			marks := b.store.markList()
			want := "acme: impact.com rejected the refresh token (invalid_grant): re-authorize with syncer connect --account acme"
			if len(marks) != 1 || marks[0] != want {
				t.Fatalf("marks = %q", marks)
			}
			before := b.sim.TokenRequests()
			for range 3 {
				b.clock.Advance(10 * time.Second)
				if _, err := ts.Token(t.Context()); !errors.Is(err, syncer.ErrNeedsReconnect) {
					t.Fatalf("later call: %v", err)
				}
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+"/api/x", nil)
				if _, err := ts.RoundTrip(req); !errors.Is(err, syncer.ErrNeedsReconnect) {
					t.Fatalf("RoundTrip: %v", err)
				}
			}
			if got := b.sim.TokenRequests(); got != before {
				t.Fatalf("token requests after invalid_grant: %d, want %d", got, before)
			}
			if got := b.apiCalls.Load(); got != 0 {
				t.Fatalf("API calls with a dead account: %d", got)
			}
		})
	}
}

func TestReconnectRevivesDeadAccount(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	b.sim.Revoke(testSID)
	ts := b.mgr.Source(testAccount)
	if _, err := ts.Token(t.Context()); !errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatal(err)
	}
	// Another process reconnects the account.
	_, rt := b.sim.IssueGrant(testSID)
	b.store.set(testAccount, syncer.Secret(rt), b.clock.Now())
	if _, err := ts.Token(t.Context()); !errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatalf("revived before the recheck interval: %v", err)
	}
	b.clock.Advance(deadRecheck)
	if _, err := ts.Token(t.Context()); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}

	// In-process reconnect: Forget starts from the store at once.
	b.sim.Revoke(testSID)
	b.clock.Advance(5 * time.Minute)
	if _, err := ts.Token(t.Context()); !errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatal(err)
	}
	_, rt = b.sim.IssueGrant(testSID)
	b.store.set(testAccount, syncer.Secret(rt), b.clock.Now())
	b.mgr.Forget(testAccount)
	if _, err := b.mgr.Source(testAccount).Token(t.Context()); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
}

func TestNoStoredRefreshToken(t *testing.T) {
	b := setup(t)
	b.store.set(testAccount, "", time.Time{})
	_, err := b.mgr.Source(testAccount).Token(t.Context())
	if !errors.Is(err, syncer.ErrNeedsReconnect) || b.sim.TokenRequests() != 0 {
		t.Fatalf("err = %v, requests %d", err, b.sim.TokenRequests())
	}
	if _, err := b.mgr.Source("unknown").Token(t.Context()); !errors.Is(err, syncer.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
}

func TestSaveFailsThenSucceedsWithinRetries(t *testing.T) {
	b := setup(t)
	grant := b.connect(t, testAccount)
	b.store.failNext(2)
	if _, err := b.mgr.Source(testAccount).Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.store.token(testAccount).Reveal() != b.sim.LiveRefreshToken(grant) || len(b.store.markList()) != 0 {
		t.Fatalf("store not updated, or marked: %q", b.store.markList())
	}
}

func TestSaveFailsThenRecovers(t *testing.T) {
	b := setup(t)
	grant := b.connect(t, testAccount)
	old := b.store.token(testAccount)
	ts := b.mgr.Source(testAccount)

	b.store.failNext(1000)
	_, err := ts.Token(t.Context())
	if err == nil || errors.Is(err, syncer.ErrNeedsReconnect) || !strings.Contains(err.Error(), "kept in memory") {
		t.Fatalf("err = %v", err)
	}
	marks := b.store.markList()
	if len(marks) != 1 || !strings.Contains(marks[0], "saving it failed") || !strings.Contains(marks[0], "syncer connect --account acme") {
		t.Fatalf("marks = %q", marks)
	}
	if b.store.token(testAccount) != old {
		t.Fatal("store changed although every save failed")
	}
	// Still failing: no new token request, no second mark.
	if _, err := ts.Token(t.Context()); err == nil {
		t.Fatal("token handed out before the refresh token was saved")
	}
	if b.sim.TokenRequests() != 1 || len(b.store.markList()) != 1 {
		t.Fatalf("requests %d, marks %d", b.sim.TokenRequests(), len(b.store.markList()))
	}

	// The store recovers: the held token is saved and its access token used,
	// without another token request.
	b.store.failNext(0)
	tok, err := ts.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.sim.TokenRequests() != 1 {
		t.Fatalf("token requests = %d, want 1", b.sim.TokenRequests())
	}
	if b.store.token(testAccount).Reveal() != b.sim.LiveRefreshToken(grant) {
		t.Fatal("store does not hold the rotated token")
	}
	if _, ok := b.sim.ValidateAccess(tok.Reveal()); !ok {
		t.Fatal("access token invalid")
	}

	// The next refresh uses the saved token (the old one would be taken for
	// theft and revoke the grant).
	b.clock.Advance(10 * time.Minute)
	if _, err := ts.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.sim.Revoked(grant) {
		t.Fatal("grant revoked: an old refresh token was reused")
	}
}

func TestTokenEndpointDownIsTransient(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	b.tokenDown.Store(true)
	_, err := b.mgr.Source(testAccount).Token(t.Context())
	var tr *syncer.TransientError
	if !errors.As(err, &tr) || tr.Status != http.StatusServiceUnavailable || syncer.IsCredentialDead(err) {
		t.Fatalf("err = %v, want a transient 503", err)
	}
	if strings.Contains(err.Error(), "upstream unavailable") {
		t.Fatalf("error carries the response body: %v", err)
	}
	if len(b.store.markList()) != 0 {
		t.Fatal("marked needs_reconnect on a transient failure")
	}
	b.tokenDown.Store(false)
	if _, err := b.mgr.Source(testAccount).Token(t.Context()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestWrongClientSecretIsNotReconnect(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	cfg := b.cfg
	cfg.ClientSecret = "wrong"
	m, err := NewManager(ManagerConfig{OAuth: cfg, Store: b.store, TokenClient: b.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Source(testAccount).Token(t.Context())
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatalf("err = %v", err)
	}
	if b.store.token(testAccount) == "" || len(b.store.markList()) != 0 {
		t.Fatal("refresh token deleted or account marked for a client error")
	}
}

func TestTransportRetriesOnceOn401(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	rt := b.mgr.Transport(testAccount)

	if resp := b.get(t, rt, "/api/ping"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The server expires the access token before we expect it to.
	b.simClock.Advance(6 * time.Minute)
	if resp := b.get(t, rt, "/api/ping"); resp.StatusCode != 200 {
		t.Fatalf("after server-side expiry: status %d", resp.StatusCode)
	}
	if got := b.sim.TokenRequests(); got != 2 {
		t.Fatalf("token requests = %d, want 2", got)
	}

	// A replayable POST is resent with the same body.
	b.simClock.Advance(6 * time.Minute)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/api/echo", bytes.NewReader([]byte("payload")))
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := <-b.apiBodies; got != "payload" {
		t.Fatalf("resent body %q", got)
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("caller's request was changed")
	}

	// A body that cannot be replayed: the 401 goes back to the caller.
	b.simClock.Advance(6 * time.Minute)
	before := b.sim.TokenRequests()
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/api/echo", io.NopCloser(strings.NewReader("once")))
	resp, err = rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("non-replayable POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if b.sim.TokenRequests() != before {
		t.Fatal("refreshed for a request it cannot resend")
	}

	// Still 401 after one renewal: the response goes back, no second retry.
	before, calls := b.sim.TokenRequests(), b.apiCalls.Load()
	if resp := b.get(t, rt, "/api/deny"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if b.sim.TokenRequests() != before+1 || b.apiCalls.Load() != calls+2 {
		t.Fatalf("token requests +%d, API calls +%d; want +1, +2", b.sim.TokenRequests()-before, b.apiCalls.Load()-calls)
	}

	// Renewal refused: the error says the account needs reconnecting.
	b.sim.Revoke(testSID)
	b.clock.Advance(time.Second)
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+"/api/ping", nil)
	_, err = rt.RoundTrip(req)
	if !errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatalf("revoked: %v", err)
	}
}

func TestConcurrent401sCauseOneRefresh(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	rt := b.mgr.Transport(testAccount)
	b.get(t, rt, "/api/ping")
	b.simClock.Advance(6 * time.Minute) // every request now gets a 401 first
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+"/api/ping", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := b.sim.TokenRequests(); got != 2 {
		t.Fatalf("token requests = %d, want 2 (initial + one forced)", got)
	}
}

func TestRefreshIdle(t *testing.T) {
	b := setup(t)
	gIdle := b.connect(t, "idle")
	b.connect(t, "busy")
	b.store.set("idle", b.store.token("idle"), b.clock.Now().Add(-31*24*time.Hour))
	b.store.set("busy", b.store.token("busy"), b.clock.Now().Add(-24*time.Hour))

	renewed, err := b.mgr.RefreshIdle(t.Context(), []string{"idle", "busy"}, 0)
	if err != nil || len(renewed) != 1 || renewed[0] != "idle" {
		t.Fatalf("renewed %v, err %v", renewed, err)
	}
	if b.store.token("idle").Reveal() != b.sim.LiveRefreshToken(gIdle) || b.sim.TokenRequests() != 1 {
		t.Fatal("idle account not rotated")
	}
	// Its last use is now recent.
	renewed, err = b.mgr.RefreshIdle(t.Context(), []string{"idle", "busy"}, 0)
	if err != nil || len(renewed) != 0 {
		t.Fatalf("second pass renewed %v, err %v", renewed, err)
	}
	// A dead account is reported, not retried.
	b.sim.Revoke(testSID)
	b.clock.Advance(40 * 24 * time.Hour)
	renewed, err = b.mgr.RefreshIdle(t.Context(), []string{"idle", "busy"}, 0)
	if len(renewed) != 0 || !errors.Is(err, syncer.ErrNeedsReconnect) {
		t.Fatalf("renewed %v, err %v", renewed, err)
	}
}

func TestTokenHonoursContext(t *testing.T) {
	b := setup(t)
	b.connect(t, testAccount)
	ts := b.mgr.Source(testAccount)
	ts.sem <- struct{}{} // a refresh in flight
	defer ts.unlock()
	ctx, cancel := contextWithCancel(t)
	cancel()
	if _, err := ts.Token(ctx); !errors.Is(err, ctx.Err()) {
		t.Fatalf("err = %v", err)
	}
}

func TestManagerConfigValidation(t *testing.T) {
	if _, err := NewManager(ManagerConfig{OAuth: OAuthConfig{ClientID: "x", ClientSecret: "y", RedirectURL: "https://a/cb", Scopes: []string{"offline_access"}}}); err == nil {
		t.Fatal("no store accepted")
	}
	if _, err := NewManager(ManagerConfig{Store: newRefreshStore(time.Now)}); err == nil {
		t.Fatal("empty OAuth config accepted")
	}
}
