package auth

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

func TestBasicTransport(t *testing.T) {
	var gotUser, gotPass string
	var gotOK bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, gotOK = r.BasicAuth()
	}))
	defer srv.Close()
	tr := &BasicTransport{SID: "IRsid", Token: "tok:en", Base: srv.Client().Transport}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/x", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !gotOK || gotUser != "IRsid" || gotPass != "tok:en" {
		t.Fatalf("basic auth %q %q %v", gotUser, gotPass, gotOK)
	}
	if req.Header.Get("Authorization") != "" || len(req.Header) != 1 {
		t.Fatal("caller's request changed")
	}
	if _, err := (&BasicTransport{SID: "x"}).RoundTrip(req); err == nil {
		t.Fatal("empty token accepted")
	}
	if s := fmt.Sprintf("%v %+v", tr, *tr); strings.Contains(s, "tok:en") {
		t.Fatalf("transport prints its token: %s", s)
	}
}

func TestOAuthConfigValidate(t *testing.T) {
	good := OAuthConfig{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://syncer.example/cb", Scopes: []string{"offline_access"}}.WithDefaults()
	tests := []struct {
		name string
		edit func(*OAuthConfig)
		want []string
	}{
		{"ok", func(*OAuthConfig) {}, nil},
		{"localhost http", func(c *OAuthConfig) { c.RedirectURL = "http://127.0.0.1:8765/cb" }, nil},
		{"no offline_access", func(c *OAuthConfig) { c.Scopes = []string{"Actions"} }, []string{"must include offline_access"}},
		{"plain http", func(c *OAuthConfig) { c.TokenURL = "http://impact.example/token" }, []string{"token URL", "must use https"}},
		{"credentials in URL", func(c *OAuthConfig) { c.RedirectURL = "https://u:pw@syncer.example/cb" }, []string{"may not carry credentials"}},
		{"everything", func(c *OAuthConfig) { *c = OAuthConfig{} },
			[]string{"authorize URL", "token URL", "redirect URL", "client id", "client secret", "offline_access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "pw") {
				t.Error("error shows URL credentials")
			}
		})
	}
}

func TestAccountTokens(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	accounts := &syncertest.Accounts{}
	kr := testKeyring(t, 3)
	tokens := NewAccountTokens(accounts, kr, clk.Now)
	p := Pending{AccountID: "a1", Persona: syncer.Brand, SID: "IR1"}

	if _, _, err := tokens.LoadRefreshToken(ctx, "a1"); !errors.Is(err, syncer.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	if err := tokens.Connected(ctx, p, "rt-1"); err != nil {
		t.Fatal(err)
	}
	sealed, _ := accounts.Secret(ctx, "a1")
	if bytes.Contains(sealed.Ciphertext, []byte("rt-1")) || sealed.KeyID != kr.PrimaryID() {
		t.Fatal("refresh token not sealed")
	}
	rt, at, err := tokens.LoadRefreshToken(ctx, "a1")
	if err != nil || rt != "rt-1" || !at.Equal(clk.Now()) {
		t.Fatalf("load: %q %v %v", rt.Reveal(), at, err)
	}

	clk.Advance(time.Hour)
	if err := tokens.SaveRefreshToken(ctx, "a1", "rt-2"); err != nil {
		t.Fatal(err)
	}
	if rt, at, _ := tokens.LoadRefreshToken(ctx, "a1"); rt != "rt-2" || !at.Equal(clk.Now()) {
		t.Fatalf("after save: %q %v", rt.Reveal(), at)
	}

	// Mark keeps the missing permissions; a fresh token re-activates.
	accounts.SetStatus(ctx, "a1", syncer.StatusActive, "", []string{"Promo Codes"})
	if err := tokens.MarkNeedsReconnect(ctx, "a1", "because"); err != nil {
		t.Fatal(err)
	}
	a, _ := accounts.Account(ctx, "a1")
	if a.Status != syncer.StatusNeedsReconnect || a.StatusReason != "because" || len(a.MissingPermissions) != 1 {
		t.Fatalf("marked: %+v", a)
	}
	tokens.SaveRefreshToken(ctx, "a1", "")
	if a, _ := accounts.Account(ctx, "a1"); a.Status != syncer.StatusNeedsReconnect {
		t.Fatal("deleting the token re-activated the account")
	}
	tokens.SaveRefreshToken(ctx, "a1", "rt-3")
	if a, _ := accounts.Account(ctx, "a1"); a.Status != syncer.StatusActive {
		t.Fatal("fresh token did not re-activate the account")
	}

	// Reconnecting keeps CreatedAt; another SID under the same id is refused.
	created := a.CreatedAt
	clk.Advance(time.Hour)
	if err := tokens.Connected(ctx, p, "rt-4"); err != nil {
		t.Fatal(err)
	}
	if a, _ := accounts.Account(ctx, "a1"); !a.CreatedAt.Equal(created) || !a.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("reconnect: %+v", a)
	}
	if err := tokens.Connected(ctx, Pending{AccountID: "a1", Persona: syncer.Brand, SID: "IR2"}, "x"); err == nil {
		t.Fatal("SID change accepted")
	}

	// A Basic account is not an OAuth token record.
	basic, _ := kr.Seal("b1", "auth-token")
	accounts.PutAccount(ctx, syncer.Account{ID: "b1", AuthKind: syncer.AuthBasic}, basic)
	if _, _, err := tokens.LoadRefreshToken(ctx, "b1"); err == nil || strings.Contains(err.Error(), "auth-token") {
		t.Fatalf("basic account: %v", err)
	}
	// A sealed secret that is not a record.
	notRecord, _ := kr.Seal("c1", "plain")
	accounts.PutAccount(ctx, syncer.Account{ID: "c1", AuthKind: syncer.AuthOAuth}, notRecord)
	if _, _, err := tokens.LoadRefreshToken(ctx, "c1"); err == nil || strings.Contains(err.Error(), "plain") {
		t.Fatalf("not a record: %v", err)
	}
	// Sealed for another account: corrupt.
	accounts.PutAccount(ctx, syncer.Account{ID: "d1", AuthKind: syncer.AuthOAuth}, sealed)
	if _, _, err := tokens.LoadRefreshToken(ctx, "d1"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("moved secret: %v", err)
	}
}
