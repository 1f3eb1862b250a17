package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// scan is one date-filtered sweep of Actions or ActionUpdates for one
// campaign scope: read [From, To] in windows, oldest first, and advance the
// watermark Key to each window's end once its rows are in ClickHouse.
type scan struct {
	Key      WatermarkKey
	Filter   DateFilter
	From, To time.Time
	// Covers are watermarks of scans this one makes redundant (the clearing
	// re-scan, when this scan re-reads everything it would): once every
	// window is committed they are set to To as well.
	Covers []WatermarkKey
}

// writeAttempts bounds how often an entity run reads its windows again after
// a write whose outcome was unknown (ErrWriteInterrupted).
const writeAttempts = 4

// activity syncs Actions or ActionUpdates of every campaign scope. A
// streamed insert that fails for a reason that may pass cannot be sent
// again (its rows are not kept), so the run starts over from the stored
// watermarks and reads those windows again, a few times.
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
		if err == nil || !errors.Is(err, ErrWriteInterrupted) || attempt >= writeAttempts || ctx.Err() != nil || p.req.stopping() {
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
	now := p.serverNow()
	if local := time.Now(); now.Sub(local).Abs() > time.Minute {
		log.Warn("impact.com's clock differs from this machine's; windows follow impact.com's",
			zap.Duration("skew", now.Sub(local).Round(time.Second)), zap.Time("api_now", now))
	}
	type scoped struct {
		campaign string
		scans    []scan
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
			total += len(ChunkWindows(sc.From, sc.To, MaxWindow))
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
	lazy := p.req.Kind != RunBackfill && total == nscans
	var ld sink
	if sw, ok := p.s.Writer.(StreamWriter); ok {
		ld = newStreamLoader(ctx, p.s, sw, p.acct.ID, e, p.opt.BatchSize, p.opt.InsertRows, lazy)
	} else {
		ld = newLoader(ctx, p.s, p.acct.ID, e, p.opt.BatchSize, lazy)
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
	if err := pm.MergeMonths(ctx, e, ts); err != nil {
		return fmt.Errorf("merging the parts of the %d months written: %w", len(ts), err)
	}
	log.Info("merged the parts of the months written", zap.Int("months", len(ts)), zap.Int("inserts", inserts),
		zap.Duration("took", time.Since(start)))
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

// plan lists the scans one campaign scope needs now.
func (p *pass) plan(ctx context.Context, e Entity, campaign string, now time.Time) ([]scan, error) {
	o := p.opt
	reach := p.reach(now)
	key := func(name string) WatermarkKey {
		return WatermarkKey{AccountID: p.acct.ID, Entity: e, CampaignID: campaign, Scan: name}
	}
	wm := func(name string) (time.Time, bool, error) {
		if p.marks != nil { // read once for the whole plan (see activity)
			t, ok := p.marks[key(name)]
			return t, ok, nil
		}
		return p.s.State.Watermark(ctx, key(name))
	}
	clamp := func(t time.Time) time.Time {
		if t.Before(reach) {
			return reach
		}
		return t
	}

	if p.req.Kind == RunBackfill {
		return p.planBackfill(ctx, e, campaign, now, reach, key)
	}

	var scans []scan
	// incremental sweeps: from the watermark less the overlap (or the API's
	// full reach on the first sync) to now
	incremental := func(name string, f DateFilter) (int, error) {
		t, ok, err := wm(name)
		if err != nil {
			return -1, err
		}
		from := reach
		if ok {
			from = clamp(t.Add(-o.Overlap))
		}
		scans = append(scans, scan{Key: key(name), Filter: f, From: from, To: now})
		return len(scans) - 1, nil
	}
	// clearing: ClearedDate (ActionUpdates: ClearingDate) fills in after
	// approval without counting as an update, so every ClearingInterval the
	// actions that locked in the last ClearingLookback are read again. The
	// re-scan reaches back from the previous one's end too, so an action that
	// locked before a long pause and cleared during it is not left behind.
	// cover, when >= 0, is the index of a scan of this pass that already
	// re-reads every such action: it stands in for the re-scan.
	clearing := func(cover int) error {
		last, ok, err := wm(ScanClearing)
		if err != nil {
			return err
		}
		if ok && now.Sub(last) < o.ClearingInterval {
			return nil
		}
		from := now.Add(-o.ClearingLookback)
		if ok && last.Add(-o.ClearingLookback).Before(from) {
			from = last.Add(-o.ClearingLookback)
		}
		from = clamp(from)
		if cover >= 0 && !scans[cover].From.After(from) {
			scans[cover].Covers = append(scans[cover].Covers, key(ScanClearing))
			return nil
		}
		scans = append(scans, scan{Key: key(ScanClearing), Filter: ByLocking, From: from, To: now})
		return nil
	}
	_, haveUpdated, err := wm(ScanUpdated)
	if err != nil {
		return nil, err
	}
	// firstSweep is a sweep of the first sync only, over the API's whole
	// reach up to the first sync's now (kept under name+"_until"), resumed
	// where it stopped. It returns the scan's index, or -1 when it is done.
	firstSweep := func(name string, f DateFilter) (int, error) {
		until, haveUntil, err := wm(name + "_until")
		if err != nil {
			return -1, err
		}
		if !haveUntil && !haveUpdated {
			until, haveUntil = now, true
			if err := p.s.State.SetWatermark(ctx, key(name+"_until"), until); err != nil {
				return -1, err
			}
			if p.marks != nil {
				p.marks[key(name+"_until")] = until
			}
		}
		if !haveUntil {
			return -1, nil
		}
		done, ok, err := wm(name)
		if err != nil {
			return -1, err
		}
		if ok && !done.Before(until) {
			return -1, nil
		}
		from := reach
		if ok {
			from = clamp(done.Add(time.Second))
		}
		scans = append(scans, scan{Key: key(name), Filter: f, From: from, To: until})
		return len(scans) - 1, nil
	}
	if e == ActionUpdates {
		// The first sync also sweeps LockingDate: the initial update of an
		// action whose event is older than the reach but which locks
		// within it can be read no other way. That sweep reads every update
		// whose action can still clear, so it stands in for the first
		// clearing re-scan.
		sweep, err := firstSweep(ScanLocking, ByLocking)
		if err != nil {
			return nil, err
		}
		if _, err := incremental(ScanUpdated, ByUpdated); err != nil {
			return nil, err
		}
		return scans, clearing(sweep)
	}
	// The first sync also sweeps EventDate over the whole reach: together
	// with the last-updated and locking sweeps it reaches every action any of
	// the API's three date filters can still return.
	if _, err := firstSweep(ScanEvent, ByEvent); err != nil {
		return nil, err
	}
	if _, err := incremental(ScanUpdated, ByUpdated); err != nil {
		return nil, err
	}
	// The locking sweep re-reads every action that locked since the last
	// run in its present state; when it reaches back as far as the clearing
	// re-scan would (the first sync), it stands in for it.
	lock, err := incremental(ScanLocking, ByLocking)
	if err != nil {
		return nil, err
	}
	if err := clearing(lock); err != nil {
		return nil, err
	}
	return scans, nil
}

// planBackfill lists the scans of a backfill. Its progress is kept under
// keys named after its arguments, so the same command resumes where it
// stopped; it never touches the incremental watermarks.
func (p *pass) planBackfill(ctx context.Context, e Entity, campaign string, now, reach time.Time, key func(string) WatermarkKey) ([]scan, error) {
	from, to := p.req.From, p.req.To
	fromName, toName := "reach", "now"
	if !from.IsZero() {
		fromName = from.UTC().Format(time.RFC3339)
		if from.Before(reach) {
			if !p.warnedClamp {
				p.warnedClamp = true
				p.log.Warn("backfill start is older than impact.com serves (3 years by its clock); starting at the limit",
					zap.String("entity", string(e)), zap.Time("from", from), zap.Time("limit", reach))
			}
			from = reach
		}
	} else {
		from = reach
	}
	if !to.IsZero() {
		toName = to.UTC().Format(time.RFC3339)
		if to.After(now) {
			to = now
		}
	} else {
		to = now
	}
	// A range is read by EventDate (ActionUpdates: UpdateDate); without
	// --from the backfill reaches everything the API's date filters can
	// still return, as the first sync does.
	filters := []DateFilter{ByEvent}
	switch {
	case e == ActionUpdates && p.req.From.IsZero():
		filters = []DateFilter{ByUpdated, ByLocking}
	case e == ActionUpdates:
		filters = []DateFilter{ByUpdated}
	case p.req.From.IsZero():
		filters = []DateFilter{ByEvent, ByUpdated, ByLocking}
	}
	var scans []scan
	for _, f := range filters {
		k := key(fmt.Sprintf("backfill:%s:%s..%s", f, fromName, toName))
		start := from
		if t, ok, err := p.s.State.Watermark(ctx, k); err != nil {
			return nil, err
		} else if ok {
			if !t.Before(to) {
				continue // this part of the backfill is done
			}
			start = t.Add(time.Second)
		}
		if start.After(to) {
			continue
		}
		scans = append(scans, scan{Key: k, Filter: f, From: start, To: to})
	}
	return scans, nil
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
// days; 44 keeps every window safely inside the inclusive limit.
const MaxWindow = 44 * 24 * time.Hour

// scanJob is one campaign's scan within a pass.
type scanJob struct {
	campaign string
	sc       scan
	windows  []Window
	commit   bool // no decode error yet: its watermark may advance
}

// runScans reads the scans of a pass: scans of one name (the same date
// filter) together, their windows across campaigns in date order, so that
// the rows of a month arrive together and reach ClickHouse in one insert
// rather than one per campaign. Each campaign's windows stay in order and
// advance its own watermark. It returns the decode errors met (their
// window's watermark and every later one of that scan stay put) and a fatal
// error.
func (p *pass) runScans(ctx context.Context, e Entity, jobs []scanJob, ld sink, prog *progress, log *zap.Logger) ([]error, error) {
	type step struct {
		job *scanJob
		w   Window
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
			if jobs[i].sc.Key.Scan == name {
				group = append(group, &jobs[i])
			} else {
				rest = append(rest, jobs[i])
			}
		}
		var steps []step
		for _, j := range group {
			j.windows = ChunkWindows(j.sc.From, j.sc.To, MaxWindow)
			for _, w := range j.windows {
				steps = append(steps, step{j, w})
			}
		}
		slices.SortStableFunc(steps, func(a, b step) int { return a.w.End.Compare(b.w.End) })
		for _, st := range steps {
			if err := p.runWindow(ctx, e, st.job, st.w, ld, prog, log, &decodeErrs); err != nil {
				return decodeErrs, err
			}
		}
		jobs = rest
	}
	return decodeErrs, nil
}

// runWindow reads one window of a scan and queues its watermark.
func (p *pass) runWindow(ctx context.Context, e Entity, j *scanJob, w Window, ld sink, prog *progress, log *zap.Logger, decodeErrs *[]error) error {
	if p.req.stopping() {
		return ErrStopped
	}
	sc := j.sc
	ld.window(sc.Filter, w.Start)
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
