package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/oauthsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

const (
	oauthClientID     = "impact-syncer-test-client"
	oauthClientSecret = "client-secret-never-to-be-seen"
)

// oauthBundle adds the simulated authorization server to a bundle, wired so
// the API simulator accepts the access tokens it issues.
type oauthBundle struct {
	*bundle
	as   *oauthsim.Server
	logs *syncBuffer
}

// syncBuffer collects everything the CLI logs, for the secret scan.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func setupOAuth(t *testing.T) *oauthBundle {
	b := setup(t)
	redirect := "http://" + freeAddr(t) + "/oauth/callback"
	as := oauthsim.New(oauthsim.Options{
		ClientID: oauthClientID, ClientSecret: oauthClientSecret, RedirectURIs: []string{redirect},
		Now:            b.sim.Clock().Now,
		OnAccessIssued: func(sid, token string, expiry time.Time) { b.sim.AddBearerToken(sid, token, expiry) },
	})
	srv := httptest.NewServer(as.Handler())
	t.Cleanup(srv.Close)
	t.Setenv("IMPACT_OAUTH_CLIENT_ID", oauthClientID)
	t.Setenv("IMPACT_OAUTH_CLIENT_SECRET", oauthClientSecret)
	t.Setenv("IMPACT_OAUTH_AUTHORIZE_URL", srv.URL+"/oauth2/authorize")
	t.Setenv("IMPACT_OAUTH_TOKEN_URL", srv.URL+"/oauth2/token")
	t.Setenv("IMPACT_OAUTH_REDIRECT_URL", redirect)
	t.Setenv("IMPACT_OAUTH_SCOPES", "offline_access")
	t.Setenv("SYNCER_LOG_LEVEL", "debug")
	return &oauthBundle{bundle: b, as: as, logs: &syncBuffer{}}
}

// run is cli with the logs kept for the secret scan.
func (o *oauthBundle) run(stdin string, args ...string) (string, error) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(o.t.Context(), 3*time.Minute)
	defer cancel()
	err := run(ctx, args, strings.NewReader(stdin), &out, o.logs)
	return out.String(), err
}

func (o *oauthBundle) mustRun(stdin string, args ...string) string {
	o.t.Helper()
	out, err := o.run(stdin, args...)
	if err != nil {
		o.t.Fatalf("syncer %s: %v\n%s\nlogs:\n%s", strings.Join(args, " "), err, out, tail(o.logs.String(), 3000))
	}
	return out
}

// connect runs `syncer connect` and plays the browser: it opens the printed
// URL, the simulated server consents and redirects to the callback.
func (o *oauthBundle) connect(id, persona, sid string) error {
	o.t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(o.t.Context(), time.Minute)
		defer cancel()
		done <- run(ctx, []string{"connect", "--account", id, "--persona", persona, "--sid", sid}, strings.NewReader(""), pw, o.logs)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var authURL string
	for sc.Scan() {
		if u := strings.TrimSpace(sc.Text()); strings.HasPrefix(u, "http") {
			authURL = u
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if authURL == "" {
		return <-done
	}
	resp, err := http.Get(authURL)
	if err != nil {
		o.t.Fatalf("browser: %v", err)
	}
	resp.Body.Close()
	return <-done
}

// storedRefreshToken opens the account's stored refresh token.
func (o *oauthBundle) storedRefreshToken(id string) string {
	o.t.Helper()
	kr, err := auth.ParseKeyring(o.key, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	rt, _, err := auth.NewAccountTokens(load.NewAccountStore(o.db), kr, time.Now).LoadRefreshToken(o.t.Context(), id)
	if err != nil {
		o.t.Fatal(err)
	}
	return rt.Reveal()
}

func (o *oauthBundle) account(id string) syncer.Account {
	o.t.Helper()
	a, err := load.NewAccountStore(o.db).Account(o.t.Context(), id)
	if err != nil {
		o.t.Fatal(err)
	}
	return a
}

// TestIntegrationCredentialsLifecycle walks one scenario through every
// credential path of issue 5, then scans every table and every log line for
// every secret used.
func TestIntegrationCredentialsLifecycle(t *testing.T) {
	o := setupOAuth(t)
	o.mustRun("", "migrate")

	// --- OAuth: connect → sync → access-token expiry → refresh → sync
	const oauthSID = "IROAUTHBRAND00000000000000000001"
	spec := brandSpec(oauthSID)
	spec.Actions = 400
	if err := o.sim.AddAccount(spec); err != nil {
		t.Fatal(err)
	}
	if err := o.connect("oauth-brand", "brand", oauthSID); err != nil {
		t.Fatalf("connect: %v\nlogs:\n%s", err, tail(o.logs.String(), 2000))
	}
	grants := o.as.Grants(oauthSID)
	if len(grants) != 1 {
		t.Fatalf("grants for %s: %v", oauthSID, grants)
	}
	if got, live := o.storedRefreshToken("oauth-brand"), o.as.LiveRefreshToken(grants[0]); got == "" || got != live {
		t.Fatalf("stored refresh token is not the live one after connect")
	}
	o.mustRun("", "sync", "--account", "oauth-brand")
	o.compareAll("oauth-brand", oauthSID, syncer.CompanyInformation, syncer.Campaigns, syncer.Actions)
	first := o.storedRefreshToken("oauth-brand")
	if first != o.as.LiveRefreshToken(grants[0]) {
		t.Errorf("after the first sync the store does not hold the live refresh token")
	}

	o.sim.Clock().Advance(10 * time.Minute) // access tokens live 5 minutes
	o.sim.ModifyAction(oauthSID, o.sim.Truth(oauthSID).Actions[0].Id, "10.00", "1.00")
	before := o.as.TokenRequestsFor(oauthSID)
	o.mustRun("", "sync", "--account", "oauth-brand")
	if o.as.TokenRequestsFor(oauthSID) <= before {
		t.Errorf("no refresh after the access token expired")
	}
	second := o.storedRefreshToken("oauth-brand")
	if second == first || second != o.as.LiveRefreshToken(grants[0]) {
		t.Errorf("the rotated refresh token is not what the store holds")
	}
	o.compareAll("oauth-brand", oauthSID, syncer.Actions)

	// --- Basic accounts: one healthy, one whose token gets reset, one
	// whose token lacks the Promo Codes permission
	healthy, reset, scoped := brandSpec("IRBASICOK0000000000000000000001"), brandSpec("IRBASICRESET00000000000000000001"), partnerSpec("IRBASICSCOPED0000000000000000001")
	for id, sp := range map[string]impactsim.AccountSpec{"healthy": healthy, "reset": reset, "scoped": scoped} {
		sp.Actions = 300
		if err := o.sim.AddAccount(sp); err != nil {
			t.Fatal(err)
		}
		o.mustRun(sp.Token+"\n", "accounts", "add", "--id", id, "--persona", string(sp.Persona), "--sid", sp.SID, "--token-stdin")
	}
	o.sim.ResetToken(reset.SID)
	o.sim.DenyEndpoint(scoped.SID, "PromoCodes")

	// --- the user revokes the OAuth grant
	o.as.Revoke(oauthSID)
	o.sim.Clock().Advance(10 * time.Minute)

	out, err := o.run("", "sync")
	if err == nil {
		t.Errorf("sync with a revoked grant, a reset token and a missing permission exited 0:\n%s", out)
	}
	t.Logf("sync output:\n%s", out)

	a := o.account("oauth-brand")
	if a.Status != syncer.StatusNeedsReconnect || !strings.Contains(a.StatusReason, "syncer connect") {
		t.Errorf("revoked OAuth account: status %s, reason %q", a.Status, a.StatusReason)
	}
	if o.storedRefreshToken("oauth-brand") != "" {
		t.Errorf("the refresh token rejected with invalid_grant is still stored")
	}
	a = o.account("reset")
	if a.Status != syncer.StatusNeedsReconnect || !strings.Contains(a.StatusReason, "set-token") {
		t.Errorf("reset Basic token: status %s, reason %q", a.Status, a.StatusReason)
	}
	a = o.account("scoped")
	if a.Status != syncer.StatusActive || len(a.MissingPermissions) != 1 || a.MissingPermissions[0] != "Promo Codes → Retrieve promo codes" {
		t.Errorf("scoped token: status %s, missing %v", a.Status, a.MissingPermissions)
	}
	if !strings.Contains(out, "Promo Codes → Retrieve promo codes") {
		t.Errorf("the sync output does not name the missing permission")
	}
	o.compareAll("healthy", healthy.SID, syncer.AllEntities...)
	o.compareAll("scoped", scoped.SID, syncer.CompanyInformation, syncer.Campaigns, syncer.Actions, syncer.ActionUpdates)

	// flagged accounts are skipped; the token endpoint hears nothing more
	// about the revoked grant
	tokenRequests := o.as.TokenRequestsFor(oauthSID)
	out, _ = o.run("", "sync")
	if !strings.Contains(out, "skipping oauth-brand") || !strings.Contains(out, "skipping reset") {
		t.Errorf("flagged accounts not reported as skipped:\n%s", out)
	}
	if n := o.as.TokenRequestsFor(oauthSID); n != tokenRequests {
		t.Errorf("the token endpoint got %d more requests for the revoked account", n-tokenRequests)
	}

	// set-token reactivates the reset account
	newToken := o.sim.ResetToken(reset.SID)
	o.mustRun(newToken+"\n", "accounts", "set-token", "reset", "--token-stdin")
	o.mustRun("", "sync", "--account", "reset")
	o.compareAll("reset", reset.SID, syncer.Actions)

	// key rotation keeps every secret readable
	oldKey := o.key
	o.bundle.key = newKeyB64()
	t.Setenv("SYNCER_ENCRYPTION_KEY", o.key)
	t.Setenv("SYNCER_ENCRYPTION_OLD_KEYS", oldKey)
	o.mustRun("", "keys", "rotate")
	t.Setenv("SYNCER_ENCRYPTION_OLD_KEYS", "")
	o.mustRun("", "sync", "--account", "healthy")

	// --- nothing secret anywhere: not in any table, not in any log line
	secrets := []string{oauthClientSecret, oldKey, o.key, healthy.Token, reset.Token, newToken, scoped.Token, spec.Token}
	secrets = append(secrets, o.as.IssuedTokens()...)
	if len(secrets) < 10 {
		t.Fatalf("only %d secrets to look for", len(secrets))
	}
	dump := dumpDatabase(t, o.db)
	logs := o.logs.String()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Errorf("the scan ran without debug logs")
	}
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("a secret (%d chars) is stored in plain text in ClickHouse", len(s))
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%d chars) appears in the logs", len(s))
		}
	}
	t.Logf("scanned %d bytes of ClickHouse data and %d bytes of logs for %d secrets", len(dump), len(logs), len(secrets))
}

func newKeyB64() string { return auth.GenerateKey().Reveal() }

// dumpDatabase renders every row of every table of the test database as
// text.
func dumpDatabase(t *testing.T, db *load.DB) string {
	t.Helper()
	// tables only: views show the same data again
	rows, err := db.Query(t.Context(), "SELECT table, name, type FROM system.columns WHERE database = ? AND table IN (SELECT name FROM system.tables WHERE database = ? AND engine NOT LIKE '%View') ORDER BY table", db.Database(), db.Database())
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string][]string{}
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			t.Fatal(err)
		}
		expr := "toString(`" + name + "`)"
		if strings.HasPrefix(typ, "Array(") {
			expr = "arrayStringConcat(`" + name + "`, ',')"
		}
		cols[table] = append(cols[table], expr)
	}
	rows.Close()
	var all strings.Builder
	for table, exprs := range cols {
		q := fmt.Sprintf("SELECT concat(%s) FROM `%s`", strings.Join(exprs, ", '|', "), table)
		if len(exprs) == 1 {
			q = fmt.Sprintf("SELECT %s FROM `%s`", exprs[0], table)
		}
		r, err := db.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			all.WriteString(s)
			all.WriteByte('\n')
		}
		r.Close()
	}
	return all.String()
}

// TestIntegrationWorkerServesOAuthConnect starts a connection through the
// worker's own HTTP server: /oauth/start redirects to consent, impact.com
// redirects back to the worker's callback, and the account is stored. A
// callback without a pending state is refused.
func TestIntegrationWorkerServesOAuthConnect(t *testing.T) {
	o := setupOAuth(t)
	o.mustRun("", "migrate")
	const sid = "IROAUTHWORKER0000000000000000001"
	if err := o.sim.AddAccount(brandSpec(sid)); err != nil {
		t.Fatal(err)
	}
	a, err := openApp(t.Context(), o.logs)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	redirect := strings.TrimSuffix(strings.TrimPrefix(a.cfg.OAuthRedirectURL, "http://"), "/oauth/callback")
	ln, err := net.Listen("tcp", redirect)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.routes()}
	go srv.Serve(ln)
	defer srv.Close()

	resp, err := http.Get("http://" + redirect + "/oauth/callback?code=stolen&state=made-up-state-value-that-is-long-enough")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a pending state: %d, want 400", resp.StatusCode)
	}

	resp, err = http.Get("http://" + redirect + "/oauth/start?account=via-worker&persona=brand&sid=" + sid)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "connected") {
		t.Fatalf("connect through the worker: %d %s", resp.StatusCode, body)
	}
	acct := o.account("via-worker")
	if acct.AuthKind != syncer.AuthOAuth || acct.Status != syncer.StatusActive || o.storedRefreshToken("via-worker") == "" {
		t.Errorf("account after the worker's callback: %+v", acct)
	}
	o.mustRun("", "sync", "--account", "via-worker", "--entities", "company_information,campaigns")

	// connect --worker: the command asks the worker to begin (as it would
	// from inside the worker's container) and prints the URL; the browser's
	// visit ends at the worker's callback.
	const sid2 = "IROAUTHWORKER0000000000000000002"
	if err := o.sim.AddAccount(brandSpec(sid2)); err != nil {
		t.Fatal(err)
	}
	out := o.mustRun("", "connect", "--worker", "http://"+redirect, "--account", "via-cli", "--persona", "brand", "--sid", sid2)
	var authURL string
	for _, l := range strings.Split(out, "\n") {
		if u := strings.TrimSpace(l); strings.HasPrefix(u, "http") {
			authURL = u
		}
	}
	if authURL == "" {
		t.Fatalf("connect --worker printed no URL:\n%s", out)
	}
	resp, err = http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "connected") {
		t.Fatalf("the browser after connect --worker: %d %s", resp.StatusCode, body)
	}
	if acct := o.account("via-cli"); acct.AuthKind != syncer.AuthOAuth || o.storedRefreshToken("via-cli") == "" {
		t.Errorf("account after connect --worker: %+v", acct)
	}
}
