package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Staged commits. A sync of many small accounts is mostly ClickHouse round
// trips on the passes' path: each entity run wrote its start, its rows, its
// watermarks and its outcome, a statement each, between two requests to
// impact.com, and on a small server every insert costs a part written,
// whatever its size. So a pass prepared in a batch (Prepare, for `syncer
// sync` over several accounts) reads its short runs first and stages what
// they would write; once its reading is over its slot goes to the next pass
// (Prepared.ReadDone), and the Syncer's committer writes what many passes
// staged together: one insert per table for all of them, in the order a pass
// writes alone (rows, then the watermarks of the rows stored, then the runs'
// outcomes), each pass's lock checked first. The pass returns once its part
// is stored, with its runs' final outcomes; its lock is held until then.
//
// A run is staged only while it is short: a catalog refresh (held whole
// anyway), and an Actions or ActionUpdates run whose scans are one window
// each (the steady state) up to BatchSize rows. A run that outgrows that, or
// is planned over many windows (a first sync), records its start and writes
// as it reads, as an unstaged pass does; only its outcome goes with the
// commit. A staged run records no start: if the process dies before the
// commit, nothing of it was written and the next pass reads it again.

const (
	// commitLinger is how long a staged pass waits for others to share its
	// commit while passes are still reading.
	commitLinger = time.Second
	// commitMaxPasses: a commit starts at once when this many passes wait,
	// and takes no more; a pass that finishes reading while this many wait
	// keeps its slot until a commit takes it (see committer.submit).
	commitMaxPasses = 32
)

// stagedRun is one entity run of a staged pass: its outcome as read, and
// what it staged to write (nothing for a run that wrote as it read).
type stagedRun struct {
	run     Run
	log     *zap.Logger
	readErr error // the run's own error, as it ended reading
	cancel  bool  // the pass's context had ended by then

	catalog *CatalogRefresh // a catalog refresh to write
	rows    []Record        // activity rows to write
	marks   map[WatermarkKey]time.Time
	staged  bool  // catalog, or rows and marks, wait for the commit
	written bool  // the commit wrote them all
	started bool  // the run recorded its start (it wrote as it read)
	err     error // the commit's error for this run
}

// stagedPass is what a pass hands the committer.
type stagedPass struct {
	p       *pass
	ctx     context.Context
	runs    []*stagedRun
	arrived time.Time
	done    chan struct{}
	// readDone frees the pass's slot once it is taken into a commit, when
	// too many passes waited for one as it arrived (see submit).
	readDone func()
}

// committer gathers staged passes and writes them together (see above).
// Its zero value is ready.
type committer struct {
	mu      sync.Mutex
	queue   []*stagedPass
	busy    bool // a commit is being written
	reading int  // prepared staged passes still reading (or yet to start)
	timer   *time.Timer
}

func (c *committer) startReading() {
	c.mu.Lock()
	c.reading++
	c.mu.Unlock()
}

// stopReading: a pass counted by startReading reads no more.
func (c *committer) stopReading(s *Syncer) {
	c.mu.Lock()
	c.reading--
	c.maybeStart(s)
	c.mu.Unlock()
}

// submit queues sp, uncounting it from the readers when reading (in the
// same step, so that the last reader joins the commit it starts), and
// returns once its commit is written. readDone (the pass's slot) is called
// first while fewer than commitMaxPasses wait, otherwise when sp is taken
// into a commit: passes that read faster than commits are written wait in
// their slots, holding no more than that many commits' worth of rows.
func (c *committer) submit(s *Syncer, sp *stagedPass, reading bool, readDone func()) {
	c.mu.Lock()
	hold := len(c.queue) >= commitMaxPasses
	c.mu.Unlock()
	if !hold {
		readDone() // before the pass is queued: its slot is free whatever the commit does
	}
	sp.arrived = time.Now()
	sp.done = make(chan struct{})
	c.mu.Lock()
	if reading {
		c.reading--
	}
	c.queue = append(c.queue, sp)
	if hold {
		sp.readDone = readDone
	}
	c.maybeStart(s)
	c.mu.Unlock()
	<-sp.done
}

// maybeStart, with mu held, starts a commit of the oldest queued passes
// (at most commitMaxPasses) unless one is being written, or passes still
// read and the queue is neither full nor old enough (then a timer comes back
// when it is).
func (c *committer) maybeStart(s *Syncer) {
	if c.busy || len(c.queue) == 0 {
		return
	}
	wait := commitLinger - time.Since(c.queue[0].arrived)
	if c.reading > 0 && len(c.queue) < commitMaxPasses && wait > 0 {
		if c.timer == nil {
			var t *time.Timer
			t = time.AfterFunc(wait, func() {
				c.mu.Lock()
				if c.timer == t {
					c.timer = nil
				}
				c.maybeStart(s)
				c.mu.Unlock()
			})
			c.timer = t
		}
		return
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	n := min(len(c.queue), commitMaxPasses)
	batch := slices.Clone(c.queue[:n])
	c.queue = slices.Delete(c.queue, 0, n)
	c.busy = true
	for _, sp := range batch {
		if sp.readDone != nil { // its slot was held while too many waited
			go sp.readDone()
			sp.readDone = nil
		}
	}
	go func() {
		s.writeStagedSafely(batch)
		for _, sp := range batch {
			close(sp.done)
		}
		c.mu.Lock()
		c.busy = false
		c.maybeStart(s)
		c.mu.Unlock()
	}()
}

// canStage says whether the stores can write staged passes together.
func (s *Syncer) canStage() bool {
	_, cw := s.Catalog.(CatalogBatchWriter)
	_, bw := s.Writer.(BatchWriter)
	_, wb := s.State.(WatermarkBatcher)
	_, rb := s.Runs.(RunBatcher)
	return cw && bw && wb && rb
}

// writeStagedSafely is writeStaged with a panic (a store's bug) turned into
// the failure of every staged run of the commit, as a pass's panic is, so
// that the passes waiting for it end.
func (s *Syncer) writeStagedSafely(batch []*stagedPass) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		s.Logger.Error("panic while writing staged passes; their runs are recorded as failed", zap.Any("panic", r), zap.Stack("stack"))
		var runs []Run
		for _, sp := range batch {
			for _, sr := range sp.runs {
				if sr.staged && sr.err == nil {
					sr.err = fmt.Errorf("panic while writing: %v", r)
				}
				sr.finish(sp.p)
				runs = append(runs, sr.run)
			}
		}
		if err := s.Runs.(RunBatcher).RecordRuns(context.Background(), runs...); err != nil {
			s.Logger.Error("could not record the runs of a commit that panicked", zap.Error(err))
		}
	}()
	s.writeStaged(batch)
}

// writeStaged writes the staged passes of one commit: catalog refreshes and
// activity rows (an insert per table), the watermarks of the runs whose
// rows are stored (one insert), then every run's outcome (one insert). A
// pass whose lock was lost or whose context ended meanwhile writes nothing
// but its outcomes.
func (s *Syncer) writeStaged(batch []*stagedPass) {
	// The writes carry many passes: they end when every pass's context has
	// (a shutdown), not when one's does; each pass's own end is checked
	// before each step, with its lock.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int32
	left.Store(int32(len(batch)))
	for _, sp := range batch {
		stop := context.AfterFunc(sp.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	// drop fails the runs not written yet of the passes whose lock was lost
	// or whose context ended: nothing more of theirs is written.
	drop := func() {
		for _, sp := range batch {
			err := sp.p.owned()
			if err == nil {
				err = sp.ctx.Err()
			}
			if err == nil {
				continue
			}
			for _, sr := range sp.runs {
				if sr.staged && sr.err == nil && !sr.written {
					sr.err = err
				}
			}
		}
	}
	drop()
	for _, e := range CatalogEntities {
		var items []CatalogRefresh
		var runs []*stagedRun
		for _, sp := range batch {
			for _, sr := range sp.runs {
				if sr.staged && sr.err == nil && sr.catalog != nil && sr.run.Entity == e {
					items = append(items, *sr.catalog)
					runs = append(runs, sr)
				}
			}
		}
		if len(items) == 0 {
			continue
		}
		for i, err := range s.Catalog.(CatalogBatchWriter).ReplaceCatalogs(ctx, e, items) {
			runs[i].err, runs[i].written = err, err == nil
		}
	}
	drop()
	var marked []*stagedRun // activity runs whose rows are stored
	for _, e := range []Entity{Actions, ActionUpdates} {
		var items []AccountRecords
		var runs []*stagedRun
		for _, sp := range batch {
			for _, sr := range sp.runs {
				if sr.staged && sr.err == nil && sr.catalog == nil && sr.run.Entity == e {
					if len(sr.rows) > 0 {
						items = append(items, AccountRecords{AccountID: sr.run.AccountID, Records: sr.rows})
						runs = append(runs, sr)
					} else {
						marked = append(marked, sr)
					}
				}
			}
		}
		if len(items) > 0 {
			for i, err := range s.Writer.(BatchWriter).WriteBatch(ctx, e, items) {
				if runs[i].err = err; err == nil {
					marked = append(marked, runs[i])
				}
			}
		}
	}
	drop() // a run whose lock went since its rows were stored keeps its watermarks
	marks := map[WatermarkKey]time.Time{}
	for _, sr := range marked {
		if sr.err == nil {
			maps.Copy(marks, sr.marks)
		}
	}
	err := s.State.(WatermarkBatcher).SetWatermarks(ctx, marks)
	for _, sr := range marked {
		if sr.err == nil {
			if err != nil && len(sr.marks) > 0 {
				sr.err = err
			} else {
				sr.written = true
			}
		}
	}
	var runs []Run
	now := time.Now().UTC()
	for _, sp := range batch {
		for _, sr := range sp.runs {
			if sr.staged {
				sr.run.FinishedAt = now // when its rows became readable
			}
			sr.finish(sp.p)
			runs = append(runs, sr.run)
		}
	}
	if len(runs) == 0 {
		return
	}
	// outcomes are stored however the passes ended
	if err := s.Runs.(RunBatcher).RecordRuns(context.Background(), runs...); err != nil {
		for _, sp := range batch {
			for _, sr := range sp.runs {
				sr.log.Error("could not record the run end", zap.Error(err))
			}
		}
	}
}

// finish settles the run's outcome once its staged writes are done: a run
// whose writes failed stored nothing and failed (or was interrupted, when
// the lock was lost or the pass cancelled).
func (sr *stagedRun) finish(p *pass) {
	if sr.err == nil {
		return
	}
	sr.run.Rows = 0
	out := p.planner.Outcome(sr.run.Entity, errors.Join(sr.readErr, sr.err), sr.cancel)
	sr.run.Status, sr.run.Error = out.Status, out.Error
}

// direct records the start of a staged pass's current run before the run
// writes anything itself (a pinned watermark, rows of a run too long to
// stage): from then on it is a run like an unstaged pass's, whose outcome
// goes with the commit.
func (p *pass) direct(ctx context.Context) {
	if p.cur == nil || p.cur.started {
		return
	}
	p.cur.started = true
	p.recordRuns(ctx, p.cur.run)
}

// stagedLoader is the sink of a staged Actions or ActionUpdates run: it
// keeps the rows and watermarks read, for the commit, until they are more
// than limit rows; then the run goes direct (records its start), and a loader
// made by mk takes what was kept (rows first, then the watermarks: each is
// stored after every row read before it) and the rest of the run.
type stagedLoader struct {
	p     *pass
	ctx   context.Context
	limit int
	mk    func() sink
	rows  []Record
	marks map[WatermarkKey]time.Time
	real  sink // once the run went direct
}

func (ld *stagedLoader) add(r Record) {
	if ld.real != nil {
		ld.real.add(r)
		return
	}
	ld.rows = append(ld.rows, r)
	if len(ld.rows) > ld.limit {
		ld.p.direct(ld.ctx)
		ld.real = ld.mk()
		for _, r := range ld.rows {
			ld.real.add(r)
		}
		for k, t := range ld.marks {
			ld.real.commit(k, t)
		}
		ld.rows, ld.marks = nil, nil
	}
}

func (ld *stagedLoader) commit(k WatermarkKey, t time.Time) {
	if ld.real != nil {
		ld.real.commit(k, t)
		return
	}
	if ld.marks == nil {
		ld.marks = map[WatermarkKey]time.Time{}
	}
	ld.marks[k] = t
}

func (ld *stagedLoader) flush() {
	if ld.real != nil {
		ld.real.flush()
	}
}

func (ld *stagedLoader) newScan() {
	if ld.real != nil {
		ld.real.newScan()
	}
}

func (ld *stagedLoader) window(f DateFilter, start time.Time) {
	if ld.real != nil {
		ld.real.window(f, start)
	}
}

func (ld *stagedLoader) failed() error {
	if ld.real != nil {
		return ld.real.failed()
	}
	return nil
}

// close hands what was kept to the run's commit.
func (ld *stagedLoader) close() error {
	if ld.real != nil {
		return ld.real.close()
	}
	cur := ld.p.cur
	cur.rows = append(cur.rows, ld.rows...)
	if len(ld.marks) > 0 && cur.marks == nil {
		cur.marks = map[WatermarkKey]time.Time{}
	}
	for k, t := range ld.marks {
		cur.marks[k] = t
	}
	cur.staged = true
	return nil
}

// loaded counts the rows kept as loaded: the commit sets the run's rows to
// zero if they could not be stored.
func (ld *stagedLoader) loaded() uint64 {
	if ld.real != nil {
		return ld.real.loaded()
	}
	return uint64(len(ld.rows))
}
