// Command syncer syncs impact.com accounts into ClickHouse.
//
//	syncer migrate                 create the database and apply schema migrations
//	syncer accounts add|list|check|set-token|disable|enable|remove
//	syncer sync                    one pass over every active account, then exit
//	syncer backfill                re-read a date range of actions or action updates
//	syncer status                  last runs, outcomes and freshness per account
//	syncer run                     the long-lived worker with cron schedules
//	syncer connect                 connect an account with OAuth 2.0
//	syncer keys rotate             re-encrypt every stored secret under the current key
//	syncer healthcheck             exit 0 when the worker's /healthz answers
//	syncer config                  print the effective configuration, secrets redacted
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries a process exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a bad command line: exit status 2.
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "syncer:", err)
	}
	if errors.Is(err, errHelp) {
		code = 0
	}
	os.Exit(code)
}

// errHelp ends a run that printed its help.
var errHelp = errors.New("help requested")

const usage = `syncer syncs impact.com accounts into ClickHouse.

Usage: syncer <command> [flags]

Commands:
  migrate                create the database and apply schema migrations (safe to repeat)
  accounts add           register an account (Auth Token from stdin or IMPACT_AUTH_TOKEN)
  accounts list          list registered accounts
  accounts check ID      check credentials and each entity's permission, without syncing
  accounts set-token     replace an account's Auth Token and reactivate it
  accounts disable|enable|remove ID
  sync                   one pass over every active account now, then exit
  backfill               re-read a date range of actions or action updates
  status                 last runs, outcomes and freshness per account and entity
  run                    the long-lived worker: cron schedules, metrics, health
  connect                connect an account with OAuth 2.0 (authorization code + PKCE)
  keys rotate            re-encrypt every stored secret under SYNCER_ENCRYPTION_KEY
  healthcheck            exit 0 when the worker's /healthz answers (for container health checks)
  config                 print the effective configuration (secrets REDACTED)
  version                print the version

Configuration comes from the environment; see config.example.env.
Run "syncer <command> --help" for a command's flags.
`

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(stdout, "syncer", version)
		return nil
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "accounts":
		return cmdAccounts(ctx, rest, stdin, stdout, stderr)
	case "sync":
		return cmdSync(ctx, rest, stdout, stderr)
	case "backfill":
		return cmdBackfill(ctx, rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "connect":
		return cmdConnect(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout, stderr)
	case "config":
		return cmdConfig(ctx, rest, stdout)
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", cmd)
}
