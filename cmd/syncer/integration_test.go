package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
)

// bundle is what an end-to-end test works with: the simulator, its HTTP
// server, the test's own ClickHouse database, and the environment the CLI
// reads.
type bundle struct {
	t   *testing.T
	sim *impactsim.Server
	api *httptest.Server
	db  *load.DB
	key string
}

// setup starts a simulator and points the CLI's environment at it and at a
// fresh ClickHouse database.
func setup(t *testing.T) *bundle {
	t.Helper()
	return setupAt(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
}

// setupAt is setup with the simulator's clock starting at now (the worker's
// clock stays time.Now).
func setupAt(t *testing.T, now time.Time) *bundle {
	t.Helper()
	db := chtest.Open(t)
	sim := impactsim.New(impactsim.Options{Now: now})
	api := httptest.NewServer(sim.Handler())
	t.Cleanup(api.Close)
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	b := &bundle{t: t, sim: sim, api: api, db: db, key: base64.StdEncoding.EncodeToString(k)}
	t.Setenv("CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("CLICKHOUSE_DATABASE", db.Database())
	t.Setenv("IMPACT_API_URL", api.URL)
	t.Setenv("SYNCER_ENCRYPTION_KEY", b.key)
	t.Setenv("SYNCER_LOG_LEVEL", "warn")
	t.Setenv("IMPACT_AUTH_TOKEN", "")
	return b
}

// cli runs the syncer command line in-process.
func (b *bundle) cli(stdin string, args ...string) (string, string, error) {
	b.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(b.t.Context(), 5*time.Minute)
	defer cancel()
	err := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (b *bundle) mustCLI(stdin string, args ...string) string {
	b.t.Helper()
	out, errOut, err := b.cli(stdin, args...)
	if err != nil {
		b.t.Fatalf("syncer %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, tail(errOut, 3000))
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// addAccount creates a simulator account and registers it through the CLI.
func (b *bundle) addAccount(id string, spec impactsim.AccountSpec) {
	b.t.Helper()
	if err := b.sim.AddAccount(spec); err != nil {
		b.t.Fatal(err)
	}
	b.mustCLI(spec.Token+"\n", "accounts", "add", "--id", id, "--persona", string(spec.Persona), "--sid", spec.SID, "--token-stdin")
}

// compareAll checks every entity of the account against the simulator's truth.
func (b *bundle) compareAll(id, sid string, entities ...syncer.Entity) {
	b.t.Helper()
	truth := b.sim.Truth(sid)
	for _, e := range entities {
		res, err := truthcheck.Compare(b.t.Context(), b.db, id, truth, e, nil)
		if err != nil {
			b.t.Fatalf("%s: %v", e, err)
		}
		b.t.Log(res)
		if res.Expected == 0 {
			b.t.Errorf("%s: the simulator holds no records; the comparison proves nothing", e)
		}
		if !res.OK() {
			b.t.Errorf("%s differs from the simulator:\n  %s", res, strings.Join(res.Diffs, "\n  "))
		}
	}
}

// noDuplicateKeys checks that FINAL shows each key once.
func (b *bundle) noDuplicateKeys(table string) {
	b.t.Helper()
	var rows, keys uint64
	q := fmt.Sprintf("SELECT count(), uniqExact(account_id, id) FROM `%s` FINAL", table)
	if err := b.db.QueryRow(b.t.Context(), q).Scan(&rows, &keys); err != nil {
		b.t.Fatal(err)
	}
	if rows != keys || rows == 0 {
		b.t.Errorf("%s: %d rows through FINAL for %d keys", table, rows, keys)
	}
}

func brandSpec(sid string) impactsim.AccountSpec {
	return impactsim.AccountSpec{SID: sid, Token: "tok-" + sid + "-s3cr3t-value", Persona: impactsim.Brand, Seed: 7,
		Campaigns: 3, Actions: 2500, MediaPartners: 25, PromoCodes: 12}
}

func partnerSpec(sid string) impactsim.AccountSpec {
	return impactsim.AccountSpec{SID: sid, Token: "tok-" + sid + "-s3cr3t-value", Persona: impactsim.Partner, Seed: 11,
		Campaigns: 4, Actions: 1500, PromoCodes: 9}
}

func TestIntegrationSyncBrandEqualsSimulator(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	b.addAccount("northwind", brandSpec("IRBRAND0000000000000000000000001"))
	b.mustCLI("", "sync")
	b.compareAll("northwind", "IRBRAND0000000000000000000000001", syncer.AllEntities...)

	// a second pass leaves every key once and the content unchanged
	out := b.mustCLI("", "sync", "--account", "northwind")
	if !strings.Contains(out, "succeeded") {
		t.Errorf("second sync output:\n%s", out)
	}
	for _, e := range []string{"campaigns", "media_partners", "promo_codes", "actions", "action_updates"} {
		b.noDuplicateKeys(e)
	}
	b.compareAll("northwind", "IRBRAND0000000000000000000000001", syncer.AllEntities...)

	runs, err := load.NewRunStore(b.db).Runs(t.Context(), "northwind", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 12 {
		t.Errorf("sync_runs holds %d runs, want 12 (6 entities × 2 passes)", len(runs))
	}
	for _, r := range runs {
		if r.Status != syncer.RunSucceeded || r.Requests == 0 {
			t.Errorf("run %s %s: %s, %d requests, error %q", r.ID, r.Entity, r.Status, r.Requests, r.Error)
		}
	}
}

func TestIntegrationSyncPartnerEqualsSimulator(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	b.addAccount("trailhead", partnerSpec("IRPARTNER00000000000000000000001"))
	b.mustCLI("", "sync")
	b.compareAll("trailhead", "IRPARTNER00000000000000000000001",
		syncer.CompanyInformation, syncer.Campaigns, syncer.PromoCodes, syncer.Actions, syncer.ActionUpdates)
}

func TestIntegrationAccountsAddRefusesWrongToken(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	spec := brandSpec("IRBRAND0000000000000000000000002")
	if err := b.sim.AddAccount(spec); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.cli("not-the-token\n", "accounts", "add", "--id", "x", "--persona", "brand", "--sid", spec.SID, "--token-stdin")
	if err == nil || !strings.Contains(err.Error(), "refused these credentials") || !strings.Contains(err.Error(), "nothing was stored") {
		t.Fatalf("err = %v, want a clear refusal", err)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("the error shows the token: %v", err)
	}
	var n uint64
	if err := b.db.QueryRow(t.Context(), "SELECT count() FROM accounts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("accounts holds %d rows after a refused add", n)
	}
}

func TestIntegrationStoredTokenIsNotReadable(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	spec := brandSpec("IRBRAND0000000000000000000000003")
	b.addAccount("acme", spec)
	out := b.mustCLI("", "accounts", "list")
	if !strings.Contains(out, "acme") || !strings.Contains(out, spec.SID) || strings.Contains(out, spec.Token) {
		t.Errorf("accounts list:\n%s", out)
	}
	for _, needle := range []string{spec.Token, base64.StdEncoding.EncodeToString([]byte(spec.Token)), b.key} {
		var n uint64
		q := "SELECT count() FROM accounts WHERE position(concat(id, persona, sid, auth_kind, status, status_reason, secret_key_id, secret_ciphertext, arrayStringConcat(missing_permissions, ',')), ?) > 0"
		if err := b.db.QueryRow(t.Context(), q, needle).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the accounts table contains a secret in plain text (%d rows)", n)
		}
	}
}

func TestConfigErrorsListEveryProblem(t *testing.T) {
	t.Setenv("SYNCER_ENCRYPTION_KEY", "short")
	t.Setenv("SYNCER_LOG_LEVEL", "loud")
	t.Setenv("SYNCER_CONCURRENCY", "0")
	t.Setenv("SYNCER_OVERLAP", "soon")
	t.Setenv("SYNCER_BATCH_SIZE", "many")
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"sync"}, strings.NewReader(""), &out, &errOut)
	if err == nil {
		t.Fatal("want a configuration error")
	}
	for _, want := range []string{"SYNCER_ENCRYPTION_KEY", "SYNCER_LOG_LEVEL", "SYNCER_CONCURRENCY", "SYNCER_OVERLAP", "SYNCER_BATCH_SIZE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("the error echoes the key value: %v", err)
	}
}

// A backfill that starts before the API's 3-year reach is clamped to it
// (by impact.com's clock) with a warning, and still completes.
func TestIntegrationBackfillClampsAncientFrom(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	spec := partnerSpec("IRPARTNERCLAMP000000000000000001")
	spec.Actions = 200
	b.addAccount("clamp", spec)
	out, errOut, err := b.cli("", "backfill", "--account", "clamp", "--entities", "actions", "--from", "2001-01-01")
	if err != nil {
		t.Fatalf("backfill: %v\n%s\n%s", err, out, tail(errOut, 2000))
	}
	if !strings.Contains(errOut, "older than impact.com serves") {
		t.Errorf("no clamp warning in the logs:\n%s", tail(errOut, 2000))
	}
	if strings.Count(errOut, "older than impact.com serves") != 1 {
		t.Errorf("the clamp warning should appear once")
	}
	b.compareAll("clamp", spec.SID, syncer.Actions)
}

// TestIntegrationSyncManyAccountsSharesCommits: `syncer sync` over several
// accounts in the steady state stages each pass's writes and commits many
// passes together: the new, modified and reversed actions of every account
// reach ClickHouse equal to the simulator, every run is recorded succeeded,
// and the sync sends sync_runs and each table a handful of inserts, not one
// (or two) per run.
func TestIntegrationSyncManyAccountsSharesCommits(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	type acct struct {
		id   string
		spec impactsim.AccountSpec
	}
	var accts []acct
	for i := range 4 {
		spec := brandSpec(fmt.Sprintf("IRBRANDMANY00000000000000000000%d", i))
		spec.Seed, spec.Actions, spec.Campaigns = int64(20+i), 400, 2
		accts = append(accts, acct{fmt.Sprintf("brand%d", i), spec})
	}
	partner := partnerSpec("IRPARTNERMANY0000000000000000001")
	partner.Actions = 300
	accts = append(accts, acct{"partner0", partner})
	for _, a := range accts {
		b.addAccount(a.id, a.spec)
	}
	b.mustCLI("", "sync") // the first sync: long runs, written as they read

	b.sim.Clock().Advance(3 * time.Hour)
	for _, a := range accts {
		if _, err := b.sim.AddActions(a.spec.SID, 7, ""); err != nil {
			t.Fatal(err)
		}
		var pending []string
		for _, x := range b.sim.Truth(a.spec.SID).Actions {
			if x.State == "PENDING" {
				pending = append(pending, x.Id)
			}
		}
		if len(pending) < 2 {
			t.Fatalf("%s: %d pending actions", a.id, len(pending))
		}
		if err := b.sim.ModifyAction(a.spec.SID, pending[0], "3.25", "0.33"); err != nil {
			t.Fatal(err)
		}
		if err := b.sim.ReverseAction(a.spec.SID, pending[1]); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SYNCER_LOG_LEVEL", "info")
	out, errOut, err := b.cli("", "sync")
	if err != nil {
		t.Fatalf("second sync: %v\n%s\n%s", err, out, tail(errOut, 3000))
	}
	for _, a := range accts {
		ents := syncer.AllEntities
		if a.spec.Persona == impactsim.Partner {
			ents = []syncer.Entity{syncer.CompanyInformation, syncer.Campaigns, syncer.PromoCodes, syncer.Actions, syncer.ActionUpdates}
		}
		b.compareAll(a.id, a.spec.SID, ents...)
		runs, err := load.NewRunStore(b.db).Runs(t.Context(), a.id, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2*len(ents) {
			t.Errorf("%s: %d runs recorded; want %d (2 passes × %d entities)", a.id, len(runs), 2*len(ents), len(ents))
		}
		for _, r := range runs {
			if r.Status != syncer.RunSucceeded || r.FinishedAt.Before(r.StartedAt) {
				t.Errorf("%s run %s %s: %s (%v → %v) %q", a.id, r.ID, r.Entity, r.Status, r.StartedAt, r.FinishedAt, r.Error)
			}
		}
	}
	for _, table := range []string{"actions", "action_updates", "campaigns", "promo_codes"} {
		b.noDuplicateKeys(table)
	}

	// the statements of the second sync, from its closing log line
	var byKind map[string]int
	for _, line := range strings.Split(errOut, "\n") {
		var l struct {
			Msg    string         `json:"msg"`
			ByKind map[string]int `json:"clickhouse_statements_by_kind"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "sync finished" {
			byKind = l.ByKind
		}
	}
	if byKind == nil {
		t.Fatalf("no 'sync finished' line with statements by kind in:\n%s", tail(errOut, 2000))
	}
	t.Logf("statements of the steady-state sync of %d accounts: %v", len(accts), byKind)
	// unstaged, every pass writes sync_runs n+1 times and each table once
	for kind, most := range map[string]int{"INSERT sync_runs": len(accts) - 1, "INSERT actions": len(accts) - 1, "INSERT campaigns": len(accts) - 1, "INSERT sync_state": len(accts) - 1} {
		if byKind[kind] == 0 || byKind[kind] > most {
			t.Errorf("%s: %d statements for %d accounts; want between 1 and %d (passes committed together)", kind, byKind[kind], len(accts), most)
		}
	}
}
