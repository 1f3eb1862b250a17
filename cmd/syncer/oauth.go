package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func (a *app) oauthConfig() auth.OAuthConfig {
	return auth.OAuthConfig{
		AuthorizeURL: a.cfg.OAuthAuthorizeURL, TokenURL: a.cfg.OAuthTokenURL,
		ClientID: a.cfg.OAuthClientID, ClientSecret: a.cfg.OAuthClientSecret,
		RedirectURL: a.cfg.OAuthRedirectURL, Scopes: a.cfg.Scopes(),
	}
}

// oauthManager adapts auth.Manager to auth.OAuthTransports.
type oauthManager struct{ m *auth.Manager }

func (o oauthManager) Transport(accountID string, _ http.RoundTripper) http.RoundTripper {
	return o.m.Transport(accountID)
}

// newOAuth wires OAuth 2.0: the per-account token manager (refresh with
// rotation, persisted before use), the callback handler the worker serves,
// and the idle-connection refresher.
func newOAuth(a *app) (auth.OAuthTransports, error) {
	if err := a.requireKeyring(); err != nil {
		return nil, fmt.Errorf("OAuth is configured, but %w", err)
	}
	tokens := auth.NewAccountTokens(a.accounts, a.keyring, time.Now)
	m, err := auth.NewManager(auth.ManagerConfig{OAuth: a.oauthConfig(), Store: tokens, Base: a.transport, Logger: a.log,
		TokenClient: &http.Client{Timeout: 30 * time.Second, Transport: tokenFailureTransport{base: http.DefaultTransport, a: a}}})
	if err != nil {
		return nil, err
	}
	conn, err := auth.NewConnector(a.oauthConfig(), nil, a.log, nil)
	if err != nil {
		return nil, err
	}
	a.connector = conn
	a.callback = conn.CallbackHandler(func(ctx context.Context, p auth.Pending, rt syncer.Secret) error {
		if err := tokens.Connected(ctx, p, rt); err != nil {
			return err
		}
		m.Forget(p.AccountID)
		return nil
	})
	a.oauthIdle = func(ctx context.Context) { refreshIdleLoop(ctx, a, m) }
	return oauthManager{m}, nil
}

// refreshIdleLoop renews, twice a day, OAuth connections whose refresh
// token has not been used for SYNCER_OAUTH_REFRESH_IDLE, so an account that
// is rarely synced never reaches impact.com's 90-day idle expiry.
func refreshIdleLoop(ctx context.Context, a *app, m *auth.Manager) {
	for {
		accts, err := a.accounts.Accounts(ctx)
		if err == nil {
			var ids []string
			for _, ac := range accts {
				if ac.AuthKind == syncer.AuthOAuth && ac.Active() {
					ids = append(ids, ac.ID)
				}
			}
			renewed, err := m.RefreshIdle(ctx, ids, a.cfg.OAuthRefreshIdle)
			if len(renewed) > 0 {
				a.log.Info("renewed idle OAuth connections", zap.Strings("account_ids", renewed))
			}
			if err != nil && ctx.Err() == nil {
				a.log.Warn("renewing idle OAuth connections", zap.Error(err))
			}
		}
		t := time.NewTimer(12 * time.Hour)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (a *app) callbackPath() string {
	if a.connector != nil {
		return a.connector.CallbackPath()
	}
	return "/oauth/callback"
}

func cmdConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("connect", `Connects an account with OAuth 2.0 (authorization code + PKCE S256 + state).
Prints the authorization URL to open in a browser, then waits for impact.com's
redirect on IMPACT_OAUTH_REDIRECT_URL, exchanges the code and stores the
refresh token encrypted. Also re-authorizes an account flagged needs_reconnect.
With --worker, a running worker (on this machine, or in its container through
docker compose exec) serves the redirect instead: the command prints the URL
to open and the worker completes the connection.`, stdout)
	named := newAccountFlags(fs, "account")
	wait := fs.Duration("timeout", auth.PendingTTL, "how long to wait for the authorization")
	via := fs.String("worker", "", "`URL` of a running worker that serves the redirect (e.g. http://127.0.0.1:8080)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, p, sid, err := named.account()
	if err != nil {
		return err
	}
	if *via != "" {
		return connectViaWorker(ctx, *via, id, p, sid, stdout)
	}
	return withApp(ctx, stderr, needs{oauth: true, schema: true}, func(a *app) error {
		return a.connect(ctx, id, p, sid, *wait, stdout)
	})
}

// errNoOAuth refuses the commands that need OAuth (connect) when it is not
// configured.
var errNoOAuth = errors.New("connect: OAuth is not configured: set IMPACT_OAUTH_CLIENT_ID, IMPACT_OAUTH_CLIENT_SECRET (or _FILE), IMPACT_OAUTH_REDIRECT_URL and IMPACT_OAUTH_SCOPES")

// connect is syncer connect on an open app: it serves the redirect on
// IMPACT_OAUTH_REDIRECT_URL itself and waits up to wait for the account to
// be authorized.
func (a *app) connect(ctx context.Context, id string, p syncer.Persona, sid string, wait time.Duration, stdout io.Writer) error {
	redirect, err := url.Parse(a.cfg.OAuthRedirectURL)
	if err != nil {
		return fmt.Errorf("IMPACT_OAUTH_REDIRECT_URL: %w", err)
	}
	addr := redirect.Host
	if redirect.Port() == "" {
		addr = net.JoinHostPort(redirect.Hostname(), map[string]string{"https": "443", "http": "80"}[redirect.Scheme])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: cannot listen for the redirect on %s (is the worker serving it? stop it or use another IMPACT_OAUTH_REDIRECT_URL for this command): %w", addr, err)
	}
	done := make(chan error, 1)
	cb := a.callback
	inner := cb.OnConnected
	handler := &auth.Callback{Connector: cb.Connector,
		OnConnected: func(ctx context.Context, pd auth.Pending, rt syncer.Secret) error {
			err := inner(ctx, pd, rt)
			select {
			case done <- err:
			default:
			}
			return err
		},
		OnFailed: func(ctx context.Context, pd auth.Pending, err error) {
			if pd.AccountID == "" {
				return // not our attempt: keep waiting
			}
			select {
			case done <- err:
			default:
			}
		},
	}
	mux := http.NewServeMux()
	mux.Handle(redirect.Path, handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// let the browser get its result page before the listener goes
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	authURL, err := cb.Connector.Begin(id, p, sid)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Open this URL in a browser and approve access for %s (SID %s):\n\n  %s\n\nWaiting for impact.com to redirect to %s ...\n", id, sid, authURL, redirect.Redacted())
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("connect %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "account %s connected with OAuth; its refresh token is stored encrypted\n", id)
		return nil
	case <-timer.C:
		return fmt.Errorf("connect %s: no authorization arrived within %s; run the command again", id, wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, keysUsage)
			return nil
		}
		fmt.Fprint(stderr, keysUsage)
		return usageError("keys: want 'keys rotate'")
	}
	fs := newFlags("keys rotate", keysSummary, stdout)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{keyring: true}, func(a *app) error {
		r, err := a.keyring.ResealAll(ctx, a.accounts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-encrypted %d secrets under key %s; %d already used it\n", r.Changed, a.keyring.PrimaryID(), r.Same)
		if len(r.Failed) > 0 {
			return fmt.Errorf("%d secrets could not be re-encrypted: %w", len(r.Failed), errors.Join(r.Failed...))
		}
		if r.Changed > 0 || r.Same > 0 {
			fmt.Fprintln(stdout, "once every process runs with the new key, SYNCER_ENCRYPTION_OLD_KEYS can be emptied")
		}
		return nil
	})
}

const keysSummary = `Re-encrypts every stored secret under SYNCER_ENCRYPTION_KEY. Put the previous
key in SYNCER_ENCRYPTION_OLD_KEYS (comma-separated) so the secrets can still be
read, run this, then drop the old key.`

const keysUsage = "Usage: syncer keys rotate\n\n" + keysSummary + "\n"

// connectViaWorker asks a running worker (from its own machine: /oauth/start
// only answers loopback requests) to begin a connection, and prints the
// authorization URL it redirects to. The worker's callback completes it.
func connectViaWorker(ctx context.Context, base, id string, p syncer.Persona, sid string, stdout io.Writer) error {
	q := url.Values{"account": {id}, "persona": {string(p)}, "sid": {sid}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/oauth/start?"+q.Encode(), nil)
	if err != nil {
		return usageError("connect: --worker: %v", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("connect: the worker at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("connect: the worker answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "Open this URL in a browser and approve the access; the worker stores the connection:\n\n  %s\n\n"+
		"Then check it with: syncer accounts list\n", resp.Header.Get("Location"))
	return nil
}
