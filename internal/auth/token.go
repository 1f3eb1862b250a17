package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/impact-syncer/impact-syncer/internal/retry"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// RefreshStore keeps each OAuth account's current refresh token, sealed at
// rest by the implementation. TokenSource is its only caller and serialises
// calls per account within one process.
type RefreshStore interface {
	// LoadRefreshToken returns the account's refresh token and when it was
	// last used (when it was saved: every use rotates it). An empty token
	// means there is none (never connected, or deleted after invalid_grant).
	// An unknown account is syncer.ErrNotFound, wrapped.
	LoadRefreshToken(ctx context.Context, accountID string) (syncer.Secret, time.Time, error)
	// SaveRefreshToken replaces the refresh token (empty deletes it) and
	// records the time. It returns nil only once the write is durable.
	SaveRefreshToken(ctx context.Context, accountID string, refreshToken syncer.Secret) error
	// MarkNeedsReconnect sets the account's status to needs_reconnect with a
	// reason an operator can act on.
	MarkNeedsReconnect(ctx context.Context, accountID, reason string) error
}

// DefaultIdleRefresh is how long a refresh token may sit unused before
// RefreshIdle renews it: well inside impact.com's 90-day sliding expiry.
const DefaultIdleRefresh = 30 * 24 * time.Hour

const (
	// expirySkew renews an access token this long (at most a quarter of its
	// lifetime) before it expires.
	expirySkew = 30 * time.Second
	// defaultAccessTTL is assumed when the token answer has no expires_in.
	defaultAccessTTL = 5 * time.Minute
	// deadRecheck is how often a dead account looks in the store for a
	// refresh token saved by a reconnect in another process.
	deadRecheck = time.Minute
	// persistTimeout bounds the writes of one rotated refresh token; they
	// outlive the caller's context, since losing the token costs a reconnect.
	persistTimeout = 30 * time.Second
)

// ManagerConfig holds a Manager's dependencies. Zero values take the
// documented defaults.
type ManagerConfig struct {
	OAuth OAuthConfig // the registered client; impact.com's endpoints fill empty URLs
	Store RefreshStore
	// TokenClient sends token requests (default: a client with a 30s timeout).
	TokenClient *http.Client
	// Base sends the authenticated API requests (default http.DefaultTransport).
	Base   http.RoundTripper
	Logger *zap.Logger      // default no-op
	Now    func() time.Time // default time.Now
	// SaveAttempts is how many times a rotated refresh token is written
	// before the account is marked needs_reconnect (default 4); the waits
	// start at SaveBackoff (default 200ms) and double, jittered (internal/retry).
	SaveAttempts int
	SaveBackoff  time.Duration
}

// Manager holds one TokenSource per OAuth account, so that each account has
// at most one refresh in flight in this process.
type Manager struct {
	c  ManagerConfig
	oc *oauth2.Config

	mu      sync.Mutex
	sources map[string]*TokenSource
}

// NewManager checks the configuration and returns a Manager.
func NewManager(c ManagerConfig) (*Manager, error) {
	c.OAuth = c.OAuth.WithDefaults()
	if err := c.OAuth.Validate(); err != nil {
		return nil, err
	}
	if c.Store == nil {
		return nil, errors.New("OAuth token manager: no refresh-token store")
	}
	if c.TokenClient == nil {
		c.TokenClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Base == nil {
		c.Base = http.DefaultTransport
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SaveAttempts <= 0 {
		c.SaveAttempts = 4
	}
	if c.SaveBackoff <= 0 {
		c.SaveBackoff = 200 * time.Millisecond
	}
	return &Manager{c: c, oc: c.OAuth.oauth2(), sources: map[string]*TokenSource{}}, nil
}

// Source returns the account's TokenSource, creating it on first use.
func (m *Manager) Source(accountID string) *TokenSource {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.sources[accountID]
	if ts == nil {
		ts = &TokenSource{
			m:   m,
			id:  accountID,
			log: m.c.Logger.With(zap.String("account_id", accountID)),
			sem: make(chan struct{}, 1),
		}
		m.sources[accountID] = ts
	}
	return ts
}

// Transport is the account's authenticating RoundTripper (its TokenSource).
func (m *Manager) Transport(accountID string) http.RoundTripper { return m.Source(accountID) }

// Forget drops the account's TokenSource and the access token it holds. Call
// it after the account is reconnected (or deleted) so that the next request
// starts from the store; a refresh in flight finishes on the old source.
func (m *Manager) Forget(accountID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sources, accountID)
}

// RefreshIdle renews the refresh token of each listed account that has not
// been used for olderThan (0: DefaultIdleRefresh), so that accounts synced
// rarely never reach impact.com's 90-day idle expiry. It returns the accounts
// renewed and every failure, joined.
func (m *Manager) RefreshIdle(ctx context.Context, accountIDs []string, olderThan time.Duration) ([]string, error) {
	if olderThan <= 0 {
		olderThan = DefaultIdleRefresh
	}
	var renewed []string
	var errs []error
	for _, id := range accountIDs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		ok, err := m.Source(id).RefreshIfIdle(ctx, olderThan)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			renewed = append(renewed, id)
		}
	}
	return renewed, errors.Join(errs...)
}

// TokenSource holds one OAuth account's access token (in memory only) and
// renews it through the token endpoint, rotating the refresh token in the
// store. It is an http.RoundTripper that sends requests with
// "Authorization: Bearer <access token>".
type TokenSource struct {
	m   *Manager
	id  string
	log *zap.Logger
	sem chan struct{} // held while the fields below are used: one refresh at a time

	access  syncer.Secret
	renewAt time.Time // when to renew access: a little before it expires
	// unsaved is a rotated refresh token the store has not accepted yet. It
	// is the only valid one, so it is used for the next refresh, and the
	// access token that came with it is not used until it is saved.
	unsaved syncer.Secret
	marked  bool // MarkNeedsReconnect was called for unsaved

	dead        error    // set by invalid_grant: no more token requests
	rejected    [32]byte // SHA-256 of the refresh token impact.com refused
	deadChecked time.Time
}

var _ http.RoundTripper = (*TokenSource)(nil)

func (ts *TokenSource) lock(ctx context.Context) error {
	select {
	case ts.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ts *TokenSource) unlock() { <-ts.sem }

// Token returns a valid access token, refreshing it if needed. Errors:
// syncer.ErrNeedsReconnect (wrapped) once impact.com refused the refresh
// token or none is stored; *syncer.TransientError for 5xx, 429 and network
// failures of the token endpoint; *TokenError for other refusals (e.g.
// invalid_client: the client secret is wrong); a wrapped store error.
func (ts *TokenSource) Token(ctx context.Context) (syncer.Secret, error) {
	return ts.token(ctx, "")
}

// token returns a valid access token other than stale (if stale is set: the
// API refused it, so it is renewed unless another caller already did).
func (ts *TokenSource) token(ctx context.Context, stale syncer.Secret) (syncer.Secret, error) {
	if err := ts.lock(ctx); err != nil {
		return "", err
	}
	defer ts.unlock()
	if err := ts.readyLocked(ctx); err != nil {
		return "", err
	}
	if ts.access != "" && ts.access != stale && ts.m.c.Now().Before(ts.renewAt) {
		return ts.access, nil
	}
	return ts.refreshLocked(ctx)
}

// readyLocked fails for a dead account and saves a pending rotated token.
func (ts *TokenSource) readyLocked(ctx context.Context) error {
	if ts.dead != nil && !ts.reviveLocked(ctx) {
		return ts.dead
	}
	if ts.unsaved != "" {
		return ts.saveLocked(ctx, ts.unsaved)
	}
	return nil
}

// reviveLocked looks, at most once per deadRecheck, whether the store holds a
// new refresh token (the account was reconnected by another process).
func (ts *TokenSource) reviveLocked(ctx context.Context) bool {
	now := ts.m.c.Now()
	if now.Sub(ts.deadChecked) < deadRecheck {
		return false
	}
	ts.deadChecked = now
	rt, _, err := ts.m.c.Store.LoadRefreshToken(ctx, ts.id)
	if err != nil || rt == "" || sha256.Sum256([]byte(rt.Reveal())) == ts.rejected {
		return false
	}
	ts.log.Info("a new refresh token was stored; the account is connected again")
	ts.dead = nil
	return true
}

// refreshLocked: reload the refresh token, call the token endpoint, save the
// new refresh token, and only then hand out the new access token.
func (ts *TokenSource) refreshLocked(ctx context.Context) (syncer.Secret, error) {
	rt := ts.unsaved // the newest, if the store has not taken it yet
	if rt == "" {
		var err error
		if rt, _, err = ts.m.c.Store.LoadRefreshToken(ctx, ts.id); err != nil {
			return "", fmt.Errorf("account %s: loading the refresh token: %w", ts.id, err)
		}
	}
	if rt == "" {
		return "", fmt.Errorf("account %s: no refresh token is stored; connect it with syncer connect --account %s: %w",
			ts.id, ts.id, syncer.ErrNeedsReconnect)
	}
	ts.access, ts.renewAt = "", time.Time{}

	src := ts.m.oc.TokenSource(withClient(ctx, ts.m.c.TokenClient), &oauth2.Token{RefreshToken: rt.Reveal()})
	tok, err := src.Token()
	if err != nil {
		err = classify(ctx, err)
		if InvalidGrant(err) {
			return "", ts.dieLocked(ctx, rt, err)
		}
		ts.log.Warn("OAuth token refresh failed", zap.Error(err))
		return "", fmt.Errorf("account %s: refreshing the access token: %w", ts.id, err)
	}

	now := ts.m.c.Now()
	ttl := time.Duration(tok.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultAccessTTL
	}
	ts.access, ts.renewAt = syncer.Secret(tok.AccessToken), now.Add(ttl-min(expirySkew, ttl/4))
	ts.unsaved, ts.marked = syncer.Secret(tok.RefreshToken), false
	if err := ts.saveLocked(ctx, ts.unsaved); err != nil {
		return "", err
	}
	ts.log.Info("OAuth access token refreshed; refresh token rotated", zap.Duration("expires_in", ttl))
	return ts.access, nil
}

// saveLocked writes the rotated refresh token, retrying with backoff. When
// every attempt fails it keeps the token in memory, marks the account
// needs_reconnect (once) and fails; a later call tries the write again.
func (ts *TokenSource) saveLocked(ctx context.Context, rt syncer.Secret) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	defer cancel()
	err := retry.Policy{
		MaxAttempts: ts.m.c.SaveAttempts,
		Backoff:     retry.Backoff{Base: ts.m.c.SaveBackoff},
		OnRetry: func(a retry.Attempt) error {
			ts.log.Warn("saving the rotated refresh token failed", zap.Int("attempt", a.N), zap.Error(a.Err))
			return nil
		},
	}.Do(ctx, func(int, error) retry.Decision {
		return retry.Retry("the token store failed") // a store error may pass; ctx bounds the tries
	}, func() error {
		return ts.m.c.Store.SaveRefreshToken(ctx, ts.id, rt)
	})
	if err == nil {
		if ts.marked {
			ts.log.Info("the rotated refresh token was saved after all")
		}
		ts.unsaved, ts.marked = "", false
		return nil
	}
	if ex := (*retry.ExhaustedError)(nil); errors.As(err, &ex) {
		err = ex.Err
	}
	if !ts.marked {
		reason := fmt.Sprintf("impact.com issued a new refresh token but saving it failed (%v); "+
			"the running syncer keeps it in memory and retries, but if it stops first, "+
			"re-authorize with syncer connect --account %s", err, ts.id)
		if merr := ts.m.c.Store.MarkNeedsReconnect(ctx, ts.id, reason); merr != nil {
			ts.log.Error("marking the account needs_reconnect failed", zap.Error(merr))
		}
		ts.marked = true
	}
	ts.log.Error("the rotated refresh token could not be saved; it is held in memory only", zap.Error(err))
	return fmt.Errorf("account %s: saving the rotated refresh token failed after %d attempts (kept in memory, will retry): %w",
		ts.id, ts.m.c.SaveAttempts, err)
}

// dieLocked handles invalid_grant: delete the refresh token, mark the
// account, and make no more token requests for it.
func (ts *TokenSource) dieLocked(ctx context.Context, rt syncer.Secret, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	defer cancel()
	reason := fmt.Sprintf("impact.com rejected the refresh token (invalid_grant): re-authorize with syncer connect --account %s", ts.id)
	if err := ts.m.c.Store.SaveRefreshToken(ctx, ts.id, ""); err != nil {
		ts.log.Error("deleting the rejected refresh token failed", zap.Error(err))
	}
	if err := ts.m.c.Store.MarkNeedsReconnect(ctx, ts.id, reason); err != nil {
		ts.log.Error("marking the account needs_reconnect failed", zap.Error(err))
	}
	ts.log.Error("OAuth refresh token rejected; the account needs reconnecting", zap.Error(cause))
	ts.access, ts.renewAt, ts.unsaved, ts.marked = "", time.Time{}, "", false
	ts.rejected = sha256.Sum256([]byte(rt.Reveal()))
	ts.deadChecked = ts.m.c.Now()
	ts.dead = fmt.Errorf("account %s: %s: %w (%w)", ts.id, reason, syncer.ErrNeedsReconnect, cause)
	return ts.dead
}

// RefreshIfIdle renews the refresh token if it has not been used for
// olderThan, and reports whether it did.
func (ts *TokenSource) RefreshIfIdle(ctx context.Context, olderThan time.Duration) (bool, error) {
	if err := ts.lock(ctx); err != nil {
		return false, err
	}
	defer ts.unlock()
	if err := ts.readyLocked(ctx); err != nil {
		return false, err
	}
	_, lastUsed, err := ts.m.c.Store.LoadRefreshToken(ctx, ts.id)
	if err != nil {
		return false, fmt.Errorf("account %s: loading the refresh token: %w", ts.id, err)
	}
	if idle := ts.m.c.Now().Sub(lastUsed); !lastUsed.IsZero() && idle < olderThan {
		return false, nil
	}
	if _, err := ts.refreshLocked(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// RoundTrip sends the request with the account's access token. If the API
// answers 401 it renews the token once and resends the request, provided the
// body can be sent again (no body, or GetBody set). It never changes the
// caller's request.
func (ts *TokenSource) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := ts.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := ts.m.c.Base.RoundTrip(withBearer(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable {
		return resp, err
	}

	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return resp, nil // cannot resend: the caller gets the 401
		}
	}
	fresh, err := ts.token(ctx, tok)
	if err != nil {
		if body != nil {
			body.Close()
		}
		drain(resp)
		return nil, err
	}
	ts.log.Info("API answered 401; retrying once with a renewed access token")
	drain(resp)
	return ts.m.c.Base.RoundTrip(withBearer(req, fresh, body))
}

func withBearer(req *http.Request, tok syncer.Secret, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.Reveal())
	return r
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
