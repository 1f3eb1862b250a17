package syncer

import (
	"context"
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
	// commitAfter: an insert that has been open this long ends at the next
	// watermark, so a backfill against a slow API still commits every few
	// seconds.
	commitAfter = 5 * time.Second
	// idleCommit: an insert the reader has not fed for this long ends (its
	// watermarks are stored), so a slow page never holds an INSERT open
	// towards the server's receive timeout.
	idleCommit = 2 * time.Second
)

// streamLoader overlaps reading with loading through one INSERT at a time
// (StreamWriter): the reader hands rows over in small chunks and a
// goroutine adds them to the open insert, which sends them to ClickHouse in
// data blocks, so the run holds at most batchSize rows in chunks plus one
// block, however large the insert. The insert ends (Commit), and the
// watermarks of the windows read before its last row are stored, when
//
//   - it carries insertRows rows;
//   - it has been open commitAfter and a watermark waits;
//   - the reader has not fed it for idleCommit (the API is the slower
//     side: commit what was read);
//   - a scan ends (another scan name: its windows go back in time), on a
//     flush, and on close.
//
// A short run (lazy) ends its insert only for size, idleness and close, and
// so commits once. A watermark is stored only after every row read before it
// was acknowledged; after a failed insert nothing more is committed and the
// pass ends (an interrupted write is retried by reading again, see
// pass.activity).
type streamLoader struct {
	s          *Syncer
	w          StreamWriter
	accountID  string
	entity     Entity
	insertRows int
	lazy       bool

	chunk []Record
	items chan streamItem
	done  chan struct{}

	mu   sync.Mutex
	err  error
	rows uint64 // rows acknowledged by ClickHouse
}

// streamItem is a chunk of rows or a mark, in reading order.
type streamItem struct {
	recs []Record
	mark loadMark
}

func newStreamLoader(ctx context.Context, s *Syncer, w StreamWriter, accountID string, e Entity, batchSize, insertRows int, lazy bool) *streamLoader {
	if insertRows <= 0 {
		insertRows = DefaultInsertRows
	}
	ld := &streamLoader{s: s, w: w, accountID: accountID, entity: e, insertRows: insertRows, lazy: lazy,
		items: make(chan streamItem, max(batchSize/chunkRows, 1)), done: make(chan struct{})}
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

func (ld *streamLoader) commit(k WatermarkKey, t time.Time) {
	ld.send()
	ld.items <- streamItem{mark: loadMark{key: &k, mark: t}}
}

// newScan ends the insert before a new scan (not in a lazy run): its
// windows go back in time, into months the insert has already touched.
func (ld *streamLoader) newScan() {
	if ld.lazy {
		return
	}
	ld.send()
	ld.items <- streamItem{mark: loadMark{}}
}

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

// run is the writer goroutine.
func (ld *streamLoader) run(ctx context.Context) {
	defer close(ld.done)
	var (
		ins     Insert
		opened  time.Time
		pending []loadMark // marks whose rows are all in the open insert
	)
	// end commits the open insert and stores the pending watermarks.
	end := func() error {
		if ins != nil {
			n := ins.Rows()
			err := ins.Commit()
			ins = nil
			if err != nil {
				return err
			}
			ld.mu.Lock()
			ld.rows += uint64(n)
			ld.mu.Unlock()
		}
		marks := latestPerKey(pending)
		pending = nil
		return storeMarks(ctx, ld.s.State, marks)
	}
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
				if ld.failed() == nil && (ins != nil || len(pending) > 0) {
					if err := end(); err != nil {
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
		var err error
		switch {
		case it.recs != nil:
			for _, r := range it.recs {
				if ins == nil {
					if ins, err = ld.w.OpenInsert(ctx, ld.accountID, ld.entity); err != nil {
						ins = nil
						break
					}
					opened = time.Now()
				}
				if err = ins.Add(r); err != nil {
					ins = nil
					break
				}
				if ins.Rows() >= ld.insertRows {
					if err = end(); err != nil {
						break
					}
				}
			}
		case it.mark.barrier():
			err = end()
		default:
			pending = append(pending, it.mark)
			if !ld.lazy && (ins == nil || time.Since(opened) >= commitAfter) {
				err = end()
			}
		}
		if err != nil {
			if ins != nil {
				ins.Abort()
				ins = nil
			}
			ld.fail(err)
		}
	}
	if ld.failed() == nil {
		if err := end(); err != nil {
			ld.fail(err)
		}
	} else if ins != nil {
		ins.Abort()
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
