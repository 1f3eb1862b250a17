package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestEndpointGroup(t *testing.T) {
	for path, want := range map[string]string{
		"/Advertisers/IRabc/Actions":            "Actions",
		"/Mediapartners/IRabc/ActionUpdates":    "ActionUpdates",
		"/Advertisers/IRabc/CompanyInformation": "CompanyInformation",
		"/Advertisers/IRabc/Campaigns.json":     "Campaigns",
		"/Advertisers/IRabc/Unexpected":         "other",
		"/":                                     "other",
	} {
		if got := endpointGroup(path); got != want {
			t.Errorf("endpointGroup(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestMetricsForgetRemovedAccounts: an account that is no longer registered
// leaves no series behind; the others keep theirs.
func TestMetricsForgetRemovedAccounts(t *testing.T) {
	m := newMetrics(nil)
	a := syncer.Account{ID: "keep", Status: syncer.StatusActive}
	b := syncer.Account{ID: "gone", Status: syncer.StatusNeedsReconnect, MissingPermissions: []string{"Actions"}}
	m.accountStatuses([]syncer.Account{a, b})
	now := time.Now()
	for _, id := range []string{"keep", "gone"} {
		m.result(syncer.AccountResult{Runs: []syncer.Run{{AccountID: id, Entity: syncer.Actions, Status: syncer.RunSucceeded,
			StartedAt: now.Add(-time.Second), FinishedAt: now}}})
		m.committed(id, syncer.Actions, 10, time.Millisecond)
		m.marks.set(syncer.WatermarkKey{AccountID: id, Entity: syncer.Actions, Scan: syncer.ScanUpdated}, now.Add(-time.Hour))
	}
	if text := scrapeRegistry(t, m); !strings.Contains(text, `impact_syncer_accounts{status="needs_reconnect"} 1`) ||
		!strings.Contains(text, `impact_syncer_account_missing_permissions{account_id="gone"} 1`) {
		t.Errorf("account gauges:\n%s", grepLines(text, "account"))
	}
	m.accountStatuses([]syncer.Account{a})
	text := scrapeRegistry(t, m)
	if strings.Contains(text, `"gone"`) {
		t.Errorf("series of the removed account remain:\n%s", grepLines(text, `"gone"`))
	}
	for _, want := range []string{
		`impact_syncer_rows_loaded_total{account_id="keep",entity="actions"} 10`,
		`impact_syncer_account_status{account_id="keep",status="active"} 1`,
		`impact_syncer_last_success_timestamp_seconds{account_id="keep",entity="actions"}`,
		`impact_syncer_watermark_lag_seconds{account_id="keep",entity="actions"}`,
		`impact_syncer_accounts{status="needs_reconnect"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// a status change replaces the account's status series
	a.Status = syncer.StatusDisabled
	m.accountStatuses([]syncer.Account{a})
	text = scrapeRegistry(t, m)
	if strings.Contains(text, `impact_syncer_account_status{account_id="keep",status="active"}`) ||
		!strings.Contains(text, `impact_syncer_account_status{account_id="keep",status="disabled"} 1`) {
		t.Errorf("account_status after disabling:\n%s", grepLines(text, "account_status"))
	}
}

// TestMetricsLabelsAreBounded: unknown field names never become label
// values, and the watermark lag follows the oldest incremental watermark only.
func TestMetricsLabelsAreBounded(t *testing.T) {
	m := newMetrics(nil)
	for i := range 50 {
		m.unknownField(syncer.Actions, fmt.Sprintf("NewField%d", i))
	}
	text := scrapeRegistry(t, m)
	if strings.Contains(text, "NewField") {
		t.Errorf("a field name became a label value")
	}
	if !strings.Contains(text, `impact_syncer_unknown_fields_total{entity="actions"} 50`) {
		t.Errorf("unknown fields not counted per entity:\n%s", grepLines(text, "unknown_fields"))
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	m.marks.now = func() time.Time { return now }
	k := syncer.WatermarkKey{AccountID: "a", Entity: syncer.Actions, CampaignID: "1", Scan: syncer.ScanUpdated}
	m.marks.set(k, now.Add(-10*time.Minute))
	k.Scan = syncer.ScanLocking
	m.marks.set(k, now.Add(-30*time.Minute))
	k.Scan = "backfill:updated:2024-01-01..2024-02-01" // not an incremental cursor
	m.marks.set(k, now.Add(-1000*time.Hour))
	k.Scan = syncer.ScanClearing
	m.marks.set(k, now.Add(-1000*time.Hour))
	text = scrapeRegistry(t, m)
	if !strings.Contains(text, `impact_syncer_watermark_lag_seconds{account_id="a",entity="actions"} 1800`) {
		t.Errorf("watermark lag:\n%s", grepLines(text, "watermark_lag"))
	}
	for _, want := range []string{"go_goroutines", "go_gc_duration_seconds", "impact_syncer_build_info{", "impact_syncer_passes_in_flight 0",
		`impact_syncer_oauth_refresh_failures_total{reason="invalid_grant"} 0`, "impact_syncer_clickhouse_retries_total 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func scrapeRegistry(t *testing.T, m *metrics) string {
	t.Helper()
	var b strings.Builder
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			var v float64
			switch {
			case mt.Counter != nil:
				v = mt.Counter.GetValue()
			case mt.Gauge != nil:
				v = mt.Gauge.GetValue()
			case mt.Untyped != nil:
				v = mt.Untyped.GetValue()
			default:
				v = -1
			}
			fmt.Fprintf(&b, "%s %s\n", name, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return b.String()
}

// inProcessWorker runs `syncer run` in this process until the test ends or
// stop is called.
type inProcessWorker struct {
	url  string
	logs *syncBuffer
	stop func()
}

func startInProcessWorker(t *testing.T, env map[string]string) *inProcessWorker {
	t.Helper()
	addr := freeAddr(t)
	t.Setenv("SYNCER_HTTP_ADDR", addr)
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := &inProcessWorker{url: "http://" + addr, logs: &syncBuffer{}}
	go func() { done <- run(ctx, []string{"run"}, strings.NewReader(""), io.Discard, w.logs) }()
	stopped := false
	w.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v\n%s", err, tail(w.logs.String(), 2000))
			}
		case <-time.After(60 * time.Second):
			t.Errorf("worker did not stop within 60s")
		}
	}
	t.Cleanup(w.stop)
	waitFor(t, 30*time.Second, "the worker's /healthz", func() bool {
		select {
		case err := <-done:
			t.Fatalf("worker exited: %v\n%s", err, tail(w.logs.String(), 2000))
		default:
		}
		resp, err := http.Get(w.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return w
}

func (w *inProcessWorker) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(w.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// never is a cron schedule that does not fire while a test runs.
const never = "0 0 1 1 *"

// TestIntegrationMetricsAfterRestart: a worker started after syncs it did not
// run reports each account's last success and watermark lag from its first
// scrape, before any run of its own.
func TestIntegrationMetricsAfterRestart(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	brand, partner := brandSpec("IRMETRICSBRAND0000000000000000001"), partnerSpec("IRMETRICSPARTNER00000000000000001")
	brand.Actions, partner.Actions = 200, 200
	b.addAccount("brand", brand)
	b.addAccount("partner", partner)
	b.mustCLI("", "sync")
	last, err := load.NewRunStore(b.db).LastSuccesses(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	w := startInProcessWorker(t, map[string]string{"SYNCER_SCHEDULE_ACTIONS": never, "SYNCER_SCHEDULE_CATALOG": never})
	text := w.scrape(t)
	for _, id := range []string{"brand", "partner"} {
		for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates, syncer.Campaigns} {
			want := fmt.Sprintf(`impact_syncer_last_success_timestamp_seconds{account_id=%q,entity=%q} %s`, id, e,
				formatPromFloat(float64(last[load.AccountEntity{AccountID: id, Entity: e}].Unix())))
			if !strings.Contains(text, want) {
				t.Errorf("first scrape after the restart lacks %s:\n%s", want, grepLines(text, "last_success"))
			}
		}
		lag := regexp.MustCompile(`impact_syncer_watermark_lag_seconds\{account_id="` + id + `",entity="actions"\} ([0-9.e+]+)`).FindStringSubmatch(text)
		if lag == nil {
			t.Errorf("no watermark lag for %s actions:\n%s", id, grepLines(text, "watermark_lag"))
		}
	}
	for _, want := range []string{`impact_syncer_accounts{status="active"} 2`, "impact_syncer_clickhouse_up 1",
		`impact_syncer_build_info{goversion=`, "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if n := countRuns(t, b.db, "brand", syncer.Actions, syncer.RunSucceeded); n != 1 {
		t.Errorf("the worker ran: %d successful runs of brand actions, want only the CLI's", n)
	}
	w.stop()
}

// formatPromFloat renders a value as the text exposition format does.
func formatPromFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	return s
}

// TestClickHouseRetriesCounted: the load package's retry warning is counted
// whatever the log level, and nothing else is.
func TestClickHouseRetriesCounted(t *testing.T) {
	a := &app{metrics: newMetrics(nil)}
	log := withRetryCounter(newLogger("error", io.Discard, false), a)
	log.Warn(load.RetryLogMessage)
	log.Warn("something else")
	log.Named("load").Warn(load.RetryLogMessage)
	if text := scrapeRegistry(t, a.metrics); !strings.Contains(text, "impact_syncer_clickhouse_retries_total 2\n") {
		t.Errorf("retries:\n%s", grepLines(text, "retries"))
	}
}

// TestOAuthRefreshFailuresCounted: the token endpoint's failed answers are
// counted by reason, its successes not at all.
func TestOAuthRefreshFailuresCounted(t *testing.T) {
	a := &app{metrics: newMetrics(nil)}
	answers := []struct {
		code int
		body string
	}{{200, `{"access_token":"x"}`}, {400, `{"error":"invalid_grant"}`}, {401, `{"error":"invalid_client"}`}, {503, "down"}}
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(answers[i].code)
		io.WriteString(w, answers[i].body)
		i++
	}))
	defer srv.Close()
	hc := &http.Client{Transport: tokenFailureTransport{base: http.DefaultTransport, a: a}}
	for range answers {
		resp, err := hc.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body) // the body is still readable by oauth2
		resp.Body.Close()
		if len(b) == 0 {
			t.Errorf("empty body after counting")
		}
	}
	text := scrapeRegistry(t, a.metrics)
	for _, want := range []string{`reason="invalid_grant"} 1`, `reason="refused"} 1`, `reason="unavailable"} 1`} {
		if !strings.Contains(text, "impact_syncer_oauth_refresh_failures_total{"+want) {
			t.Errorf("lacks %s:\n%s", want, grepLines(text, "oauth"))
		}
	}
}
