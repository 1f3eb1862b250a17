package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeWrites is the send of a groupCommit under test: each write blocks
// until the test lets it go, and what it carried is recorded.
type fakeWrites struct {
	mu      sync.Mutex
	batches [][]int
	started chan int   // the items of each write, as it starts
	release chan error // the result of each write, handed by the test
}

func newFakeWrites() *fakeWrites {
	return &fakeWrites{started: make(chan int, 100), release: make(chan error)}
}

func (f *fakeWrites) send(_ context.Context, items []int) error {
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(items))
	f.mu.Unlock()
	f.started <- len(items)
	return <-f.release
}

// waitQueued waits until n items wait for the write in flight.
func waitQueued(t *testing.T, g *groupCommit[int], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		queued := 0
		if g.next != nil {
			queued = len(g.next.items)
		}
		g.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued; want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: items arriving while a write is in flight go together in
// the next write; every caller returns only once the write holding its items
// is acknowledged, with that write's error, which reaches every caller of the
// batch and no other.
func TestGroupCommit(t *testing.T) {
	f := newFakeWrites()
	g := newGroupCommit(1, f.send)
	ctx := t.Context()

	results := make(chan string, 10)
	call := func(name string, items ...int) {
		go func() {
			err := g.do(ctx, items...)
			results <- fmt.Sprintf("%s: %v", name, err)
		}()
	}
	noResult := func() {
		t.Helper()
		select {
		case r := <-results:
			t.Fatalf("a caller returned before its write was acknowledged: %s", r)
		case <-time.After(20 * time.Millisecond):
		}
	}

	// An idle committer writes at once.
	call("a", 1)
	if n := <-f.started; n != 1 {
		t.Fatalf("first write carries %d items; want 1", n)
	}
	// Three callers arrive while it is in flight: they wait, together.
	call("b", 2, 3)
	call("c", 4)
	call("d", 5)
	waitQueued(t, g, 4)
	noResult()
	f.release <- nil
	if r := <-results; r != "a: <nil>" {
		t.Fatalf("got %q; want a acknowledged", r)
	}
	if n := <-f.started; n != 4 {
		t.Fatalf("second write carries %d items; want the 4 that queued", n)
	}
	noResult() // b, c, d wait for their write
	// One more arrives during the second write; the second write fails.
	call("e", 6)
	waitQueued(t, g, 1)
	f.release <- errors.New("boom")
	var got []string
	for range 3 {
		got = append(got, <-results)
	}
	slices.Sort(got)
	if want := []string{"b: boom", "c: boom", "d: boom"}; !slices.Equal(got, want) {
		t.Fatalf("results of the failed batch: %v; want %v", got, want)
	}
	if n := <-f.started; n != 1 {
		t.Fatalf("third write carries %d items; want 1", n)
	}
	noResult()
	f.release <- nil
	if r := <-results; r != "e: <nil>" {
		t.Fatalf("got %q; want e acknowledged", r)
	}
	f.mu.Lock()
	// b, c and d arrived in any order; b's two items stay together
	if len(f.batches) != 3 || fmt.Sprint(f.batches[0]) != "[1]" || fmt.Sprint(f.batches[2]) != "[6]" ||
		!slices.Contains([]string{"[2 3 4 5]", "[2 3 5 4]", "[4 2 3 5]", "[5 2 3 4]", "[4 5 2 3]", "[5 4 2 3]"}, fmt.Sprint(f.batches[1])) {
		t.Fatalf("writes %v; want [1], then 2, 3, 4, 5 together, then [6]", f.batches)
	}
	f.mu.Unlock()

	// Idle again: the next caller writes at once, alone.
	call("f", 7)
	if n := <-f.started; n != 1 {
		t.Fatalf("write after idle carries %d items; want 1", n)
	}
	f.release <- nil
	if r := <-results; r != "f: <nil>" {
		t.Fatalf("got %q", r)
	}
}

// TestGroupCommitManyCallers: under concurrent callers every item is written
// exactly once, every caller is acknowledged, and no more writes are in
// flight at once than allowed.
func TestGroupCommitManyCallers(t *testing.T) {
	for _, parallel := range []int{1, 2} {
		t.Run(fmt.Sprint(parallel, " in flight"), func(t *testing.T) {
			var mu sync.Mutex
			var written []int
			writes, inflight, most := 0, 0, 0
			g := newGroupCommit(parallel, func(_ context.Context, items []int) error {
				mu.Lock()
				inflight++
				most = max(most, inflight)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				written = append(written, items...)
				writes++
				inflight--
				mu.Unlock()
				return nil
			})
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					if err := g.do(t.Context(), i); err != nil {
						t.Errorf("caller %d: %v", i, err)
					}
					mu.Lock()
					defer mu.Unlock()
					if !slices.Contains(written, i) {
						t.Errorf("caller %d returned before its item was written", i)
					}
				})
			}
			wg.Wait()
			slices.Sort(written)
			for i, v := range written {
				if v != i {
					t.Fatalf("written %v; want 0..199 once each", written)
				}
			}
			if most > parallel {
				t.Errorf("%d writes in flight at once; want at most %d", most, parallel)
			}
			t.Logf("200 callers, %d writes, at most %d in flight", writes, most)
		})
	}
}
