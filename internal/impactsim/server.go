package impactsim

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server simulates api.impact.com for any number of accounts.
// All methods are safe for concurrent use.
type Server struct {
	clock   *Clock
	log     *slog.Logger
	latency atomic.Int64 // time.Duration added to every API request

	mu       sync.RWMutex
	accounts map[string]*account
	sids     []string // in AddAccount order
}

// New returns a Server with no accounts.
func New(opts Options) *Server {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{clock: NewClock(now), log: log, accounts: map[string]*account{}}
	s.SetLatency(opts.Latency)
	return s
}

// SetLatency sets the wall-clock delay added to every API request (zero:
// none; negative counts as zero).
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(max(d, 0))) }

// Latency is the delay SetLatency or Options.Latency set.
func (s *Server) Latency() time.Duration { return time.Duration(s.latency.Load()) }

// Clock returns the simulator clock.
func (s *Server) Clock() *Clock { return s.clock }

// Handler serves the impact.com API: /Advertisers/{SID}/... and
// /Mediapartners/{SID}/....
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveAPI) }

// AddAccount generates an account from spec as of the clock's now.
// Generating 1,000,000 actions takes a second or two.
func (s *Server) AddAccount(spec AccountSpec) error {
	if err := validateSpec(&spec); err != nil {
		return err
	}
	if s.account(spec.SID) != nil {
		return fmt.Errorf("%w: %s", ErrDuplicate, spec.SID)
	}
	a := generate(spec, s.clock.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[spec.SID]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, spec.SID)
	}
	s.accounts[spec.SID] = a
	s.sids = append(s.sids, spec.SID)
	return nil
}

func (s *Server) account(sid string) *account {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.accounts[sid]
}

func (s *Server) must(sid string) (*account, error) {
	a := s.account(sid)
	if a == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAccount, sid)
	}
	return a, nil
}

// Truth returns a typed copy of everything account sid serves as of the
// clock's now; the zero Truth for an unknown SID. Nested slices are shared
// with the simulator: treat them as read-only.
func (s *Server) Truth(sid string) Truth {
	a := s.account(sid)
	if a == nil {
		return Truth{}
	}
	now := s.clock.Now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.truth(now)
}

// TruthAction returns one action as served now.
func (s *Server) TruthAction(sid, actionID string) (Action, error) {
	a, err := s.must(sid)
	if err != nil {
		return Action{}, err
	}
	now := s.clock.Now().Unix()
	a.mu.RLock()
	defer a.mu.RUnlock()
	i, ok := a.actionIndex(actionID)
	if !ok {
		return Action{}, fmt.Errorf("%w: %s", ErrUnknownAction, actionID)
	}
	v := a.view(i, now)
	return a.truthAction(&v), nil
}

// ModifyAction sets a PENDING action's amount (at most 2 decimals) and
// payout (at most 4 decimals). It bumps the hidden lastUpdated to the clock's
// now and appends an ActionUpdate with the deltas.
func (s *Server) ModifyAction(sid, actionID string, amount, payout string) error {
	amt, err := parseMoney(amount, 2)
	if err != nil {
		return err
	}
	pay, err := parseMoney(payout, 4)
	if err != nil {
		return err
	}
	return s.mutate(sid, actionID, func(a *account, i uint32, now int64) { a.modify(i, now, amt, pay) })
}

// ReverseAction reverses a PENDING action: State REVERSED, Payout, Amount
// and ClientCost 0, negative deltas, lastUpdated bumped, ActionUpdate appended.
func (s *Server) ReverseAction(sid, actionID string) error {
	return s.mutate(sid, actionID, func(a *account, i uint32, now int64) { a.reverse(i, now) })
}

func (s *Server) mutate(sid, actionID string, fn func(a *account, i uint32, now int64)) error {
	a, err := s.must(sid)
	if err != nil {
		return err
	}
	now := s.clock.Now().Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.actionIndex(actionID)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownAction, actionID)
	}
	if st := a.state(i, now); st != statePending {
		return fmt.Errorf("%w: %s is %s", ErrNotPending, actionID, st)
	}
	fn(a, i, now)
	return nil
}

// parseMoney parses a non-negative decimal with at most maxDec decimals
// into 1/10000 units.
func parseMoney(s string, maxDec int) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	bad := fmt.Errorf("%w: %q (want a non-negative decimal with at most %d decimals)", ErrBadAmount, s, maxDec)
	if whole == "" || len(frac) > maxDec || len(whole) > 9 || (strings.Contains(s, ".") && frac == "") {
		return 0, bad
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "0000")[:4], 10, 64)
	}
	v := w*10000 + f
	if v > 1<<31-1 {
		return 0, bad
	}
	return v, nil
}

// AddActions creates n actions at the clock's now in campaign campaignID
// ("" picks existing campaigns at random) and returns their ids.
func (s *Server) AddActions(sid string, n int, campaignID string) ([]string, error) {
	a, err := s.must(sid)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	if n < 0 || len(a.acts)+n > MaxActionsPerAccount {
		return nil, fmt.Errorf("%w: cannot add %d actions", ErrBadSpec, n)
	}
	ci := -1
	if campaignID != "" {
		k, ok := a.campaignByID(campaignID)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnknownCamp, campaignID)
		}
		ci = k
	} else if len(a.camps) == 0 {
		a.addCampaign(a.rng, s.clock.Now())
	}
	return a.appendActions(n, ci, now), nil
}

// AddCampaign creates a campaign (brand: owned; partner: joined) with an id
// above the existing ones and returns its id.
func (s *Server) AddCampaign(sid string) (string, error) {
	a, err := s.must(sid)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.camps) >= 60000 {
		return "", fmt.Errorf("%w: too many campaigns", ErrBadSpec)
	}
	return a.addCampaign(a.rng, s.clock.Now()).idStr, nil
}

// withControl runs fn on account sid's control plane; no-op for unknown SIDs.
func (s *Server) withControl(sid string, fn func(c *control, a *account)) {
	a := s.account(sid)
	if a == nil {
		return
	}
	a.ctl.Lock()
	defer a.ctl.Unlock()
	fn(&a.control, a)
}

// ResetToken rotates the auth token: the old one gets 401 from now on. It
// returns the new token ("" for an unknown SID). A disabled token stays
// disabled.
func (s *Server) ResetToken(sid string) string {
	var tok string
	s.withControl(sid, func(c *control, a *account) {
		c.resets++
		r := newRand(a.seed, 1000+uint64(c.resets))
		tok = randomToken(r)
		c.token = tok
	})
	return tok
}

func randomToken(r *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	for k := range b {
		b[k] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// DisableToken disables the account's (legacy) token: every request with it
// gets 401. (docs/impact-api.md §2.2 says disabled scoped tokens get 403 and leaves
// legacy tokens open; the simulator treats the token as legacy.)
func (s *Server) DisableToken(sid string) {
	s.withControl(sid, func(c *control, _ *account) { c.disabled = true })
}

// EnableToken undoes DisableToken.
func (s *Server) EnableToken(sid string) {
	s.withControl(sid, func(c *control, _ *account) { c.disabled = false })
}

// AddBearerToken registers an OAuth access token for sid, valid until expiry
// on the simulator clock.
func (s *Server) AddBearerToken(sid, token string, expiry time.Time) {
	s.withControl(sid, func(c *control, _ *account) { c.bearer[token] = expiry })
}

// RevokeBearerToken forgets an access token.
func (s *Server) RevokeBearerToken(sid, token string) {
	s.withControl(sid, func(c *control, _ *account) { delete(c.bearer, token) })
}

// DenyEndpoint makes resource ("PromoCodes", "Actions", "CompanyInformation",
// ...) answer 403 {"Status":"ERROR","Message":"Access Denied"} for sid,
// like a scoped token without that endpoint.
func (s *Server) DenyEndpoint(sid, resource string) {
	s.withControl(sid, func(c *control, _ *account) { c.denied[resource] = true })
}

// AllowEndpoint undoes DenyEndpoint.
func (s *Server) AllowEndpoint(sid, resource string) {
	s.withControl(sid, func(c *control, _ *account) { delete(c.denied, resource) })
}

// SetQuirks sets the account's wire quirks.
func (s *Server) SetQuirks(sid string, q Quirks) {
	s.withControl(sid, func(c *control, _ *account) { c.quirks = q })
}

// SetRateLimit sets the account's hourly request bucket (on the simulator
// clock) and its header family. perHour <= 0 restores DefaultRateLimit.
// The current window restarts.
func (s *Server) SetRateLimit(sid string, perHour int, family HeaderFamily) {
	s.withControl(sid, func(c *control, _ *account) {
		if perHour <= 0 {
			perHour = DefaultRateLimit
		}
		c.limit, c.family = perHour, family
		c.winStart, c.used = time.Time{}, 0
	})
}

// InjectFaults queues faults for sid; each is consumed by the next request(s)
// it matches.
func (s *Server) InjectFaults(sid string, f ...Fault) {
	s.withControl(sid, func(c *control, _ *account) { c.faults = append(c.faults, f...) })
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults(sid string) {
	s.withControl(sid, func(c *control, _ *account) { c.faults = nil })
}

// Stats returns a copy of the account's request counters.
func (s *Server) Stats(sid string) Stats {
	var st Stats
	s.withControl(sid, func(c *control, _ *account) {
		st = c.stats
		st.ByStatus = make(map[int]int, len(c.stats.ByStatus))
		for k, v := range c.stats.ByStatus {
			st.ByStatus[k] = v
		}
		st.ByResource = make(map[string]int, len(c.stats.ByResource))
		for k, v := range c.stats.ByResource {
			st.ByResource[k] = v
		}
	})
	if st.ByStatus == nil {
		st.ByStatus, st.ByResource = map[int]int{}, map[string]int{}
	}
	return st
}

// TotalStats sums the request counters of every account.
func (s *Server) TotalStats() Stats {
	s.mu.RLock()
	sids := append([]string(nil), s.sids...)
	s.mu.RUnlock()
	tot := Stats{ByStatus: map[int]int{}, ByResource: map[string]int{}}
	for _, sid := range sids {
		st := s.Stats(sid)
		tot.Requests += st.Requests
		tot.RateLimited += st.RateLimited
		tot.FaultsServed += st.FaultsServed
		for k, v := range st.ByStatus {
			tot.ByStatus[k] += v
		}
		for k, v := range st.ByResource {
			tot.ByResource[k] += v
		}
	}
	return tot
}

// AccountInfo summarises an account as the simulator holds it now.
type AccountInfo struct {
	SID     string         `json:"sid"`
	Persona Persona        `json:"persona"`
	Counts  map[string]int `json:"counts"`
}

// Accounts lists the accounts in the order they were added.
func (s *Server) Accounts() []AccountInfo {
	s.mu.RLock()
	sids := append([]string(nil), s.sids...)
	s.mu.RUnlock()
	out := make([]AccountInfo, 0, len(sids))
	for _, sid := range sids {
		a := s.account(sid)
		a.mu.RLock()
		info := AccountInfo{SID: sid, Persona: a.persona, Counts: map[string]int{
			"Campaigns":     len(a.camps),
			"MediaPartners": len(a.partners),
			"PromoCodes":    len(a.promos) + len(a.ppromos),
			"Actions":       len(a.acts),
			"ActionUpdates": len(a.acts) + len(a.updates),
		}}
		a.mu.RUnlock()
		out = append(out, info)
	}
	return out
}
