package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/extract"
	"github.com/impact-syncer/impact-syncer/internal/keeper"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/webhook"
)

// app holds what every command that touches ClickHouse needs.
type app struct {
	cfg      Config
	log      *zap.Logger
	db       *load.DB
	accounts *load.AccountStore
	runs     *load.RunStore
	state    *load.StateStore
	leases   *load.LeaseStore
	keeper   *keeper.Keeper       // nil without SYNCER_KEEPER_ADDR (see openKeeper)
	solo     *soloLease           // the single-worker lease of `syncer run` without a keeper
	keyring  *auth.Keyring        // nil when SYNCER_ENCRYPTION_KEY is unset
	oauth    auth.OAuthTransports // nil when OAuth is not configured
	metrics  *metrics             // nil outside the worker
	// callback serves the OAuth redirect; oauthIdle refreshes idle OAuth
	// connections. Both nil when OAuth is not configured.
	callback  *auth.Callback
	connector *auth.Connector
	oauthIdle func(ctx context.Context)
	// transport is the base HTTP transport for impact.com (tests swap it).
	transport http.RoundTripper
	// logOut is where the log is written (progress bars borrow it).
	logOut *logWriter
	// watch notifies account changes (SYNCER_NOTIFY_WEBHOOK_URL); nil
	// outside the worker or without a webhook.
	watch *webhook.Watch
}

// setMemoryLimit sets the Go runtime's soft memory limit to SYNCER_MEMORY_LIMIT_MIB
// unless GOMEMLIMIT (which the runtime reads itself) is set or the limit is
// 0. The collector then works harder as the heap nears it instead of letting
// it grow to twice the live data, which bounds the peak RSS of a large
// backfill; it is soft, so a larger live heap still runs.
func setMemoryLimit(mib int) {
	if mib > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(mib) << 20)
	}
}

// openApp loads the configuration and connects to ClickHouse. It does not
// migrate; commands that need the schema call requireSchema.
func openApp(ctx context.Context, stderr io.Writer) (*app, error) {
	cfg, err := loadConfig(osEnv())
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, transport: http.DefaultTransport}
	a.logOut = &logWriter{w: stderr}
	a.log = withRetryCounter(newLogger(cfg.LogLevel, a.logOut, isTerminal(stderr)), a)
	setMemoryLimit(cfg.MemoryLimitMiB)
	db, err := load.Open(ctx, load.Options{
		Addrs: cfg.Addrs(), Database: cfg.ClickHouseDatabase,
		User: cfg.ClickHouseUser, Password: cfg.ClickHousePassword.Reveal(),
		Secure: cfg.ClickHouseSecure, CAFile: cfg.ClickHouseCAFile, ServerName: cfg.ClickHouseTLSServerName,
		Cluster: cfg.ClickHouseCluster, ReplicaPath: cfg.ClickHouseReplicaPath,
	}, a.log)
	if err != nil {
		return nil, fmt.Errorf("connecting to ClickHouse at %s: %w", cfg.ClickHouseAddr, err)
	}
	a.db, a.accounts, a.runs = db, load.NewAccountStore(db), load.NewRunStore(db)
	a.state, a.leases = load.NewStateStore(db), load.NewLeaseStore(db, nil)
	a.leases.HolderGone = holderGone
	if cfg.EncryptionKey != "" {
		var older []string
		if cfg.EncryptionOldKeys != "" {
			older = strings.Split(cfg.EncryptionOldKeys.Reveal(), ",")
		}
		if a.keyring, err = auth.ParseKeyring(cfg.EncryptionKey.Reveal(), older); err != nil {
			db.Close()
			return nil, err
		}
	}
	if cfg.OAuthClientID != "" {
		if a.oauth, err = newOAuth(a); err != nil {
			db.Close()
			return nil, err
		}
	}
	return a, nil
}

func (a *app) close() {
	if a.keeper != nil {
		a.keeper.Close()
	}
	a.db.Close()
	_ = a.log.Sync()
}

// needs is what a command requires of its app besides the connection to
// ClickHouse. withApp checks them in this order.
type needs struct {
	keyring bool // SYNCER_ENCRYPTION_KEY is set (requireKeyring)
	oauth   bool // OAuth is configured (errNoOAuth)
	schema  bool // the database is migrated to this version (requireSchema)
}

// withApp is what every command that touches ClickHouse does after parsing
// its flags: load the configuration, connect (openApp), check what the
// command needs (requireKeyring, requireSchema, ...), do its work, and close
// the app however the work ends.
func withApp(ctx context.Context, stderr io.Writer, n needs, work func(a *app) error) error {
	a, err := openApp(ctx, stderr)
	if err != nil {
		return err
	}
	defer a.close()
	if n.keyring {
		if err := a.requireKeyring(); err != nil {
			return err
		}
	}
	if n.oauth && a.connector == nil {
		return errNoOAuth
	}
	if n.schema {
		if err := a.requireSchema(ctx); err != nil {
			return err
		}
	}
	return work(a)
}

// requireSchema refuses to work on a database that is not migrated.
func (a *app) requireSchema(ctx context.Context) error {
	ok, err := a.db.SchemaCurrent(ctx)
	if err != nil {
		return fmt.Errorf("checking the schema: %w", err)
	}
	if !ok {
		return fmt.Errorf("database %q is not migrated to this version: run 'syncer migrate' first", a.cfg.ClickHouseDatabase)
	}
	return nil
}

func (a *app) requireKeyring() error {
	if a.keyring == nil {
		return auth.ErrNoKeyring
	}
	return nil
}

// client builds an impact.com client for an account, authenticated by rt.
func (a *app) client(acct syncer.Account, rt http.RoundTripper) (*extract.Client, error) {
	o := extract.Options{
		BaseURL: a.cfg.ImpactAPIURL, AccountID: acct.ID, Persona: acct.Persona, SID: acct.SID,
		Transport: rt, Logger: a.log, Timeout: a.cfg.RequestTimeout,
		PageSize: map[syncer.Entity]int{syncer.Actions: a.cfg.PageSizeActions, syncer.ActionUpdates: a.cfg.PageSizeActions},
	}
	switch acct.Persona {
	case syncer.Brand:
		o.IRVersion = a.cfg.IRVersionBrand
	case syncer.Partner:
		o.IRVersion = a.cfg.IRVersionPartner
	}
	if m := a.metrics; m != nil {
		o.Transport = timedTransport{base: rt, m: m}
		o.OnResponse = func(e syncer.Entity, status int) { m.response(acct, e, status) }
		o.OnUnknownField = func(e syncer.Entity, field string) { m.unknownField(e, field) }
	}
	return extract.NewClient(o)
}

// source opens an account's credentials and returns its API client.
func (a *app) source(ctx context.Context, acct syncer.Account) (syncer.Source, error) {
	tr := auth.Transports{Keyring: a.keyring, Secrets: a.accounts, OAuth: a.oauth, Base: a.transport}
	rt, err := tr.For(ctx, acct)
	if err != nil {
		return nil, err
	}
	return a.client(acct, rt)
}

// syncer builds the sync service on ClickHouse and impact.com.
func (a *app) syncer(holder string) *syncer.Syncer {
	lw := load.NewWriter(a.db)
	lw.MergeParts = a.cfg.MergeParts
	var (
		w     syncer.Writer        = lw
		cat   syncer.CatalogWriter = load.NewCatalogWriter(a.db)
		state syncer.StateStore    = a.state
	)
	if m := a.metrics; m != nil {
		w, cat, state = meteredWriter{lw, m}, meteredCatalog{load.NewCatalogWriter(a.db), m}, meteredState{a.state, m}
	}
	return &syncer.Syncer{
		Accounts: a.accounts, Writer: w, Catalog: cat, State: state, Runs: a.runs,
		Locker: a.locker(),
		Source: a.source, Logger: a.log, Holder: holder, NewRunID: newRunID,
		Options: syncer.Options{
			Overlap: a.cfg.Overlap, ClearingLookback: a.cfg.ClearingLookback,
			ClearingInterval: a.cfg.ClearingInterval, BatchSize: a.cfg.BatchSize, InsertRows: a.cfg.InsertRows,
		},
	}
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// locker is the account lock every pass takes: the ZooKeeper lock recipe
// with a keeper, else the ClickHouse lease.
func (a *app) locker() syncer.Locker {
	if a.keeper != nil {
		return a.keeper
	}
	return a.leases
}

// holderName names this process in leases.
func holderName(role string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s on %s (pid %d)", role, host, os.Getpid())
}

var holderPattern = regexp.MustCompile(`^.* on (.+) \(pid (\d+)\)$`)

// holderGone reports whether a lease holder named by holderName is a process
// of this host that no longer exists.
func holderGone(holder string) bool {
	m := holderPattern.FindStringSubmatch(holder)
	if m == nil {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(m[2])
	if err != nil || m[1] != host || pid == os.Getpid() {
		return false
	}
	return !processExists(pid)
}

// newFlags returns a flag set for "syncer <name>" whose --help prints, to
// stdout, a usage line naming the required flags (those whose text says
// "(required)"), the summary, and the flags written as --name, as the README
// writes them.
func newFlags(name, summary string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { printUsage(fs, summary) }
	return fs
}

func printUsage(fs *flag.FlagSet, summary string) {
	w := fs.Output()
	var required []string
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if strings.Contains(f.Usage, "(required)") {
			required = append(required, "--"+f.Name+" "+flagValueName(f))
		}
	})
	line := "syncer " + fs.Name()
	if len(required) > 0 {
		line += " " + strings.Join(required, " ")
	}
	if n > len(required) {
		line += " [flags]"
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", line, strings.TrimRight(summary, "\n"))
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		_, text := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if v := flagValueName(f); v != "" {
			head += " " + v
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" {
			text += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%s\n      %s\n", head, strings.ReplaceAll(text, "\n", "\n      "))
	})
}

// flagValueName is the placeholder of a flag's value: the back-quoted word
// of its usage text, else its name in capitals; empty for a boolean.
func flagValueName(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return ""
	}
	name, _ := flag.UnquoteUsage(f)
	switch name {
	case "", "string", "value", "int", "uint":
		return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
	case "duration":
		return "DURATION"
	}
	return name
}

// parseFlags parses args: --help prints the usage to stdout and returns
// errHelp; a bad flag or argument returns a usage error (printed once, by
// main, with a pointer to --help) and prints nothing itself.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return errHelp
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + name
		}
		return usageError("%s: %s (see 'syncer %s --help')", fs.Name(), msg, commandName(fs))
	}
	if fs.NArg() > 0 {
		return usageError("%s: unexpected argument %q (see 'syncer %s --help')", fs.Name(), fs.Arg(0), commandName(fs))
	}
	return nil
}

// commandName is the flag set's command without its positional arguments
// ("accounts set-token ID" → "accounts set-token").
func commandName(fs *flag.FlagSet) string {
	return strings.TrimSuffix(fs.Name(), " ID")
}
