package main

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// The operator status page, served at / by the worker: every registered
// account with its status, reason and missing permissions, the last run and
// last success of each entity with its freshness, and the latest failed runs
// with their errors. Server-rendered HTML, no scripts, no secrets: accounts
// carry no credentials, and run errors are already scrubbed of tokens and
// credentials in URLs by the API client.

// Freshness thresholds for the page's colours.
const (
	freshWarn = 2 * time.Hour
	freshBad  = 24 * time.Hour
	// failedRunsShown is how many failed runs the page lists.
	failedRunsShown = 20
)

type statusPageData struct {
	Generated string
	Version   string
	Database  string
	Error     string
	Summary   string
	Fleet     string // the workers, or that there is one
	Accounts  []statusAccount
	Failures  []statusFailure
}

type statusAccount struct {
	ID, Persona, SID, AuthKind string
	Status, StatusClass        string
	Reason, Since              string
	Holder                     string // the process syncing it now, if any
	Missing                    []string
	Entities                   []statusEntity
	Error                      string
	// Overview: the stalest entity and how many entities' last run failed.
	Stalest, StalestClass string
	Failing               int
	stalest               time.Duration // -1: an entity never succeeded
}

type statusEntity struct {
	Entity                        string
	LastRun, LastStatus, RunClass string
	Rows, Requests                uint64
	LastSuccess, Freshness        string
	FreshClass                    string
	Error                         string
}

type statusFailure struct {
	When, Account, Entity, Status, Error string
}

func (a *app) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	data := a.statusPageData(ctx, time.Now().UTC())
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, data); err != nil {
		a.log.Error("status page: rendering failed", zap.Error(err))
		http.Error(w, "status page: rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if data.Error != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(buf.Bytes())
}

// statusPageData reads what the page shows. A failure to read the accounts
// is shown on the page (and answered 503); a failure for one account is
// shown in its section.
func (a *app) statusPageData(ctx context.Context, now time.Time) statusPageData {
	data := statusPageData{Generated: now.Format("2006-01-02 15:04:05 UTC"), Version: version, Database: a.cfg.ClickHouseDatabase}
	accts, err := a.accounts.Accounts(ctx)
	if err != nil {
		a.log.Warn("status page: reading accounts failed", zap.Error(err))
		data.Error = "Could not read the accounts from ClickHouse: " + oneLine(err.Error())
		return data
	}
	counts := map[syncer.Status]int{}
	stale := 0
	held := a.holders(ctx)
	data.Fleet = a.fleetLine(ctx)
	for _, acct := range accts {
		counts[acct.Status]++
		sa := statusAccount{ID: acct.ID, Persona: string(acct.Persona), SID: acct.SID, AuthKind: string(acct.AuthKind),
			Status: string(acct.Status), StatusClass: statusClass(acct.Status), Reason: acct.StatusReason,
			Missing: acct.MissingPermissions, Holder: held[acct.ID]}
		if sa.Status == "" {
			sa.Status, sa.StatusClass = string(syncer.StatusActive), "ok"
		}
		if !acct.StatusAt.IsZero() {
			sa.Since = acct.StatusAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		sts, err := a.accountStatus(ctx, acct)
		if err != nil {
			sa.Error = "Could not read the runs: " + oneLine(err.Error())
		}
		for _, s := range sts {
			e := statusEntity{Entity: string(s.Entity), LastRun: "never", LastStatus: "–", LastSuccess: "never",
				Freshness: "never synced", FreshClass: "bad"}
			if s.Last.ID != "" {
				e.LastRun = s.Last.StartedAt.UTC().Format("2006-01-02 15:04:05")
				e.LastStatus, e.RunClass = string(s.Last.Status), runClass(s.Last.Status)
				e.Rows, e.Requests = s.Last.Rows, s.Last.Requests
				e.Error = oneLine(s.Last.Error)
			}
			if d := s.Freshness(now); d >= 0 {
				e.LastSuccess = s.LastSuccess.FinishedAt.UTC().Format("2006-01-02 15:04:05")
				e.Freshness = humanDuration(d) + " ago"
				switch {
				case d >= freshBad:
					e.FreshClass = "bad"
				case d >= freshWarn:
					e.FreshClass = "warn"
				default:
					e.FreshClass = "ok"
				}
			}
			if !acct.Active() {
				e.FreshClass = "muted"
			} else if e.FreshClass != "ok" {
				stale++
			}
			if s.Last.Status == syncer.RunFailed {
				sa.Failing++
			}
			if d := s.Freshness(now); sa.Stalest == "" || d < 0 || (sa.stalest >= 0 && d > sa.stalest) {
				sa.stalest, sa.Stalest, sa.StalestClass = d, e.Freshness, e.FreshClass
			}
			sa.Entities = append(sa.Entities, e)
		}
		data.Accounts = append(data.Accounts, sa)

		runs, err := a.runs.Runs(ctx, acct.ID, 200)
		if err != nil {
			continue // already reported in the account's section
		}
		for _, run := range runs {
			if run.Status == syncer.RunFailed || run.Status == syncer.RunInterrupted {
				data.Failures = append(data.Failures, statusFailure{When: run.StartedAt.UTC().Format("2006-01-02 15:04:05"),
					Account: run.AccountID, Entity: string(run.Entity), Status: string(run.Status), Error: oneLine(run.Error)})
			}
		}
	}
	sort.SliceStable(data.Failures, func(i, j int) bool { return data.Failures[i].When > data.Failures[j].When })
	if len(data.Failures) > failedRunsShown {
		data.Failures = data.Failures[:failedRunsShown]
	}
	data.Summary = summary(len(accts), counts, stale)
	return data
}

func summary(n int, counts map[syncer.Status]int, stale int) string {
	if n == 0 {
		return "No accounts registered. Add one with: syncer accounts add"
	}
	parts := []string{plural(n, "account")}
	for _, s := range []syncer.Status{syncer.StatusActive, syncer.StatusNeedsReconnect, syncer.StatusDisabled} {
		if c := counts[s]; c > 0 {
			parts = append(parts, plural(c, "")+" "+strings.ReplaceAll(string(s), "_", " "))
		}
	}
	if stale > 0 {
		parts = append(parts, plural(stale, "entity")+" of active accounts not synced in the last 2 hours")
	}
	return strings.Join(parts, " · ")
}

func plural(n int, noun string) string {
	s := strconv.Itoa(n)
	switch {
	case noun == "":
		return s
	case n == 1:
		return s + " " + noun
	case strings.HasSuffix(noun, "y"):
		return s + " " + strings.TrimSuffix(noun, "y") + "ies"
	}
	return s + " " + noun + "s"
}

func statusClass(s syncer.Status) string {
	switch s {
	case syncer.StatusActive, "":
		return "ok"
	case syncer.StatusNeedsReconnect:
		return "bad"
	}
	return "muted"
}

func runClass(s syncer.RunStatus) string {
	switch s {
	case syncer.RunSucceeded:
		return "ok"
	case syncer.RunFailed:
		return "bad"
	case syncer.RunRunning:
		return "info"
	}
	return "warn"
}

var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>impact-syncer status</title>
<style>
  :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --info: #0969da; --muted: #57606a; --line: #d0d7de; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: #c9d1d9; font-size: 12px; }
  main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 32px; }
  .summary { margin: 0 0 16px; font-size: 15px; }
  .error { background: #ffebe9; border: 1px solid var(--bad); color: var(--bad); padding: 10px 14px; border-radius: 6px; margin-bottom: 16px; }
  section.account { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 16px; padding: 12px 16px; }
  section.account h2 { font-size: 16px; margin: 0 0 4px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
  .account .meta { color: var(--muted); font-size: 12px; }
  .reason { margin: 6px 0 0; }
  .missing { margin: 6px 0 0; }
  .missing ul { margin: 2px 0 0 18px; padding: 0; }
  .badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px; border: 1px solid currentColor; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .info { color: var(--info); } .muted { color: var(--muted); }
  table { width: 100%; border-collapse: collapse; margin-top: 10px; font-size: 13px; table-layout: fixed; }
  table.overview { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 0 0 20px; }
  a { color: var(--info); text-decoration: none; } a:hover { text-decoration: underline; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  td { overflow-wrap: anywhere; }
  td.err { color: var(--bad); }
  h2.section { font-size: 16px; margin: 24px 0 8px; }
  .failures { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 8px; }
</style>
</head>
<body>
<header>
  <h1>impact-syncer status</h1>
  <span class="meta">generated {{.Generated}} · version {{.Version}} · database {{.Database}} · refreshes every minute</span>
</header>
<main>
{{if .Error}}<div class="error" role="alert">{{.Error}}</div>{{end}}
{{if .Summary}}<p class="summary">{{.Summary}}</p>{{end}}
{{if .Fleet}}<p class="summary fleet">{{.Fleet}}</p>{{end}}
{{if .Accounts}}
<table class="overview">
  <colgroup><col style="width:14%"><col style="width:11%"><col style="width:8%"><col style="width:13%"><col style="width:7%"><col style="width:20%"><col></colgroup>
  <thead><tr><th>Account</th><th>Status</th><th>Persona</th><th>Stalest entity</th><th class="num">Failing</th><th>Syncing now</th><th>Reason</th></tr></thead>
  <tbody>
  {{range .Accounts}}<tr>
    <td><a href="#account-{{.ID}}">{{.ID}}</a></td><td><span class="badge {{.StatusClass}}">{{.Status}}</span></td><td>{{.Persona}}</td>
    <td class="{{.StalestClass}}">{{.Stalest}}</td><td class="num {{if .Failing}}bad{{end}}">{{.Failing}}</td>
    <td class="holder">{{if .Holder}}{{.Holder}}{{else}}<span class="muted">–</span>{{end}}</td><td>{{.Reason}}</td>
  </tr>{{end}}
  </tbody>
</table>
{{end}}
{{range .Accounts}}
<section class="account" id="account-{{.ID}}">
  <h2>{{.ID}} <span class="badge {{.StatusClass}}" data-status="{{.Status}}">{{.Status}}</span></h2>
  <div class="meta">{{.Persona}} · SID {{.SID}} · {{.AuthKind}} auth{{if .Since}} · status since {{.Since}}{{end}}{{if .Holder}} · syncing now: {{.Holder}}{{end}}</div>
  {{if .Reason}}<p class="reason"><strong>Reason:</strong> {{.Reason}}</p>{{end}}
  {{if .Missing}}<div class="missing"><strong>Missing permissions</strong> (grant them in impact.com under Settings → Technical → API):
    <ul>{{range .Missing}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
  {{if .Error}}<div class="error">{{.Error}}</div>{{end}}
  <table class="entities">
    <colgroup><col style="width:14%"><col style="width:14%"><col style="width:9%"><col style="width:7%"><col style="width:7%"><col style="width:14%"><col style="width:11%"><col></colgroup>
    <thead><tr><th>Entity</th><th>Last run (UTC)</th><th>Outcome</th><th class="num">Rows</th><th class="num">Requests</th><th>Last success (UTC)</th><th>Freshness</th><th>Error of the last run</th></tr></thead>
    <tbody>
    {{range .Entities}}<tr>
      <td>{{.Entity}}</td><td>{{.LastRun}}</td><td class="{{.RunClass}}">{{.LastStatus}}</td>
      <td class="num">{{if ne .LastRun "never"}}{{.Rows}}{{end}}</td><td class="num">{{if ne .LastRun "never"}}{{.Requests}}{{end}}</td>
      <td>{{.LastSuccess}}</td><td class="{{.FreshClass}}">{{.Freshness}}</td><td class="err">{{.Error}}</td>
    </tr>{{end}}
    </tbody>
  </table>
</section>
{{end}}
{{if not .Error}}
<h2 class="section">Latest failed runs</h2>
<div class="failures">
{{if .Failures}}
  <table class="failed">
    <colgroup><col style="width:14%"><col style="width:12%"><col style="width:14%"><col style="width:9%"><col></colgroup>
    <thead><tr><th>Started (UTC)</th><th>Account</th><th>Entity</th><th>Outcome</th><th>Error</th></tr></thead>
    <tbody>
    {{range .Failures}}<tr><td>{{.When}}</td><td>{{.Account}}</td><td>{{.Entity}}</td><td class="bad">{{.Status}}</td><td class="err">{{.Error}}</td></tr>{{end}}
    </tbody>
  </table>
{{else}}<p class="muted">No failed runs.</p>{{end}}
</div>
{{end}}
</main>
</body>
</html>
`))
