package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// PendingTTL is how long an authorization attempt may take, from Begin to the
// callback.
const PendingTTL = 10 * time.Minute

const (
	// stateMemory is how long a used or expired state is remembered after its
	// expiry, to tell a replay or a late callback from an unknown state.
	stateMemory = time.Hour
	// maxPending bounds the open attempts held in memory.
	maxPending = 1000
)

// Errors of a callback whose state does not match an open attempt. The
// attempt a state belongs to is consumed by its first callback, whether that
// succeeds or not.
var (
	ErrStateUnknown  = errors.New("OAuth state unknown: this callback does not belong to an authorization started by this process")
	ErrStateReplayed = errors.New("OAuth state already used: the callback was replayed")
	ErrStateExpired  = errors.New("OAuth state expired: the authorization took longer than 10 minutes; start it again")
)

// AuthorizationError is an error the authorization server sent back to the
// redirect URI (RFC 6749 §4.1.2.1), e.g. access_denied when the user declined.
type AuthorizationError struct {
	Code        string
	Description string
}

func (e *AuthorizationError) Error() string {
	what := "failed"
	if e.Code == "access_denied" {
		what = "was denied"
	}
	s := fmt.Sprintf("impact.com authorization %s (%s)", what, e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Pending is one authorization attempt: the account being connected.
type Pending struct {
	AccountID string
	Persona   syncer.Persona
	SID       string // the impact.com Account SID the operator expects to connect
	StartedAt time.Time
}

type attempt struct {
	state    string
	verifier string
	p        Pending
	expires  time.Time
	used     bool
}

// Connector runs the authorization code flow with PKCE (S256) that connects
// an impact.com account: Begin makes the URL to send the user to, Complete
// (or the handler from CallbackHandler) finishes it when impact.com redirects
// back. Attempts live in memory, so the callback must reach the process that
// called Begin.
type Connector struct {
	cfg OAuthConfig
	oc  *oauth2.Config
	hc  *http.Client
	log *zap.Logger
	now func() time.Time

	mu       sync.Mutex
	attempts []*attempt
}

// NewConnector checks cfg (impact.com's endpoints fill empty URLs) and returns
// a Connector. hc sends the token request (nil: a client with a 30s timeout);
// log and now default to a no-op logger and time.Now.
func NewConnector(cfg OAuthConfig, hc *http.Client, log *zap.Logger, now func() time.Time) (*Connector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	return &Connector{cfg: cfg, oc: cfg.oauth2(), hc: hc, log: log, now: now}, nil
}

// CallbackPath is the path of the redirect URL, where the callback handler is
// to be mounted.
func (c *Connector) CallbackPath() string {
	u, _ := url.Parse(c.cfg.RedirectURL) // checked by Validate
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// Begin starts connecting an account and returns the impact.com URL to send
// the user's browser to. Every call makes a fresh state (43 characters,
// crypto/rand) and a fresh PKCE verifier, kept in memory for PendingTTL; the
// URL carries the S256 challenge and login_hint=<SID>.
func (c *Connector) Begin(accountID string, persona syncer.Persona, sid string) (string, error) {
	if accountID == "" {
		return "", errors.New("connect: account id is empty")
	}
	if _, err := syncer.ParsePersona(string(persona)); err != nil {
		return "", fmt.Errorf("connect account %s: %w", accountID, err)
	}
	if sid == "" {
		return "", fmt.Errorf("connect account %s: the impact.com Account SID is empty", accountID)
	}
	a := &attempt{
		state:    randomString(32),
		verifier: oauth2.GenerateVerifier(),
		p:        Pending{AccountID: accountID, Persona: persona, SID: sid, StartedAt: c.now()},
	}
	a.expires = a.p.StartedAt.Add(PendingTTL)

	c.mu.Lock()
	c.sweepLocked(a.p.StartedAt)
	open := 0
	for _, x := range c.attempts {
		if !x.used && a.p.StartedAt.Before(x.expires) {
			open++
		}
	}
	if open >= maxPending {
		c.mu.Unlock()
		return "", fmt.Errorf("connect account %s: %d authorizations are already open; wait for them to expire", accountID, open)
	}
	c.attempts = append(c.attempts, a)
	c.mu.Unlock()

	u := c.oc.AuthCodeURL(a.state,
		oauth2.S256ChallengeOption(a.verifier),
		oauth2.SetAuthURLParam("login_hint", sid))
	c.log.Info("OAuth authorization started",
		zap.String("account_id", accountID), zap.String("sid", sid), zap.Time("expires", a.expires))
	return u, nil
}

// Complete finishes an attempt from the query of the callback request. In
// order it checks: an error sent by impact.com (*AuthorizationError); the
// state (ErrStateUnknown, ErrStateReplayed or ErrStateExpired, wrapped),
// which is consumed even when the rest fails; then it exchanges the code,
// with the PKCE verifier and the client secret, for tokens. A refused
// exchange is a *TokenError, a failed one a *syncer.TransientError. The
// Pending is returned whenever the state matched an attempt.
func (c *Connector) Complete(ctx context.Context, query url.Values) (Pending, *oauth2.Token, error) {
	a, stateErr := c.take(query.Get("state"), c.now())
	var p Pending
	if a != nil {
		p = a.p
	}
	if code := query.Get("error"); code != "" {
		err := &AuthorizationError{Code: clean(code, 64), Description: clean(query.Get("error_description"), 300)}
		c.log.Warn("OAuth authorization refused by impact.com", zap.String("account_id", p.AccountID), zap.Error(err))
		return p, nil, err
	}
	if stateErr != nil {
		c.log.Warn("OAuth callback rejected", zap.String("account_id", p.AccountID), zap.Error(stateErr))
		return p, nil, stateErr
	}
	code := query.Get("code")
	if code == "" {
		return p, nil, fmt.Errorf("account %s: the callback carries no authorization code", p.AccountID)
	}
	tok, err := c.oc.Exchange(withClient(ctx, c.hc), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		err = fmt.Errorf("account %s: exchanging the authorization code: %w", p.AccountID, classify(ctx, err))
		c.log.Warn("OAuth code exchange failed", zap.String("account_id", p.AccountID), zap.Error(err))
		return p, nil, err
	}
	if tok.RefreshToken == "" {
		return p, nil, fmt.Errorf("account %s: impact.com returned no refresh token; was the %s scope granted?", p.AccountID, ScopeOfflineAccess)
	}
	c.log.Info("OAuth authorization completed", zap.String("account_id", p.AccountID), zap.String("sid", p.SID))
	return p, tok, nil
}

// take finds and consumes the attempt of state, comparing in constant time.
func (c *Connector) take(state string, now time.Time) (*attempt, error) {
	if state == "" {
		return nil, fmt.Errorf("%w (the callback carries no state)", ErrStateUnknown)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	var found *attempt
	for _, a := range c.attempts {
		if subtle.ConstantTimeCompare([]byte(a.state), []byte(state)) == 1 {
			found = a
		}
	}
	switch {
	case found == nil:
		return nil, ErrStateUnknown
	case found.used:
		return nil, fmt.Errorf("account %s: %w", found.p.AccountID, ErrStateReplayed)
	}
	found.used = true
	cp := *found
	found.verifier = ""
	if !now.Before(found.expires) {
		return &cp, fmt.Errorf("account %s: %w", found.p.AccountID, ErrStateExpired)
	}
	return &cp, nil
}

func (c *Connector) sweepLocked(now time.Time) {
	kept := c.attempts[:0]
	for _, a := range c.attempts {
		if now.Before(a.expires.Add(stateMemory)) {
			kept = append(kept, a)
		}
	}
	clear(c.attempts[len(kept):])
	c.attempts = kept
}

// randomString is n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// OnConnected receives a completed connection. It is to seal and store the
// refresh token (see AccountTokens.Connected); an error is shown to the user
// as a failure to save.
type OnConnected func(ctx context.Context, p Pending, refreshToken syncer.Secret) error

// Callback is the http.Handler for the redirect URI. It completes the
// attempt, hands the refresh token to OnConnected and renders a short result
// page that never contains a token, the code or the state.
type Callback struct {
	Connector   *Connector
	OnConnected OnConnected
	// OnFailed, if set, hears every failed callback (for a CLI that waits for
	// one outcome). p is zero when the state matched no attempt.
	OnFailed func(ctx context.Context, p Pending, err error)
}

// CallbackHandler returns the handler for CallbackPath.
func (c *Connector) CallbackHandler(onConnected OnConnected) *Callback {
	return &Callback{Connector: c, OnConnected: onConnected}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>impact-syncer: {{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func (h *Callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	log := h.Connector.log
	p, tok, err := h.Connector.Complete(ctx, r.URL.Query())
	status := http.StatusOK
	title, msg := "Account connected", ""
	if err == nil {
		if h.OnConnected == nil {
			err = errors.New("no OnConnected hook is set")
		} else {
			err = h.OnConnected(ctx, p, syncer.Secret(tok.RefreshToken))
		}
		if err != nil {
			log.Error("saving the OAuth connection failed", zap.String("account_id", p.AccountID), zap.Error(err))
			err = fmt.Errorf("account %s: saving the connection failed: %w", p.AccountID, err)
			status, title = http.StatusInternalServerError, "Connection not saved"
			msg = fmt.Sprintf("impact.com authorized account %s (SID %s), but impact-syncer could not save the connection. The syncer log has the details; start the connection again.", p.AccountID, p.SID)
		} else {
			msg = fmt.Sprintf("Account %s (SID %s) is connected to impact-syncer. You can close this window.", p.AccountID, p.SID)
		}
	} else {
		var ae *AuthorizationError
		var te *TokenError
		var tr *syncer.TransientError
		switch {
		case errors.As(err, &ae) && p.AccountID == "":
			// Not from an attempt of ours: do not repeat text from the URL.
			status, title, msg = http.StatusBadRequest, "Authorization failed", "This callback does not belong to an authorization started by impact-syncer."
		case errors.As(err, &ae):
			status, title, msg = http.StatusBadRequest, "Authorization not granted", err.Error()
		case errors.As(err, &te), errors.As(err, &tr):
			status, title, msg = http.StatusBadGateway, "Authorization failed", err.Error()
		default:
			status, title, msg = http.StatusBadRequest, "Authorization failed", err.Error()
		}
	}
	if err != nil && h.OnFailed != nil {
		h.OnFailed(ctx, p, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = page.Execute(w, struct{ Title, Message string }{title, msg})
}
