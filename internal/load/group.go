package load

import (
	"context"
	"sync"
)

// groupCommit sends the items of concurrent callers in as few writes as
// it can: while one write is in flight, the items that arrive wait and go
// together in the next. Each caller returns once the write holding its
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

	mu   sync.Mutex
	busy bool           // a write is in flight
	next *groupBatch[T] // items waiting for the write in flight to end
}

type groupBatch[T any] struct {
	items []T
	done  chan struct{}
	err   error
}

func newGroupCommit[T any](send func(ctx context.Context, items []T) error) *groupCommit[T] {
	return &groupCommit[T]{send: send}
}

// do writes items, together with those of other callers meanwhile, and
// returns once they are acknowledged. A caller whose ctx ends first gets
// ctx's error; its items are written all the same.
func (g *groupCommit[T]) do(ctx context.Context, items ...T) error {
	if len(items) == 0 {
		return nil
	}
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		b := &groupBatch[T]{items: items, done: make(chan struct{})}
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
		g.busy = false
	}
	g.mu.Unlock()
	if nb != nil {
		go g.write(ctx, nb)
	}
}
