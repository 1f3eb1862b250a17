package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "Creates the database and applies the schema migrations in schema/. Safe to run again.", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{}, func(a *app) error {
		applied, err := a.db.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintf(stdout, "database %s is up to date\n", a.cfg.ClickHouseDatabase)
			return nil
		}
		fmt.Fprintf(stdout, "database %s: applied %d migrations\n", a.cfg.ClickHouseDatabase, len(applied))
		for _, m := range applied {
			fmt.Fprintln(stdout, "  ", m)
		}
		return nil
	})
}

const accountsUsage = `Usage: syncer accounts <add|list|check|set-token|disable|enable|remove> [flags]

  add --id ID --persona brand|partner --sid ACCOUNT_SID [--token-stdin]
        register an account; the Auth Token comes from standard input
        (--token-stdin) or the IMPACT_AUTH_TOKEN variable, never an argument
  list [--json]
        list registered accounts
  check ID [--json]
        check the credentials, then which entities' endpoints they may read
  set-token ID [--token-stdin]
        replace the Auth Token (after a reset) and reactivate the account
  disable ID | enable ID | remove ID
`

func cmdAccounts(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, accountsUsage)
		return usageError("accounts: no subcommand")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, accountsUsage)
		return nil
	case "add":
		return cmdAccountsAdd(ctx, args[1:], stdin, stdout, stderr)
	case "list":
		return cmdAccountsList(ctx, args[1:], stdout, stderr)
	case "check":
		return cmdAccountsCheck(ctx, args[1:], stdout, stderr)
	case "set-token":
		return cmdAccountsSetToken(ctx, args[1:], stdin, stdout, stderr)
	case "disable", "enable", "remove":
		return cmdAccountsState(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, accountsUsage)
	return usageError("accounts: unknown subcommand %q", args[0])
}

var accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkAccountID(id string) error {
	if !accountIDPattern.MatchString(id) {
		return usageError("account id %q: use 1–64 letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

// accountFlags are the flags naming an account to register: its id (under
// the flag name idFlag), its persona and its Account SID, all required.
type accountFlags struct {
	fs               *flag.FlagSet
	idFlag           string
	id, persona, sid *string
}

func newAccountFlags(fs *flag.FlagSet, idFlag string) *accountFlags {
	return &accountFlags{fs: fs, idFlag: idFlag,
		id:      fs.String(idFlag, "", "our `ID` for the account (required)"),
		persona: fs.String("persona", "", "`brand|partner`: the kind of account (required)"),
		sid:     fs.String("sid", "", "impact.com Account `SID` (required)"),
	}
}

// account returns the parsed flags' account, or a usage error naming the
// command when one is missing or invalid.
func (f *accountFlags) account() (id string, p syncer.Persona, sid string, err error) {
	cmd := f.fs.Name()
	if *f.id == "" || *f.persona == "" || *f.sid == "" {
		return "", "", "", usageError("%s: --%s, --persona and --sid are required", cmd, f.idFlag)
	}
	if err := checkAccountID(*f.id); err != nil {
		return "", "", "", err
	}
	if p, err = syncer.ParsePersona(*f.persona); err != nil {
		return "", "", "", usageError("%s: %v", cmd, err)
	}
	return *f.id, p, *f.sid, nil
}

// readToken reads the Auth Token from standard input or IMPACT_AUTH_TOKEN.
func readToken(fromStdin bool, stdin io.Reader) (syncer.Secret, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the Auth Token from standard input: %w", err)
		}
		if t := strings.TrimSpace(line); t != "" {
			return syncer.Secret(t), nil
		}
		return "", usageError("--token-stdin: standard input held no Auth Token")
	}
	if t := strings.TrimSpace(os.Getenv("IMPACT_AUTH_TOKEN")); t != "" {
		return syncer.Secret(t), nil
	}
	if t, err := secretFromFile("IMPACT_AUTH_TOKEN"); err != nil || t != "" {
		return t, err
	}
	return "", usageError("no Auth Token: pipe it with --token-stdin or set IMPACT_AUTH_TOKEN or IMPACT_AUTH_TOKEN_FILE (it is never taken as an argument)")
}

// checkCredentials asks impact.com for the account's company information.
// A 403 still proves the credentials (the token lacks that permission only).
func (a *app) checkCredentials(ctx context.Context, acct syncer.Account, token syncer.Secret) (missing []string, err error) {
	c, err := a.client(acct, &auth.BasicTransport{SID: acct.SID, Token: token, Base: a.transport})
	if err != nil {
		return nil, err
	}
	_, err = c.CompanyInformation(ctx)
	var forbidden *syncer.ForbiddenError
	var unauthorized *syncer.UnauthorizedError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &forbidden):
		return []string{forbidden.Permission}, nil
	case errors.As(err, &unauthorized):
		return nil, fmt.Errorf("impact.com refused these credentials (401 %s): check the Account SID and Auth Token (Settings → Technical → API); nothing was stored", unauthorized.Message)
	}
	return nil, fmt.Errorf("could not check the credentials with impact.com, nothing was stored: %w", err)
}

func cmdAccountsAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("accounts add", "Registers an impact.com account after checking its credentials against the API.", stdout)
	named := newAccountFlags(fs, "id")
	tokenStdin := fs.Bool("token-stdin", false, "read the Auth Token from standard input (else IMPACT_AUTH_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, p, sid, err := named.account()
	if err != nil {
		return err
	}
	token, err := readToken(*tokenStdin, stdin)
	if err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{keyring: true, schema: true}, func(a *app) error {
		if existing, err := a.accounts.Account(ctx, id); err == nil {
			return fmt.Errorf("account %s already exists (SID %s); use 'syncer accounts set-token %s' to replace its token", id, existing.SID, id)
		} else if !errors.Is(err, syncer.ErrNotFound) {
			return err
		}
		now := time.Now().UTC()
		acct := syncer.Account{ID: id, Persona: p, SID: sid, AuthKind: syncer.AuthBasic, Status: syncer.StatusActive,
			StatusAt: now, CreatedAt: now, UpdatedAt: now}
		missing, err := a.checkCredentials(ctx, acct, token)
		if err != nil {
			return err
		}
		acct.MissingPermissions = missing
		if len(missing) > 0 {
			acct.StatusReason = "the API token lacks: " + strings.Join(missing, "; ")
		}
		sealed, err := a.keyring.Seal(acct.ID, token)
		if err != nil {
			return err
		}
		if err := a.accounts.PutAccount(ctx, acct, sealed); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s added (%s, SID %s); credentials checked with impact.com\n", acct.ID, acct.Persona, acct.SID)
		if len(missing) > 0 {
			fmt.Fprintf(stdout, "warning: the token lacks %s; grant it in impact.com (Settings → Technical → API)\n", strings.Join(missing, ", "))
		}
		return nil
	})
}

func cmdAccountsSetToken(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("accounts set-token ID", "Replaces an account's Auth Token after checking it, and reactivates the account.", stdout)
	tokenStdin := fs.Bool("token-stdin", false, "read the Auth Token from standard input (else IMPACT_AUTH_TOKEN)")
	id, rest := splitID(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return usageError("accounts set-token: the account id is required")
	}
	token, err := readToken(*tokenStdin, stdin)
	if err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{keyring: true}, func(a *app) error {
		acct, err := a.accounts.Account(ctx, id)
		if err != nil {
			return err
		}
		missing, err := a.checkCredentials(ctx, acct, token)
		if err != nil {
			return err
		}
		sealed, err := a.keyring.Seal(acct.ID, token)
		if err != nil {
			return err
		}
		acct.AuthKind = syncer.AuthBasic
		acct.Status, acct.StatusReason, acct.MissingPermissions = syncer.StatusActive, "", missing
		acct.StatusAt, acct.UpdatedAt = time.Now().UTC(), time.Now().UTC()
		if err := a.accounts.PutAccount(ctx, acct, sealed); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s: new Auth Token stored; the account is active again\n", acct.ID)
		return nil
	})
}

// splitID takes a leading positional id off args, so "set-token ID --flag"
// and "set-token --flag ID" both work.
func splitID(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") && (n < 2 || !strings.HasPrefix(args[n-2], "--")) {
		return args[n-1], args[:n-1]
	}
	return "", args
}

func cmdAccountsState(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("accounts "+verb+" ID", map[string]string{
		"disable": "Stops syncing an account; its data stays.",
		"enable":  "Resumes syncing a disabled account.",
		"remove":  "Removes an account and its stored secret; its synced data stays in the entity tables.",
	}[verb], stdout)
	id, rest := splitID(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return usageError("accounts %s: the account id is required", verb)
	}
	return withApp(ctx, stderr, needs{}, func(a *app) error {
		acct, err := a.accounts.Account(ctx, id)
		if err != nil {
			return err
		}
		switch verb {
		case "disable":
			err = a.accounts.SetStatus(ctx, id, syncer.StatusDisabled, "disabled by an operator", acct.MissingPermissions)
		case "enable":
			err = a.accounts.SetStatus(ctx, id, syncer.StatusActive, "", acct.MissingPermissions)
		case "remove":
			err = a.accounts.DeleteAccount(ctx, id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s: %sd\n", id, strings.TrimSuffix(verb, "e"))
		return nil
	})
}

func cmdAccountsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("accounts list", "Lists registered accounts. Secrets are never shown.", stdout)
	asJSON := fs.Bool("json", false, "print JSON (docs/cli-json.md) instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{}, func(a *app) error {
		accts, err := a.accounts.Accounts(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := jsonAccountList{Schema: "impact-syncer/accounts/v1", Accounts: []jsonAccount{}}
			for _, ac := range accts {
				out.Accounts = append(out.Accounts, toJSONAccount(ac))
			}
			return writeJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPERSONA\tSID\tAUTH\tSTATUS\tREASON")
		for _, ac := range accts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ac.ID, ac.Persona, ac.SID, ac.AuthKind, ac.Status, ac.StatusReason)
		}
		return tw.Flush()
	})
}
