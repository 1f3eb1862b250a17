// Package extract is the impact.com REST API client: it authenticates through
// the transport it is given, pages through list endpoints by @nextpageuri,
// splits Actions date windows that the API refuses as too large, paces itself
// by the rate-limit headers, retries what may pass, and decodes records
// tolerantly but exactly into syncer.Records.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/retry"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	BaseURL   string // https://api.impact.com
	AccountID string // ours, for logs and errors
	Persona   syncer.Persona
	SID       string
	// Transport authenticates requests (HTTP Basic or OAuth bearer).
	Transport http.RoundTripper
	// IRVersion pins the API version per request (IR-Version header):
	// default 14 for brands, 16 for partners.
	IRVersion string
	Logger    *zap.Logger
	// Timeout bounds one request, body included (default 2 minutes).
	Timeout time.Duration
	// MaxAttempts bounds tries of one request on 5xx, network errors and
	// unreadable bodies (default 6); 429s are waited out up to MaxRateLimitWaits.
	MaxAttempts       int
	MaxRateLimitWaits int           // default 30
	BackoffBase       time.Duration // default 1s
	BackoffMax        time.Duration // default 60s
	// PageSize per entity; defaults: Actions and ActionUpdates 20000, others 1000.
	PageSize map[syncer.Entity]int
	MaxPages int // safety cap per query (default 10000)
	// MaxWindow is the longest date window sent (default syncer.MaxWindow,
	// 44 days; the API allows 45). MinWindow is the smallest a too-many-pages
	// window is split to.
	MaxWindow, MinWindow time.Duration
	// Now and Sleep are the local clock; tests inject them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnUnknownField is called once per entity and field name the client has
	// not seen before (for metrics); the client also logs it.
	OnUnknownField func(e syncer.Entity, field string)
	// OnResponse is called for every HTTP response (status 0 for a network
	// error), for metrics.
	OnResponse func(e syncer.Entity, status int)
}

// Client reads one impact.com account.
type Client struct {
	opt     Options
	base    string // base URL without a trailing slash
	root    string // /Advertisers/{SID} or /Mediapartners/{SID}
	http    *http.Client
	limiter limiter
	log     *zap.Logger

	bodies sync.Pool // of *[]byte: page buffers, see readBody

	mu         sync.Mutex
	serverDate time.Time // Date of the latest response
	localAt    time.Time // local time it arrived (monotonic)
	unknown    map[string]bool
}

// DefaultBaseURL is the real API.
const DefaultBaseURL = "https://api.impact.com"

// NewClient checks the options and returns a client.
func NewClient(o Options) (*Client, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("impact.com API URL %q: want http(s)://host[:port]", o.BaseURL)
	}
	if o.SID == "" {
		return nil, errors.New("account SID is empty")
	}
	var root string
	switch o.Persona {
	case syncer.Brand:
		root = "/Advertisers/" + url.PathEscape(o.SID)
		if o.IRVersion == "" {
			o.IRVersion = "14"
		}
	case syncer.Partner:
		root = "/Mediapartners/" + url.PathEscape(o.SID)
		if o.IRVersion == "" {
			o.IRVersion = "16"
		}
	default:
		return nil, fmt.Errorf("persona %q: want brand or partner", o.Persona)
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 6
	}
	if o.MaxRateLimitWaits == 0 {
		o.MaxRateLimitWaits = 30
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = time.Minute
	}
	for e, n := range o.PageSize {
		if _, lo, hi := pageLimits(e, o.Persona); n > 0 && (n < lo || n > hi) {
			o.Logger.Warn("page size outside the range impact.com accepts; using the nearest allowed",
				zap.String("entity", string(e)), zap.Int("configured", n), zap.Int("min", lo), zap.Int("max", hi))
		}
	}
	if o.MaxPages == 0 {
		o.MaxPages = 10000
	}
	if o.MaxWindow == 0 {
		o.MaxWindow = syncer.MaxWindow
	}
	if o.MinWindow == 0 {
		o.MinWindow = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = retry.Sleep
	}
	return &Client{
		opt:     o,
		base:    strings.TrimRight(o.BaseURL, "/"),
		root:    root,
		http:    &http.Client{Transport: o.Transport, Timeout: o.Timeout, CheckRedirect: noRedirects},
		log:     o.Logger.With(zap.String("account_id", o.AccountID)),
		unknown: map[string]bool{},
	}, nil
}

// noRedirects keeps credentials from following a redirect to another host.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// pageSize is the PageSize asked for e: the configured one, kept inside the
// range the API accepts (docs/impact-api.md §3.1), since a PageSize outside it is
// refused (400) on every request.
func (c *Client) pageSize(e syncer.Entity) int {
	n, lo, hi := pageLimits(e, c.opt.Persona)
	if v := c.opt.PageSize[e]; v > 0 {
		n = min(max(v, lo), hi)
	}
	return n
}

// pageLimits are the API's PageSize default and range for an entity:
// Actions and ActionUpdates 20,000, at least 2,000 (the 2,000 minimum is
// documented for Actions; it is assumed for ActionUpdates too, as the
// simulator does); partner PromoCodes 50 to 1,000; 20,000 at most anywhere.
func pageLimits(e syncer.Entity, p syncer.Persona) (def, lo, hi int) {
	switch {
	case e == syncer.Actions || e == syncer.ActionUpdates:
		return 20000, 2000, 20000
	case e == syncer.PromoCodes && p == syncer.Partner:
		return 1000, 50, 1000
	}
	return 1000, 1, 20000
}

// ServerNow is impact.com's current time: the Date of the most recent
// response plus the time elapsed since it arrived. Before any response it is
// the local clock, and ok is false.
func (c *Client) ServerNow() (t time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serverDate.IsZero() {
		return c.opt.Now().UTC(), false
	}
	return c.serverDate.Add(c.opt.Now().Sub(c.localAt)).UTC(), true
}

// CompanyInformation fetches the account's company information: a bare
// object, no envelope. It doubles as the credential check.
func (c *Client) CompanyInformation(ctx context.Context) (syncer.Record, error) {
	const e = syncer.CompanyInformation
	u := c.base + c.root + "/" + Resource(e)
	body, err := c.fetch(ctx, e, u)
	if err != nil {
		return syncer.Record{}, err
	}
	root, err := document(body)
	if err != nil {
		// truncated or malformed body: read it again
		if body, err = c.refetch(ctx, e, u, err); err != nil {
			return syncer.Record{}, err
		}
		root, _ = document(body)
	}
	if root.kind != kObject {
		return syncer.Record{}, &syncer.TransientError{Endpoint: Resource(e), Status: 200,
			Err: fmt.Errorf("expected an object, got %s", root.kind)}
	}
	return c.decode(e, root.raw)
}

// Records yields the records of one query. Catalog entities are paged
// through whole; Actions and ActionUpdates are read over q.Window, cut into
// windows the API accepts and split further when it answers that a window
// holds more than ten pages. A record that cannot be decoded is yielded as a
// *syncer.DecodeError and the rest of its page follows; any other error ends
// the sequence. A query whose result changes while it is paged through
// (@total moves, or fewer records arrive than it promised) is read again
// from its first page, at most three times, so a record may be yielded more
// than once: consumers keep the last by ID, as the loader's tables do.
func (c *Client) Records(ctx context.Context, q syncer.Query) iter.Seq2[syncer.Record, error] {
	return func(yield func(syncer.Record, error) bool) {
		if !q.Entity.AvailableTo(c.opt.Persona) {
			yield(syncer.Record{}, fmt.Errorf("%s is not served to %s accounts", q.Entity, c.opt.Persona))
			return
		}
		switch q.Entity {
		case syncer.CompanyInformation:
			r, err := c.CompanyInformation(ctx)
			yield(r, err)
		case syncer.Actions, syncer.ActionUpdates:
			if q.Window.Start.IsZero() || q.Window.End.Before(q.Window.Start) {
				yield(syncer.Record{}, fmt.Errorf("%s query needs a date window, got %s", q.Entity, q.Window))
				return
			}
			if q.Filter == "" {
				q.Filter = syncer.ByUpdated
			}
			for _, w := range syncer.ChunkWindows(q.Window.Start, q.Window.End, c.opt.MaxWindow) {
				sub := q
				sub.Window = w
				if !c.window(ctx, sub, yield) {
					return
				}
			}
		default:
			c.paginate(ctx, q, c.firstURL(q), yield)
		}
	}
}

// window reads one window, bisecting it while the API answers that it holds
// more than ten pages. It returns false when the sequence must stop.
func (c *Client) window(ctx context.Context, q syncer.Query, yield func(syncer.Record, error) bool) bool {
	syncer.TallyFrom(ctx).Windows.Add(1)
	var tooMany *TooManyPagesError
	delivered := false
	ok := c.paginate(ctx, q, c.firstURL(q), func(r syncer.Record, err error) bool {
		if errors.As(err, &tooMany) && !delivered {
			return false // handled below
		}
		delivered = true
		return yield(r, err)
	})
	if tooMany == nil || delivered {
		return ok
	}
	span := q.Window.End.Sub(q.Window.Start)
	if span < 2*c.opt.MinWindow {
		return yield(syncer.Record{}, fmt.Errorf("%s: window %s still holds more than 10 pages at the smallest split (%s); raise the page size: %w",
			q, q.Window, c.opt.MinWindow, tooMany))
	}
	mid := q.Window.Start.Add(span / 2).Truncate(time.Second)
	c.log.Debug("splitting window that holds more than 10 pages",
		zap.String("entity", string(q.Entity)), zap.String("campaign_id", q.CampaignID), zap.Stringer("window", q.Window))
	left, right := q, q
	left.Window = syncer.Window{Start: q.Window.Start, End: mid}
	right.Window = syncer.Window{Start: mid.Add(time.Second), End: q.Window.End}
	return c.window(ctx, left, yield) && c.window(ctx, right, yield)
}

// firstURL builds the first page's URL; later pages follow @nextpageuri.
func (c *Client) firstURL(q syncer.Query) string {
	v := url.Values{}
	if q.CampaignID != "" {
		v.Set("CampaignId", q.CampaignID)
	}
	if !q.Window.Start.IsZero() {
		from, to := "StartDate", "EndDate"
		switch q.Filter {
		case syncer.ByEvent:
			from, to = "ActionDateStart", "ActionDateEnd"
		case syncer.ByLocking:
			from, to = "LockingDateStart", "LockingDateEnd"
		}
		v.Set(from, FormatTime(q.Window.Start))
		v.Set(to, FormatTime(q.Window.End))
	}
	v.Set("PageSize", strconv.Itoa(c.pageSize(q.Entity)))
	return c.base + c.root + "/" + Resource(q.Entity) + "?" + v.Encode()
}

// FormatTime writes a time as the API wants it: YYYY-MM-DDTHH:MM:SSZ in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// maxRestarts bounds how often a query is read again from its first page
// because its result changed while it was being paged through.
const maxRestarts = 3

// paginate reads a query's pages from first, yielding records. It returns
// false when the consumer stopped or an error ended the sequence.
func (c *Client) paginate(ctx context.Context, q syncer.Query, first string, yield func(syncer.Record, error) bool) bool {
	keys := listKeys(q.Entity)
	endpoint := Resource(q.Entity)
	for restart := 0; ; restart++ {
		next := first
		seen := map[string]bool{}
		total, received, lastPage := -1, 0, 0
		changed := ""
		for pages := 0; next != ""; pages++ {
			if pages >= c.opt.MaxPages {
				return yield(syncer.Record{}, fmt.Errorf("%s: more than %d pages; stopping (raise MaxPages if this is real)", q, c.opt.MaxPages))
			}
			body, err := c.fetch(ctx, q.Entity, next)
			if err != nil {
				yield(syncer.Record{}, err)
				return false
			}
			p, err := parsePage(body, keys)
			if err != nil {
				var lk *listKeyError
				if errors.As(err, &lk) {
					c.log.Error("list key missing", zap.String("entity", string(q.Entity)), zap.Error(err))
					yield(syncer.Record{}, &syncer.InvalidError{Endpoint: endpoint, Status: 200, Message: err.Error()})
					return false
				}
				// truncated or malformed body: read the page again
				body, err = c.refetch(ctx, q.Entity, next, err)
				if err == nil {
					if p, err = parsePage(body, keys); err != nil {
						err = &syncer.TransientError{Endpoint: endpoint, Status: 200, Err: err}
					}
				}
				if err != nil {
					yield(syncer.Record{}, err)
					return false
				}
			}
			if total < 0 && p.hasTotal {
				total = p.total
			} else if p.hasTotal && p.total != total {
				changed = fmt.Sprintf("@total changed from %d to %d between pages", total, p.total)
			}
			for _, rv := range p.records {
				d, err := c.decode(q.Entity, rv.raw)
				if !yield(d, err) {
					return false
				}
				received++
			}
			c.recycle(body) // the records copied what they keep; only len(p.records) is read below
			if changed != "" {
				break
			}
			if len(p.records) == 0 || p.next == "" || (p.hasNumPages && p.num > 0 && p.num >= p.numPages) {
				next = ""
				break
			}
			seen[next] = true
			n, pageNum, err := c.resolveNext(p.next, p.num, lastPage)
			if err != nil {
				yield(syncer.Record{}, &syncer.InvalidError{Endpoint: endpoint, Status: 200, Message: err.Error()})
				return false
			}
			if seen[n] {
				yield(syncer.Record{}, &syncer.InvalidError{Endpoint: endpoint, Status: 200,
					Message: fmt.Sprintf("@nextpageuri %q loops back to a page already read", p.next)})
				return false
			}
			lastPage = max(pageNum, p.num)
			next = n
		}
		if changed == "" && total >= 0 && received < total {
			changed = fmt.Sprintf("received %d records but @total said %d", received, total)
		}
		if changed == "" {
			return true
		}
		if restart >= maxRestarts {
			return yield(syncer.Record{}, &syncer.TransientError{Endpoint: endpoint, Status: 200,
				Err: fmt.Errorf("%s: the result kept changing while it was paged through (%s); will read it again next run", q, changed)})
		}
		c.log.Info("result changed while paging; reading the query again",
			zap.String("entity", string(q.Entity)), zap.String("reason", changed))
	}
}

// resolveNext checks @nextpageuri and returns the URL to request and its Page.
// It must be a path on the API's host, and it must move forward.
func (c *Client) resolveNext(next string, current, last int) (string, int, error) {
	u, err := url.Parse(next)
	if err != nil {
		return "", 0, fmt.Errorf("@nextpageuri %q is not a URI", next)
	}
	if u.IsAbs() || u.Host != "" {
		b, _ := url.Parse(c.base)
		if u.Host != b.Host {
			return "", 0, fmt.Errorf("@nextpageuri %q points to another host; not sending credentials there", next)
		}
		next = u.RequestURI() // u keeps the query read below; parsing its RequestURI again can fail ("//host// " → "//%20")
	}
	if !strings.HasPrefix(next, "/") {
		return "", 0, fmt.Errorf("@nextpageuri %q is not a path", next)
	}
	pageNum := 0
	if p := u.Query().Get("Page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, fmt.Errorf("@nextpageuri %q has a bad Page", next)
		}
		pageNum = n
		if n <= current || n <= last {
			return "", 0, fmt.Errorf("@nextpageuri %q goes back to page %d from page %d", next, n, max(current, last))
		}
	}
	return c.base + next, pageNum, nil
}

// decode decodes one record, reporting unknown fields once.
func (c *Client) decode(e syncer.Entity, raw []byte) (syncer.Record, error) {
	d, err := decodeRecord(layouts[e], raw)
	for _, f := range d.unknown {
		c.noteUnknown(e, f)
	}
	if err != nil {
		de := &syncer.DecodeError{AccountID: c.opt.AccountID, Entity: e, RecordID: d.rec.ID, Err: err}
		var fe *fieldError
		if errors.As(err, &fe) {
			de.Field, de.Err = fe.field, fe.err
		}
		if de.RecordID == "" {
			de.RecordID = peekID(raw)
		}
		return syncer.Record{}, de
	}
	return d.rec, nil
}

func peekID(raw []byte) string {
	id := ""
	_ = members(raw, func(key string, v value) error {
		if id == "" && (key == "Id" || key == "CampaignId") {
			id, _ = scalarText(v)
		}
		return nil
	})
	return id
}

func (c *Client) noteUnknown(e syncer.Entity, field string) {
	k := string(e) + "\x00" + field
	c.mu.Lock()
	seen := c.unknown[k]
	c.unknown[k] = true
	c.mu.Unlock()
	if seen {
		return
	}
	c.log.Warn("impact.com sent a field this version does not map to a column; it is kept in raw",
		zap.String("entity", string(e)), zap.String("field", field))
	if c.opt.OnUnknownField != nil {
		c.opt.OnUnknownField(e, field)
	}
}

// refetch reads a page again after its body could not be parsed, and
// returns a body that is one complete JSON value. Errors: fetch's, or a
// *syncer.TransientError when every attempt was unreadable.
func (c *Client) refetch(ctx context.Context, e syncer.Entity, u string, cause error) ([]byte, error) {
	var body []byte
	unreadable, first := cause, true // the first attempt is the read that already failed
	err := c.policy(func(a retry.Attempt) error {
		c.log.Warn("unreadable page; reading it again", zap.String("entity", string(e)),
			zap.Error(a.Err), zap.Duration("wait", a.Wait))
		syncer.TallyFrom(ctx).Retries.Add(1)
		return nil
	}).Do(ctx, func(n int, err error) retry.Decision {
		if err != unreadable {
			return retry.Final("fetch failed") // fetch has retried already
		}
		if n >= c.opt.MaxAttempts {
			return retry.Final("unreadable after " + strconv.Itoa(n) + " attempts")
		}
		return retry.Retry("unreadable body")
	}, func() error {
		if first {
			first = false
			return unreadable
		}
		var err error
		if body, err = c.fetch(ctx, e, u); err != nil {
			return err
		}
		if _, unreadable = document(body); unreadable != nil {
			return unreadable
		}
		return nil
	})
	switch {
	case err == nil:
		return body, nil
	case err == unreadable:
		return nil, &syncer.TransientError{Endpoint: Resource(e), Status: http.StatusOK, Err: err}
	}
	return nil, err
}

// maxBody bounds one response body (a 20,000-action page is about 30 MB).
const maxBody = 512 << 20

// fetch GETs one URL with retries, returning the body of a 2xx response or a
// typed error.
func (c *Client) fetch(ctx context.Context, e syncer.Entity, u string) ([]byte, error) {
	tally := syncer.TallyFrom(ctx)
	var body []byte
	failures, waits := 0, 0
	err := c.policy(func(a retry.Attempt) error {
		rateLimited := errors.As(a.Err, new(*syncer.RateLimitedError))
		if dl, ok := ctx.Deadline(); ok && rateLimited && time.Until(dl) < a.Wait {
			// the wait would outlast the context: say when to come back now
			// rather than fail with a deadline later
			return a.Err
		}
		c.log.Info("retrying impact.com request", zap.String("entity", string(e)),
			zap.String("reason", a.Decision.Reason), zap.Duration("wait", a.Wait))
		if rateLimited {
			tally.RateLimitWaits.Add(1)
		} else {
			tally.Retries.Add(1)
		}
		return nil
	}).Do(ctx, func(_ int, err error) retry.Decision {
		return c.classify(err, &failures, &waits)
	}, func() error {
		if err := c.pace(ctx, e, tally); err != nil {
			return err
		}
		var err error
		body, err = c.do(ctx, e, u, tally)
		return err
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}

// policy is the client's retry policy (internal/retry) with its options; the
// classification bounds the attempts.
func (c *Client) policy(onRetry func(retry.Attempt) error) retry.Policy {
	return retry.Policy{
		Backoff: c.backoff(),
		Sleep:   c.opt.Sleep,
		OnRetry: onRetry,
	}
}

// pace waits until the rate limit allows another request to e's endpoint.
func (c *Client) pace(ctx context.Context, e syncer.Entity, tally *syncer.Tally) error {
	for {
		wait := c.limiter.reserve(Resource(e), c.opt.Now())
		if wait <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return &syncer.RateLimitedError{Endpoint: Resource(e), RetryAt: c.opt.Now().Add(wait)}
		}
		tally.RateLimitWaits.Add(1)
		c.log.Info("pacing: rate-limit budget used up; waiting for the reset", zap.Duration("wait", wait))
		if err := c.opt.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// classify is the client's classification of its errors for the retry
// policy: 429s are waited out as the API says (or with the policy's jittered
// backoff), 5xx and network errors retried a bounded number of times, other
// errors not at all. failures and waits count the two kinds across attempts.
func (c *Client) classify(err error, failures, waits *int) retry.Decision {
	var rl *syncer.RateLimitedError
	var tr *syncer.TransientError
	switch {
	case syncer.IsCredentialDead(err):
		// checked first: an OAuth transport whose refresh token was refused
		// fails inside a network error, but retrying cannot revive it
		return retry.Final("the credential is dead")
	case errors.As(err, &rl):
		*waits++
		if *waits > c.opt.MaxRateLimitWaits {
			return retry.Final("too many 429s")
		}
		var wait time.Duration
		if !rl.RetryAt.IsZero() {
			wait = rl.RetryAt.Sub(c.opt.Now())
		}
		if wait <= 0 {
			wait = c.backoff().Delay(*waits)
		}
		return retry.Decision{Retry: true, Wait: wait, Reason: "429 Too Many Requests"}
	case errors.As(err, &tr):
		*failures++
		if *failures >= c.opt.MaxAttempts {
			return retry.Final("gave up after " + strconv.Itoa(*failures) + " attempts")
		}
		return retry.Decision{Retry: true, Wait: c.backoff().Delay(*failures), Reason: tr.Error()}
	}
	return retry.Final("not retryable")
}

// backoff is the policy's backoff with the client's options (see
// retry.Backoff for the jitter).
func (c *Client) backoff() retry.Backoff {
	return retry.Backoff{Base: c.opt.BackoffBase, Max: c.opt.BackoffMax}
}

// do sends one request and maps its outcome to a body or a typed error.
func (c *Client) do(ctx context.Context, e syncer.Entity, u string, tally *syncer.Tally) ([]byte, error) {
	endpoint := Resource(e)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		c.limiter.done(endpoint, nil, 0, c.opt.Now())
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("IR-Version", c.opt.IRVersion)
	req.Header.Set("User-Agent", "impact-syncer")
	tally.Requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		c.limiter.done(endpoint, nil, 0, c.opt.Now())
		c.observe(e, 0)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if syncer.IsCredentialDead(err) {
			// the transport could not authenticate the request (OAuth
			// invalid_grant): not a network failure, not transient
			return nil, fmt.Errorf("%s: %w", endpoint, scrubURL(err))
		}
		return nil, &syncer.TransientError{Endpoint: endpoint, Err: scrubURL(err)}
	}
	defer resp.Body.Close()
	now := c.opt.Now()
	c.limiter.done(endpoint, resp.Header, resp.StatusCode, now)
	c.observe(e, resp.StatusCode)
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.mu.Lock()
		c.serverDate, c.localAt = d, now
		c.mu.Unlock()
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		tally.RateLimited.Add(1)
	}
	limit := int64(maxBody)
	if resp.StatusCode >= 300 {
		limit = 64 << 10
	}
	body, err := c.readBody(resp.Body, resp.ContentLength, limit)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &syncer.TransientError{Endpoint: endpoint, Status: resp.StatusCode, Err: fmt.Errorf("reading body: %w", scrubURL(err))}
	}
	if err := checkResponse(e, resp, body, now); err != nil {
		return nil, err
	}
	if !looksLikeJSON(body) {
		return nil, &syncer.TransientError{Endpoint: endpoint, Status: resp.StatusCode,
			Err: fmt.Errorf("body is not JSON (Content-Type %q, starts %q)", resp.Header.Get("Content-Type"), snippet(body))}
	}
	return body, nil
}

// readBody reads a response body of n bytes (-1: unknown), at most limit.
// A body of known length is read into a buffer of exactly that size, taken
// from the pool of page buffers when one is large enough: a 20,000-action
// page is 20 MB, and growing a buffer to that size by doubling copies it
// twice and leaves the garbage of every step.
func (c *Client) readBody(r io.Reader, n, limit int64) ([]byte, error) {
	if n < 0 || n > limit {
		return io.ReadAll(io.LimitReader(r, limit))
	}
	var buf []byte
	if p, ok := c.bodies.Get().(*[]byte); ok && int64(cap(*p)) >= n {
		buf = (*p)[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// recycle returns a page buffer to the pool once nothing refers to it: the
// records decoded from a page copy what they keep.
func (c *Client) recycle(body []byte) {
	if cap(body) >= 64<<10 {
		c.bodies.Put(&body)
	}
}

func (c *Client) observe(e syncer.Entity, status int) {
	if c.opt.OnResponse != nil {
		c.opt.OnResponse(e, status)
	}
}

func looksLikeJSON(b []byte) bool {
	for _, ch := range b {
		switch ch {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// scrubURL drops query strings from URL errors so that nothing the request
// carried reaches a log line.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
	}
	return err
}
