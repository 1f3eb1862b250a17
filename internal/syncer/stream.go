package syncer

import (
	"context"
	"slices"
	"sync"
	"time"
)

// sink is where a pass puts the rows it reads and the watermarks they
// complete: a loader, or a streamLoader when the Writer can stream.
type sink interface {
	add(r Record)
	commit(k WatermarkKey, t time.Time)
	flush()
	newScan()
	window(f DateFilter, start time.Time)
	failed() error
	close() error
	loaded() uint64
}

// Defaults of the streaming loader (see streamLoader).
const (
	// DefaultInsertRows is the most rows one streamed INSERT carries:
	// ClickHouse squashes them into one block and writes a part per
	// partition month, so larger inserts mean fewer parts. 100,000 action
	// rows keep that block well under the server's squash limit
	// (min_insert_block_size_bytes, 256 MiB).
	DefaultInsertRows = 100_000
	// chunkRows is how many rows the reader hands the writer at once.
	chunkRows = 250
	// commitAfter: once an insert has been open this long, every open
	// insert ends at the next watermark, so a run whose reader never pauses
	// still commits every so often.
	commitAfter = 30 * time.Second
	// idleCommit: an insert the reader has not fed for this long ends (its
	// watermarks are stored), so a slow page never holds an INSERT open
	// towards the server's receive timeout.
	idleCommit = 2 * time.Second
	// maxOpenInserts bounds the inserts a loader keeps open at once (each
	// holds a ClickHouse connection): opening another ends the oldest
	// month's first.
	maxOpenInserts = 3
	// lateMonths is how many months before a window's start a scan other
	// than EventDate still finds records of: their partition date
	// (creation) is up to two months before a locking date, and mostly
	// close to the last update.
	lateMonths = 2
)

// streamLoader overlaps reading with loading through streamed INSERTs
// (StreamWriter), one open per partition month: the reader hands rows over
// in small chunks and a goroutine adds each to its month's insert, which
// sends them to ClickHouse in data blocks. So the run holds at most
// batchSize rows in chunks plus a block per open insert, however large the
// inserts, and ClickHouse writes about one part per month a run touches
// (every part costs it a fixed price to write, and a FINAL read opens every
// part of the table at once, so their number matters to analysts too).
//
// A scan reads its windows oldest first and a record's partition date is
// not after the date the scan filters on, so when a window starting in
// month M begins, the months before M are complete (a record that breaks
// the rule costs an extra part, nothing else). An insert ends (Commit) when
//
//   - its month is complete;
//   - it carries insertRows rows, or the open inserts together do (the
//     fullest ends);
//   - the oldest open insert has been open commitAfter and a watermark
//     waits, or the reader has not fed the loader for idleCommit (the API
//     is the slower side): then every open insert ends;
//   - on a flush and on close: every open insert ends.
//
// After a commit, the watermarks whose rows are all in are stored: a
// watermark is stored only after every row read before it was
// acknowledged. A watermark with no row waiting before it (an empty window)
// goes with the next commit's, or on its own once commitAfter has passed,
// so years of empty windows do not cost an insert each. A short run (lazy)
// puts all its rows in one insert (the parts are the same: one per month it
// touches) and ends it only for size,
// idleness and close, and so commits once. After a failed insert nothing
// more is committed and the pass ends (an interrupted write is retried by
// reading again, see pass.activity).
type streamLoader struct {
	s          *Syncer
	w          StreamWriter
	accountID  string
	entity     Entity
	part       int // partition column index, or -1
	insertRows int
	lazy       bool
	owned      func() error // nil, or ErrLockLost once nothing may be written

	chunk []Record
	items chan streamItem
	done  chan struct{}

	mu      sync.Mutex
	err     error
	rows    uint64 // rows acknowledged by ClickHouse
	inserts int    // inserts committed
	months  map[int64]bool
}

// streamItem is a chunk of rows, a mark, or the start of a window, in
// reading order.
type streamItem struct {
	recs  []Record
	mark  loadMark
	start time.Time // a window starting then begins
	lag   int       // months before start's that may still get records
}

// newStreamLoader starts a streaming loader; owned (nil: always owned) is
// asked before every insert is opened or committed and before watermarks are
// stored, so that nothing is written once the account's lock is lost.
func newStreamLoader(ctx context.Context, s *Syncer, w StreamWriter, accountID string, e Entity, batchSize, insertRows int, lazy bool, owned func() error) *streamLoader {
	if insertRows <= 0 {
		insertRows = DefaultInsertRows
	}
	ld := &streamLoader{s: s, w: w, accountID: accountID, entity: e, part: Tables[e].Partition, insertRows: insertRows, lazy: lazy,
		items: make(chan streamItem, max(batchSize/chunkRows, 1)), done: make(chan struct{}), months: map[int64]bool{}, owned: owned}
	go ld.run(ctx)
	return ld
}

func (ld *streamLoader) add(r Record) {
	ld.chunk = append(ld.chunk, r)
	if len(ld.chunk) >= chunkRows {
		ld.send()
	}
}

// send hands the rows read so far to the writer.
func (ld *streamLoader) send() {
	if len(ld.chunk) == 0 {
		return
	}
	ld.items <- streamItem{recs: ld.chunk}
	ld.chunk = make([]Record, 0, chunkRows)
}

// window says a window of a scan on filter f starting at start begins:
// months before its month (by EventDate; lateMonths more otherwise) are
// complete.
func (ld *streamLoader) window(f DateFilter, start time.Time) {
	ld.send()
	lag := 0
	if f != ByEvent {
		lag = lateMonths
	}
	ld.items <- streamItem{start: start, lag: lag}
}

func (ld *streamLoader) commit(k WatermarkKey, t time.Time) {
	ld.send()
	ld.items <- streamItem{mark: loadMark{key: &k, mark: t}}
}

// newScan: a new scan goes back in time, into months whose inserts may have
// ended; nothing to do (their rows go into new inserts).
func (ld *streamLoader) newScan() {}

func (ld *streamLoader) flush() {
	ld.send()
	ld.items <- streamItem{mark: loadMark{}}
}

func (ld *streamLoader) failed() error {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.err
}

func (ld *streamLoader) loaded() uint64 {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.rows
}

// touched returns the partition months written to and the number of
// inserts committed.
func (ld *streamLoader) touched() ([]int64, int) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ms := make([]int64, 0, len(ld.months))
	for m := range ld.months {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return ms, ld.inserts
}

func (ld *streamLoader) close() error {
	ld.send()
	close(ld.items)
	<-ld.done
	return ld.failed()
}

func (ld *streamLoader) fail(err error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if ld.err == nil {
		ld.err = err
	}
}

func (ld *streamLoader) checkOwned() error {
	if ld.owned == nil {
		return nil
	}
	return ld.owned()
}

func (ld *streamLoader) month(r Record) int64 {
	if ld.part >= 0 && ld.part < len(r.Values) {
		if t, ok := r.Values[ld.part].(time.Time); ok {
			return monthOf(t)
		}
	}
	return 0
}

// openInsert is an insert in progress for one month.
type openInsert struct {
	ins      Insert
	firstSeq uint64 // sequence number of its first row
	opened   time.Time
}

// streamWriter is the state of the writer goroutine.
type streamWriter struct {
	ld      *streamLoader
	ctx     context.Context
	open    map[int64]*openInsert
	rows    int    // rows in open inserts
	seq     uint64 // rows handed over so far
	pending []loadMark
	stored  time.Time // when watermarks were last stored
}

// run is the writer goroutine.
func (ld *streamLoader) run(ctx context.Context) {
	defer close(ld.done)
	sw := &streamWriter{ld: ld, ctx: ctx, open: map[int64]*openInsert{}, stored: time.Now()}
	idle := time.NewTimer(idleCommit)
	defer idle.Stop()
	for {
		var it streamItem
		var ok bool
		select {
		case it, ok = <-ld.items:
		default:
			// the reader is behind: wait, and commit what is in if it
			// stays behind
			idle.Reset(idleCommit)
			select {
			case it, ok = <-ld.items:
			case <-idle.C:
				if ld.failed() == nil && (len(sw.open) > 0 || len(sw.pending) > 0) {
					if err := sw.end(func(int64) bool { return true }, true); err != nil {
						sw.abort()
						ld.fail(err)
					}
				}
				continue
			}
		}
		if !ok {
			break
		}
		if ld.failed() != nil {
			continue // drain: nothing after a failed insert is written or committed
		}
		if err := sw.handle(it); err != nil {
			sw.abort()
			ld.fail(err)
		}
	}
	if ld.failed() == nil {
		if err := sw.end(func(int64) bool { return true }, true); err != nil {
			ld.fail(err)
		}
	}
	sw.abort() // whatever a failure left open
}

func (sw *streamWriter) handle(it streamItem) error {
	ld := sw.ld
	all := func(int64) bool { return true }
	switch {
	case it.recs != nil:
		for _, r := range it.recs {
			m := int64(0) // a short run's rows go in one insert: ClickHouse still writes a part per month
			if !ld.lazy {
				m = ld.month(r)
			}
			o := sw.open[m]
			if o == nil && len(sw.open) >= maxOpenInserts {
				first := true
				var oldest int64
				for x := range sw.open {
					if first || x < oldest {
						oldest, first = x, false
					}
				}
				if err := sw.end(func(x int64) bool { return x == oldest }, false); err != nil {
					return err
				}
			}
			if o == nil {
				if err := ld.checkOwned(); err != nil {
					return err
				}
				ins, err := ld.w.OpenInsert(sw.ctx, ld.accountID, ld.entity)
				if err != nil {
					return err
				}
				o = &openInsert{ins: ins, firstSeq: sw.seq, opened: time.Now()}
				sw.open[m] = o
			}
			if err := o.ins.Add(r); err != nil {
				delete(sw.open, m) // abandoned by Add
				return err
			}
			sw.seq++
			sw.rows++
			if o.ins.Rows() >= ld.insertRows {
				if err := sw.end(func(x int64) bool { return x == m }, false); err != nil {
					return err
				}
			} else if sw.rows >= ld.insertRows {
				if err := sw.end(func(x int64) bool { return x == sw.fullest() }, false); err != nil {
					return err
				}
			}
		}
	case !it.start.IsZero():
		if ld.lazy {
			return nil
		}
		before := monthOf(it.start) - int64(it.lag)
		return sw.end(func(x int64) bool { return x < before }, false)
	case it.mark.barrier():
		return sw.end(all, true)
	default:
		it.mark.seq = sw.seq
		sw.pending = append(sw.pending, it.mark)
		switch {
		case ld.lazy:
		case len(sw.open) == 0:
			// nothing to wait for: it goes with the next commit's
			// watermarks, or on its own once commitAfter has passed
			if time.Since(sw.stored) >= commitAfter {
				return sw.end(all, true)
			}
		case time.Since(sw.oldest()) >= commitAfter:
			return sw.end(all, true)
		}
	}
	return nil
}

func (sw *streamWriter) fullest() int64 {
	best, n := int64(0), -1
	for m, o := range sw.open {
		if o.ins.Rows() > n {
			best, n = m, o.ins.Rows()
		}
	}
	return best
}

func (sw *streamWriter) oldest() time.Time {
	t := time.Now()
	for _, o := range sw.open {
		if o.opened.Before(t) {
			t = o.opened
		}
	}
	return t
}

// end commits the open inserts of the months which; then, when it committed
// any or store is set, stores the watermarks whose rows are all in. (A
// watermark stored later than it could be costs a longer re-read after a
// crash, nothing else; one stored per window would cost a ClickHouse insert
// per window, and a first sync reads years of windows that are mostly empty
// for a young account.)
func (sw *streamWriter) end(which func(month int64) bool, store bool) error {
	ld := sw.ld
	var months []int64
	for m := range sw.open {
		if which(m) {
			months = append(months, m)
		}
	}
	slices.Sort(months)
	if len(months) > 0 {
		if err := ld.checkOwned(); err != nil {
			return err
		}
	}
	for _, m := range months {
		o := sw.open[m]
		delete(sw.open, m)
		n := o.ins.Rows()
		sw.rows -= n
		if err := o.ins.Commit(); err != nil {
			return err
		}
		ld.mu.Lock()
		ld.rows += uint64(n)
		ld.inserts++
		ld.months[m] = true
		ld.mu.Unlock()
	}
	if len(months) == 0 && !store {
		return nil
	}
	// a watermark is stored once no open insert holds a row read before it
	oldest := sw.seq
	for _, o := range sw.open {
		oldest = min(oldest, o.firstSeq)
	}
	var done []loadMark
	keep := sw.pending[:0]
	for _, m := range sw.pending {
		if m.seq <= oldest {
			done = append(done, m)
		} else {
			keep = append(keep, m)
		}
	}
	sw.pending = keep
	marks := latestPerKey(done)
	if len(marks) > 0 {
		if err := ld.checkOwned(); err != nil {
			return err
		}
		sw.stored = time.Now()
	}
	return storeMarks(sw.ctx, ld.s.State, marks)
}

// abort drops every open insert.
func (sw *streamWriter) abort() {
	for m, o := range sw.open {
		o.ins.Abort()
		delete(sw.open, m)
	}
}

// storeMarks stores watermarks, in one write when the store can.
func storeMarks(ctx context.Context, st StateStore, marks []loadMark) error {
	if b, ok := st.(WatermarkBatcher); ok && len(marks) > 1 {
		all := make(map[WatermarkKey]time.Time, len(marks))
		for _, m := range marks {
			all[*m.key] = m.mark
		}
		return b.SetWatermarks(ctx, all)
	}
	for _, m := range marks {
		if err := st.SetWatermark(ctx, *m.key, m.mark); err != nil {
			return err
		}
	}
	return nil
}
