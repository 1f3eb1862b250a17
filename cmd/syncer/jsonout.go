package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// The shapes --json prints. They are a public contract (docs/cli-json.md):
// fields are only ever added, never renamed or removed; times are RFC 3339
// UTC, durations are seconds, absent values are null, lists are never null.
// Every document carries "schema": "impact-syncer/<kind>/v1".

type jsonAccount struct {
	ID                 string    `json:"id"`
	Persona            string    `json:"persona"`
	SID                string    `json:"sid"`
	Auth               string    `json:"auth"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	MissingPermissions []string  `json:"missing_permissions"`
	StatusAt           *jsonTime `json:"status_at"`
}

type jsonAccountList struct {
	Schema   string        `json:"schema"`
	Accounts []jsonAccount `json:"accounts"`
}

type jsonRun struct {
	RunID           string    `json:"run_id"`
	AccountID       string    `json:"account_id"`
	Entity          string    `json:"entity"`
	Kind            string    `json:"kind"`
	Status          string    `json:"status"`
	StartedAt       *jsonTime `json:"started_at"`
	FinishedAt      *jsonTime `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Rows            uint64    `json:"rows"`
	Requests        uint64    `json:"requests"`
	RateLimitWaits  uint64    `json:"rate_limit_waits"`
	Windows         uint64    `json:"windows"`
	Error           string    `json:"error"`
}

type jsonEntityStatus struct {
	Entity           string   `json:"entity"`
	LastRun          *jsonRun `json:"last_run"`
	LastSuccess      *jsonRun `json:"last_success"`
	FreshnessSeconds *float64 `json:"freshness_seconds"` // since the last success finished; null if none
}

type jsonAccountStatus struct {
	jsonAccount
	Entities []jsonEntityStatus `json:"entities"`
}

type jsonStatus struct {
	Schema      string              `json:"schema"`
	GeneratedAt jsonTime            `json:"generated_at"`
	Accounts    []jsonAccountStatus `json:"accounts"`
}

type jsonAccountResult struct {
	AccountID string    `json:"account_id"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error"` // the pass as a whole (lock held, dead credential); runs carry their own
	Runs      []jsonRun `json:"runs"`
}

type jsonReport struct {
	Schema         string              `json:"schema"`
	OK             bool                `json:"ok"`
	FailedAccounts int                 `json:"failed_accounts"`
	Accounts       []jsonAccountResult `json:"accounts"`
	Skipped        []jsonAccount       `json:"skipped"` // accounts not synced: needs_reconnect or disabled
}

// jsonTime is a time in RFC 3339, UTC, to the second.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

func optTime(t time.Time) *jsonTime {
	if t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	jt := jsonTime(t)
	return &jt
}

func toJSONAccount(a syncer.Account) jsonAccount {
	status := a.Status
	if status == "" {
		status = syncer.StatusActive
	}
	return jsonAccount{ID: a.ID, Persona: string(a.Persona), SID: a.SID, Auth: string(a.AuthKind), Status: string(status),
		Reason: a.StatusReason, MissingPermissions: nonNil(a.MissingPermissions), StatusAt: optTime(a.StatusAt)}
}

func toJSONRun(r syncer.Run) jsonRun {
	d := 0.0
	if !r.FinishedAt.IsZero() && !r.StartedAt.IsZero() && r.FinishedAt.After(r.StartedAt) {
		d = r.FinishedAt.Sub(r.StartedAt).Seconds()
	}
	return jsonRun{RunID: r.ID, AccountID: r.AccountID, Entity: string(r.Entity), Kind: string(r.Kind), Status: string(r.Status),
		StartedAt: optTime(r.StartedAt), FinishedAt: optTime(r.FinishedAt), DurationSeconds: d, Rows: r.Rows,
		Requests: r.Requests, RateLimitWaits: r.RateLimitWaits, Windows: r.Windows, Error: r.Error}
}

func toJSONReport(results []syncer.AccountResult, skipped []syncer.Account) jsonReport {
	rep := jsonReport{Schema: "impact-syncer/report/v1", OK: true, Accounts: []jsonAccountResult{}, Skipped: []jsonAccount{}}
	for _, r := range results {
		ar := jsonAccountResult{AccountID: r.Account.ID, OK: !r.Failed(), Runs: []jsonRun{}}
		if r.Err != nil {
			ar.Error = r.Err.Error()
		}
		for _, run := range r.Runs {
			ar.Runs = append(ar.Runs, toJSONRun(run))
		}
		if !ar.OK {
			rep.OK = false
			rep.FailedAccounts++
		}
		rep.Accounts = append(rep.Accounts, ar)
	}
	for _, a := range skipped {
		rep.Skipped = append(rep.Skipped, toJSONAccount(a))
	}
	return rep
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
