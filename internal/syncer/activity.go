package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// writeAttempts bounds how often an entity run reads its windows again after
// a write whose outcome was unknown (ErrWriteInterrupted).
const writeAttempts = 4

// activity syncs Actions or ActionUpdates of every campaign scope. A
// streamed insert that fails for a reason that may pass cannot be sent
// again (its rows are not kept), so the run starts over from the stored
// watermarks and reads those windows again, a few times. A run planned with
// the calendar 3-year limit that the API refuses is planned again with
// 3×365 days.
func (p *pass) activity(ctx context.Context, e Entity, log *zap.Logger) (uint64, error) {
	var total uint64
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		p.calendarAsked = false
		rows, err := p.activityOnce(ctx, e, log)
		total += rows
		var old *TooOldError
		if errors.As(err, &old) && p.calendarAsked {
			// the API counts its 3 years as 3×365 days: plan again with that
			// (another pass may have learnt it meanwhile)
			p.s.calendarRefused.Store(true)
			log.Warn("impact.com refused a start 3 calendar years back; reaching back 3×365 days instead", zap.Error(err))
			attempt--
			continue
		}
		if err == nil || !errors.Is(err, ErrWriteInterrupted) || attempt >= writeAttempts || ctx.Err() != nil || p.stopped() != nil {
			return total, err
		}
		log.Warn("clickhouse write failed; reading the windows since the last stored watermark again",
			zap.Int("attempt", attempt), zap.Duration("wait", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, err
		case <-t.C:
		}
		backoff = min(backoff*4, 10*time.Second)
	}
}

func (p *pass) activityOnce(ctx context.Context, e Entity, log *zap.Logger) (uint64, error) {
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
	if pm := p.pre.marks[e]; pm != nil && p.req.Kind != RunBackfill {
		// read ahead for many accounts (Prepare); a second attempt reads
		// again what the first committed
		p.marks = pm
		delete(p.pre.marks, e)
		defer func() { p.marks = nil }()
	} else if b, ok := p.s.State.(WatermarkBatcher); ok && p.req.Kind != RunBackfill {
		if p.marks, err = b.Watermarks(ctx, p.acct.ID, e); err != nil {
			return 0, err
		}
		defer func() { p.marks = nil }()
	}
	p.planner.CalendarRefused = p.s.calendarRefused.Load()
	p.calendarAsked = p.planner.Reach(now).Before(now.Add(-p.opt.Reach))
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
	if vr, ok := p.s.Writer.(VersionRaiser); ok && !p.pre.raised {
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
	lazy := p.req.Kind != RunBackfill && total == nscans
	loader := func() sink {
		if sw, ok := p.s.Writer.(StreamWriter); ok {
			return newStreamLoader(ctx, p.s, sw, p.acct.ID, e, p.opt.BatchSize, p.opt.InsertRows, lazy, p.owned)
		}
		return newGuardedLoader(ctx, p.s, p.acct.ID, e, p.opt.BatchSize, lazy, p.owned)
	}
	var ld sink
	if p.staging && lazy {
		ld = &stagedLoader{p: p, ctx: ctx, limit: p.opt.BatchSize, mk: loader}
	} else {
		p.direct(ctx)
		ld = loader()
	}
	var jobs []scanJob
	for _, pl := range plans {
		for _, sc := range pl.scans {
			jobs = append(jobs, scanJob{campaign: pl.campaign, sc: sc, commit: true})
		}
	}
	decodeErrs, err := p.runScans(ctx, e, jobs, ld, prog, log)
	if err != nil {
		werr := ld.close()
		if errors.Is(err, werr) {
			werr = nil // the scan stopped on the loader's error: say it once
		}
		return ld.loaded(), errors.Join(err, werr)
	}
	if err := ld.close(); err != nil {
		return ld.loaded(), err
	}
	if err := p.mergeParts(ctx, e, ld, lazy, log); err != nil {
		return ld.loaded(), err
	}
	prog.rows = ld.loaded()
	prog.report("")
	if len(decodeErrs) > 0 {
		return ld.loaded(), joinDecodeErrors(decodeErrs)
	}
	return ld.loaded(), nil
}

// mergeParts merges the partition months a run wrote in more inserts than
// months (see PartMerger); a short run, and one that wrote each month once,
// leave merging to ClickHouse.
func (p *pass) mergeParts(ctx context.Context, e Entity, ld sink, lazy bool, log *zap.Logger) error {
	sl, ok := ld.(*streamLoader)
	pm, can := p.s.Writer.(PartMerger)
	if !ok || !can || lazy {
		return nil
	}
	months, inserts := sl.touched()
	if inserts <= len(months) {
		return nil
	}
	ts := make([]time.Time, len(months))
	for i, m := range months {
		ts[i] = time.Date(int(m/12), time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
	}
	start := time.Now()
	merged, err := pm.MergeMonths(ctx, e, ts)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Every row is stored and every watermark with it: merging only
		// spares readers the parts, and ClickHouse merges in the background.
		log.Warn("merging the parts of the months written failed; the rows are stored and ClickHouse merges them in the background",
			zap.Int("months", len(ts)), zap.Int("inserts", inserts), zap.Duration("took", time.Since(start)), zap.Error(err))
		return nil
	}
	if merged > 0 {
		log.Info("merged the parts of the months written", zap.Int("months", merged), zap.Int("inserts", inserts),
			zap.Duration("took", time.Since(start)))
	}
	return nil
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
		p.direct(ctx)
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
			zap.String("entity", string(e)), zap.Time("from", p.req.From), zap.Time("limit", p.planner.Reach(now)))
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

// scanJob is one campaign's scan within a pass.
type scanJob struct {
	campaign string
	sc       Scan
	windows  []Window
	commit   bool // no decode error yet: its watermark may advance
}

// runScans reads the scans of a pass, their windows across campaigns in
// date order, so that the rows of a month arrive together and reach
// ClickHouse in one insert rather than one per campaign. With a streaming
// loader every scan is read together (the first sync's three date filters
// over the same years: one insert per month instead of three, and no merge
// after); otherwise scans of one name (the same date filter) are read
// together, one name after the other. Each campaign's windows of a scan stay
// in order and advance its own watermark. It returns the decode errors met
// (their window's watermark and every later one of that scan stay put) and
// a fatal error.
func (p *pass) runScans(ctx context.Context, e Entity, jobs []scanJob, ld sink, prog *progress, log *zap.Logger) ([]error, error) {
	type step struct {
		job *scanJob
		w   Window
	}
	together := false
	switch ld.(type) {
	case *streamLoader, *stagedLoader:
		together = true
	}
	var decodeErrs []error
	for first := true; len(jobs) > 0; first = false {
		if !first {
			ld.newScan()
		}
		name := jobs[0].sc.Key.Scan
		var group []*scanJob
		rest := jobs[:0:0]
		for i := range jobs {
			if together || jobs[i].sc.Key.Scan == name {
				group = append(group, &jobs[i])
			} else {
				rest = append(rest, jobs[i])
			}
		}
		// Months before a window's start are complete once every scan read
		// together is past them: the widest lag of the group's filters.
		filter := ByEvent
		var steps []step
		for _, j := range group {
			if j.sc.Filter != ByEvent {
				filter = j.sc.Filter
			}
			j.windows = j.sc.Windows()
			for _, w := range j.windows {
				steps = append(steps, step{j, w})
			}
		}
		slices.SortStableFunc(steps, func(a, b step) int { return a.w.End.Compare(b.w.End) })
		for _, st := range steps {
			if err := p.runWindow(ctx, e, st.job, st.w, filter, ld, prog, log, &decodeErrs); err != nil {
				return decodeErrs, err
			}
		}
		jobs = rest
	}
	return decodeErrs, nil
}

// runWindow reads one window of a scan and queues its watermark; group is
// the date filter whose lag tells the loader which months are complete.
func (p *pass) runWindow(ctx context.Context, e Entity, j *scanJob, w Window, group DateFilter, ld sink, prog *progress, log *zap.Logger, decodeErrs *[]error) error {
	if err := p.stopped(); err != nil {
		return err
	}
	sc := j.sc
	ld.window(group, w.Start)
	q := Query{Entity: e, CampaignID: j.campaign, Filter: sc.Filter, Window: w}
	bad := 0
	for r, err := range p.src.Records(ctx, q) {
		var de *DecodeError
		if errors.As(err, &de) {
			bad++
			*decodeErrs = append(*decodeErrs, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		ld.add(r)
		prog.rows++
	}
	if bad > 0 {
		j.commit = false
		log.Error("records could not be decoded; the watermark stays before this window",
			zap.String("campaign_id", j.campaign), zap.String("scan", sc.Key.Scan), zap.Stringer("window", w), zap.Int("records", bad))
	}
	if j.commit {
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
		return err
	}
	prog.done++
	prog.window = w
	prog.report(j.campaign)
	return nil
}
