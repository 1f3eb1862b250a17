package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/impact-syncer/impact-syncer/internal/oauthsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

const (
	testClientID     = "impact-syncer"
	testClientSecret = syncer.Secret("client-secret-value-xyz")
	testSID          = "IRsid0001"
	testAccount      = "acme"
)

// clock is an injectable, advanceable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// refreshStore is a hand-written RefreshStore fake.
type refreshStore struct {
	now func() time.Time

	mu        sync.Mutex
	tokens    map[string]syncer.Secret
	lastUsed  map[string]time.Time
	failSaves int // this many next saves fail
	saves     int
	marks     []string
}

func newRefreshStore(now func() time.Time) *refreshStore {
	return &refreshStore{now: now, tokens: map[string]syncer.Secret{}, lastUsed: map[string]time.Time{}}
}

func (s *refreshStore) LoadRefreshToken(_ context.Context, id string) (syncer.Secret, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.tokens[id]
	if !ok {
		return "", time.Time{}, fmt.Errorf("account %s: %w", id, syncer.ErrNotFound)
	}
	return rt, s.lastUsed[id], nil
}

func (s *refreshStore) SaveRefreshToken(_ context.Context, id string, rt syncer.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSaves > 0 {
		s.failSaves--
		return errors.New("database is read-only")
	}
	s.saves++
	s.tokens[id] = rt
	s.lastUsed[id] = s.now()
	return nil
}

func (s *refreshStore) MarkNeedsReconnect(_ context.Context, id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks = append(s.marks, id+": "+reason)
	return nil
}

func (s *refreshStore) token(id string) syncer.Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[id]
}

func (s *refreshStore) set(id string, rt syncer.Secret, lastUsed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id], s.lastUsed[id] = rt, lastUsed
}

func (s *refreshStore) failNext(n int) { s.mu.Lock(); s.failSaves = n; s.mu.Unlock() }

func (s *refreshStore) markList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.marks...)
}

// bundle is the subject and its collaborators.
type bundle struct {
	sim      *oauthsim.Server
	simClock *clock // the authorization server's clock
	clock    *clock // ours
	srv      *httptest.Server
	store    *refreshStore
	mgr      *Manager
	conn     *Connector
	logs     *observer.ObservedLogs
	cfg      OAuthConfig

	tokenDown  atomic.Bool  // the token endpoint answers 503
	apiBodies  chan string  // bodies of POSTs to /api/echo
	apiCalls   atomic.Int64 // API requests received
	mu         sync.Mutex
	secretSeen []string // every access token issued, to look for in logs
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{simClock: newClock(), clock: newClock(), apiBodies: make(chan string, 100)}
	mux := http.NewServeMux()
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	redirect := b.srv.URL + "/oauth/callback"

	b.sim = oauthsim.New(oauthsim.Options{
		ClientID: testClientID, ClientSecret: testClientSecret.Reveal(), RedirectURIs: []string{redirect},
		Now: b.simClock.Now,
		OnAccessIssued: func(_, tok string, _ time.Time) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.secretSeen = append(b.secretSeen, tok)
		},
	})
	simH := b.sim.Handler()
	mux.HandleFunc("/oauth2/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" && b.tokenDown.Load() {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		simH.ServeHTTP(w, r)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		b.apiCalls.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, valid := b.sim.ValidateAccess(tok); !ok || !valid {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"Status":"ERROR","Message":"No valid API key provided"}`)
			return
		}
		if r.URL.Path == "/api/deny" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/api/echo" {
			body, _ := io.ReadAll(r.Body)
			b.apiBodies <- string(body)
		}
		io.WriteString(w, `{"ok":true}`)
	})

	b.cfg = OAuthConfig{
		AuthorizeURL: b.srv.URL + "/oauth2/authorize",
		TokenURL:     b.srv.URL + "/oauth2/token",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURL:  redirect,
		Scopes:       []string{"offline_access", "Actions"},
	}
	core, logs := observer.New(zap.DebugLevel)
	b.logs = logs
	log := zap.New(core)

	b.store = newRefreshStore(b.clock.Now)
	var err error
	b.mgr, err = NewManager(ManagerConfig{
		OAuth: b.cfg, Store: b.store, TokenClient: b.srv.Client(), Base: b.srv.Client().Transport,
		Logger: log, Now: b.clock.Now, SaveBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.conn, err = NewConnector(b.cfg, b.srv.Client(), log, b.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.checkLogs(t) })
	return b
}

// connect gives the account a grant on the server and its refresh token in
// the store, last used now.
func (b *bundle) connect(t *testing.T, id string) (grantID string) {
	t.Helper()
	g, rt := b.sim.IssueGrant(testSID)
	b.store.set(id, syncer.Secret(rt), b.clock.Now())
	return g
}

// checkLogs fails if any log entry holds a token or the client secret.
func (b *bundle) checkLogs(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	secrets := append([]string{testClientSecret.Reveal()}, b.secretSeen...)
	b.mu.Unlock()
	for _, e := range b.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, "sim_rt_") || strings.Contains(line, "sim_at_") || strings.Contains(line, "sim_code_") {
			t.Errorf("log entry holds a token: %s", line)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log entry holds a secret: %s", line)
			}
		}
	}
}

func (b *bundle) get(t *testing.T, rt http.RoundTripper, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
