// Command impactsim serves the impact.com API simulator (internal/impactsim)
// over HTTP, with its admin endpoints under /_sim/.
//
//	impactsim -addr 127.0.0.1:8088 -demo
//	impactsim -accounts accounts.json -now 2026-04-15T12:00:00Z
//	impactsim -accounts many.json -latency 50ms   (benchmarks: a distant API)
//
// At start it prints one JSON object to stdout: the listening address, the
// clock, and each account's sid, persona and counts. The only tokens it
// prints are the demo ones it invented; tokens from -accounts stay unprinted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "impactsim:", err)
		os.Exit(1)
	}
}

// Demo accounts: fixed credentials so scripts and docs can use them.
const (
	DemoBrandSID     = "IRDemoBrand0000000000000000000001"
	DemoBrandToken   = "demo-brand-token-not-a-secret"
	DemoPartnerSID   = "IRDemoPartner00000000000000000001"
	DemoPartnerToken = "demo-partner-token-not-a-secret"
)

type config struct {
	addr       string
	demo       bool
	accounts   string
	seed       int64
	campaigns  int
	actions    int
	partners   int
	promoCodes int
	now        string
	rateLimit  int
	latency    time.Duration
	verbose    bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("impactsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8088", "listen address")
	fs.BoolVar(&c.demo, "demo", false, "create the demo brand and partner accounts (the default without -accounts)")
	fs.StringVar(&c.accounts, "accounts", "", "JSON file with a list of accounts (see accountFile)")
	fs.Int64Var(&c.seed, "seed", 1, "demo: generator seed")
	fs.IntVar(&c.campaigns, "campaigns", 5, "demo: campaigns per account")
	fs.IntVar(&c.actions, "actions", 20000, "demo: brand actions (the partner gets half)")
	fs.IntVar(&c.partners, "partners", 50, "demo: brand media partners")
	fs.IntVar(&c.promoCodes, "promocodes", 20, "demo: promo codes per account")
	fs.StringVar(&c.now, "now", "", "initial simulator clock, RFC 3339 (default: the wall clock)")
	fs.IntVar(&c.rateLimit, "rate-limit", 0, "requests per hour per account (0: impactsim.DefaultRateLimit)")
	fs.DurationVar(&c.latency, "latency", 0, "wall-clock delay added to every API request (e.g. 50ms), for benchmarks")
	fs.BoolVar(&c.verbose, "v", false, "log every request to stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if c.accounts == "" {
		c.demo = true
	}
	return c, nil
}

// accountFile is one entry of the -accounts file.
type accountFile struct {
	SID           string            `json:"sid"`
	Token         string            `json:"token"`
	Persona       impactsim.Persona `json:"persona"`
	Seed          int64             `json:"seed"`
	Campaigns     int               `json:"campaigns"`
	Actions       int               `json:"actions"`
	MediaPartners int               `json:"media_partners"`
	PromoCodes    int               `json:"promo_codes"`
	Timezone      string            `json:"timezone"`     // IANA; default America/Los_Angeles
	HistoryDays   int               `json:"history_days"` // default 120
}

func (f accountFile) spec() (impactsim.AccountSpec, error) {
	s := impactsim.AccountSpec{
		SID: f.SID, Token: f.Token, Persona: f.Persona, Seed: f.Seed,
		Campaigns: f.Campaigns, Actions: f.Actions, MediaPartners: f.MediaPartners, PromoCodes: f.PromoCodes,
		History: time.Duration(f.HistoryDays) * 24 * time.Hour,
	}
	if f.Timezone != "" {
		loc, err := time.LoadLocation(f.Timezone)
		if err != nil {
			return s, fmt.Errorf("account %s: %w", f.SID, err)
		}
		s.Location = loc
	}
	return s, nil
}

func loadSpecs(c config) ([]impactsim.AccountSpec, error) {
	var specs []impactsim.AccountSpec
	if c.demo {
		specs = append(specs,
			impactsim.AccountSpec{SID: DemoBrandSID, Token: DemoBrandToken, Persona: impactsim.Brand, Seed: c.seed,
				Campaigns: c.campaigns, Actions: c.actions, MediaPartners: c.partners, PromoCodes: c.promoCodes},
			impactsim.AccountSpec{SID: DemoPartnerSID, Token: DemoPartnerToken, Persona: impactsim.Partner, Seed: c.seed + 1,
				Campaigns: c.campaigns, Actions: c.actions / 2, PromoCodes: c.promoCodes},
		)
	}
	if c.accounts != "" {
		raw, err := os.ReadFile(c.accounts)
		if err != nil {
			return nil, err
		}
		var files []accountFile
		if err := json.Unmarshal(raw, &files); err != nil {
			return nil, fmt.Errorf("%s: %w", c.accounts, err)
		}
		for _, f := range files {
			s, err := f.spec()
			if err != nil {
				return nil, err
			}
			specs = append(specs, s)
		}
	}
	return specs, nil
}

// banner is what run prints at start.
type banner struct {
	Addr     string          `json:"addr"`
	Now      time.Time       `json:"now"`
	Accounts []bannerAccount `json:"accounts"`
}

type bannerAccount struct {
	SID     string            `json:"sid"`
	Token   string            `json:"token,omitempty"` // demo accounts only
	Persona impactsim.Persona `json:"persona"`
	Counts  map[string]int    `json:"counts"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var now time.Time
	if c.now != "" {
		if now, err = time.Parse(time.RFC3339, c.now); err != nil {
			return fmt.Errorf("-now: %w", err)
		}
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	specs, err := loadSpecs(c)
	if err != nil {
		return err
	}
	sim := impactsim.New(impactsim.Options{Now: now, Logger: log, Latency: c.latency})
	demoTokens := map[string]string{}
	if c.demo {
		demoTokens[DemoBrandSID], demoTokens[DemoPartnerSID] = DemoBrandToken, DemoPartnerToken
	}
	for _, s := range specs {
		if err := sim.AddAccount(s); err != nil {
			return err
		}
		if c.rateLimit > 0 {
			sim.SetRateLimit(s.SID, c.rateLimit, impactsim.HeadersAuto)
		}
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	b := banner{Addr: ln.Addr().String(), Now: sim.Clock().Now()}
	for _, a := range sim.Accounts() {
		b.Accounts = append(b.Accounts, bannerAccount{SID: a.SID, Token: demoTokens[a.SID], Persona: a.Persona, Counts: a.Counts})
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{Handler: sim.Mux(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
