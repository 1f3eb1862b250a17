package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func cmdSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sync", "Runs one pass now over every active account (or the one named), then exits.\nExit status 1 if any entity of any account failed.", stdout)
	account := fs.String("account", "", "sync only the account with this `ID`")
	entities := fs.String("entities", "", "comma-separated `LIST` of entities (default all): "+strings.Join(entityNames(), ","))
	asJSON := fs.Bool("json", false, "print the report as JSON (docs/cli-json.md) instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ents, err := syncer.ParseEntities(*entities)
	if err != nil {
		return usageError("sync: %v", err)
	}
	return withApp(ctx, stderr, needs{schema: true}, func(a *app) error {
		accts, skipped, err := a.selectAccounts(ctx, *account)
		if err != nil {
			return err
		}
		if !*asJSON {
			for _, s := range skipped {
				fmt.Fprintf(stdout, "skipping %s: %s (%s)\n", s.ID, s.Status, s.StatusReason)
			}
		}
		if len(accts) == 0 {
			if *asJSON {
				if err := writeJSON(stdout, toJSONReport(nil, skipped)); err != nil {
					return err
				}
			}
			if len(skipped) > 0 {
				return errors.New("no active account to sync")
			}
			if !*asJSON {
				fmt.Fprintln(stdout, "no accounts registered; add one with 'syncer accounts add'")
			}
			return nil
		}
		if err := a.openKeeper(ctx, "syncer sync"); err != nil {
			return err
		}
		w, err := a.newWorker(a.syncer(holderName("syncer sync")), nil, nil)
		if err != nil {
			return err
		}
		results := w.RunOnce(ctx, accts, syncer.Request{Entities: ents, Kind: syncer.RunIncremental})
		n, wait := a.db.Statements()
		a.log.Info("sync finished", zap.Int("accounts", len(accts)), zap.Int64("clickhouse_statements", n), zap.Duration("clickhouse_wait", wait),
			zap.Any("clickhouse_statements_by_kind", a.db.StatementsByKind()))
		if *asJSON {
			return reportJSON(stdout, results, skipped)
		}
		return report(stdout, results)
	})
}

// reportJSON prints the report as JSON and, like report, returns an error if
// anything failed.
func reportJSON(stdout io.Writer, results []syncer.AccountResult, skipped []syncer.Account) error {
	rep := toJSONReport(results, skipped)
	if err := writeJSON(stdout, rep); err != nil {
		return err
	}
	if rep.FailedAccounts > 0 {
		return fmt.Errorf("%d of %d accounts had failures (see the report and sync_runs)", rep.FailedAccounts, len(results))
	}
	return nil
}

// selectAccounts returns the accounts to sync: the named one, or every active
// one. Accounts that are not active are returned as skipped.
func (a *app) selectAccounts(ctx context.Context, id string) (active, skipped []syncer.Account, err error) {
	all, err := a.namedOrAll(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for _, acct := range all {
		if acct.Active() {
			active = append(active, acct)
		} else {
			skipped = append(skipped, acct)
		}
	}
	return active, skipped, nil
}

// namedOrAll returns the account named id, or every account when id is
// empty.
func (a *app) namedOrAll(ctx context.Context, id string) ([]syncer.Account, error) {
	if id == "" {
		return a.accounts.Accounts(ctx)
	}
	acct, err := a.accounts.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	return []syncer.Account{acct}, nil
}

// report prints one line per entity run and returns an error if anything
// failed.
func report(stdout io.Writer, results []syncer.AccountResult) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tENTITY\tOUTCOME\tROWS\tREQUESTS\t429 WAITS\tDURATION\tERROR")
	failed := 0
	for _, r := range results {
		if r.Failed() {
			failed++
		}
		for _, run := range r.Runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", run.AccountID, run.Entity, run.Status, run.Rows,
				run.Requests, run.RateLimitWaits, run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond), oneLine(run.Error))
		}
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t-\tfailed\t\t\t\t\t%s\n", r.Account.ID, oneLine(r.Err.Error()))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d accounts had failures (see the table above and sync_runs)", failed, len(results))
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func entityNames() []string {
	out := make([]string, len(syncer.AllEntities))
	for i, e := range syncer.AllEntities {
		out[i] = string(e)
	}
	return out
}

func cmdBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backfill", `Re-reads a date range of actions (by EventDate) and action updates (by UpdateDate)
into ClickHouse. Without --from it reaches everything the API can still return
(3 years back, through all three date filters). Killed and started again with
the same arguments, it continues where it stopped. It never moves the
incremental watermarks and never runs beside another run of the same account.`, stdout)
	account := fs.String("account", "", "the account's `ID` (required)")
	entities := fs.String("entities", "actions,action_updates", "`LIST`: actions and/or action_updates")
	from := fs.String("from", "", "start: a `DATE` (2024-01-01) or an RFC 3339 time; default the API's 3-year limit")
	to := fs.String("to", "", "end, inclusive: a `DATE` (the whole day) or an RFC 3339 time; default now")
	dryRun := fs.Bool("dry-run", false, "print the windows, the requests and the time the rate limit implies; read and write nothing")
	asJSON := fs.Bool("json", false, "print the report (or the --dry-run plan) as JSON (docs/cli-json.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *account == "" {
		return usageError("backfill: --account is required")
	}
	ents, err := syncer.ParseEntities(*entities)
	if err != nil {
		return usageError("backfill: %v", err)
	}
	for _, e := range ents {
		if e != syncer.Actions && e != syncer.ActionUpdates {
			return usageError("backfill: %s is refreshed whole on every sync; backfill takes actions and action_updates", e)
		}
	}
	req := syncer.Request{Entities: ents, Kind: syncer.RunBackfill}
	if req.From, err = parseWhen(*from, false); err != nil {
		return usageError("backfill: --from: %v", err)
	}
	if req.To, err = parseWhen(*to, true); err != nil {
		return usageError("backfill: --to: %v", err)
	}
	if !req.From.IsZero() && !req.To.IsZero() && req.To.Before(req.From) {
		return usageError("backfill: --to %s is before --from %s", *to, *from)
	}
	return withApp(ctx, stderr, needs{schema: true}, func(a *app) error {
		acct, err := a.accounts.Account(ctx, *account)
		if err != nil {
			return err
		}
		if !acct.Active() {
			return fmt.Errorf("account %s is %s: %s", acct.ID, acct.Status, acct.StatusReason)
		}
		if *dryRun {
			plan, err := a.backfillPlan(ctx, acct, req)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(stdout, plan)
			}
			printPlan(stdout, plan)
			return nil
		}
		if err := a.openKeeper(ctx, "syncer backfill"); err != nil {
			return err
		}
		svc := a.syncer(holderName("syncer backfill"))
		var finish func()
		svc.Progress, finish = progressPrinter(stderr, a.log, a.logOut)
		res := svc.SyncAccount(ctx, acct, req)
		finish()
		if *asJSON {
			return reportJSON(stdout, []syncer.AccountResult{res}, nil)
		}
		return report(stdout, []syncer.AccountResult{res})
	})
}

// parseWhen parses a date or an RFC 3339 time. A date as an end means the
// end of that day.
func parseWhen(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2024-01-31) nor an RFC 3339 time (2024-01-31T12:00:00Z)", s)
	}
	if end {
		return d.Add(24*time.Hour - time.Second), nil
	}
	return d, nil
}
