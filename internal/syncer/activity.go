package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// activity syncs Actions or ActionUpdates of every campaign scope.
func (p *pass) activity(ctx context.Context, e Entity, log *zap.Logger) (uint64, error) {
	scopes, err := p.campaignScopes(ctx)
	if err != nil {
		return 0, err
	}
	if _, ok := p.src.ServerNow(); !ok {
		// Window ends follow impact.com's clock (its Date header); one cheap
		// request learns it. Its answer does not matter: a refusal (a token
		// without this permission) carries a Date too, and without any Date
		// the local clock stands in.
		for _, err := range p.src.Records(ctx, Query{Entity: CompanyInformation}) {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if err != nil {
				_, ok := p.src.ServerNow()
				log.Info("the request that learns impact.com's clock failed; going on", zap.Bool("api_clock_known", ok), zap.Error(err))
			}
		}
	}
	api, known := p.src.ServerNow()
	now, skew, warn := p.planner.Clock(api, known, time.Now())
	if warn {
		log.Warn("impact.com's clock differs from this machine's; windows follow impact.com's",
			zap.Duration("skew", skew.Round(time.Second)), zap.Time("api_now", now))
	}
	type scoped struct {
		campaign string
		scans    []Scan
	}
	var plans []scoped
	total := 0
	// Planning reads several watermarks per campaign: in one query when the
	// store can (the lease keeps every other run of the account away).
	p.marks = nil
	if b, ok := p.s.State.(WatermarkBatcher); ok && p.req.Kind != RunBackfill {
		if p.marks, err = b.Watermarks(ctx, p.acct.ID, e); err != nil {
			return 0, err
		}
		defer func() { p.marks = nil }()
	}
	for _, campaign := range scopes {
		scans, err := p.plan(ctx, e, campaign, now)
		if err != nil {
			return 0, err
		}
		for _, sc := range scans {
			total += len(sc.Windows())
		}
		plans = append(plans, scoped{campaign, scans})
	}
	prog := &progress{s: p.s, accountID: p.acct.ID, entity: e, total: total, started: time.Now(), tally: TallyFrom(ctx)}
	if vr, ok := p.s.Writer.(VersionRaiser); ok {
		if err := vr.RaiseVersions(ctx, p.acct.ID, e); err != nil {
			return 0, err
		}
	}
	// A run whose scans are one window each (an incremental run in the
	// steady state) is short: its loader commits once, at the end.
	nscans := 0
	for _, pl := range plans {
		nscans += len(pl.scans)
	}
	ld := newGuardedLoader(ctx, p.s, p.acct.ID, e, p.opt.BatchSize, p.req.Kind != RunBackfill && total == nscans, p.owned)
	var decodeErrs []error
	for _, pl := range plans {
		for _, sc := range pl.scans {
			errs, err := p.runScan(ctx, e, pl.campaign, sc, ld, prog, log)
			decodeErrs = append(decodeErrs, errs...)
			if err != nil {
				werr := ld.close()
				if errors.Is(err, werr) {
					werr = nil // the scan stopped on the loader's error: say it once
				}
				return ld.rows, errors.Join(err, werr)
			}
			if err := ld.failed(); err != nil {
				ld.close()
				return ld.rows, err
			}
		}
	}
	if err := ld.close(); err != nil {
		return ld.rows, err
	}
	prog.rows = ld.rows
	prog.report("")
	if len(decodeErrs) > 0 {
		return ld.rows, joinDecodeErrors(decodeErrs)
	}
	return ld.rows, nil
}

// Progress is reported after every window of an Actions or ActionUpdates
// run (backfill progress bars, logs).
type Progress struct {
	AccountID      string
	Entity         Entity
	Campaign       string
	Window         Window
	WindowsDone    int
	WindowsTotal   int
	Rows           uint64 // rows read so far
	Requests       uint64
	RateLimitWaits uint64
	Elapsed        time.Duration
}

// ETA estimates the time left from the pace so far.
func (p Progress) ETA() time.Duration {
	if p.WindowsDone == 0 || p.WindowsDone >= p.WindowsTotal {
		return 0
	}
	return time.Duration(float64(p.Elapsed) / float64(p.WindowsDone) * float64(p.WindowsTotal-p.WindowsDone))
}

type progress struct {
	s         *Syncer
	accountID string
	entity    Entity
	total     int
	done      int
	rows      uint64
	started   time.Time
	tally     *Tally
	window    Window
}

func (pr *progress) report(campaign string) {
	if pr.s.Progress == nil {
		return
	}
	pr.s.Progress(Progress{AccountID: pr.accountID, Entity: pr.entity, Campaign: campaign, Window: pr.window,
		WindowsDone: pr.done, WindowsTotal: pr.total, Rows: pr.rows, Requests: pr.tally.Requests.Load(),
		RateLimitWaits: pr.tally.RateLimitWaits.Load(), Elapsed: time.Since(pr.started)})
}

// plan lists the scans one campaign scope needs now (Planner.Plan), and
// stores the watermarks the plan pins before anything is read.
func (p *pass) plan(ctx context.Context, e Entity, campaign string, now time.Time) ([]Scan, error) {
	marks := func(k WatermarkKey) (time.Time, bool, error) {
		if p.marks != nil { // read once for the whole plan (see activity)
			t, ok := p.marks[k]
			return t, ok, nil
		}
		return p.s.State.Watermark(ctx, k)
	}
	plan, err := p.planner.Plan(e, p.req, p.acct.ID, campaign, now, marks)
	if err != nil {
		return nil, err
	}
	if len(plan.Pin) > 0 {
		if err := p.owned(); err != nil {
			return nil, err
		}
	}
	for k, t := range plan.Pin {
		if err := p.s.State.SetWatermark(ctx, k, t); err != nil {
			return nil, err
		}
		if p.marks != nil {
			p.marks[k] = t
		}
	}
	if plan.Clamped && !p.warnedClamp {
		p.warnedClamp = true
		p.log.Warn("backfill start is older than impact.com serves (3 years by its clock); starting at the limit",
			zap.String("entity", string(e)), zap.Time("from", p.req.From), zap.Time("limit", now.Add(-p.opt.Reach)))
	}
	return plan.Scans, nil
}

// ChunkWindows cuts [from, to] into consecutive windows of at most max,
// oldest first, each starting one second after the previous ends.
func ChunkWindows(from, to time.Time, max time.Duration) []Window {
	var out []Window
	for start := from; !start.After(to); {
		end := start.Add(max)
		if end.After(to) {
			end = to
		}
		out = append(out, Window{Start: start, End: end})
		start = end.Add(time.Second)
	}
	return out
}

// MaxWindow is the longest date window the sync asks for: the API allows 45
// days (docs/impact-api.md §4.2); 44 keeps every window safely inside the
// inclusive limit. It is declared here only: the client's default is this.
const MaxWindow = 44 * 24 * time.Hour

// runScan reads one scan window by window. It returns the decode errors met
// (their window's watermark and every later one stay put) and a fatal error.
func (p *pass) runScan(ctx context.Context, e Entity, campaign string, sc Scan, ld *loader, prog *progress, log *zap.Logger) ([]error, error) {
	var decodeErrs []error
	commit := true
	for _, w := range ChunkWindows(sc.From, sc.To, MaxWindow) {
		if err := p.stopped(); err != nil {
			return decodeErrs, err
		}
		q := Query{Entity: e, CampaignID: campaign, Filter: sc.Filter, Window: w}
		bad := 0
		for r, err := range p.src.Records(ctx, q) {
			var de *DecodeError
			if errors.As(err, &de) {
				bad++
				decodeErrs = append(decodeErrs, err)
				continue
			}
			if err != nil {
				return decodeErrs, fmt.Errorf("%s: %w", q, err)
			}
			ld.add(r)
			prog.rows++
		}
		if bad > 0 {
			commit = false
			log.Error("records could not be decoded; the watermark stays before this window",
				zap.String("campaign_id", campaign), zap.String("scan", sc.Key.Scan), zap.Stringer("window", w), zap.Int("records", bad))
		}
		if commit {
			ld.commit(sc.Key, w.End)
			if w.End.Equal(sc.To) {
				for _, k := range sc.Covers {
					ld.commit(k, w.End)
				}
			}
		} else {
			ld.flush()
		}
		if err := ld.failed(); err != nil {
			return decodeErrs, err
		}
		prog.done++
		prog.window = w
		prog.report(campaign)
	}
	return decodeErrs, nil
}
