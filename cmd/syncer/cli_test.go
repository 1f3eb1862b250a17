package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/impact-syncer/impact-syncer/internal/load"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestHelpGolden: every command's --help, compared with testdata/help/*.txt
// (go test -run TestHelpGolden -update rewrites them). --help goes to
// stdout, exits 0 and prints its usage once.
func TestHelpGolden(t *testing.T) {
	cmds := [][]string{
		{"--help"}, {"migrate"}, {"accounts"}, {"accounts", "add"}, {"accounts", "list"}, {"accounts", "check"},
		{"accounts", "set-token"}, {"accounts", "disable"}, {"accounts", "enable"}, {"accounts", "remove"},
		{"sync"}, {"backfill"}, {"status"}, {"run"}, {"connect"}, {"keys", "rotate"}, {"keys"}, {"healthcheck"},
	}
	for _, c := range cmds {
		name := strings.Join(c, "-")
		if name == "--help" {
			name = "syncer"
		}
		t.Run(name, func(t *testing.T) {
			args := c
			if c[0] != "--help" {
				args = append(slices.Clone(c), "--help")
			}
			var out, errOut bytes.Buffer
			if err := run(t.Context(), args, strings.NewReader(""), &out, &errOut); err != nil && err != errHelp {
				t.Fatalf("syncer %s: %v", strings.Join(args, " "), err)
			}
			if errOut.Len() > 0 {
				t.Errorf("--help wrote to stderr: %q", errOut.String())
			}
			if n := strings.Count(out.String(), "Usage:"); n != 1 {
				t.Errorf("usage printed %d times:\n%s", n, out.String())
			}
			if regexp.MustCompile(`(?m)^\s+-[a-z]`).MatchString(out.String()) {
				t.Errorf("a flag is shown with one dash:\n%s", out.String())
			}
			if strings.HasSuffix(strings.TrimSpace(out.String()), "Flags:") {
				t.Errorf("empty flags section:\n%s", out.String())
			}
			golden := filepath.Join("testdata", "help", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestHelpGolden -update)", err)
			}
			if out.String() != string(want) {
				t.Errorf("syncer %s differs from %s:\n%s", strings.Join(args, " "), golden, out.String())
			}
		})
	}
}

// TestBadFlag: an unknown flag prints one error, on stderr (by main), exit
// status 2, nothing on stdout.
func TestBadFlag(t *testing.T) {
	for _, args := range [][]string{{"sync", "--bogus"}, {"backfill", "-x"}, {"accounts", "list", "--nope"}, {"status", "extra"}} {
		var out, errOut bytes.Buffer
		err := run(t.Context(), args, strings.NewReader(""), &out, &errOut)
		var ee *exitError
		if err == nil || !errorsAs(err, &ee) || ee.code != 2 {
			t.Errorf("syncer %v: err = %v, want a usage error (exit 2)", args, err)
			continue
		}
		if out.Len() > 0 || errOut.Len() > 0 {
			t.Errorf("syncer %v printed besides the one error: stdout %q stderr %q", args, out.String(), errOut.String())
		}
		if !strings.Contains(err.Error(), "--help") {
			t.Errorf("syncer %v: %v does not point to --help", args, err)
		}
	}
}

func errorsAs(err error, target **exitError) bool {
	for e := err; e != nil; {
		if x, ok := e.(*exitError); ok {
			*target = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// keysOf lists a JSON object's keys, sorted.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", v)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func wantKeys(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keysOf(t, v); !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v (the documented shape)", what, got, want)
	}
}

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

var (
	accountKeys = []string{"id", "persona", "sid", "auth", "status", "reason", "missing_permissions", "status_at"}
	runKeys     = []string{"run_id", "account_id", "entity", "kind", "status", "started_at", "finished_at", "duration_seconds",
		"rows", "requests", "rate_limit_waits", "windows", "error"}
)

// TestIntegrationCLIJSON: the --json outputs have their documented shapes,
// accounts check names a missing permission, and backfill --dry-run writes
// nothing and plans exactly the windows the backfill then reads.
func TestIntegrationCLIJSON(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	brand, partner := brandSpec("IRJSONBRAND00000000000000000001"), partnerSpec("IRJSONPARTNER000000000000000001")
	brand.Actions, partner.Actions = 300, 200
	b.addAccount("brand", brand)
	b.addAccount("partner", partner)

	list := decodeJSON(t, b.mustCLI("", "accounts", "list", "--json"))
	wantKeys(t, "accounts list", list, "schema", "accounts")
	if list["schema"] != "impact-syncer/accounts/v1" || len(list["accounts"].([]any)) != 2 {
		t.Fatalf("accounts list: %v", list)
	}
	wantKeys(t, "accounts list account", list["accounts"].([]any)[0], accountKeys...)

	rep := decodeJSON(t, b.mustCLI("", "sync", "--json"))
	wantKeys(t, "sync report", rep, "schema", "ok", "failed_accounts", "accounts", "skipped")
	if rep["schema"] != "impact-syncer/report/v1" || rep["ok"] != true {
		t.Fatalf("sync report: %v", rep)
	}
	acct0 := rep["accounts"].([]any)[0]
	wantKeys(t, "report account", acct0, "account_id", "ok", "error", "runs")
	run0 := acct0.(map[string]any)["runs"].([]any)[0]
	wantKeys(t, "report run", run0, runKeys...)

	st := decodeJSON(t, b.mustCLI("", "status", "--json"))
	wantKeys(t, "status", st, "schema", "generated_at", "accounts")
	sa := st["accounts"].([]any)[0]
	wantKeys(t, "status account", sa, append(slices.Clone(accountKeys), "entities")...)
	ent := sa.(map[string]any)["entities"].([]any)[0].(map[string]any)
	wantKeys(t, "status entity", ent, "entity", "last_run", "last_success", "freshness_seconds")
	if ent["freshness_seconds"] == nil || ent["last_success"] == nil {
		t.Errorf("status entity after a sync: %v", ent)
	}

	// accounts check: every endpoint granted; then one denied
	chk := decodeJSON(t, b.mustCLI("", "accounts", "check", "brand", "--json"))
	wantKeys(t, "check", chk, "schema", "account_id", "persona", "auth", "credentials", "detail", "ok", "requests", "entities")
	if chk["ok"] != true || chk["credentials"] != "ok" || len(chk["entities"].([]any)) != 6 {
		t.Errorf("check of a healthy brand: %v", chk)
	}
	wantKeys(t, "check entity", chk["entities"].([]any)[0], "entity", "endpoint", "result", "permission", "detail")
	if pc := decodeJSON(t, b.mustCLI("", "accounts", "check", "partner", "--json")); pc["ok"] != true || len(pc["entities"].([]any)) != 5 {
		t.Errorf("check of a healthy partner: %v", pc)
	}
	b.sim.DenyEndpoint(brand.SID, "PromoCodes")
	out, _, err := b.cli("", "accounts", "check", "brand")
	if err == nil || !strings.Contains(out, "missing_permission") {
		t.Errorf("check with PromoCodes denied: err %v\n%s", err, out)
	}
	t.Logf("accounts check brand:\n%s", out)
	acct, _ := load.NewAccountStore(b.db).Account(t.Context(), "brand")
	if len(acct.MissingPermissions) != 0 {
		t.Errorf("check changed the account's state: %v", acct.MissingPermissions)
	}

	// backfill --dry-run: nothing written, the same windows as the real one
	counts := func() string {
		var runs, marks, actions uint64
		_ = b.db.QueryRow(t.Context(), "SELECT count() FROM sync_runs").Scan(&runs)
		_ = b.db.QueryRow(t.Context(), "SELECT count() FROM sync_state").Scan(&marks)
		_ = b.db.QueryRow(t.Context(), "SELECT count() FROM actions").Scan(&actions)
		return fmt.Sprintf("runs %d, watermarks %d, actions %d", runs, marks, actions)
	}
	before := counts()
	args := []string{"backfill", "--account", "brand", "--from", "2026-01-01", "--to", "2026-06-30"}
	plan := decodeJSON(t, b.mustCLI("", append(slices.Clone(args), "--dry-run", "--json")...))
	wantKeys(t, "backfill plan", plan, "schema", "account_id", "from", "to", "entities", "windows", "planning_requests",
		"min_requests", "rate_limit_per_hour", "min_seconds_at_rate_limit", "page_size")
	if after := counts(); after != before {
		t.Errorf("the dry run wrote: %s → %s", before, after)
	}
	text := b.mustCLI("", append(slices.Clone(args), "--dry-run")...)
	t.Logf("backfill --dry-run:\n%s", text)
	real := decodeJSON(t, b.mustCLI("", append(slices.Clone(args), "--json")...))
	var windows float64
	for _, r := range real["accounts"].([]any)[0].(map[string]any)["runs"].([]any) {
		windows += r.(map[string]any)["windows"].(float64)
	}
	if pw := plan["windows"].(float64); pw == 0 || pw != windows {
		t.Errorf("the plan has %v windows, the backfill read %v", pw, windows)
	}
}
