package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/extract"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

type jsonCheckEntity struct {
	Entity     string `json:"entity"`
	Endpoint   string `json:"endpoint"`
	Result     string `json:"result"`     // granted, missing_permission, error, skipped
	Permission string `json:"permission"` // for missing_permission, as an admin sees it in impact.com
	Detail     string `json:"detail"`
}

type jsonCheck struct {
	Schema      string            `json:"schema"`
	AccountID   string            `json:"account_id"`
	Persona     string            `json:"persona"`
	Auth        string            `json:"auth"`
	Credentials string            `json:"credentials"` // ok, refused, error
	Detail      string            `json:"detail"`
	OK          bool              `json:"ok"` // credentials ok and every entity granted
	Requests    uint64            `json:"requests"`
	Entities    []jsonCheckEntity `json:"entities"`
}

func cmdAccountsCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("accounts check ID", `Checks an account without syncing it: first its stored credentials, then each
entity's endpoint with one small read (a page of at most one window of the last
day for actions), reporting which permissions are granted. Writes nothing and
changes no status, except what an OAuth refresh must record (the rotated
refresh token, or needs_reconnect when impact.com rejects it). Exit status 1
unless every entity is granted.`, stdout)
	asJSON := fs.Bool("json", false, "print JSON (docs/cli-json.md) instead of a table")
	id, rest := splitID(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return usageError("accounts check: the account id is required")
	}
	return withApp(ctx, stderr, needs{schema: true}, func(a *app) error {
		acct, err := a.accounts.Account(ctx, id)
		if err != nil {
			return err
		}
		res := a.check(ctx, acct)
		if *asJSON {
			if err := writeJSON(stdout, res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "%s  (%s, SID %s, %s)  credentials: %s %s\n", acct.ID, acct.Persona, acct.SID, acct.AuthKind, res.Credentials, res.Detail)
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  ENTITY\tENDPOINT\tRESULT\tDETAIL")
			for _, e := range res.Entities {
				detail := e.Detail
				if e.Permission != "" {
					detail = "lacks: " + e.Permission
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Entity, e.Endpoint, e.Result, oneLine(detail))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d requests\n", res.Requests)
		}
		if !res.OK {
			return &exitError{code: 1, err: fmt.Errorf("account %s: check failed (credentials %s)", acct.ID, res.Credentials)}
		}
		return nil
	})
}

// check asks each of the account's endpoints for a little data
// (syncer.CheckAccess) and counts the requests that took.
func (a *app) check(ctx context.Context, acct syncer.Account) jsonCheck {
	res := jsonCheck{Schema: "impact-syncer/check/v1", AccountID: acct.ID, Persona: string(acct.Persona), Auth: string(acct.AuthKind),
		Entities: []jsonCheckEntity{}}
	requests := a.countRequests()
	src, err := a.source(ctx, acct)
	if err != nil {
		res.Credentials, res.Detail = "error", err.Error()
		return res
	}
	access := syncer.CheckAccess(ctx, src, acct, time.Now)
	res.Credentials = "ok"
	if access.Refused != nil {
		res.Credentials, res.Detail = "refused", access.Refused.Error()
	}
	for _, e := range access.Entities {
		res.Entities = append(res.Entities, jsonCheckEntity{Entity: string(e.Entity), Endpoint: extract.Resource(e.Entity),
			Result: string(e.Result), Permission: e.Permission, Detail: e.Detail})
	}
	res.Requests = requests.Load()
	res.OK = access.OK()
	return res
}

// Dry-run backfill: syncer's DryRun plans the real pass against the real
// watermarks and campaign list, reading no window and writing nothing; this
// is its report.

type jsonPlanEntity struct {
	Entity  string `json:"entity"`
	Windows int    `json:"windows"`
}

type jsonPlan struct {
	Schema           string           `json:"schema"`
	AccountID        string           `json:"account_id"`
	From             *jsonTime        `json:"from"` // null: the API's 3-year limit
	To               *jsonTime        `json:"to"`   // null: now
	Entities         []jsonPlanEntity `json:"entities"`
	Windows          int              `json:"windows"`           // still to read (a resumed backfill skips what is done)
	PlanningRequests uint64           `json:"planning_requests"` // spent on this plan (the campaign list, the API's clock)
	MinRequests      uint64           `json:"min_requests"`      // one page per window; each further page of a window costs one more
	RateLimitPerHour int              `json:"rate_limit_per_hour"`
	MinSeconds       float64          `json:"min_seconds_at_rate_limit"` // the share of the hourly limit the requests take
	PageSize         int              `json:"page_size"`
}

// rateLimitPerHour is impact.com's request limit per account.
const rateLimitPerHour = 1000

func (a *app) backfillPlan(ctx context.Context, acct syncer.Account, req syncer.Request) (jsonPlan, error) {
	requests := a.countRequests()
	windows, err := a.syncer(holderName("syncer backfill --dry-run")).DryRun(ctx, acct, req)
	if err != nil {
		return jsonPlan{}, err
	}
	plan := jsonPlan{Schema: "impact-syncer/backfill-plan/v1", AccountID: acct.ID, From: optTime(req.From), To: optTime(req.To),
		Entities: []jsonPlanEntity{}, PlanningRequests: requests.Load(), RateLimitPerHour: rateLimitPerHour,
		PageSize: a.cfg.PageSizeActions}
	for _, e := range req.Entities {
		n := windows[e]
		plan.Entities = append(plan.Entities, jsonPlanEntity{Entity: string(e), Windows: n})
		plan.Windows += n
	}
	plan.MinRequests = uint64(plan.Windows)
	plan.MinSeconds = float64(plan.MinRequests) / rateLimitPerHour * 3600
	return plan, nil
}

func printPlan(w io.Writer, p jsonPlan) {
	from, to := "the API's 3-year limit", "now"
	if p.From != nil {
		from = time.Time(*p.From).UTC().Format(time.RFC3339)
	}
	if p.To != nil {
		to = time.Time(*p.To).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "backfill plan for %s, %s to %s (dry run: nothing read or written)\n", p.AccountID, from, to)
	for _, e := range p.Entities {
		fmt.Fprintf(w, "  %-15s %5d windows\n", e.Entity, e.Windows)
	}
	fmt.Fprintf(w, "  total           %5d windows: at least %d requests (one page of up to %d records each; every further page one more)\n",
		p.Windows, p.MinRequests, p.PageSize)
	fmt.Fprintf(w, "  at impact.com's %s requests per hour per account: at least %s of the account's rate limit (the worker's syncs share it)\n",
		thousands(p.RateLimitPerHour), (time.Duration(p.MinSeconds) * time.Second).Round(time.Second))
	fmt.Fprintf(w, "  planning it took %d request(s)\n", p.PlanningRequests)
}

// countRequests counts, from now on, the requests this app sends to
// impact.com.
func (a *app) countRequests() *atomic.Uint64 {
	n := &atomic.Uint64{}
	a.transport = countingTransport{base: a.transport, n: n}
	return n
}

type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Uint64
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(req)
}

// thousands writes n with thousands separators: 1,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
