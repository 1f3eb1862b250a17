package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// accountStatus reads where each entity of the account stands, from its
// last 500 runs.
func (a *app) accountStatus(ctx context.Context, acct syncer.Account) ([]syncer.EntityStatus, error) {
	runs, err := a.runs.Runs(ctx, acct.ID, 500)
	if err != nil {
		return nil, err
	}
	return syncer.EntityStatuses(acct.Persona, runs), nil
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "Shows, per account and entity, the last run, its outcome, rows and freshness, and each account's status with its reason.", stdout)
	account := fs.String("account", "", "only the account with this `ID`")
	asJSON := fs.Bool("json", false, "print JSON (docs/cli-json.md) instead of tables")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{schema: true}, func(a *app) error {
		accts, err := a.namedOrAll(ctx, *account)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if *asJSON {
			return a.statusJSON(ctx, stdout, accts, now)
		}
		return a.statusText(ctx, stdout, accts, now)
	})
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// statusText prints the status of accts as tables, with the fleet's live
// workers and who is syncing each account now.
func (a *app) statusText(ctx context.Context, stdout io.Writer, accts []syncer.Account, now time.Time) error {
	if len(accts) == 0 {
		fmt.Fprintln(stdout, "no accounts registered; add one with 'syncer accounts add'")
		return nil
	}
	if err := a.openKeeper(ctx, "syncer status"); err != nil {
		fmt.Fprintf(stdout, "keeper: %v (holders unknown)\n\n", err)
	}
	held := a.holders(ctx)
	if a.keeper != nil {
		if members, err := a.keeper.Members(ctx); err == nil {
			fmt.Fprintf(stdout, "fleet (%s): %d live workers\n", a.cfg.keeperRoot(), len(members))
			for _, m := range members {
				fmt.Fprintf(stdout, "  %s  %s  %s\n", m.Name, m.Holder, m.HTTPAddr)
			}
			fmt.Fprintln(stdout)
		}
	}
	for i, acct := range accts {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s  (%s, SID %s, %s)  status: %s\n", acct.ID, acct.Persona, acct.SID, acct.AuthKind, acct.Status)
		if acct.StatusReason != "" {
			fmt.Fprintf(stdout, "  reason: %s\n", acct.StatusReason)
		}
		if h := held[acct.ID]; h != "" {
			fmt.Fprintf(stdout, "  syncing now: %s\n", h)
		}
		if len(acct.MissingPermissions) > 0 {
			fmt.Fprintf(stdout, "  missing permissions: %s\n", strings.Join(acct.MissingPermissions, "; "))
		}
		sts, err := a.accountStatus(ctx, acct)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ENTITY\tLAST RUN\tOUTCOME\tROWS\tREQUESTS\tFRESHNESS\tERROR")
		for _, s := range sts {
			if s.Last.ID == "" {
				fmt.Fprintf(tw, "  %s\tnever\t-\t-\t-\t-\t\n", s.Entity)
				continue
			}
			fresh := "never succeeded"
			if d := s.Freshness(now); d >= 0 {
				fresh = humanDuration(d) + " ago"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Entity, s.Last.StartedAt.Format("2006-01-02 15:04:05Z"),
				s.Last.Status, s.Last.Rows, s.Last.Requests, fresh, oneLine(s.Last.Error))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) statusJSON(ctx context.Context, stdout io.Writer, accts []syncer.Account, now time.Time) error {
	out := jsonStatus{Schema: "impact-syncer/status/v1", GeneratedAt: jsonTime(now), Accounts: []jsonAccountStatus{}}
	for _, acct := range accts {
		sts, err := a.accountStatus(ctx, acct)
		if err != nil {
			return err
		}
		as := jsonAccountStatus{jsonAccount: toJSONAccount(acct), Entities: []jsonEntityStatus{}}
		for _, s := range sts {
			es := jsonEntityStatus{Entity: string(s.Entity)}
			if s.Last.ID != "" {
				r := toJSONRun(s.Last)
				es.LastRun = &r
			}
			if s.LastSuccess.ID != "" {
				r := toJSONRun(s.LastSuccess)
				es.LastSuccess = &r
				f := s.Freshness(now).Seconds()
				es.FreshnessSeconds = &f
			}
			as.Entities = append(as.Entities, es)
		}
		out.Accounts = append(out.Accounts, as)
	}
	return writeJSON(stdout, out)
}
