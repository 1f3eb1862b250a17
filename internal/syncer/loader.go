package syncer

import (
	"context"
	"slices"
	"sync"
	"time"
)

// loader overlaps loading with extraction: the pass queues rows and
// watermarks while a goroutine inserts them. A watermark is stored only after
// every row read before it was acknowledged by ClickHouse.
//
// Rows wait in one buffer per partition month: every month an insert
// touches costs ClickHouse a part (on a 46-column table some 30 ms, more
// than inserting a few thousand rows), so the loader inserts a month once
// the scan has moved past it rather than a piece of it with every window,
// when it can. A scan reads its windows oldest first, and a record's
// partition date (creation) is not after the date the scan filters on (its
// event, last update or locking), so when a window ending in month M is
// read, the months before M are complete. (A record that breaks the rule
// costs an extra part, nothing else: watermarks follow the order rows were
// read in, not months.) The writer goroutine, whenever it is free, inserts,
// in this order of preference:
//
//   - at the end of a scan (another watermark key), for a flush, once
//     maxPendingMarks windows wait for their watermark, and on close:
//     everything read before that point;
//   - after a window: the months it completed;
//   - when 3/4 of batchSize rows wait: up to half of batchSize of the
//     fullest month, so that reading can go on meanwhile;
//   - after a window, when no month is complete: everything up to it.
//
// and then stores the watermarks whose rows are all in. So while ClickHouse
// keeps up (the usual case against the real API), every window is committed
// as soon as it is read; when it falls behind, windows read meanwhile share
// inserts, month by month. A short run is lazy (see newLoader).
//
// Memory is bounded by batchSize: the loader holds at most that many rows,
// waiting and being inserted together, and reading waits while it is full.
type loader struct {
	s         *Syncer
	accountID string
	entity    Entity
	part      int // partition column index, or -1
	batchSize int
	lazy      bool // commit at the end only (a short run)

	mu       sync.Mutex
	cond     *sync.Cond           // buffers, marks, the insert in flight or closed changed
	buffers  map[int64]*monthRows // rows read and not yet taken, by partition month
	buffered int                  // rows in buffers
	seq      uint64               // rows added so far
	marks    []loadMark           // watermarks and barriers not stored yet
	lastKey  *WatermarkKey        // of the latest commit
	inFlight int                  // rows of the insert running now
	closed   bool
	err      error
	rows     uint64 // rows acknowledged by ClickHouse
	done     chan struct{}
	owned    func() error // nil, or ErrLockLost once nothing may be written
}

// monthRows are the waiting rows of one partition month, with their
// sequence numbers (ascending).
type monthRows struct {
	recs []Record
	seqs []uint64
}

// loadMark is a watermark that may be stored once every row added before it
// (sequence numbers below seq) is in ClickHouse. A barrier (key nil) stores
// nothing but has those rows inserted now.
type loadMark struct {
	seq  uint64
	key  *WatermarkKey
	mark time.Time
}

func (m loadMark) barrier() bool { return m.key == nil }

// maxPendingMarks bounds how many read windows may wait for their
// watermark.
const maxPendingMarks = 16

// newLoader starts a loader. A lazy one (for a short run, such as an
// incremental run whose scans are a window each) puts what it reads in as
// few inserts as its bounds allow and its watermarks in one write, when the
// run ends or maxPendingMarks windows wait, instead of round trips per
// window; if the run is cut short, those few windows are read again.
func newLoader(ctx context.Context, s *Syncer, accountID string, e Entity, batchSize int, lazy bool) *loader {
	return newGuardedLoader(ctx, s, accountID, e, batchSize, lazy, nil)
}

// newGuardedLoader is newLoader whose every insert and watermark first asks
// owned (nil: always owned), so that nothing is written once the account's
// lock is lost.
func newGuardedLoader(ctx context.Context, s *Syncer, accountID string, e Entity, batchSize int, lazy bool, owned func() error) *loader {
	ld := &loader{s: s, accountID: accountID, entity: e, part: Tables[e].Partition, batchSize: max(batchSize, 2),
		lazy: lazy, buffers: map[int64]*monthRows{}, done: make(chan struct{}), owned: owned}
	ld.cond = sync.NewCond(&ld.mu)
	go ld.run(ctx)
	return ld
}

func monthOf(t time.Time) int64 {
	t = t.UTC()
	return int64(t.Year())*12 + int64(t.Month()) - 1
}

func (ld *loader) month(r Record) int64 {
	if ld.part >= 0 && ld.part < len(r.Values) {
		if t, ok := r.Values[ld.part].(time.Time); ok {
			return monthOf(t)
		}
	}
	return 0
}

// take waits for work and returns the rows to insert and the watermarks to
// store after them; ok is false once the loader is closed and drained.
// Called with ld.mu held.
func (ld *loader) take() (rows []Record, marks []loadMark, ok bool) {
	for {
		if ld.err != nil {
			// nothing after a failed insert may be committed: drop it all
			ld.buffers, ld.buffered, ld.marks = map[int64]*monthRows{}, 0, nil
			ld.cond.Broadcast()
			if ld.closed {
				return nil, nil, false
			}
			ld.cond.Wait()
			continue
		}
		barrier := -1 // the barrier furthest on
		for i, m := range ld.marks {
			if m.barrier() && (barrier < 0 || m.seq > ld.marks[barrier].seq) {
				barrier = i
			}
		}
		switch {
		case ld.closed:
			rows = ld.takeBefore(ld.seq)
		case barrier >= 0:
			rows = ld.takeBefore(ld.marks[barrier].seq)
		case len(ld.marks) >= maxPendingMarks:
			rows = ld.takeBefore(ld.marks[len(ld.marks)-1].seq)
		case !ld.lazy && len(ld.marks) > 0 && ld.hasMonthsBefore(ld.completeMonth()):
			rows = ld.takeMonthsBefore(ld.completeMonth())
		case ld.buffered >= ld.batchSize*3/4:
			rows = ld.takeFullest(ld.batchSize / 2)
		case !ld.lazy && len(ld.marks) > 0:
			// free, and nothing complete: ClickHouse keeps up, commit now
			rows = ld.takeBefore(ld.marks[len(ld.marks)-1].seq)
		}
		marks = ld.completeMarks()
		if len(rows) > 0 || len(marks) > 0 {
			ld.inFlight = len(rows)
			ld.cond.Broadcast() // room to read
			return rows, latestPerKey(marks), true
		}
		if ld.closed {
			return nil, nil, false
		}
		ld.cond.Wait()
	}
}

// completeMarks removes and returns the marks every row before which has
// been taken (it is inserted or being inserted).
func (ld *loader) completeMarks() []loadMark {
	oldest := ld.seq
	for _, b := range ld.buffers {
		oldest = min(oldest, b.seqs[0])
	}
	var done []loadMark
	keep := ld.marks[:0]
	for _, m := range ld.marks {
		if m.seq <= oldest {
			done = append(done, m)
		} else {
			keep = append(keep, m)
		}
	}
	ld.marks = keep
	return done
}

// takeBefore takes the rows added before sequence number seq, every month.
func (ld *loader) takeBefore(seq uint64) []Record {
	var rows []Record
	for _, m := range ld.sortedMonths() {
		b := ld.buffers[m]
		n, _ := slices.BinarySearch(b.seqs, seq)
		rows = append(rows, b.recs[:n]...)
		ld.drop(m, b, n)
	}
	return rows
}

// completeMonth is the month of the latest window's end: the months before
// it are complete. Called with marks queued.
func (ld *loader) completeMonth() int64 {
	for i := len(ld.marks) - 1; i >= 0; i-- {
		if m := ld.marks[i]; !m.barrier() {
			return monthOf(m.mark)
		}
	}
	return -1
}

func (ld *loader) hasMonthsBefore(month int64) bool {
	for m := range ld.buffers {
		if m < month {
			return true
		}
	}
	return false
}

// takeMonthsBefore takes every row of the months before month.
func (ld *loader) takeMonthsBefore(month int64) []Record {
	var rows []Record
	for _, m := range ld.sortedMonths() {
		if m < month {
			b := ld.buffers[m]
			rows = append(rows, b.recs...)
			ld.drop(m, b, len(b.recs))
		}
	}
	return rows
}

// takeFullest takes at most n of the oldest rows of the fullest month.
func (ld *loader) takeFullest(n int) []Record {
	var month int64
	var fullest *monthRows
	for _, m := range ld.sortedMonths() {
		if b := ld.buffers[m]; fullest == nil || len(b.recs) > len(fullest.recs) {
			month, fullest = m, b
		}
	}
	n = min(n, len(fullest.recs))
	rows := fullest.recs[:n:n]
	ld.drop(month, fullest, n)
	return rows
}

func (ld *loader) sortedMonths() []int64 {
	ms := make([]int64, 0, len(ld.buffers))
	for m := range ld.buffers {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return ms
}

// drop removes the first n rows of month m's buffer.
func (ld *loader) drop(m int64, b *monthRows, n int) {
	ld.buffered -= n
	if n == len(b.recs) {
		delete(ld.buffers, m)
		return
	}
	// copy the rest, so the taken rows are not kept alive by this buffer
	b.recs = append([]Record(nil), b.recs[n:]...)
	b.seqs = append([]uint64(nil), b.seqs[n:]...)
}

// latestPerKey keeps, for each watermark key, its latest mark, in the order
// the keys were first queued, and drops barriers.
func latestPerKey(marks []loadMark) []loadMark {
	var out []loadMark
	for _, m := range marks {
		if m.barrier() {
			continue
		}
		found := false
		for i := range out {
			if *out[i].key == *m.key {
				out[i] = m
				found = true
				break
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

func (ld *loader) run(ctx context.Context) {
	defer close(ld.done)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	for {
		rows, marks, ok := ld.take()
		if !ok {
			return
		}
		ld.mu.Unlock()
		err := ld.store(ctx, rows, marks)
		ld.mu.Lock()
		if err != nil && ld.err == nil {
			ld.err = err
		}
		if err == nil {
			ld.rows += uint64(len(rows))
		}
		ld.inFlight = 0
		ld.cond.Broadcast()
	}
}

// store inserts rows, then stores the watermarks they complete.
func (ld *loader) store(ctx context.Context, rows []Record, marks []loadMark) error {
	if ld.owned != nil {
		if err := ld.owned(); err != nil {
			return err
		}
	}
	if len(rows) > 0 {
		if err := ld.s.Writer.Write(ctx, ld.accountID, ld.entity, rows); err != nil {
			return err
		}
	}
	if ld.owned != nil {
		if err := ld.owned(); err != nil {
			return err
		}
	}
	return storeMarks(ctx, ld.s.State, marks)
}

func (ld *loader) loaded() uint64 {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.rows
}

func (ld *loader) failed() error {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.err
}

// add queues a row, waiting while the loader holds batchSize rows. After a
// failed insert it drops the row: the pass is ending.
func (ld *loader) add(r Record) {
	month := ld.month(r)
	ld.mu.Lock()
	defer ld.mu.Unlock()
	for ld.err == nil && ld.buffered+ld.inFlight >= ld.batchSize {
		ld.cond.Wait()
	}
	if ld.err != nil {
		return
	}
	b := ld.buffers[month]
	if b == nil {
		b = &monthRows{}
		ld.buffers[month] = b
	}
	b.recs = append(b.recs, r)
	b.seqs = append(b.seqs, ld.seq)
	ld.seq++
	ld.buffered++
	if ld.buffered == ld.batchSize*3/4 {
		ld.cond.Broadcast()
	}
}

// flush has every row read so far inserted now, without a watermark.
func (ld *loader) flush() { ld.queueMark(loadMark{}) }

// commit queues the watermark k = t for a window that ends at t: it is
// stored once every row read before it is in ClickHouse.
func (ld *loader) commit(k WatermarkKey, t time.Time) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.lastKey = &k
	ld.marks = append(ld.marks, loadMark{seq: ld.seq, key: &k, mark: t})
	ld.cond.Broadcast()
}

// window: the old loader tracks complete months by the watermarks.
func (ld *loader) window(DateFilter, time.Time) {}

// newScan says a new scan starts: its windows go back in time, so what the
// previous scans read is inserted now (not in a lazy run).
func (ld *loader) newScan() {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if ld.lastKey != nil && !ld.lazy {
		ld.marks = append(ld.marks, loadMark{seq: ld.seq})
		ld.cond.Broadcast()
	}
}

func (ld *loader) queueMark(m loadMark) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	m.seq = ld.seq
	ld.marks = append(ld.marks, m)
	ld.cond.Broadcast()
}

// close inserts what is queued, stores the watermarks, waits for the writer
// and returns the first error.
func (ld *loader) close() error {
	ld.mu.Lock()
	ld.closed = true
	ld.cond.Broadcast()
	ld.mu.Unlock()
	<-ld.done
	return ld.failed()
}
