package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/webhook"
)

// receiver is a webhook endpoint that keeps what it is sent.
type receiver struct {
	mu     sync.Mutex
	events []webhook.Event
	bodies []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var e webhook.Event
	if err := json.Unmarshal(b, &e); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events, r.bodies = append(r.events, e), append(r.bodies, string(b))
	r.mu.Unlock()
}

func (r *receiver) has(kind, account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Event == kind && e.AccountID == account {
			return true
		}
	}
	return false
}

// metricNames lists the metric names a PromQL text refers to.
var metricName = regexp.MustCompile(`\b(impact_syncer_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+)\b`)

// scrapedNames lists the sample names of a /metrics text.
func scrapedNames(text string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out[strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	return out
}

// queriedNames reads every PromQL expression of the Grafana dashboard and the
// alerting rules and returns the metric names they use, with where.
func queriedNames(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string]string{}
	b, err := os.ReadFile(filepath.Join(root, "deploy/grafana/impact-syncer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				out[n] = "dashboard panel " + p.Title
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, n := range metricName.FindAllString(v.Definition, -1) {
			out[n] = "dashboard variable"
		}
	}
	if exprs < 15 {
		t.Errorf("the dashboard has %d queries", exprs)
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.Contains(l, "description:") || strings.Contains(l, "summary:") {
			continue
		}
		for _, n := range metricName.FindAllString(l, -1) {
			out[n] = "alerting rules"
		}
	}
	return out
}

// TestIntegrationWorkerOperations runs the worker in-process on one-second
// schedules with a webhook: it is told when an account loses a permission,
// needs reconnecting and recovers (never with a secret), and every metric the
// dashboard and the alerting rules query is in a scrape of the worker.
func TestIntegrationWorkerOperations(t *testing.T) {
	b := setup(t)
	b.mustCLI("", "migrate")
	brand, partner := brandSpec("IROPSBRAND000000000000000000001"), partnerSpec("IROPSPARTNER0000000000000000001")
	brand.Actions, partner.Actions = 150, 150
	b.addAccount("brand", brand)
	b.addAccount("partner", partner)
	rcv := &receiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()

	w := startInProcessWorker(t, map[string]string{
		"SYNCER_SCHEDULE_ACTIONS": "*/1 * * * * *", "SYNCER_SCHEDULE_CATALOG": "*/1 * * * * *",
		"SYNCER_START_SPREAD": "0s", "SYNCER_SHUTDOWN_TIMEOUT": "5s", "SYNCER_LOG_LEVEL": "info",
		"SYNCER_NOTIFY_WEBHOOK_URL": hook.URL + "/services/T0/B0/hook-s3cr3t",
	})
	waitFor(t, 90*time.Second, "scheduled runs of both accounts", func() bool {
		return countRuns(t, b.db, "brand", syncer.Actions, syncer.RunSucceeded) > 0 &&
			countRuns(t, b.db, "partner", syncer.PromoCodes, syncer.RunSucceeded) > 0
	})

	b.sim.DenyEndpoint(brand.SID, "PromoCodes")
	waitFor(t, 60*time.Second, "a permission_lost notification for brand", func() bool { return rcv.has(webhook.PermissionLost, "brand") })
	newToken := b.sim.ResetToken(partner.SID)
	waitFor(t, 60*time.Second, "a needs_reconnect notification for partner", func() bool { return rcv.has(webhook.NeedsReconnect, "partner") })
	b.mustCLI(newToken+"\n", "accounts", "set-token", "partner", "--token-stdin")
	waitFor(t, 60*time.Second, "a recovered notification for partner", func() bool { return rcv.has(webhook.Recovered, "partner") })

	text := w.scrape(t)
	scraped := scrapedNames(text)
	queried := queriedNames(t)
	var names []string
	for n := range queried {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !scraped[n] && !scraped[n+"_bucket"] {
			t.Errorf("%s queries %s, which the worker does not export", queried[n], n)
		}
	}
	t.Logf("%d metric names queried by the dashboard and the rules, all in the scrape", len(names))
	for _, want := range []string{`impact_syncer_notifications_total{outcome="sent"}`, `impact_syncer_account_missing_permissions{account_id="brand"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	w.stop()

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, body := range rcv.bodies {
		for _, secret := range []string{brand.Token, partner.Token, newToken, "hook-s3cr3t", b.key} {
			if strings.Contains(body, secret) {
				t.Errorf("a notification carries a secret: %s", body)
			}
		}
	}
	for _, e := range rcv.events {
		t.Logf("notified: %s", e.Text)
	}
}
