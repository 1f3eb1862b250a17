// Package oauthsim simulates impact.com's OAuth 2.0 authorization server for
// tests and demos: the authorization code flow with PKCE (S256 only) and
// rotating refresh tokens with a sliding idle expiry.
//
// Its behaviour is inferred from impact.com's "Set Up OAuth 2.0" guide and
// RFC 6749 / RFC 7636 / OAuth 2.1, not observed on the live service (the
// guide sits under a "wip-not-used-yet" path):
//
//   - GET /oauth2/authorize checks response_type=code, client_id, a registered
//     redirect_uri (exact match), a scope that includes offline_access, a state
//     of at least 32 characters and an S256 code_challenge. It does not show a
//     consent screen: it consents at once and redirects (302) to
//     redirect_uri?code=…&state=…. An unknown client_id or redirect_uri gets a
//     400 page and no redirect; every other problem is redirected as
//     ?error=…&error_description=…&state=….
//   - POST /oauth2/token (form body) authenticates the client by client_secret
//     in the body (client_secret_post) or HTTP Basic (client_secret_basic).
//     grant_type=authorization_code: a code is single-use and lives CodeTTL;
//     reusing it is invalid_grant and revokes the tokens issued from it;
//     redirect_uri must match; code_verifier must hash (S256) to the challenge.
//     grant_type=refresh_token: every use returns a new refresh token and
//     invalidates the old one; presenting an old (rotated) one is treated as
//     theft and revokes the whole token family (the grant); a refresh token
//     unused for RefreshIdleExpiry is invalid_grant.
//     Errors are RFC 6749 §5.2 JSON: 400 {"error":"invalid_grant",...},
//     401 invalid_client.
//
// Test-only parameters of the authorize request (the real service identifies
// the consenting account by its login session):
//
//   - login_hint=<Account SID> names the impact.com account that consents;
//     without it Options.DefaultSID is used.
//   - sim_deny=1 makes the user deny consent (error=access_denied); so does
//     Options.Deny returning true.
//
// The package uses only the standard library.
package oauthsim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. ClientID, ClientSecret and RedirectURIs are the
// one registered client.
type Options struct {
	ClientID     string
	ClientSecret string
	RedirectURIs []string

	Now               func() time.Time // default time.Now
	AccessTTL         time.Duration    // access token lifetime; default 300s
	RefreshIdleExpiry time.Duration    // sliding refresh-token expiry; default 90 days
	CodeTTL           time.Duration    // authorization code lifetime; default 10 minutes

	// DefaultSID is the Account SID that consents when the authorize request
	// has no login_hint.
	DefaultSID string
	// Deny, if set and returning true, makes the user deny consent.
	Deny func(sid string) bool
	// OnAccessIssued, if set, hears every access token issued, so an API
	// simulator can accept it. It is called without the server's lock held.
	OnAccessIssued func(sid, token string, expiry time.Time)
}

// Server is the simulated authorization server. It is safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	seq      int
	codes    map[string]*authCode
	grants   map[string]*grant
	refresh  map[string]*refreshToken
	access   map[string]*accessToken
	requests int
	reqBy    map[string]int // by grant id and by SID
}

type authCode struct {
	sid, clientID, redirectURI, challenge, scope string
	expires                                      time.Time
	used                                         bool
	grantID                                      string // set once exchanged
}

type grant struct {
	id, sid, clientID, scope string
	revoked                  bool
	current                  string // the live refresh token
}

type refreshToken struct {
	grantID  string
	issuedAt time.Time
	rotated  bool // already exchanged for a newer one
}

type accessToken struct {
	grantID string
	expires time.Time
}

// New returns a Server with defaults filled in.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 300 * time.Second
	}
	if o.RefreshIdleExpiry <= 0 {
		o.RefreshIdleExpiry = 90 * 24 * time.Hour
	}
	if o.CodeTTL <= 0 {
		o.CodeTTL = 10 * time.Minute
	}
	return &Server{
		opts:    o,
		codes:   map[string]*authCode{},
		grants:  map[string]*grant{},
		refresh: map[string]*refreshToken{},
		access:  map[string]*accessToken{},
		reqBy:   map[string]int{},
	}
}

// Handler serves GET /oauth2/authorize and POST /oauth2/token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize", s.authorize)
	mux.HandleFunc("POST /oauth2/token", s.token)
	return mux
}

// TokenRequests is the number of requests the token endpoint has received,
// failed ones included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TokenRequestsFor is the number of token requests attributed to a grant id
// or an Account SID (requests whose code or refresh token was unknown are
// attributed to neither).
func (s *Server) TokenRequestsFor(grantOrSID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqBy[grantOrSID]
}

// Revoke revokes every grant whose id or Account SID is grantOrSID, as a user
// withdrawing the application's access does. Their refresh and access tokens
// stop working. It returns the number of grants revoked.
func (s *Server) Revoke(grantOrSID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.grants {
		if !g.revoked && (g.id == grantOrSID || g.sid == grantOrSID) {
			s.revokeLocked(g.id)
			n++
		}
	}
	return n
}

// ValidateAccess reports whether token is a live access token and, if so, the
// Account SID it acts for.
func (s *Server) ValidateAccess(token string) (sid string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.access[token]
	if !found || !s.opts.Now().Before(a.expires) {
		return "", false
	}
	g := s.grants[a.grantID]
	if g == nil || g.revoked {
		return "", false
	}
	return g.sid, true
}

// IssueGrant creates a grant for sid as if its user had consented and the code
// had been exchanged, without a token request. It returns the grant id and
// its refresh token. For tests that start from a connected account.
func (s *Server) IssueGrant(sid string) (grantID, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.newGrantLocked(sid, s.opts.ClientID, "offline_access")
	return g.id, g.current
}

// LiveRefreshToken is the refresh token currently valid for the grant, or ""
// if the grant is unknown or revoked. For tests.
func (s *Server) LiveRefreshToken(grantID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grants[grantID]
	if g == nil || g.revoked {
		return ""
	}
	return g.current
}

// Revoked reports whether the grant has been revoked (by Revoke, by reuse of a
// rotated refresh token or by reuse of its authorization code).
func (s *Server) Revoked(grantID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grants[grantID]
	return g != nil && g.revoked
}

// --- authorize ---

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.opts.ClientID || s.opts.ClientID == "" {
		errorPage(w, "unknown client_id")
		return
	}
	redirect := q.Get("redirect_uri")
	if !s.registered(redirect) {
		errorPage(w, "redirect_uri is missing or not registered for this client")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		redirectTo(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	scope := q.Get("scope")
	if !hasScope(scope, "offline_access") {
		fail("invalid_scope", "scope must include offline_access")
		return
	}
	if len(state) < 32 {
		fail("invalid_request", "state must be a random string of at least 32 characters")
		return
	}
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	challenge := q.Get("code_challenge")
	if b, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(b) != sha256.Size {
		fail("invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier))")
		return
	}
	sid := q.Get("login_hint")
	if sid == "" {
		sid = s.opts.DefaultSID
	}
	if sid == "" {
		fail("invalid_request", "simulator: no consenting account; pass login_hint=<Account SID> or set Options.DefaultSID")
		return
	}
	if q.Get("sim_deny") != "" || (s.opts.Deny != nil && s.opts.Deny(sid)) {
		fail("access_denied", "The user denied the authorization request")
		return
	}

	s.mu.Lock()
	code := "sim_code_" + randomToken()
	s.codes[code] = &authCode{
		sid: sid, clientID: s.opts.ClientID, redirectURI: redirect, challenge: challenge, scope: scope,
		expires: s.opts.Now().Add(s.opts.CodeTTL),
	}
	s.mu.Unlock()
	redirectTo(w, r, redirect, url.Values{"code": {code}, "state": {state}})
}

func (s *Server) registered(uri string) bool {
	for _, u := range s.opts.RedirectURIs {
		if uri != "" && uri == u {
			return true
		}
	}
	return false
}

func redirectTo(w http.ResponseWriter, r *http.Request, base string, params url.Values) {
	u, err := url.Parse(base)
	if err != nil {
		errorPage(w, "redirect_uri does not parse")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func errorPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "<!doctype html><title>Authorization error</title><p>%s</p>\n", html.EscapeString(msg))
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// --- token ---

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

type issued struct {
	sid, access string
	expiry      time.Time
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()

	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	f := r.PostForm
	if !s.clientAuthenticated(r, f) {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}

	var (
		resp tokenResponse
		iss  issued
		code string
		desc string
	)
	s.mu.Lock()
	switch f.Get("grant_type") {
	case "authorization_code":
		resp, iss, code, desc = s.exchangeCodeLocked(f)
	case "refresh_token":
		resp, iss, code, desc = s.refreshLocked(f)
	case "":
		code, desc = "invalid_request", "grant_type is required"
	default:
		code, desc = "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
	}
	s.mu.Unlock()

	if code != "" {
		oauthError(w, http.StatusBadRequest, code, desc)
		return
	}
	if s.opts.OnAccessIssued != nil {
		s.opts.OnAccessIssued(iss.sid, iss.access, iss.expiry)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) clientAuthenticated(r *http.Request, f url.Values) bool {
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		uu, err1 := url.QueryUnescape(u)
		pp, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil || secret != "" || (id != "" && id != uu) {
			return false
		}
		id, secret = uu, pp
	}
	return s.opts.ClientID != "" &&
		subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

func (s *Server) exchangeCodeLocked(f url.Values) (tokenResponse, issued, string, string) {
	c, ok := s.codes[f.Get("code")]
	if !ok {
		return tokenResponse{}, issued{}, "invalid_grant", "unknown authorization code"
	}
	s.countLocked(c.grantID, c.sid)
	if c.used {
		if c.grantID != "" {
			s.revokeLocked(c.grantID)
		}
		return tokenResponse{}, issued{}, "invalid_grant", "authorization code already used; the tokens issued from it were revoked"
	}
	c.used = true // single use, also when the rest of the request fails
	switch v := f.Get("code_verifier"); {
	case !s.opts.Now().Before(c.expires):
		return tokenResponse{}, issued{}, "invalid_grant", "authorization code expired"
	case c.clientID != s.opts.ClientID:
		return tokenResponse{}, issued{}, "invalid_grant", "authorization code was issued to another client"
	case f.Get("redirect_uri") != c.redirectURI:
		return tokenResponse{}, issued{}, "invalid_grant", "redirect_uri does not match the authorization request"
	case v == "":
		return tokenResponse{}, issued{}, "invalid_grant", "code_verifier is required"
	case !validVerifier(v):
		return tokenResponse{}, issued{}, "invalid_grant", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]"
	case subtle.ConstantTimeCompare([]byte(s256(v)), []byte(c.challenge)) != 1:
		return tokenResponse{}, issued{}, "invalid_grant", "PKCE verification failed: code_verifier does not match code_challenge"
	}
	g := s.newGrantLocked(c.sid, c.clientID, c.scope)
	c.grantID = g.id
	s.reqBy[g.id]++
	resp, iss := s.issueLocked(g)
	resp.RefreshToken = g.current
	return resp, iss, "", ""
}

func (s *Server) refreshLocked(f url.Values) (tokenResponse, issued, string, string) {
	rt, ok := s.refresh[f.Get("refresh_token")]
	if !ok {
		return tokenResponse{}, issued{}, "invalid_grant", "unknown refresh token"
	}
	g := s.grants[rt.grantID]
	s.countLocked(g.id, g.sid)
	switch {
	case g.revoked:
		return tokenResponse{}, issued{}, "invalid_grant", "the grant was revoked; the user must authorize again"
	case rt.rotated:
		s.revokeLocked(g.id)
		return tokenResponse{}, issued{}, "invalid_grant", "refresh token reuse detected; the whole grant was revoked"
	case s.opts.Now().Sub(rt.issuedAt) > s.opts.RefreshIdleExpiry:
		return tokenResponse{}, issued{}, "invalid_grant", "refresh token expired (unused for too long)"
	case g.clientID != s.opts.ClientID:
		return tokenResponse{}, issued{}, "invalid_grant", "refresh token was issued to another client"
	}
	rt.rotated = true
	g.current = s.newRefreshLocked(g.id)
	resp, iss := s.issueLocked(g)
	resp.RefreshToken = g.current
	return resp, iss, "", ""
}

func (s *Server) countLocked(grantID, sid string) {
	if grantID != "" {
		s.reqBy[grantID]++
	}
	if sid != "" {
		s.reqBy[sid]++
	}
}

func (s *Server) newGrantLocked(sid, clientID, scope string) *grant {
	s.seq++
	g := &grant{id: "grant-" + strconv.Itoa(s.seq), sid: sid, clientID: clientID, scope: scope}
	s.grants[g.id] = g
	g.current = s.newRefreshLocked(g.id)
	return g
}

func (s *Server) newRefreshLocked(grantID string) string {
	tok := "sim_rt_" + randomToken()
	s.refresh[tok] = &refreshToken{grantID: grantID, issuedAt: s.opts.Now()}
	return tok
}

func (s *Server) issueLocked(g *grant) (tokenResponse, issued) {
	tok := "sim_at_" + randomToken()
	exp := s.opts.Now().Add(s.opts.AccessTTL)
	s.access[tok] = &accessToken{grantID: g.id, expires: exp}
	return tokenResponse{
		AccessToken: tok,
		TokenType:   "Bearer",
		ExpiresIn:   int(s.opts.AccessTTL / time.Second),
		Scope:       g.scope,
	}, issued{sid: g.sid, access: tok, expiry: exp}
}

func (s *Server) revokeLocked(grantID string) {
	g := s.grants[grantID]
	if g == nil {
		return
	}
	g.revoked = true
	g.current = ""
	for tok, a := range s.access {
		if a.grantID == grantID {
			delete(s.access, tok)
		}
	}
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Grants lists the ids of the grants issued to sid, oldest first. For tests.
func (s *Server) Grants(sid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, g := range s.grants {
		if g.sid == sid {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// IssuedTokens lists every refresh and access token the server ever issued,
// so tests can look for them where they must not be. For tests.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.refresh {
		out = append(out, t)
	}
	for t := range s.access {
		out = append(out, t)
	}
	return out
}
