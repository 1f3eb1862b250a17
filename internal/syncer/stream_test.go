package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// streamEvents is a StreamWriter and StateStore that records, in order,
// what a streamLoader asked of ClickHouse: "insert a,b" when an insert is
// committed, "abort a" when one is dropped, "mark key=t" for a watermark.
type streamEvents struct {
	loadEvents
	gate      chan struct{} // when set, Add waits on it
	failNext  error         // returned by the next Commit
	added     int           // rows handed to inserts so far
	maxInsert int
}

type fakeInsert struct {
	ev   *streamEvents
	recs []string
}

func (s *streamEvents) OpenInsert(ctx context.Context, accountID string, e Entity) (Insert, error) {
	return &fakeInsert{ev: s}, nil
}

func (f *fakeInsert) Add(r Record) error {
	f.ev.mu.Lock()
	gate := f.ev.gate
	f.ev.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	f.ev.added++
	f.recs = append(f.recs, r.ID)
	return nil
}

func (f *fakeInsert) Rows() int { return len(f.recs) }

func (f *fakeInsert) Commit() error {
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	if err := f.ev.failNext; err != nil {
		f.ev.failNext = nil
		f.ev.events = append(f.ev.events, "insert failed "+strings.Join(f.recs, ","))
		return err
	}
	f.ev.maxInsert = max(f.ev.maxInsert, len(f.recs))
	f.ev.events = append(f.ev.events, "insert "+strings.Join(f.recs, ","))
	return nil
}

func (f *fakeInsert) Abort() {
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	f.ev.events = append(f.ev.events, "abort "+strings.Join(f.recs, ","))
}

func newTestStreamLoader(t *testing.T, batch, insertRows int, lazy bool) (*streamLoader, *streamEvents) {
	ev := &streamEvents{}
	s := &Syncer{Writer: ev, State: ev}
	return newStreamLoader(t.Context(), s, ev, "acct", Actions, batch, insertRows, lazy, nil), ev
}

func (s *streamEvents) Write(ctx context.Context, accountID string, e Entity, recs []Record) error {
	return errors.New("a streamLoader must not call Write")
}

// An insert carries at most insertRows rows; a watermark is stored right
// after the insert that holds the last row read before it, never earlier.
func TestStreamLoaderCommitsEveryInsertRowsRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 3, false)
		for i := range 4 {
			ld.add(loaderRec(fmt.Sprint(i)))
		}
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		for i := 4; i < 7; i++ {
			ld.add(loaderRec(fmt.Sprint(i)))
		}
		ld.commit(loaderKey("event"), time.Unix(20, 0))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "insert 0,1,2", "insert 3,4,5", "mark event=10", "insert 6", "mark event=20")
		if ld.loaded() != 7 {
			t.Errorf("loaded %d rows, want 7", ld.loaded())
		}
	})
}

// Windows read while an insert is open share it: one insert for many
// windows (and campaigns), each watermark stored once it is in.
func TestStreamLoaderSharesAnInsertAcrossWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 100, false)
		a := WatermarkKey{AccountID: "acct", Entity: Actions, CampaignID: "a", Scan: "event"}
		b := WatermarkKey{AccountID: "acct", Entity: Actions, CampaignID: "b", Scan: "event"}
		ld.add(loaderRec("a1"))
		ld.commit(a, time.Unix(10, 0))
		ld.add(loaderRec("b1"))
		ld.commit(b, time.Unix(10, 0))
		ld.add(loaderRec("a2"))
		ld.commit(a, time.Unix(20, 0))
		synctest.Wait()
		equalEvents(t, ev.log()) // still open: nothing committed
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "insert a1,b1,a2", "mark event=20", "mark event=10")
	})
}

// Each partition month has its insert; a month's insert ends once a window
// starting in a later month begins, and a watermark waits for every insert
// holding a row read before it.
func TestStreamLoaderInsertsOnePerMonth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 100, false)
		ld.window(ByEvent, day(1, 1))
		ld.add(monthRec("a1", 1))
		ld.add(monthRec("b1", 2))
		ld.commit(loaderKey("event"), day(2, 14))
		synctest.Wait()
		equalEvents(t, ev.log())       // both months still open
		ld.window(ByEvent, day(2, 15)) // January is complete
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a1") // the watermark waits for b1
		ld.add(monthRec("b2", 2))
		ld.add(monthRec("a2", 1)) // late: a new insert for January
		ld.commit(loaderKey("event"), day(3, 31))
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a1")
		ld.window(ByEvent, day(4, 1))
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a1", "insert a2", "insert b1,b2", "mark event="+fmt.Sprint(day(3, 31).Unix()))
		ld.add(monthRec("c", 3))
		ld.commit(loaderKey("event"), day(5, 14))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log()[4:], "insert c", "mark event="+fmt.Sprint(day(5, 14).Unix()))
		if months, inserts := ld.touched(); fmt.Sprint(months) != fmt.Sprint([]int64{monthOf(day(1, 1)), monthOf(day(2, 1)), monthOf(day(3, 1))}) || inserts != 4 {
			t.Errorf("touched %v in %d inserts", months, inserts)
		}
	})
}

// When the reader is the slower side (a slow API), what it read is
// committed after idleCommit, and an insert open for commitAfter ends at
// the next watermark.
func TestStreamLoaderCommitsWhenTheReaderIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 100, false)
		ld.add(loaderRec("a"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		synctest.Wait()
		equalEvents(t, ev.log())
		time.Sleep(idleCommit + time.Second)
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a", "mark event=10")

		// a reader that never pauses for idleCommit but is slow overall
		for i := range 40 {
			ld.add(loaderRec(fmt.Sprint(i)))
			time.Sleep(idleCommit / 2)
			ld.commit(loaderKey("event"), time.Unix(int64(100+i), 0))
		}
		synctest.Wait()
		log := ev.log()[2:]
		// the first row went in at 1s, so the window read at 31s is the
		// first after commitAfter
		if len(log) < 2 || !strings.HasPrefix(log[0], "insert 0,1,2,") || !strings.HasSuffix(log[0], ",30") || log[1] != "mark event=130" {
			t.Errorf("after %s of reading, events %q; want the insert of the windows read so far and its watermark", commitAfter, log)
		}
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// The loader holds at most about batchSize rows: reading waits while the
// writer is stuck.
func TestStreamLoaderBoundsTheRowsItHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 2*chunkRows, 1_000_000, false)
		ev.gate = make(chan struct{})
		var mu sync.Mutex
		added := 0
		go func() {
			for i := range 20 * chunkRows {
				ld.add(loaderRec(fmt.Sprint(i)))
				mu.Lock()
				added++
				mu.Unlock()
			}
			ld.commit(loaderKey("event"), time.Unix(10, 0))
		}()
		synctest.Wait()
		mu.Lock()
		n := added
		mu.Unlock()
		// one chunk in the writer's hands, two in the queue, one being filled
		if bound := 4 * chunkRows; n > bound {
			t.Errorf("%d rows read while the writer was stuck; want at most %d", n, bound)
		}
		close(ev.gate)
		synctest.Wait()
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		if ev.added != 20*chunkRows {
			t.Errorf("%d rows inserted, want %d", ev.added, 20*chunkRows)
		}
	})
}

// After a failed insert nothing more is written or committed, reading is
// not held up, and close reports the error.
func TestStreamLoaderCommitsNothingAfterAFailedInsert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 2, false)
		boom := fmt.Errorf("lost connection: %w", ErrWriteInterrupted)
		ev.failNext = boom
		ld.add(loaderRec("a"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		ld.add(loaderRec("b"))
		ld.commit(loaderKey("event"), time.Unix(15, 0))
		synctest.Wait()
		if !errors.Is(ld.failed(), ErrWriteInterrupted) {
			t.Fatalf("failed() = %v", ld.failed())
		}
		for i := range 3 * chunkRows { // must not block
			ld.add(loaderRec(fmt.Sprint(i)))
		}
		ld.commit(loaderKey("event"), time.Unix(20, 0))
		if err := ld.close(); !errors.Is(err, boom) {
			t.Fatalf("close() = %v", err)
		}
		equalEvents(t, ev.log(), "insert failed a,b")
	})
}

// A short run inserts what it read once (one insert, whatever the months)
// and stores its watermarks in one write, at the end.
func TestStreamLoaderShortRunCommitsOnceAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &streamEvents{}
		ld := newStreamLoader(t.Context(), &Syncer{Writer: ev, State: batchEvents{&ev.loadEvents}}, ev, "acct", Actions, 1000, 100, true, nil)
		ld.commit(loaderKey("event"), day(3, 1)) // an empty window
		ld.newScan()
		ld.add(monthRec("a", 1))
		ld.commit(loaderKey("updated"), day(3, 1))
		ld.newScan()
		ld.add(monthRec("b", 2))
		ld.commit(loaderKey("locking"), day(3, 1))
		synctest.Wait()
		equalEvents(t, ev.log())
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		d := day(3, 1).Unix()
		equalEvents(t, ev.log(), "insert a,b", fmt.Sprintf("marks event=%d locking=%d updated=%d", d, d, d))
	})
}

// At most maxOpenInserts inserts are open at once (each holds a
// connection): a row of another month ends the oldest month's first.
func TestStreamLoaderBoundsItsOpenInserts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 100, false)
		ld.window(ByLocking, day(1, 1))
		for m := 1; m <= maxOpenInserts+1; m++ {
			ld.add(monthRec(fmt.Sprint("m", m), m))
		}
		ld.commit(loaderKey("locking"), day(5, 1))
		synctest.Wait()
		equalEvents(t, ev.log(), "insert m1")
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "insert m1", "insert m2", "insert m3", "insert m4", "mark locking="+fmt.Sprint(day(5, 1).Unix()))
	})
}

// Watermarks of empty windows wait for the next commit instead of costing a
// write each; they are stored at the latest on close, and once commitAfter
// has passed without a commit.
func TestStreamLoaderStoresEmptyWindowsWatermarksTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestStreamLoader(t, 1000, 100, false)
		a := WatermarkKey{AccountID: "acct", Entity: Actions, CampaignID: "a", Scan: "event"}
		b := WatermarkKey{AccountID: "acct", Entity: Actions, CampaignID: "b", Scan: "event"}
		for i := range 10 {
			ld.window(ByEvent, day(1, 1+i))
			ld.commit(a, time.Unix(int64(10+i), 0))
			ld.commit(b, time.Unix(int64(10+i), 0))
		}
		synctest.Wait()
		equalEvents(t, ev.log()) // nothing stored yet: no write per empty window
		ld.add(loaderRec("a1"))
		ld.commit(a, time.Unix(30, 0))
		ld.flush()
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a1", "mark event=30", "mark event=19")
		time.Sleep(commitAfter)
		ld.window(ByEvent, day(3, 1))
		ld.commit(b, time.Unix(40, 0)) // commitAfter has passed: stored now
		synctest.Wait()
		equalEvents(t, ev.log(), "insert a1", "mark event=30", "mark event=19", "mark event=40")
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}
