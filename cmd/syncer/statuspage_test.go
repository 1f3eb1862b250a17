package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
)

// statusWorld is a small registry with one account in every state the page
// must show: synced and healthy, lacking a permission, needing reconnection
// (token reset), disabled and never synced, and removed.
type statusWorld struct {
	b      *bundle
	srv    *httptest.Server
	tokens []string
}

func statusScenario(t *testing.T) *statusWorld {
	t.Helper()
	b := setup(t)
	b.mustCLI("", "migrate")
	spec := func(sid string, persona impactsim.Persona, seed int64) impactsim.AccountSpec {
		s := impactsim.AccountSpec{SID: sid, Token: "tok-" + sid + "-s3cr3t-value", Persona: persona, Seed: seed,
			Campaigns: 1, Actions: 120, PromoCodes: 2}
		if persona == impactsim.Brand {
			s.MediaPartners = 3
		}
		return s
	}
	w := &statusWorld{b: b}
	for _, a := range []struct {
		id      string
		persona impactsim.Persona
		sid     string
	}{
		{"northwind", impactsim.Brand, "IRSTATUSBRAND0000000000000000001"},
		{"trailhead", impactsim.Partner, "IRSTATUSPARTNER00000000000000001"},
		{"acme", impactsim.Brand, "IRSTATUSSCOPED000000000000000001"},
		{"globex", impactsim.Brand, "IRSTATUSREVOKED00000000000000001"},
		{"initech", impactsim.Brand, "IRSTATUSDISABLED0000000000000001"},
		{"umbrella", impactsim.Brand, "IRSTATUSREMOVED00000000000000001"},
	} {
		s := spec(a.sid, a.persona, int64(len(w.tokens)+3))
		b.addAccount(a.id, s)
		w.tokens = append(w.tokens, s.Token)
	}
	b.sim.DenyEndpoint("IRSTATUSSCOPED000000000000000001", "PromoCodes")
	b.mustCLI("", "accounts", "disable", "initech")
	b.mustCLI("", "accounts", "remove", "umbrella")
	_, _, _ = b.cli("", "sync") // acme's promo codes fail
	b.sim.ResetToken("IRSTATUSREVOKED00000000000000001")
	time.Sleep(1100 * time.Millisecond)
	_, _, _ = b.cli("", "sync") // globex fails with 401 and is flagged

	a, err := openApp(t.Context(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	w.srv = httptest.NewServer(a.routes())
	t.Cleanup(w.srv.Close)
	return w
}

func httpGet(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// accountSection returns the HTML of one account's section.
func accountSection(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<section class="account" id="account-`+id+`">`)
	if start < 0 {
		t.Fatalf("no section for account %s", id)
	}
	end := strings.Index(page[start:], "</section>")
	return page[start : start+end]
}

func TestIntegrationStatusPage(t *testing.T) {
	w := statusScenario(t)
	code, h, page := httpGet(t, w.srv.URL+"/")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{"<title>impact-syncer status</title>", "Latest failed runs", "5 accounts",
		"3 active", "1 needs reconnect", "1 disabled"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	northwind := accountSection(t, page, "northwind")
	for _, want := range []string{`data-status="active"`, "IRSTATUSBRAND0000000000000000001", "company_information",
		"media_partners", "promo_codes", "actions", "action_updates", "succeeded", " ago"} {
		if !strings.Contains(northwind, want) {
			t.Errorf("northwind's section lacks %q", want)
		}
	}
	if strings.Contains(northwind, "never") || strings.Contains(northwind, "failed") {
		t.Errorf("northwind synced fine, yet its section shows never/failed:\n%s", northwind)
	}
	if trailhead := accountSection(t, page, "trailhead"); strings.Contains(trailhead, "media_partners") {
		t.Error("the partner account lists media_partners, which partners do not have")
	}

	acme := accountSection(t, page, "acme")
	for _, want := range []string{`data-status="active"`, "Missing permissions", "Promo Codes → Retrieve promo codes",
		"the API token lacks", "failed"} {
		if !strings.Contains(acme, want) {
			t.Errorf("acme's section lacks %q", want)
		}
	}

	globex := accountSection(t, page, "globex")
	for _, want := range []string{`data-status="needs_reconnect"`, "rejected the Auth Token", "syncer accounts set-token globex", "failed"} {
		if !strings.Contains(globex, want) {
			t.Errorf("globex's section lacks %q:\n%s", want, globex)
		}
	}

	initech := accountSection(t, page, "initech")
	for _, want := range []string{`data-status="disabled"`, "disabled by an operator", "never synced"} {
		if !strings.Contains(initech, want) {
			t.Errorf("initech's section lacks %q", want)
		}
	}
	if strings.Contains(page, "umbrella") {
		t.Error("the page shows the removed account umbrella")
	}

	failures := page[strings.Index(page, "Latest failed runs"):]
	for _, want := range []string{"acme", "globex", "401", "403"} {
		if !strings.Contains(failures, want) {
			t.Errorf("the failed runs lack %q", want)
		}
	}

	// no secrets: tokens, the encryption key, sealed secrets
	secrets := append([]string{w.b.key}, w.tokens...)
	for _, s := range secrets {
		if strings.Contains(page, s) {
			t.Errorf("the page shows a secret (%.6s…)", s)
		}
	}
	var cipher string
	if err := w.b.db.QueryRow(t.Context(), "SELECT secret_ciphertext FROM accounts FINAL WHERE id = 'northwind'").Scan(&cipher); err != nil {
		t.Fatal(err)
	}
	if cipher == "" || strings.Contains(page, cipher) {
		t.Error("the page shows a sealed secret (or none was stored)")
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the page has scripts; it should be plain HTML")
	}
}

func TestIntegrationStatusPageWithoutSchemaAnswers503(t *testing.T) {
	setup(t) // the database is not migrated: there is no accounts table
	a, err := openApp(t.Context(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	srv := httptest.NewServer(a.routes())
	defer srv.Close()
	code, _, page := httpGet(t, srv.URL+"/")
	if code != http.StatusServiceUnavailable || !strings.Contains(page, "Could not read the accounts from ClickHouse") {
		t.Errorf("GET / = %d:\n%s", code, page)
	}
}

// TestIntegrationStatusPageInChromium loads the page in headless Chromium
// (Debian's chromium package) and checks that the accounts and their
// statuses are in the rendered DOM. It runs when chromium is on PATH; under
// CI=true it installs it first (scripts/screenshot.sh install) and must run.
func TestIntegrationStatusPageInChromium(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		if os.Getenv("CI") != "true" {
			t.Skip("chromium is not installed (scripts/screenshot.sh install); CI installs it")
		}
		out, err := exec.CommandContext(t.Context(), "bash", filepath.Join("..", "..", "scripts", "screenshot.sh"), "install").CombinedOutput()
		if err != nil {
			t.Fatalf("installing chromium: %v\n%s", err, out)
		}
		if bin = chromiumBinary(); bin == "" {
			t.Fatalf("chromium is still missing after scripts/screenshot.sh install:\n%s", out)
		}
	}
	w := statusScenario(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,900", "--dump-dom", w.srv.URL+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v\n%s", bin, err, stderr.String())
	}
	page := string(dom)
	for id, status := range map[string]string{"northwind": "active", "trailhead": "active", "acme": "active",
		"globex": "needs_reconnect", "initech": "disabled"} {
		re := regexp.MustCompile(`id="account-` + regexp.QuoteMeta(id) + `"[\s\S]*?data-status="([a-z_]+)"`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			t.Errorf("the rendered page has no account %s", id)
			continue
		}
		if m[1] != status {
			t.Errorf("account %s shows status %s, want %s", id, m[1], status)
		}
	}
	for _, want := range []string{"Promo Codes → Retrieve promo codes", "Latest failed runs", "never synced"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(page, "umbrella") {
		t.Error("the rendered page shows the removed account")
	}
}

// chromiumBinary finds Debian's chromium (or a chromium-browser) on PATH.
func chromiumBinary() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
