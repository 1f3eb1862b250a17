package syncer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// loadEvents records, in order, what a loader asked of ClickHouse. Writes
// can be held (gate) to play a slow server.
type loadEvents struct {
	mu     sync.Mutex
	events []string // "write a,b,c" or "mark key=t"
	gate   chan struct{}
	fail   error // returned by the next write
	held   int   // rows of the write waiting at the gate
}

func (l *loadEvents) Write(ctx context.Context, accountID string, e Entity, recs []Record) error {
	l.mu.Lock()
	l.held = len(recs)
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = 0
	if err := l.fail; err != nil {
		l.fail = nil
		l.events = append(l.events, "write failed")
		return err
	}
	s := "write"
	for i, r := range recs {
		if i == 0 {
			s += " " + r.ID
		} else {
			s += "," + r.ID
		}
	}
	l.events = append(l.events, s)
	return nil
}

func (l *loadEvents) Watermark(ctx context.Context, k WatermarkKey) (time.Time, bool, error) {
	return time.Time{}, false, nil
}

func (l *loadEvents) SetWatermark(ctx context.Context, k WatermarkKey, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("mark %s=%d", k.Scan, t.Unix()))
	return nil
}

func (l *loadEvents) log() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

func newTestLoader(t *testing.T, batch int) (*loader, *loadEvents) {
	ev := &loadEvents{}
	s := &Syncer{Writer: ev, State: ev}
	return newLoader(t.Context(), s, "acct", Actions, batch, false), ev
}

func loaderKey(scan string) WatermarkKey {
	return WatermarkKey{AccountID: "acct", Entity: Actions, Scan: scan}
}

func loaderRec(id string) Record { return Record{ID: id} }

// monthRec is a row of the given month (1: January 2026) of the partition column.
func monthRec(id string, month int) Record {
	tb := Tables[Actions]
	vals := make([]any, len(tb.Columns))
	vals[tb.Partition] = time.Date(2026, time.Month(month), 15, 0, 0, 0, 0, time.UTC)
	return Record{ID: id, Values: vals}
}

func equalEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

func TestLoaderCommitsEachWindowWhileClickHouseKeepsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 100)
		ld.add(loaderRec("a"))
		ld.add(loaderRec("b"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		synctest.Wait()
		ld.add(loaderRec("c"))
		ld.commit(loaderKey("event"), time.Unix(20, 0))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "write a,b", "mark event=10", "write c", "mark event=20")
		if ld.rows != 3 {
			t.Errorf("rows %d", ld.rows)
		}
	})
}

// Windows read while an insert runs share the next insert, and only the
// latest watermark of each key is stored, after it.
func TestLoaderGroupsWindowsThatArriveDuringAnInsert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 100)
		ev.gate = make(chan struct{})
		ld.add(loaderRec("a"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		synctest.Wait() // the first insert is held at the gate
		ld.add(loaderRec("b"))
		ld.commit(loaderKey("event"), time.Unix(20, 0))
		ld.add(loaderRec("c"))
		ld.commit(loaderKey("event"), time.Unix(30, 0))
		ld.commit(loaderKey("updated"), time.Unix(30, 0)) // a second key at the same point
		ld.add(monthRec("d", 1))                          // a window not finished yet, in a month not complete
		close(ev.gate)
		synctest.Wait()
		equalEvents(t, ev.log(), "write a", "mark event=10", "write b,c", "mark event=30", "mark updated=30")
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log()[5:], "write d") // the unfinished window waits for its watermark or the end
	})
}

// The loader never holds more than batchSize rows: reading waits, and a
// window larger than that is inserted in halves while reading goes on.
func TestLoaderBoundsTheRowsItHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 4)
		ev.gate = make(chan struct{})
		added := make(chan int, 10)
		go func() {
			for i := range 10 {
				ld.add(loaderRec(fmt.Sprint(i)))
				added <- i
			}
			ld.commit(loaderKey("event"), time.Unix(10, 0))
			close(added)
		}()
		synctest.Wait()
		// two rows taken for an insert (held), two more queued: the bound
		if n := len(added); n != 4 || ev.held != 2 {
			t.Fatalf("%d rows added with %d in the held insert; want 4 and 2", n, ev.held)
		}
		close(ev.gate)
		for range added {
		}
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		// every row once, in order, in inserts of at most the bound, then the watermark
		log := ev.log()
		var ids []string
		for _, e := range log[:len(log)-1] {
			got := strings.Split(strings.TrimPrefix(e, "write "), ",")
			if len(got) > 4 {
				t.Errorf("%q: more rows than the bound of 4", e)
			}
			ids = append(ids, got...)
		}
		if strings.Join(ids, ",") != "0,1,2,3,4,5,6,7,8,9" || log[0] != "write 0,1" || log[len(log)-1] != "mark event=10" {
			t.Errorf("events %q", log)
		}
	})
}

// After a failed insert nothing is committed, reading is not held up, and
// close reports the error.
func TestLoaderCommitsNothingAfterAFailedInsert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 4)
		boom := errors.New("boom")
		ev.fail = boom
		ld.add(loaderRec("a"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		synctest.Wait()
		if !errors.Is(ld.failed(), boom) {
			t.Fatalf("failed() = %v", ld.failed())
		}
		for i := range 20 { // must not block
			ld.add(loaderRec(fmt.Sprint(i)))
		}
		ld.commit(loaderKey("event"), time.Unix(20, 0))
		if err := ld.close(); !errors.Is(err, boom) {
			t.Fatalf("close() = %v", err)
		}
		equalEvents(t, ev.log(), "write failed")
	})
}

// day is midnight UTC of a day in 2026.
func day(month, d int) time.Time { return time.Date(2026, time.Month(month), d, 0, 0, 0, 0, time.UTC) }

// While an insert runs, the windows read meanwhile are inserted month by
// month once the scan has read past a month, not a piece of it with every
// window; a watermark waits until its rows are in.
func TestLoaderInsertsCompleteMonthsWhenBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 100)
		ev.gate = make(chan struct{})
		ld.add(monthRec("x", 1))
		ld.commit(loaderKey("event"), day(1, 5))
		synctest.Wait() // "x" is being inserted, held
		ld.add(monthRec("j1", 1))
		ld.add(monthRec("j2", 1))
		ld.commit(loaderKey("event"), day(1, 20)) // January is not complete yet
		ld.add(monthRec("m1", 3))
		ld.add(monthRec("f1", 2))
		ld.add(monthRec("j3", 1))
		ld.commit(loaderKey("event"), day(3, 5)) // January and February are
		close(ev.gate)
		synctest.Wait()
		equalEvents(t, ev.log(), "write x", "mark event="+fmt.Sprint(day(1, 5).Unix()),
			"write j1,j2,j3,f1", "mark event="+fmt.Sprint(day(1, 20).Unix()),
			"write m1", "mark event="+fmt.Sprint(day(3, 5).Unix()))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A new scan (another watermark key) goes back in time: what the previous
// scan read is inserted with its watermark before the new scan's rows.
func TestLoaderInsertsThePreviousScanWhenANewOneStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 100)
		ev.gate = make(chan struct{})
		ld.add(monthRec("x", 1))
		ld.commit(loaderKey("event"), day(1, 5))
		synctest.Wait() // "x" is being inserted, held
		ld.add(monthRec("a", 3))
		ld.commit(loaderKey("event"), day(3, 15))
		ld.newScan()
		ld.add(monthRec("b", 1))
		ld.commit(loaderKey("updated"), day(1, 31))
		close(ev.gate)
		synctest.Wait()
		equalEvents(t, ev.log()[2:], "write a", "mark event="+fmt.Sprint(day(3, 15).Unix()),
			"write b", "mark updated="+fmt.Sprint(day(1, 31).Unix()))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A writer that cannot keep up inserts the fullest partition month alone:
// each month an insert touches costs ClickHouse a part.
func TestLoaderInsertsTheFullestMonthWhenBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 8)
		ev.gate = make(chan struct{})
		ld.add(monthRec("x", 1))
		ld.commit(loaderKey("event"), day(2, 1))
		synctest.Wait()                                                   // "x" is being inserted, held
		for _, id := range []string{"a1", "b1", "a2", "a3", "a4", "b2"} { // 3/4 of the bound
			ld.add(monthRec(id, map[byte]int{'a': 2, 'b': 3}[id[0]]))
		}
		ev.gate <- struct{}{} // x
		ev.gate <- struct{}{} // the fullest month
		synctest.Wait()
		equalEvents(t, ev.log(), "write x", "mark event="+fmt.Sprint(day(2, 1).Unix()), "write a1,a2,a3,a4")
		ld.commit(loaderKey("event"), day(4, 1))
		close(ev.gate)
		synctest.Wait()
		equalEvents(t, ev.log()[3:], "write b1,b2", "mark event="+fmt.Sprint(day(4, 1).Unix()))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// However busy the writer, a watermark waits for at most maxPendingMarks
// windows.
func TestLoaderCommitsAtLeastEveryFewWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 1000)
		for w := range maxPendingMarks {
			ld.add(monthRec(fmt.Sprint(w), 1+w%2))
			ld.commit(loaderKey("event"), time.Unix(int64(w), 0))
			if w == 0 {
				synctest.Wait()
				ev.gate = make(chan struct{}) // from now on the server is slow
			}
		}
		close(ev.gate)
		synctest.Wait()
		log := ev.log()
		if last := log[len(log)-1]; last != fmt.Sprintf("mark event=%d", maxPendingMarks-1) {
			t.Errorf("events %q: want the latest watermark stored", log)
		}
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A flush barrier writes what is queued without storing a watermark (a
// window whose records could not all be decoded).
func TestLoaderFlushWritesWithoutWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ld, ev := newTestLoader(t, 100)
		ld.add(loaderRec("a"))
		ld.flush()
		synctest.Wait()
		equalEvents(t, ev.log(), "write a")
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
	})
}

// batchEvents is loadEvents with a store that writes many watermarks at once.
type batchEvents struct{ *loadEvents }

func (b batchEvents) Watermarks(ctx context.Context, accountID string, e Entity) (map[WatermarkKey]time.Time, error) {
	return nil, nil
}

func (b batchEvents) SetWatermarks(ctx context.Context, marks map[WatermarkKey]time.Time) error {
	var scans []string
	for k, t := range marks {
		scans = append(scans, fmt.Sprintf("%s=%d", k.Scan, t.Unix()))
	}
	sort.Strings(scans)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, "marks "+strings.Join(scans, " "))
	return nil
}

// With a store that can, the watermarks an insert completes are stored in
// one write.
func TestLoaderStoresAGroupsWatermarksAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &loadEvents{}
		ld := newLoader(t.Context(), &Syncer{Writer: ev, State: batchEvents{ev}}, "acct", Actions, 100, false)
		ld.add(loaderRec("a"))
		ld.commit(loaderKey("event"), time.Unix(10, 0))
		ld.commit(loaderKey("clearing"), time.Unix(10, 0))
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "write a", "marks clearing=10 event=10")
	})
}

// A short run (an incremental one) inserts everything it read once, and
// stores its watermarks in one write, when it ends.
func TestLoaderShortRunCommitsOnceAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &loadEvents{}
		ld := newLoader(t.Context(), &Syncer{Writer: ev, State: batchEvents{ev}}, "acct", Actions, 100, true)
		ld.add(monthRec("a", 1))
		ld.commit(loaderKey("updated"), day(3, 1))
		ld.add(monthRec("b", 2))
		ld.commit(loaderKey("locking"), day(3, 1))
		synctest.Wait()
		equalEvents(t, ev.log())
		if err := ld.close(); err != nil {
			t.Fatal(err)
		}
		equalEvents(t, ev.log(), "write a,b", fmt.Sprintf("marks locking=%d updated=%d", day(3, 1).Unix(), day(3, 1).Unix()))
	})
}
