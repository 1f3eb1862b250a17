package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// simAccount is one entry of the simulator's -accounts file.
type simAccount struct {
	SID     string `json:"sid"`
	Token   string `json:"token"`
	Persona string `json:"persona"`
}

// cmdSeed registers every account of a simulator accounts file (ids
// bench0001, bench0002, ...) with its token sealed as `syncer accounts add`
// seals it, and stores the watermarks a completed sync would have left at
// the API's now minus -age: the next `syncer sync` is then one steady-state
// cycle (last-updated and locking sweeps over the overlap, catalogs, action
// updates) rather than a first sync over three years. The database must be
// migrated and empty of these accounts.
func cmdSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8088", "API base URL (the simulator)")
	file := fs.String("accounts", "", "the simulator's -accounts JSON file (required)")
	age := fs.Duration("age", 15*time.Minute, "how long ago the previous sync finished")
	parallel := fs.Int("parallel", 8, "accounts set up at a time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var accts []simAccount
	if err := json.Unmarshal(raw, &accts); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	keyring, err := auth.ParseKeyring(os.Getenv("SYNCER_ENCRYPTION_KEY"), nil)
	if err != nil {
		return fmt.Errorf("SYNCER_ENCRYPTION_KEY: %w", err)
	}
	db, err := load.Open(ctx, load.Options{Addrs: strings.Split(env("CLICKHOUSE_ADDR", "127.0.0.1:19000"), ","),
		Database: env("CLICKHOUSE_DATABASE", "bench")}, zap.NewNop())
	if err != nil {
		return err
	}
	defer db.Close()
	store := load.NewAccountStore(db)
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()

	type result struct {
		id, persona string
		campaigns   []string
		now         time.Time
		err         error
	}
	results := make([]result, len(accts))
	sem := make(chan struct{}, max(*parallel, 1))
	var wg sync.WaitGroup
	for i, a := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			r.id, r.persona = fmt.Sprintf("bench%04d", i+1), a.Persona
			p, err := syncer.ParsePersona(a.Persona)
			if err != nil {
				r.err = err
				return
			}
			sealed, err := keyring.Seal(r.id, syncer.Secret(a.Token))
			if err != nil {
				r.err = err
				return
			}
			acct := syncer.Account{ID: r.id, Persona: p, SID: a.SID, AuthKind: syncer.AuthBasic, Status: syncer.StatusActive}
			if err := store.PutAccount(ctx, acct, sealed); err != nil {
				r.err = err
				return
			}
			r.campaigns, r.now, r.err = listCampaigns(ctx, client, *base, a)
		}()
	}
	wg.Wait()

	batch, err := db.Conn().PrepareBatch(ctx, "INSERT INTO sync_state (account_id, entity, campaign_id, scan, watermark, updated_at, version)")
	if err != nil {
		return err
	}
	defer batch.Close()
	version := uint64(time.Now().UnixNano())
	keys, idleMin := 0, 0
	for _, r := range results {
		if r.err != nil {
			return fmt.Errorf("%s: %w", r.id, r.err)
		}
		mark := r.now.Add(-*age).UTC().Truncate(time.Second)
		scopes := r.campaigns
		catalogs := len(syncer.CatalogEntities)
		if r.persona == string(syncer.Partner) {
			scopes = []string{""}
			catalogs-- // no media partners
		}
		// the fewest requests of a cycle in which nothing changed: a page per
		// catalog, and per scope the Actions last-updated and locking sweeps
		// and the ActionUpdates last-updated sweep
		idleMin += catalogs + 3*len(scopes)
		for _, c := range scopes {
			for _, k := range finishedScans {
				version++
				keys++
				if err := batch.Append(r.id, string(k.e), c, k.scan, mark, mark, version); err != nil {
					return err
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"accounts": len(results), "watermarks": keys,
		"idle_minimum_requests": idleMin, "seconds": time.Since(start).Seconds()})
}

// finishedScans are the watermarks a completed first sync leaves per
// campaign scope (checked against a real one: scripts/bench.sh compares the
// cycle's requests with the idle minimum, which they equal when nothing is
// missing here).
var finishedScans = []struct {
	e    syncer.Entity
	scan string
}{
	{syncer.Actions, syncer.ScanUpdated}, {syncer.Actions, syncer.ScanLocking},
	{syncer.Actions, syncer.ScanEvent + "_until"}, {syncer.Actions, syncer.ScanEvent},
	{syncer.Actions, syncer.ScanClearing},
	{syncer.ActionUpdates, syncer.ScanUpdated}, {syncer.ActionUpdates, syncer.ScanLocking + "_until"},
	{syncer.ActionUpdates, syncer.ScanLocking}, {syncer.ActionUpdates, syncer.ScanClearing},
}

// listCampaigns returns a brand's campaign ids and the API's clock.
func listCampaigns(ctx context.Context, c *http.Client, base string, a simAccount) ([]string, time.Time, error) {
	root := "/Advertisers/"
	if a.Persona == string(syncer.Partner) {
		root = "/Mediapartners/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+root+url.PathEscape(a.SID)+"/Campaigns?PageSize=1000", nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	req.SetBasicAuth(a.SID, a.Token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("campaigns of %s: %s", a.SID, resp.Status)
	}
	var page struct {
		Campaigns []struct {
			ID json.RawMessage `json:"Id"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, time.Time{}, err
	}
	ids := make([]string, len(page.Campaigns))
	for i, cp := range page.Campaigns {
		ids[i] = strings.Trim(string(cp.ID), `"`)
	}
	now, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		now = time.Now()
	}
	return ids, now, nil
}
