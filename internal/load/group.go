package load

import (
	"context"
	"sync"
)

// groupCommit sends the items of concurrent callers in as few writes as
// it can: while a write is in flight (parallel writes, when more may be),
// the items that arrive wait and go together in the next. Each caller returns once the write holding its
// items is acknowledged, with that write's error, so what a caller hands
// in is stored when it returns, exactly as with a write of its own. A sync
// of many small accounts runs several passes at once, each writing a row
// here and there (sync_runs, leases released); on 18.16 every insert is a
// part written and a round trip, whatever its size.
type groupCommit[T any] struct {
	// send writes one batch; ctx is the context of the caller whose
	// arrival started the write, without its cancellation (a batch
	// carries other callers' items too).
	send func(ctx context.Context, items []T) error

	// parallel is how many writes may be in flight at once (at least 1):
	// a caller waits for a write in flight only when that many are.
	parallel int

	mu       sync.Mutex
	inflight int            // writes in flight
	next     *groupBatch[T] // items waiting for a write in flight to end
}

type groupBatch[T any] struct {
	items []T
	done  chan struct{}
	err   error
}

func newGroupCommit[T any](parallel int, send func(ctx context.Context, items []T) error) *groupCommit[T] {
	return &groupCommit[T]{send: send, parallel: max(parallel, 1)}
}

// do writes items, together with those of other callers meanwhile, and
// returns once they are acknowledged. A caller whose ctx ends first gets
// ctx's error; its items are written all the same.
func (g *groupCommit[T]) do(ctx context.Context, items ...T) error {
	if len(items) == 0 {
		return nil
	}
	g.mu.Lock()
	if g.inflight < g.parallel {
		g.inflight++
		b := g.next // none, unless a write in flight just ended
		if b == nil {
			b = &groupBatch[T]{done: make(chan struct{})}
		}
		g.next = nil
		b.items = append(b.items, items...)
		g.mu.Unlock()
		g.write(context.WithoutCancel(ctx), b)
		return b.err
	}
	if g.next == nil {
		g.next = &groupBatch[T]{done: make(chan struct{})}
	}
	b := g.next
	b.items = append(b.items, items...)
	g.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write sends b, then hands the batch that gathered meanwhile to another
// goroutine (b's caller returns as soon as its own write is done).
func (g *groupCommit[T]) write(ctx context.Context, b *groupBatch[T]) {
	b.err = g.send(ctx, b.items)
	close(b.done)
	g.mu.Lock()
	nb := g.next
	g.next = nil
	if nb == nil {
		g.inflight--
	}
	g.mu.Unlock()
	if nb != nil {
		go g.write(ctx, nb)
	}
}

// groupParallel is how many writes of one group commit the stores let be
// in flight at once: with one, a caller that arrives during a write waits
// for it, then for its own (twice the latency of a write of its own); two
// keep that wait for when writes pile up.
const groupParallel = 2
