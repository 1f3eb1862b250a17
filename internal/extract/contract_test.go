package extract

// Contract tests: the client against the impact.com simulator
// (internal/impactsim) over httptest, one test per rule, quirk or fault the
// client must survive. The simulator's own rules are tested in
// internal/impactsim; docs/testing.md maps each quirk to its test here.
//
// The client's clock follows the simulator's: Options.Now reads it and
// Options.Sleep advances it, so waits of an hour (rate-limit resets, 429s)
// cost nothing, and the simulator's rate-limit window moves as the client
// waits. Tests that need real time (timeouts, cancellation) say so.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
)

// simStart is the simulator clock every contract test starts from.
var simStart = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

const (
	brandSID     = "IRcontractBrand00000000000000001"
	brandToken   = "contract-brand-token"
	partnerSID   = "IRcontractPartner000000000000001"
	partnerToken = "contract-partner-token"
)

func brandSpec() impactsim.AccountSpec {
	return impactsim.AccountSpec{SID: brandSID, Token: brandToken, Persona: impactsim.Brand,
		Seed: 3, Campaigns: 3, Actions: 700, MediaPartners: 25, PromoCodes: 8}
}

func partnerSpec() impactsim.AccountSpec {
	return impactsim.AccountSpec{SID: partnerSID, Token: partnerToken, Persona: impactsim.Partner,
		Seed: 5, Campaigns: 4, Actions: 500, PromoCodes: 6}
}

// bundle is what setup returns: the simulator, its server, the requests it
// received, and a client factory.
type bundle struct {
	t      *testing.T
	sim    *impactsim.Server
	srv    *httptest.Server
	specs  map[string]impactsim.AccountSpec
	tokens map[string]string // current token per SID (ResetToken changes it)
	reqs   *requestLog
	slept  atomic.Int64 // nanoseconds the clients slept (on the simulator clock)

	truthMu sync.Mutex
	truths  map[string]impactsim.Truth // by SID, as of truthAt
	truthAt time.Time
}

// truth is the simulator's truth for sid as of its clock, cached while the
// clock stands still (no contract test changes the data otherwise).
func (b *bundle) truth(sid string) impactsim.Truth {
	b.truthMu.Lock()
	defer b.truthMu.Unlock()
	if now := b.sim.Clock().Now(); !now.Equal(b.truthAt) || b.truths == nil {
		b.truths, b.truthAt = map[string]impactsim.Truth{}, now
	}
	tr, ok := b.truths[sid]
	if !ok {
		tr = b.sim.Truth(sid)
		b.truths[sid] = tr
	}
	return tr
}

// requestLog keeps every request the simulator received.
type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

type seenRequest struct {
	uri    string // path and query exactly as sent
	header http.Header
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// setup starts a simulator holding specs (default: one brand and one
// partner account) behind an httptest server.
func setup(t *testing.T, specs ...impactsim.AccountSpec) *bundle {
	t.Helper()
	if len(specs) == 0 {
		specs = []impactsim.AccountSpec{brandSpec(), partnerSpec()}
	}
	b := &bundle{t: t, sim: impactsim.New(impactsim.Options{Now: simStart}),
		specs: map[string]impactsim.AccountSpec{}, tokens: map[string]string{}, reqs: &requestLog{}}
	for _, sp := range specs {
		if err := b.sim.AddAccount(sp); err != nil {
			t.Fatalf("AddAccount(%s): %v", sp.SID, err)
		}
		b.specs[sp.SID], b.tokens[sp.SID] = sp, sp.Token
	}
	api := b.sim.Handler()
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.reqs.mu.Lock()
		b.reqs.reqs = append(b.reqs.reqs, seenRequest{uri: r.URL.RequestURI(), header: r.Header.Clone()})
		b.reqs.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// basicAuth is a hand-written Basic-auth transport (internal/auth has the
// product's; extract must not depend on it).
type basicAuth struct {
	sid, token string
	base       http.RoundTripper
}

func (a basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(a.sid, a.token)
	return a.base.RoundTrip(r)
}

// simSleep advances the simulator clock instead of waiting; it is the
// clients' Options.Sleep. The simulator clock has whole seconds, so a wait
// is rounded up to the next second.
func (b *bundle) simSleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	b.slept.Add(int64(d))
	b.sim.Clock().Advance((d + time.Second - 1).Truncate(time.Second))
	return nil
}

// client returns a client for account sid on the simulator clock, with
// small backoffs; opts adjust the options.
func (b *bundle) client(sid string, opts ...func(*Options)) *Client {
	b.t.Helper()
	sp, ok := b.specs[sid]
	if !ok {
		b.t.Fatalf("no account %s", sid)
	}
	persona := syncer.Brand
	if sp.Persona == impactsim.Partner {
		persona = syncer.Partner
	}
	o := Options{
		BaseURL: b.srv.URL, AccountID: "acct-" + string(persona), Persona: persona, SID: sid,
		Transport:   basicAuth{sid: sid, token: b.tokens[sid], base: b.srv.Client().Transport},
		Timeout:     10 * time.Second,
		BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Now: b.sim.Clock().Now, Sleep: b.simSleep,
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := NewClient(o)
	if err != nil {
		b.t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (b *bundle) brand(opts ...func(*Options)) *Client   { return b.client(brandSID, opts...) }
func (b *bundle) partner(opts ...func(*Options)) *Client { return b.client(partnerSID, opts...) }

// personas runs fn once for the brand and once for the partner account.
func (b *bundle) personas(t *testing.T, fn func(t *testing.T, sid string)) {
	for _, sid := range []string{brandSID, partnerSID} {
		t.Run(string(b.specs[sid].Persona), func(t *testing.T) { fn(t, sid) })
	}
}

// readResult is what a query yielded.
type readResult struct {
	recs       []syncer.Record
	decodeErrs []*syncer.DecodeError
	err        error // the error that ended the sequence
}

func drain(seq func(func(syncer.Record, error) bool)) readResult {
	var r readResult
	for rec, err := range seq {
		var de *syncer.DecodeError
		switch {
		case errors.As(err, &de):
			r.decodeErrs = append(r.decodeErrs, de)
		case err != nil:
			r.err = err
		default:
			r.recs = append(r.recs, rec)
		}
	}
	return r
}

// history is a window covering every generated action and update.
func history(now time.Time) syncer.Window {
	return syncer.Window{Start: now.Add(-125 * 24 * time.Hour), End: now}
}

// queries lists the queries that read all of entity e of account sid: one
// per campaign for brand Actions and ActionUpdates, over the whole history.
func (b *bundle) queries(sid string, e syncer.Entity) []syncer.Query {
	q := syncer.Query{Entity: e}
	if e != syncer.Actions && e != syncer.ActionUpdates {
		return []syncer.Query{q}
	}
	q.Window = history(b.sim.Clock().Now())
	q.Filter = syncer.ByUpdated
	if e == syncer.Actions {
		q.Filter = syncer.ByEvent
	}
	if b.specs[sid].Persona == impactsim.Partner {
		return []syncer.Query{q}
	}
	var out []syncer.Query
	for _, c := range b.truth(sid).Campaigns {
		q.CampaignID = c.Id
		out = append(out, q)
	}
	return out
}

// readAll reads every record of e, failing the test on any error.
func (b *bundle) readAll(t *testing.T, c *Client, sid string, e syncer.Entity) []syncer.Record {
	t.Helper()
	var out []syncer.Record
	for _, q := range b.queries(sid, e) {
		r := drain(c.Records(t.Context(), q))
		if r.err != nil || len(r.decodeErrs) > 0 {
			t.Fatalf("%s: err %v, decode errors %v", q, r.err, r.decodeErrs)
		}
		out = append(out, r.recs...)
	}
	return out
}

func entitiesOf(sid string, sp impactsim.AccountSpec) []syncer.Entity {
	var out []syncer.Entity
	for _, e := range syncer.AllEntities {
		if e == syncer.MediaPartners && sp.Persona == impactsim.Partner {
			continue
		}
		out = append(out, e)
	}
	return out
}

// wantEveryEntity reads every entity of sid with c and compares it with the
// simulator's truth, field by field.
func (b *bundle) wantEveryEntity(t *testing.T, c *Client, sid string) {
	t.Helper()
	truth := b.truth(sid)
	for _, e := range entitiesOf(sid, b.specs[sid]) {
		wantTruth(t, e, truthcheck.Records(truth, e), b.readAll(t, c, sid, e))
	}
}

// ---- comparison with the simulator's truth ----

// wantTruth checks that recs hold exactly the records of want, once each,
// and that every column equals the truth (internal/truthcheck's comparison).
func wantTruth(t *testing.T, e syncer.Entity, want map[string]reflect.Value, recs []syncer.Record) {
	t.Helper()
	res := truthcheck.CompareRecords(e, want, recs)
	if !res.OK() {
		t.Errorf("%s\n  %s", res, strings.Join(res.Diffs, "\n  "))
	}
}

// ---- both personas, every entity ----

func TestClientEveryEntityEqualsTruth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.personas(t, func(t *testing.T, sid string) {
		b.wantEveryEntity(t, b.client(sid), sid)
	})
}

// ---- wire quirks (docs/impact-api.md §7.0, §8) ----

// quirkTest reads every entity of both personas with the quirk on, with
// page sizes small enough that one-record pages occur, and compares with the
// truth.
func quirkTest(t *testing.T, q impactsim.Quirks) {
	b := setup(t)
	b.personas(t, func(t *testing.T, sid string) {
		b.sim.SetQuirks(sid, q)
		small := func(o *Options) {
			o.PageSize = map[syncer.Entity]int{syncer.Campaigns: 1, syncer.MediaPartners: 2}
		}
		b.wantEveryEntity(t, b.client(sid, small), sid)
	})
}

func TestClientNumbersAsJSON(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{NumbersAsJSON: true})
}

func TestClientBoolsAsJSON(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{BoolsAsJSON: true})
}

func TestClientEnvelopeNumbers(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{EnvelopeNumbers: true})
}

func TestClientSingleObjectList(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{SingleObjectLists: true})
}

func TestClientUTCDatesQuirk(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{UTCDates: true})
}

func TestClientAllWireQuirksAtOnce(t *testing.T) {
	t.Parallel()
	quirkTest(t, impactsim.Quirks{NumbersAsJSON: true, BoolsAsJSON: true, EnvelopeNumbers: true,
		SingleObjectLists: true, LegacyPartnersKey: true, UTCDates: true})
}

func TestClientLegacyMediaPartnersKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sim.SetQuirks(brandSID, impactsim.Quirks{LegacyPartnersKey: true})
	c := b.brand()
	wantTruth(t, syncer.MediaPartners, truthcheck.Records(b.truth(brandSID), syncer.MediaPartners),
		b.readAll(t, c, brandSID, syncer.MediaPartners))
}

// A list response whose records sit under an unknown key while @total says
// there are some is an error, never an empty success (docs/impact-api.md §8.4).
func TestClientPartnersKeyMissingWithTotalIsError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, e := range []syncer.Entity{syncer.MediaPartners, syncer.Campaigns, syncer.PromoCodes, syncer.Actions} {
		t.Run(string(e), func(t *testing.T) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultUnknownListKey, Match: Resource(e)})
			before := b.reqs.count()
			r := drain(b.brand().Records(t.Context(), b.queries(brandSID, e)[0]))
			var inv *syncer.InvalidError
			if !errors.As(r.err, &inv) || !strings.Contains(inv.Message, listKeys(e)[0]) {
				t.Fatalf("err = %v, want an InvalidError naming the list key %q", r.err, listKeys(e)[0])
			}
			if len(r.recs) != 0 {
				t.Errorf("%d records yielded", len(r.recs))
			}
			if n := b.reqs.count() - before; n != 1 {
				t.Errorf("%d requests, want 1 (not retried)", n)
			}
		})
	}
}

// Fields the client has no column for are kept in Raw and reported once per
// entity and name (docs/impact-api.md §2.4: new fields are not breaking).
func TestClientUnknownFieldsKeptAndReported(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.personas(t, func(t *testing.T, sid string) {
		b.sim.SetQuirks(sid, impactsim.Quirks{ExtraFields: true})
		var mu sync.Mutex
		reported := map[string]int{}
		c := b.client(sid, func(o *Options) {
			o.OnUnknownField = func(e syncer.Entity, f string) {
				mu.Lock()
				reported[string(e)+" "+f]++
				mu.Unlock()
			}
		})
		for _, e := range entitiesOf(sid, b.specs[sid]) {
			recs := b.readAll(t, c, sid, e)
			_ = b.readAll(t, c, sid, e) // a second read reports nothing new
			for _, r := range recs {
				if !strings.Contains(r.Raw, `"NewFieldFromV15"`) || !strings.Contains(r.Raw, `"NewObjectFromV16"`) {
					t.Fatalf("%s %q: Raw lacks the unknown fields: %.200s", e, r.ID, r.Raw)
				}
			}
			for _, f := range []string{"NewFieldFromV15", "NewObjectFromV16"} {
				if n := reported[string(e)+" "+f]; n != 1 {
					t.Errorf("%s field %s reported %d times, want once", e, f, n)
				}
			}
			// the documented fields still decode as without the quirk
			wantTruth(t, e, truthcheck.Records(b.truth(sid), e), recs)
		}
		for k := range reported {
			if !strings.HasSuffix(k, " NewFieldFromV15") && !strings.HasSuffix(k, " NewObjectFromV16") {
				t.Errorf("documented field reported as unknown: %s", k)
			}
		}
	})
}

// ---- faults: retries (docs/impact-api.md §5.4, §6.2, §8.8) ----

// faultTest injects faults in front of one read of each kind — the bare
// CompanyInformation object, a Campaigns list, an Actions window — and
// checks that the client retries through them to the full, correct result.
// check, when set, inspects each case's tally and bundle.
func faultTest(t *testing.T, check func(t *testing.T, b *bundle, tally *syncer.Tally), faults ...impactsim.Fault) {
	t.Helper()
	for _, e := range []syncer.Entity{syncer.CompanyInformation, syncer.Campaigns, syncer.Actions} {
		t.Run(string(e), func(t *testing.T) {
			b := setup(t, brandSpec())
			q := b.queries(brandSID, e)[0]
			fs := slices.Clone(faults)
			for i := range fs {
				fs[i].Match = Resource(e)
			}
			b.sim.InjectFaults(brandSID, fs...)
			tally := &syncer.Tally{}
			r := drain(b.brand().Records(syncer.WithTally(t.Context(), tally), q))
			if r.err != nil {
				t.Fatalf("read failed: %v", r.err)
			}
			want := truthcheck.Records(b.truth(brandSID), e)
			if e == syncer.Actions {
				for id, v := range want {
					if v.FieldByName("CampaignId").String() != q.CampaignID {
						delete(want, id)
					}
				}
			}
			wantTruth(t, e, want, r.recs)
			if st := b.sim.Stats(brandSID); st.FaultsServed == 0 {
				t.Fatal("no fault was served")
			}
			if check != nil {
				check(t, b, tally)
			}
		})
	}
}

func wantRetries(n uint64) func(t *testing.T, b *bundle, tally *syncer.Tally) {
	return func(t *testing.T, b *bundle, tally *syncer.Tally) {
		if got := tally.Retries.Load(); got != n {
			t.Errorf("retries = %d, want %d", got, n)
		}
	}
}

func TestClientRetriesHTML500(t *testing.T) {
	t.Parallel()
	faultTest(t, wantRetries(2), impactsim.Fault{Kind: impactsim.FaultHTML500, Times: 2})
}

func TestClientRetriesEmpty500(t *testing.T) {
	t.Parallel()
	faultTest(t, wantRetries(2), impactsim.Fault{Kind: impactsim.FaultEmpty500, Times: 2})
}

func TestClientRetriesGatewayErrors(t *testing.T) {
	t.Parallel()
	faultTest(t, wantRetries(3), impactsim.Fault{Kind: impactsim.FaultStatus, Status: 502},
		impactsim.Fault{Kind: impactsim.FaultStatus, Status: 503},
		impactsim.Fault{Kind: impactsim.FaultStatus, Status: 504})
}

func TestClientRetriesTruncatedJSON(t *testing.T) {
	t.Parallel()
	faultTest(t, wantRetries(2), impactsim.Fault{Kind: impactsim.FaultTruncated, Times: 2})
}

func TestClientRetriesConnectionReset(t *testing.T) {
	t.Parallel()
	faultTest(t, wantRetries(2), impactsim.Fault{Kind: impactsim.FaultReset, Times: 2})
}

func TestClientRetries429WithRetryAfter(t *testing.T) {
	t.Parallel()
	faultTest(t, func(t *testing.T, b *bundle, tally *syncer.Tally) {
		if tally.RateLimited.Load() != 1 {
			t.Errorf("429s received = %d, want 1", tally.RateLimited.Load())
		}
		// it waited as told: Retry-After 120 s on the simulator clock
		if slept := time.Duration(b.slept.Load()); slept < 120*time.Second || slept > 122*time.Second {
			t.Errorf("slept %v, want the 120 s Retry-After", slept)
		}
	}, impactsim.Fault{Kind: impactsim.Fault429, RetryAfter: 120})
}

func TestClientRetries429WithoutRetryAfter(t *testing.T) {
	t.Parallel()
	// Without Retry-After the brand family's X-RateLimit-Reset says when the
	// window renews; the client waits for it (docs/impact-api.md §5.4).
	faultTest(t, func(t *testing.T, b *bundle, tally *syncer.Tally) {
		if tally.RateLimited.Load() != 2 {
			t.Errorf("429s received = %d, want 2", tally.RateLimited.Load())
		}
		if b.slept.Load() == 0 {
			t.Error("the client did not wait after the 429s")
		}
	}, impactsim.Fault{Kind: impactsim.Fault429}, impactsim.Fault{Kind: impactsim.Fault429})
}

func TestClientRetries429WithoutAnyRateLimitHeader(t *testing.T) {
	t.Parallel()
	// No Retry-After and no reset header at all: jittered exponential backoff.
	b := setup(t, brandSpec())
	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.Fault429, Times: 3})
	stripped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.srv.Config.Handler.ServeHTTP(headerFilter{ResponseWriter: w}, r)
	})
	srv := httptest.NewServer(stripped)
	t.Cleanup(srv.Close)
	var waits []time.Duration
	c := b.brand(func(o *Options) {
		o.BaseURL = srv.URL
		o.BackoffBase, o.BackoffMax = time.Second, time.Minute
		o.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return b.simSleep(ctx, d) }
	})
	r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(waits) != 3 {
		t.Fatalf("waits %v, want 3", waits)
	}
	for i, d := range waits {
		hi := time.Second << i
		if d < hi/2 || d > hi {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, d, hi/2, hi)
		}
	}
}

// headerFilter drops every rate-limit header from a response and sets those
// of set instead.
type headerFilter struct {
	http.ResponseWriter
	set http.Header
}

func (h headerFilter) WriteHeader(code int) {
	for k := range h.Header() {
		if strings.Contains(strings.ToLower(k), "ratelimit") || strings.EqualFold(k, "Retry-After") {
			delete(h.Header(), k)
		}
	}
	for k, v := range h.set {
		h.Header()[k] = v
	}
	h.ResponseWriter.WriteHeader(code)
}

// Transient failures are retried a bounded number of times, then reported
// as a TransientError (the run fails; the next one reads again).
func TestClientTransientGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind   impactsim.FaultKind
		e      syncer.Entity
		status int
	}{
		{impactsim.FaultHTML500, syncer.Campaigns, 500},
		{impactsim.FaultTruncated, syncer.Campaigns, 200},
		{impactsim.FaultTruncated, syncer.CompanyInformation, 200},
		{impactsim.FaultReset, syncer.PromoCodes, 200}, // the body broke off
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.e, tc.kind), func(t *testing.T) {
			b := setup(t, brandSpec())
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: tc.kind, Times: 100})
			r := drain(b.brand(func(o *Options) { o.MaxAttempts = 4 }).Records(t.Context(), syncer.Query{Entity: tc.e}))
			var tr *syncer.TransientError
			if !errors.As(r.err, &tr) || tr.Status != tc.status {
				t.Fatalf("err = %v, want a TransientError with status %d", r.err, tc.status)
			}
			if n := b.reqs.count(); n != 4 {
				t.Errorf("%d requests, want 4", n)
			}
		})
	}
}

// A response slower than Options.Timeout is abandoned and retried (real
// time: the simulator's slow fault sleeps on the wall clock).
func TestClientTimeoutOnSlowResponse(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 5 * time.Second})
	c := b.brand(func(o *Options) { o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v: the slow response was not cut off at the timeout", d)
	}
	wantTruth(t, syncer.Campaigns, truthcheck.Records(b.truth(brandSID), syncer.Campaigns), r.recs)

	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 5 * time.Second, Times: 3})
	c = b.brand(func(o *Options) { o.Timeout = 100 * time.Millisecond; o.MaxAttempts = 3 })
	r = drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
	var tr *syncer.TransientError
	if !errors.As(r.err, &tr) {
		t.Fatalf("err = %v, want a TransientError after the attempts timed out", r.err)
	}
}

// ---- pagination guards (docs/impact-api.md §3.3) ----

// pagedQuery reads brand MediaPartners five to a page: 25 partners, 5 pages.
func pagedClient(b *bundle) *Client {
	return b.brand(func(o *Options) { o.PageSize = map[syncer.Entity]int{syncer.MediaPartners: 5} })
}

func pageMatch(page int) string {
	return "/MediaPartners?PageSize=5&Page=" + strconv.Itoa(page)
}

func TestClientFollowsNextPageURIVerbatim(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	r := drain(pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantTruth(t, syncer.MediaPartners, truthcheck.Records(b.truth(brandSID), syncer.MediaPartners), r.recs)
	reqs := b.reqs.all()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5", len(reqs))
	}
	if reqs[0].uri != "/Advertisers/"+brandSID+"/MediaPartners?PageSize=5" {
		t.Errorf("first request %s", reqs[0].uri)
	}
	for i, rq := range reqs[1:] {
		want := "/Advertisers/" + brandSID + pageMatch(i+2)
		if rq.uri != want {
			t.Errorf("request %d = %s, want the @nextpageuri %s", i+2, rq.uri, want)
		}
	}
}

func TestClientRefusesBackwardNextPage(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultNextBackwards, Match: pageMatch(3)})
	r := drain(pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	var inv *syncer.InvalidError
	if !errors.As(r.err, &inv) || !strings.Contains(inv.Message, "back") {
		t.Fatalf("err = %v, want an InvalidError about going back", r.err)
	}
	if len(r.recs) != 15 {
		t.Errorf("%d records before the error, want the 15 of pages 1-3", len(r.recs))
	}
	if n := b.reqs.count(); n != 3 {
		t.Errorf("%d requests, want 3 (page 2 not read again)", n)
	}
}

func TestClientRefusesLoopingNextPage(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultNextLoop, Match: pageMatch(2)})
	r := drain(pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	var inv *syncer.InvalidError
	if !errors.As(r.err, &inv) {
		t.Fatalf("err = %v, want an InvalidError", r.err)
	}
	if n := b.reqs.count(); n != 2 {
		t.Errorf("%d requests, want 2 (the looping page not read again)", n)
	}
}

func TestClientMaxPagesCap(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	c := b.brand(func(o *Options) {
		o.PageSize = map[syncer.Entity]int{syncer.MediaPartners: 5}
		o.MaxPages = 3
	})
	r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	if r.err == nil || !strings.Contains(r.err.Error(), "more than 3 pages") {
		t.Fatalf("err = %v, want the page cap", r.err)
	}
	if n := b.reqs.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// @total larger than the result: the page after the last is empty, the
// client stops on it (though @nextpageuri goes on), sees fewer records than
// promised and reads the query again; when the result never settles it fails
// with a transient error (read again next run) instead of reporting a short
// result as complete.
func TestClientTotalInconsistentRestartsThenFails(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	// pages 1-5 and the empty page 6 of the first pass claim 30 records
	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultTotalMismatch, Match: "/MediaPartners", Times: 6})
	r := drain(pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	uniq := map[string]syncer.Record{}
	for _, rec := range r.recs {
		uniq[rec.ID] = rec
	}
	if len(r.recs) != 2*len(uniq) {
		t.Errorf("%d records for %d ids: want every record twice (first pass, then the re-read)", len(r.recs), len(uniq))
	}
	wantTruth(t, syncer.MediaPartners, truthcheck.Records(b.truth(brandSID), syncer.MediaPartners), slices.Collect(maps.Values(uniq)))
	if n := b.reqs.count(); n != 11 {
		t.Errorf("%d requests, want 11: pages 1-6, then pages 1-5 again", n)
	}

	b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultTotalMismatch, Match: "/MediaPartners", Times: 100})
	r = drain(pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}))
	var tr *syncer.TransientError
	if !errors.As(r.err, &tr) || !strings.Contains(r.err.Error(), "@total") {
		t.Fatalf("err = %v, want a TransientError about @total", r.err)
	}
}

// ---- malformed records (issue 3: name account, entity, record, field) ----

func TestClientMalformedRecordNamesFieldAndKeepsPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name  string
		kind  impactsim.FaultKind
		e     syncer.Entity
		field string
	}{
		{"bad date in an action", impactsim.FaultBadDate, syncer.Actions, "ReferringDate"},
		{"bad amount in an action", impactsim.FaultBadAmount, syncer.Actions, "ClientCost"},
		{"bad date in a promo code", impactsim.FaultBadDate, syncer.PromoCodes, "CreatedDate"},
		{"bad date in an action update", impactsim.FaultBadDate, syncer.ActionUpdates, "UpdateDate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: tc.kind, Match: Resource(tc.e)})
			q := b.queries(brandSID, tc.e)[0]
			r := drain(b.brand().Records(t.Context(), q))
			if r.err != nil {
				t.Fatalf("the sequence ended: %v", r.err)
			}
			if len(r.decodeErrs) != 1 {
				t.Fatalf("%d decode errors, want 1", len(r.decodeErrs))
			}
			de := r.decodeErrs[0]
			if de.AccountID != "acct-brand" || de.Entity != tc.e || de.RecordID == "" || de.Field != tc.field {
				t.Errorf("DecodeError %+v: want account, entity %s, a record id and field %s", de, tc.e, tc.field)
			}
			for _, s := range []string{"acct-brand", string(tc.e), de.RecordID, tc.field} {
				if !strings.Contains(de.Error(), s) {
					t.Errorf("error %q does not name %q", de.Error(), s)
				}
			}
			// every other record of the page arrived, correct
			want := truthcheck.Records(b.truth(brandSID), tc.e)
			if q.CampaignID != "" {
				for id, v := range want {
					if v.FieldByName("CampaignId").String() != q.CampaignID {
						delete(want, id)
					}
				}
			}
			delete(want, de.RecordID)
			wantTruth(t, tc.e, want, r.recs)
		})
	}
}

// ---- requests (docs/impact-api.md §2.1, §2.4, §4.2) ----

func TestClientSendsAcceptJSONAndIRVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		sid, configured, want string
	}{
		{brandSID, "", "14"},
		{partnerSID, "", "16"},
		{brandSID, "13", "13"},
		{partnerSID, "15", "15"},
	}
	for _, tc := range cases {
		t.Run(string(b.specs[tc.sid].Persona)+"/"+tc.want, func(t *testing.T) {
			before := b.reqs.count()
			c := b.client(tc.sid, func(o *Options) { o.IRVersion = tc.configured })
			for _, e := range entitiesOf(tc.sid, b.specs[tc.sid]) {
				if r := drain(c.Records(t.Context(), b.queries(tc.sid, e)[0])); r.err != nil {
					t.Fatal(r.err)
				}
			}
			reqs := b.reqs.all()[before:]
			if len(reqs) == 0 {
				t.Fatal("no requests")
			}
			for _, rq := range reqs {
				if got := rq.header.Get("Accept"); got != "application/json" {
					t.Errorf("%s: Accept %q", rq.uri, got)
				}
				if got := rq.header.Values("IR-Version"); len(got) != 1 || got[0] != tc.want {
					t.Errorf("%s: IR-Version %q, want %s", rq.uri, got, tc.want)
				}
			}
		})
	}
}

var zulu = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// Dates go out as YYYY-MM-DDTHH:MM:SSZ whatever the window's location, with
// the filter's parameter pair (docs/impact-api.md §4.1, §4.2, §8.15).
func TestClientDatesSentAsZulu(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tokyo := time.FixedZone("JST", 9*3600)
	now := b.sim.Clock().Now()
	w := syncer.Window{Start: now.Add(-30 * 24 * time.Hour).In(tokyo), End: now.In(tokyo)}
	camp := b.truth(brandSID).Campaigns[0].Id
	cases := []struct {
		e              syncer.Entity
		filter         syncer.DateFilter
		startP, endP   string
		unwantedParams []string
	}{
		{syncer.Actions, syncer.ByUpdated, "StartDate", "EndDate", []string{"ActionDateStart", "LockingDateStart"}},
		{syncer.Actions, syncer.ByEvent, "ActionDateStart", "ActionDateEnd", []string{"StartDate", "LockingDateStart"}},
		{syncer.Actions, syncer.ByLocking, "LockingDateStart", "LockingDateEnd", []string{"StartDate", "ActionDateStart"}},
		{syncer.ActionUpdates, syncer.ByUpdated, "StartDate", "EndDate", []string{"ActionDateStart", "LockingDateStart"}},
	}
	for _, tc := range cases {
		t.Run(string(tc.e)+"/"+string(tc.filter), func(t *testing.T) {
			before := b.reqs.count()
			r := drain(b.brand().Records(t.Context(), syncer.Query{Entity: tc.e, CampaignID: camp, Filter: tc.filter, Window: w}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			for _, rq := range b.reqs.all()[before:] {
				u, _ := url.Parse(rq.uri)
				v := u.Query()
				if s := v.Get(tc.startP); s != FormatTime(w.Start) || !zulu.MatchString(s) {
					t.Errorf("%s = %q, want %s", tc.startP, s, FormatTime(w.Start))
				}
				if s := v.Get(tc.endP); s != FormatTime(w.End) || !zulu.MatchString(s) {
					t.Errorf("%s = %q, want %s", tc.endP, s, FormatTime(w.End))
				}
				for _, p := range tc.unwantedParams {
					if v.Has(p) {
						t.Errorf("%s sent with filter %s", p, tc.filter)
					}
				}
			}
		})
	}
}

// The date filters select what docs/impact-api.md §4.1 says: StartDate/EndDate the
// hidden last-updated date, ActionDate* the EventDate, LockingDate* the
// LockingDate (docs/impact-api.md §4.1); a modified action moves into the
// last-updated window of its modification, an approval does not.
func TestClientDateFiltersSelectByTheirField(t *testing.T) {
	t.Parallel()
	b := setup(t, partnerSpec())
	c := b.partner()
	now := b.sim.Clock().Now()
	tr := b.truth(partnerSID)
	win := syncer.Window{Start: now.Add(-40 * 24 * time.Hour), End: now.Add(-10 * 24 * time.Hour)}
	in := func(t time.Time) bool { return !t.Before(win.Start) && !t.After(win.End) }
	cases := []struct {
		filter syncer.DateFilter
		pick   func(a impactsim.Action) time.Time
	}{
		{syncer.ByUpdated, func(a impactsim.Action) time.Time { return a.LastUpdated }},
		{syncer.ByEvent, func(a impactsim.Action) time.Time { return a.EventDate }},
		{syncer.ByLocking, func(a impactsim.Action) time.Time { return a.LockingDate }},
	}
	for _, tc := range cases {
		t.Run(string(tc.filter), func(t *testing.T) {
			want := map[string]reflect.Value{}
			for _, a := range tr.Actions {
				if in(tc.pick(a)) {
					want[a.Id] = reflect.ValueOf(a)
				}
			}
			if len(want) == 0 {
				t.Fatal("the window selects nothing; the test data changed")
			}
			r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Actions, Filter: tc.filter, Window: win}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantTruth(t, syncer.Actions, want, r.recs)
		})
	}
}

// Actions and ActionUpdates are never asked for fewer than 2,000 records a
// page, nor more than 20,000, whatever is configured (docs/impact-api.md §3.1, §4.2;
// the simulator enforces the minimum on both).
func TestClientActivityPageSizeWithinAPILimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, size := range []int{1, 1999, 50000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			before := b.reqs.count()
			c := b.brand(func(o *Options) {
				o.PageSize = map[syncer.Entity]int{syncer.Actions: size, syncer.ActionUpdates: size}
			})
			for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates} {
				wantTruth(t, e, truthcheck.Records(b.truth(brandSID), e), b.readAll(t, c, brandSID, e))
			}
			for _, rq := range b.reqs.all()[before:] {
				u, _ := url.Parse(rq.uri)
				n, err := strconv.Atoi(u.Query().Get("PageSize"))
				if err != nil || n < 2000 || n > 20000 {
					t.Errorf("%s: PageSize %q", rq.uri, u.Query().Get("PageSize"))
				}
			}
		})
	}
}

// Partner PromoCodes accept PageSize 50-1000 (docs/impact-api.md §3.1); the client
// stays inside that range whatever is configured.
func TestClientPartnerPromoCodesPageSizeWithinAPILimits(t *testing.T) {
	t.Parallel()
	b := setup(t, partnerSpec())
	for _, size := range []int{1, 49, 5000} {
		c := b.partner(func(o *Options) { o.PageSize = map[syncer.Entity]int{syncer.PromoCodes: size} })
		wantTruth(t, syncer.PromoCodes, truthcheck.Records(b.truth(partnerSID), syncer.PromoCodes),
			b.readAll(t, c, partnerSID, syncer.PromoCodes))
	}
}

// Windows longer than the API's 45 days are cut into ≤ 44-day windows, each
// starting one second after the previous ends (docs/impact-api.md §4.2).
func TestClientSplitsLongWindowsUnder45Days(t *testing.T) {
	t.Parallel()
	b := setup(t, partnerSpec())
	now := b.sim.Clock().Now()
	win := syncer.Window{Start: now.Add(-120 * 24 * time.Hour), End: now}
	r := drain(b.partner().Records(t.Context(), syncer.Query{Entity: syncer.Actions, Filter: syncer.ByEvent, Window: win}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := map[string]reflect.Value{}
	for _, a := range b.truth(partnerSID).Actions {
		if !a.EventDate.Before(win.Start) {
			want[a.Id] = reflect.ValueOf(a)
		}
	}
	wantTruth(t, syncer.Actions, want, r.recs)
	var prevEnd time.Time
	reqs := b.reqs.all()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want 3 windows of one page", len(reqs))
	}
	for _, rq := range reqs {
		u, _ := url.Parse(rq.uri)
		s, _ := time.Parse(time.RFC3339, u.Query().Get("ActionDateStart"))
		e, _ := time.Parse(time.RFC3339, u.Query().Get("ActionDateEnd"))
		if e.Sub(s) > 44*24*time.Hour {
			t.Errorf("window %s..%s is longer than 44 days", s, e)
		}
		if !prevEnd.IsZero() && !s.Equal(prevEnd.Add(time.Second)) {
			t.Errorf("window starts %s, previous ended %s", s, prevEnd)
		}
		prevEnd = e
	}
}

// ---- errors (docs/impact-api.md §2.2, §6) ----

func TestClient401IsUnauthorized(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.personas(t, func(t *testing.T, sid string) {
		check := func(t *testing.T, c *Client) {
			before := b.reqs.count()
			_, err := c.CompanyInformation(t.Context())
			var u *syncer.UnauthorizedError
			if !errors.As(err, &u) || !syncer.IsCredentialDead(err) {
				t.Fatalf("err = %v, want an UnauthorizedError", err)
			}
			r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
			if !errors.As(r.err, &u) {
				t.Fatalf("Records err = %v, want an UnauthorizedError", r.err)
			}
			if n := b.reqs.count() - before; n != 2 {
				t.Errorf("%d requests, want 2 (a 401 is not retried)", n)
			}
			if strings.Contains(err.Error(), b.tokens[sid]) || strings.Contains(err.Error(), "wrong-token") {
				t.Error("the error shows the token")
			}
		}
		t.Run("wrong token", func(t *testing.T) {
			check(t, b.client(sid, func(o *Options) {
				o.Transport = basicAuth{sid: sid, token: "wrong-token", base: b.srv.Client().Transport}
			}))
		})
		t.Run("token reset", func(t *testing.T) {
			c := b.client(sid)
			if _, err := c.CompanyInformation(t.Context()); err != nil {
				t.Fatal(err)
			}
			b.tokens[sid] = b.sim.ResetToken(sid)
			check(t, c)
			if _, err := b.client(sid).CompanyInformation(t.Context()); err != nil {
				t.Errorf("the new token: %v", err)
			}
		})
	})
}

func TestClient403NamesPermission(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		sid        string
		e          syncer.Entity
		permission string
	}{
		{brandSID, syncer.PromoCodes, "Promo Codes → Retrieve promo codes"},
		{brandSID, syncer.MediaPartners, "Partners → Retrieve media partners"},
		{brandSID, syncer.Campaigns, "Campaigns → Retrieve campaigns"},
		{brandSID, syncer.Actions, "Actions → Retrieve actions"},
		{brandSID, syncer.CompanyInformation, "Account → Retrieve company information"},
		{partnerSID, syncer.PromoCodes, "Promo Codes → Retrieve promo codes"},
		{partnerSID, syncer.ActionUpdates, "Actions → Retrieve actions"},
	}
	for _, tc := range cases {
		t.Run(string(b.specs[tc.sid].Persona)+"/"+string(tc.e), func(t *testing.T) {
			b.sim.DenyEndpoint(tc.sid, Resource(tc.e))
			defer b.sim.AllowEndpoint(tc.sid, Resource(tc.e))
			before := b.reqs.count()
			c := b.client(tc.sid)
			r := drain(c.Records(t.Context(), b.queries(tc.sid, tc.e)[0]))
			var f *syncer.ForbiddenError
			if !errors.As(r.err, &f) {
				t.Fatalf("err = %v, want a ForbiddenError", r.err)
			}
			if f.Endpoint != Resource(tc.e) || f.Permission != tc.permission || f.Message != "Access Denied" {
				t.Errorf("ForbiddenError %+v, want endpoint %s, permission %q", f, Resource(tc.e), tc.permission)
			}
			if !strings.Contains(f.Error(), tc.permission) {
				t.Errorf("error %q does not name the permission", f)
			}
			if n := b.reqs.count() - before; n != 1 {
				t.Errorf("%d requests, want 1 (a 403 is not retried)", n)
			}
			// other endpoints still work with the same token
			if _, err := c.CompanyInformation(t.Context()); err != nil && tc.e != syncer.CompanyInformation {
				t.Errorf("CompanyInformation: %v", err)
			}
		})
	}
}

// Any other 4xx is Invalid, with the envelope's Message and Errors, and is
// not retried (docs/impact-api.md §6.1).
func TestClient400IsInvalidWithEnvelope(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	now := b.sim.Clock().Now()
	// Brand Actions without CampaignId, and a window older than three years.
	cases := []struct {
		q           syncer.Query
		msg, detail string
	}{
		{syncer.Query{Entity: syncer.Actions, Window: syncer.Window{Start: now.Add(-time.Hour), End: now}},
			"CampaignId is required", "CampaignId: Required"},
		{syncer.Query{Entity: syncer.Actions, CampaignID: b.truth(brandSID).Campaigns[0].Id,
			Window: syncer.Window{Start: now.AddDate(-4, 0, 0), End: now.AddDate(-4, 0, 10)}},
			"more than 3 years", "StartDate: More than 3 years in the past"},
	}
	for _, tc := range cases {
		before := b.reqs.count()
		r := drain(b.brand().Records(t.Context(), tc.q))
		var inv *syncer.InvalidError
		if !errors.As(r.err, &inv) || inv.Status != 400 || !strings.Contains(inv.Message, tc.msg) ||
			!slices.Contains(inv.Errors, tc.detail) {
			t.Errorf("%s: err = %#v, want Invalid 400 %q with %q", tc.q, r.err, tc.msg, tc.detail)
		}
		if n := b.reqs.count() - before; n != 1 {
			t.Errorf("%s: %d requests, want 1", tc.q, n)
		}
	}
}

// deadTransport is an OAuth transport whose refresh token was rejected: it
// fails every request with a wrapped syncer.ErrNeedsReconnect, as
// internal/auth's TokenSource does.
type deadTransport struct{ calls atomic.Int32 }

func (d *deadTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	d.calls.Add(1)
	return nil, fmt.Errorf("account a1: impact.com rejected the refresh token (invalid_grant): %w", syncer.ErrNeedsReconnect)
}

// A credential that is dead before the request leaves (OAuth invalid_grant)
// is not retried: retrying cannot revive it.
func TestClientCredentialDeadTransportIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	dead := &deadTransport{}
	c := b.brand(func(o *Options) { o.Transport = dead })
	r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
	if !syncer.IsCredentialDead(r.err) || !errors.Is(r.err, syncer.ErrNeedsReconnect) {
		t.Fatalf("err = %v, want a dead credential", r.err)
	}
	var tr *syncer.TransientError
	if errors.As(r.err, &tr) {
		t.Errorf("err %v is typed transient", r.err)
	}
	if n := dead.calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// A bearer (OAuth) transport works like Basic (docs/impact-api.md §2.3).
func TestClientBearerTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, partnerSpec())
	b.sim.AddBearerToken(partnerSID, "access-1", b.sim.Clock().Now().Add(time.Hour))
	c := b.partner(func(o *Options) { o.Transport = bearer{"access-1", b.srv.Client().Transport} })
	b.wantEveryEntity(t, c, partnerSID)
	b.sim.Clock().Advance(2 * time.Hour) // expired
	var u *syncer.UnauthorizedError
	if _, err := c.CompanyInformation(t.Context()); !errors.As(err, &u) {
		t.Errorf("expired token: err = %v, want Unauthorized", err)
	}
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (a bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return a.base.RoundTrip(r)
}

// ---- the ten-page rule (docs/impact-api.md §3.4) ----

// bigSpec is a partner with 21,000 actions in one campaign over 40 days:
// one 44-day window holds more than 10 pages of 2,000.
func bigSpec() impactsim.AccountSpec {
	return impactsim.AccountSpec{SID: partnerSID, Token: partnerToken, Persona: impactsim.Partner,
		Seed: 9, Campaigns: 1, Actions: 21000, History: 40 * 24 * time.Hour}
}

func TestClientBisectsTooManyPages(t *testing.T) {
	t.Parallel()
	b := setup(t, bigSpec())
	tally := &syncer.Tally{}
	c := b.partner(func(o *Options) { o.PageSize = map[syncer.Entity]int{syncer.Actions: 2000} })
	now := b.sim.Clock().Now()
	win := syncer.Window{Start: now.Add(-44 * 24 * time.Hour), End: now}
	r := drain(c.Records(syncer.WithTally(t.Context(), tally), syncer.Query{Entity: syncer.Actions, Filter: syncer.ByEvent, Window: win}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	// every action once (field values are checked by the other tests)
	want := truthcheck.Records(b.truth(partnerSID), syncer.Actions)
	got := map[string]bool{}
	for _, rec := range r.recs {
		if got[rec.ID] {
			t.Errorf("%s delivered twice", rec.ID)
		}
		got[rec.ID] = true
		if _, ok := want[rec.ID]; !ok {
			t.Errorf("%s not in the truth", rec.ID)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d actions, truth has %d", len(got), len(want))
	}
	if w := tally.Windows.Load(); w < 3 {
		t.Errorf("%d windows queried, want the window split at least once", w)
	}
	st := b.sim.Stats(partnerSID)
	if st.ByStatus[400] == 0 {
		t.Error("no window was refused; the test does not exercise the rule")
	}
}

func TestClientBisectionGivesUpAtMinWindow(t *testing.T) {
	t.Parallel()
	b := setup(t, bigSpec())
	c := b.partner(func(o *Options) {
		o.PageSize = map[syncer.Entity]int{syncer.Actions: 2000}
		o.MinWindow = 30 * 24 * time.Hour
	})
	now := b.sim.Clock().Now()
	win := syncer.Window{Start: now.Add(-44 * 24 * time.Hour), End: now}
	r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Actions, Filter: syncer.ByEvent, Window: win}))
	var tm *TooManyPagesError
	if !errors.As(r.err, &tm) || !strings.Contains(r.err.Error(), "smallest split") {
		t.Fatalf("err = %v, want the too-many-pages error at the smallest split", r.err)
	}
	if len(r.recs) != 0 {
		t.Errorf("%d records delivered", len(r.recs))
	}
}

// A window starting more than 3 years back is refused with the date rule's
// message, which the client reports as a TooOldError; with the simulator
// counting calendar years the extra day of a span holding a 29 February is
// served.
func TestClientTooOldStartIsATooOldError(t *testing.T) {
	t.Parallel()
	spec := bigSpec()
	spec.Actions = 100
	b := setup(t, spec)
	c := b.partner()
	now := b.sim.Clock().Now()
	start := now.AddDate(-3, 0, 0).Add(time.Hour) // inside 3 calendar years
	if now.Sub(start) <= 3*365*24*time.Hour {
		t.Skipf("the simulator's now (%s) has no 29 February in the 3 years before it", now)
	}
	win := syncer.Window{Start: start, End: start.Add(24 * time.Hour)}
	q := syncer.Query{Entity: syncer.Actions, Filter: syncer.ByEvent, Window: win}
	r := drain(c.Records(t.Context(), q))
	var old *syncer.TooOldError
	if !errors.As(r.err, &old) {
		t.Fatalf("err = %v, want a TooOldError", r.err)
	}
	b.sim.SetQuirks(partnerSID, impactsim.Quirks{CalendarLookback: true})
	if r := drain(c.Records(t.Context(), q)); r.err != nil {
		t.Fatalf("with calendar years: err = %v", r.err)
	}
}

// ---- rate limits (docs/impact-api.md §5) ----

// rateSpec has 1,100 media partners: read one per page, that is 1,100
// requests, more than the 1,000 an hour the simulator allows.
func rateSpec(persona impactsim.Persona) impactsim.AccountSpec {
	if persona == impactsim.Partner {
		return impactsim.AccountSpec{SID: partnerSID, Token: partnerToken, Persona: impactsim.Partner,
			Seed: 21, Campaigns: 1100}
	}
	return impactsim.AccountSpec{SID: brandSID, Token: brandToken, Persona: impactsim.Brand,
		Seed: 21, Campaigns: 1, MediaPartners: 1100}
}

// rateEntity is the entity rateSpec holds 1,100 of.
func rateEntity(persona impactsim.Persona) syncer.Entity {
	if persona == impactsim.Partner {
		return syncer.Campaigns
	}
	return syncer.MediaPartners
}

// With the simulator limiting the account to 1,000 requests an hour, a read
// that needs more finishes correctly without a single 429 when the client
// honours the limit headers from the start, for every header family.
func TestClientPacesRateLimitWithZero429s(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		persona impactsim.Persona
		family  impactsim.HeaderFamily
	}{
		{"brand headers", impactsim.Brand, impactsim.HeadersBrand},
		{"partner headers", impactsim.Brand, impactsim.HeadersPartner},
		{"both families", impactsim.Brand, impactsim.HeadersBoth},
		{"both families lower case", impactsim.Brand, impactsim.HeadersBoth | impactsim.HeadersLowerCase},
		{"brand headers reset as epoch", impactsim.Brand, impactsim.HeadersBrand | impactsim.HeadersResetEpoch},
		{"partner headers lower case reset as epoch", impactsim.Brand, impactsim.HeadersPartner | impactsim.HeadersLowerCase | impactsim.HeadersResetEpoch},
		{"partner persona default headers", impactsim.Partner, impactsim.HeadersAuto},
		{"partner persona both lower case epoch", impactsim.Partner, impactsim.HeadersBoth | impactsim.HeadersLowerCase | impactsim.HeadersResetEpoch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := rateSpec(tc.persona)
			b := setup(t, sp)
			b.sim.SetRateLimit(sp.SID, 1000, tc.family)
			e := rateEntity(tc.persona)
			tally := &syncer.Tally{}
			c := b.client(sp.SID, func(o *Options) { o.PageSize = map[syncer.Entity]int{e: 1} })
			start := b.sim.Clock().Now()
			r := drain(c.Records(syncer.WithTally(t.Context(), tally), syncer.Query{Entity: e}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantTruth(t, e, truthcheck.Records(b.truth(sp.SID), e), r.recs)
			st := b.sim.Stats(sp.SID)
			if st.Requests <= 1000 {
				t.Fatalf("%d requests: the read must need more than the hourly 1,000", st.Requests)
			}
			if st.ByStatus[429] != 0 || st.RateLimited != 0 || tally.RateLimited.Load() != 0 {
				t.Errorf("429s: simulator sent %d, client received %d; want none", st.ByStatus[429], tally.RateLimited.Load())
			}
			if el := b.sim.Clock().Now().Sub(start); el < time.Hour || el > time.Hour+time.Minute {
				t.Errorf("the read took %v on the simulator clock, want just over the hour it had to wait", el)
			}
		})
	}
}

// When 429s come anyway — forced by fault injection, with and without
// Retry-After, on top of the 1,000-an-hour limit — the client waits each one
// out and completes correctly, and the forced ones are the only 429s it sees.
func TestClientCompletesWhen429sForced(t *testing.T) {
	t.Parallel()
	for _, persona := range []impactsim.Persona{impactsim.Brand, impactsim.Partner} {
		t.Run(string(persona), func(t *testing.T) {
			t.Parallel()
			sp := rateSpec(persona)
			b := setup(t, sp)
			b.sim.SetRateLimit(sp.SID, 1000, impactsim.HeadersAuto)
			e := rateEntity(persona)
			var faults []impactsim.Fault
			for k := 2; k <= 1100; k += 97 {
				f := impactsim.Fault{Kind: impactsim.Fault429, Match: "/" + Resource(e) + "?PageSize=1&Page=" + strconv.Itoa(k)}
				if k%2 == 1 {
					f.RetryAfter = 30
				}
				faults = append(faults, f)
			}
			b.sim.InjectFaults(sp.SID, faults...)
			tally := &syncer.Tally{}
			c := b.client(sp.SID, func(o *Options) { o.PageSize = map[syncer.Entity]int{e: 1} })
			r := drain(c.Records(syncer.WithTally(t.Context(), tally), syncer.Query{Entity: e}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantTruth(t, e, truthcheck.Records(b.truth(sp.SID), e), r.recs)
			st := b.sim.Stats(sp.SID)
			if st.FaultsServed != len(faults) || st.RateLimited != 0 {
				t.Errorf("simulator served %d of %d forced 429s, and %d of its own", st.FaultsServed, len(faults), st.RateLimited)
			}
			if got := tally.RateLimited.Load(); got != uint64(len(faults)) {
				t.Errorf("429s received %d, want the %d forced", got, len(faults))
			}
		})
	}
}

func TestClientWaitsOutExhaustedBucket(t *testing.T) {
	t.Parallel()
	for _, family := range []impactsim.HeaderFamily{impactsim.HeadersBrand, impactsim.HeadersPartner,
		impactsim.HeadersBoth | impactsim.HeadersLowerCase | impactsim.HeadersResetEpoch} {
		t.Run(strconv.Itoa(int(family)), func(t *testing.T) {
			b := setup(t, brandSpec())
			b.sim.SetRateLimit(brandSID, 10, family)
			// another process spends the hour's budget
			other := b.brand()
			for range 10 {
				if _, err := other.CompanyInformation(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			b.sim.Clock().Advance(20 * time.Minute)
			tally := &syncer.Tally{}
			c := b.brand(func(o *Options) { o.PageSize = map[syncer.Entity]int{syncer.MediaPartners: 5} })
			r := drain(c.Records(syncer.WithTally(t.Context(), tally), syncer.Query{Entity: syncer.MediaPartners}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			wantTruth(t, syncer.MediaPartners, truthcheck.Records(b.truth(brandSID), syncer.MediaPartners), r.recs)
			if got := tally.RateLimited.Load(); got != 1 {
				t.Errorf("429s received %d, want exactly 1 (then it knows the reset)", got)
			}
			if st := b.sim.Stats(brandSID); st.ByStatus[429] != 1 {
				t.Errorf("simulator sent %d 429s, want 1", st.ByStatus[429])
			}
		})
	}
}

// groupLimits models the partner API's hourly groups in front of the
// simulator (docs/impact-api.md §5.2): /Actions requests count against 500 an hour,
// every other request against 1,000, each group with its own partner-family
// headers, on the simulator clock.
type groupLimits struct {
	clock   *impactsim.Clock
	next    http.Handler
	mu      sync.Mutex
	buckets map[string]*groupBucket
	refused atomic.Int32
}

type groupBucket struct {
	used  int
	start time.Time
}

func (g *groupLimits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	group, limit := "other", 1000
	if strings.HasSuffix(r.URL.Path, "/Actions") {
		group, limit = "performance detail", 500
	}
	now := g.clock.Now()
	g.mu.Lock()
	bk, ok := g.buckets[group]
	if !ok {
		bk = &groupBucket{}
		g.buckets[group] = bk
	}
	if bk.start.IsZero() || !now.Before(bk.start.Add(time.Hour)) {
		bk.start, bk.used = now, 0
	}
	allowed := bk.used < limit
	if allowed {
		bk.used++
	}
	reset := strconv.Itoa(int(bk.start.Add(time.Hour).Sub(now) / time.Second))
	h := http.Header{
		"X-Ratelimit-Limit-Hour":     {strconv.Itoa(limit)},
		"X-Ratelimit-Remaining-Hour": {strconv.Itoa(limit - bk.used)},
		"Ratelimit-Reset":            {reset},
	}
	g.mu.Unlock()
	if !allowed {
		g.refused.Add(1)
		h.Set("Retry-After", reset)
		maps.Copy(w.Header(), h)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"Status":"ERROR","Message":"Too many requests"}`))
		return
	}
	g.next.ServeHTTP(headerFilter{ResponseWriter: w, set: h}, r)
}

// With separate hourly groups (partner /Actions 500, the rest 1,000), the
// client keeps each endpoint's budget (docs/impact-api.md §5.4: a bucket per account
// and endpoint group): it never spends an /Actions request after that group
// is used up, even when responses from another group (reporting plenty left)
// came in between, and it does not hold the other endpoints back for an
// hour while /Actions waits.
func TestClientPacesPerEndpointGroup(t *testing.T) {
	t.Parallel()
	b := setup(t, partnerSpec())
	gl := &groupLimits{clock: b.sim.Clock(), next: b.srv.Config.Handler, buckets: map[string]*groupBucket{}}
	srv := httptest.NewServer(gl)
	t.Cleanup(srv.Close)
	c := b.partner(func(o *Options) {
		o.BaseURL = srv.URL
		o.PageSize = map[syncer.Entity]int{syncer.Campaigns: 1}
	})
	end := b.sim.Clock().Now().Add(-time.Hour)
	actions := func(n int) { // n one-request reads of one-hour windows
		t.Helper()
		for range n {
			w := syncer.Window{Start: end.Add(-time.Hour + time.Second), End: end}
			end = end.Add(-time.Hour)
			if r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Actions, Filter: syncer.ByEvent, Window: w})); r.err != nil {
				t.Fatal(r.err)
			}
		}
	}
	campaigns := func() {
		t.Helper()
		r := drain(c.Records(t.Context(), syncer.Query{Entity: syncer.Campaigns}))
		if r.err != nil {
			t.Fatal(r.err)
		}
		wantTruth(t, syncer.Campaigns, truthcheck.Records(b.truth(partnerSID), syncer.Campaigns), r.recs)
	}
	actions(480) // /Actions: 20 of 500 left
	campaigns()  // the latest headers now say 996 of 1,000 left
	start := b.sim.Clock().Now()
	actions(40) // 20, then a wait for the /Actions reset, then 20
	if waited := b.sim.Clock().Now().Sub(start); waited < 59*time.Minute {
		t.Errorf("/Actions waited %v, want the rest of the hour", waited)
	}
	actions(480) // /Actions: 0 of 500 left
	start = b.sim.Clock().Now()
	campaigns()
	if waited := b.sim.Clock().Now().Sub(start); waited != 0 {
		t.Errorf("Campaigns waited %v for the /Actions group", waited)
	}
	if n := gl.refused.Load(); n != 0 {
		t.Errorf("%d requests refused with 429, want none", n)
	}
}

// ---- cancellation ----

// Every wait stops promptly when the context ends: a slow response, a
// retry backoff, a 429's Retry-After, a pacing wait for the hourly reset.
// These use the real sleep, so a wait that ignored the context would hang.
func TestClientStopsPromptlyOnCancel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(b *bundle)
		opts  func(o *Options)
	}{
		{"slow response", func(b *bundle) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: time.Minute})
		}, nil},
		{"retry backoff", func(b *bundle) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.FaultHTML500})
		}, func(o *Options) { o.BackoffBase, o.BackoffMax = time.Hour, time.Hour }},
		{"429 Retry-After", func(b *bundle) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.Fault429, RetryAfter: 3600})
		}, nil},
		{"pacing for the hourly reset", func(b *bundle) {
			b.sim.SetRateLimit(brandSID, 2, impactsim.HeadersBrand)
		}, func(o *Options) { o.PageSize = map[syncer.Entity]int{syncer.MediaPartners: 5} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, brandSpec())
			tc.setup(b)
			c := b.brand(func(o *Options) {
				o.Sleep = nil // the real, context-aware sleep
				o.PageSize = map[syncer.Entity]int{syncer.MediaPartners: 5}
				if tc.opts != nil {
					tc.opts(o)
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(150*time.Millisecond, cancel)
			start := time.Now()
			r := drain(c.Records(ctx, syncer.Query{Entity: syncer.MediaPartners}))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned %v after the cancel", d)
			}
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", r.err)
			}
		})
	}
}

// A rate-limit wait that would outlast the context's deadline is not begun:
// the client returns the RateLimitedError at once, saying when to retry.
func TestClientRateLimitWaitPastDeadlineReturnsRetryAt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(b *bundle)
		want  time.Duration // RetryAt after the simulator's now
	}{
		{"429 with Retry-After", func(b *bundle) {
			b.sim.InjectFaults(brandSID, impactsim.Fault{Kind: impactsim.Fault429, RetryAfter: 1800})
		}, 1800 * time.Second},
		{"budget used up", func(b *bundle) {
			b.sim.SetRateLimit(brandSID, 1, impactsim.HeadersBrand)
		}, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, brandSpec())
			tc.setup(b)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			start := time.Now()
			r := drain(pagedClient(b).Records(ctx, syncer.Query{Entity: syncer.MediaPartners}))
			var rl *syncer.RateLimitedError
			if !errors.As(r.err, &rl) {
				t.Fatalf("err = %v, want a RateLimitedError", r.err)
			}
			if got := rl.RetryAt.Sub(b.sim.Clock().Now()); got < tc.want || got > tc.want+time.Second {
				t.Errorf("RetryAt is %v after now, want %v (plus at most a second's margin)", got, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
			if b.slept.Load() != 0 {
				t.Errorf("slept %v before giving up", time.Duration(b.slept.Load()))
			}
		})
	}
}

// A consumer that stops iterating stops the requests.
func TestClientStopsWhenConsumerStops(t *testing.T) {
	t.Parallel()
	b := setup(t, brandSpec())
	n := 0
	for _, err := range pagedClient(b).Records(t.Context(), syncer.Query{Entity: syncer.MediaPartners}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 7 {
			break
		}
	}
	if got := b.reqs.count(); got != 2 {
		t.Errorf("%d requests, want 2 (no page read after the consumer stopped)", got)
	}
}
