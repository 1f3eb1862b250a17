package syncer

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// lostLock is a held lock the test loses on purpose.
type lostLock struct {
	lost     chan struct{}
	cause    error // what LossCause says once lost
	unlocked bool
}

func (l *lostLock) Lost() <-chan struct{} { return l.lost }
func (l *lostLock) Unlock()               { l.unlocked = true }
func (l *lostLock) LossCause() error      { return l.cause }

type oneLocker struct{ l *lostLock }

func (o oneLocker) Lock(context.Context, string, string) (Lock, error) { return o.l, nil }

// lockRecorder records every write and whether the lock was lost by then.
type lockRecorder struct {
	mu        sync.Mutex
	lock      *lostLock
	writes    int
	marks     int
	afterLoss []string
	runs      []Run
}

func (r *lockRecorder) lostYet() bool {
	select {
	case <-r.lock.lost:
		return true
	default:
		return false
	}
}

func (r *lockRecorder) Write(_ context.Context, _ string, e Entity, recs []Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.lostYet() {
		r.afterLoss = append(r.afterLoss, "rows of "+string(e))
	}
	return nil
}

func (r *lockRecorder) ReplaceCatalog(context.Context, string, Entity, []Record, time.Time) error {
	return nil
}

func (r *lockRecorder) Watermark(context.Context, WatermarkKey) (time.Time, bool, error) {
	return time.Time{}, false, nil
}

func (r *lockRecorder) SetWatermark(_ context.Context, k WatermarkKey, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks++
	if r.lostYet() {
		r.afterLoss = append(r.afterLoss, "watermark "+k.Scan)
	}
	return nil
}

func (r *lockRecorder) RecordRun(_ context.Context, run Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run)
	return nil
}

func (r *lockRecorder) CloseAbandoned(context.Context, string, string) (int, error) { return 0, nil }

func (r *lockRecorder) PutAccount(context.Context, Account, SealedSecret) error { return nil }
func (r *lockRecorder) Account(context.Context, string) (Account, error)        { return Account{}, nil }
func (r *lockRecorder) Accounts(context.Context) ([]Account, error)             { return nil, nil }
func (r *lockRecorder) Secret(context.Context, string) (SealedSecret, error) {
	return SealedSecret{}, nil
}
func (r *lockRecorder) SetSecret(context.Context, string, SealedSecret) error { return nil }
func (r *lockRecorder) SetStatus(context.Context, string, Status, string, []string) error {
	return nil
}
func (r *lockRecorder) DeleteAccount(context.Context, string) error { return nil }

// windowSource answers every window with one record and loses the lock
// while it answers the third.
type windowSource struct {
	lock    *lostLock
	rec     *lockRecorder
	mu      sync.Mutex
	windows int
}

func (s *windowSource) Records(_ context.Context, q Query) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		s.mu.Lock()
		s.windows++
		n := s.windows
		s.mu.Unlock()
		if n == 3 {
			// Let the loader store what was read while the lock was held
			// first: its check of the lock and the write that follows are
			// not one step, so a loss in between would count a write of
			// rows read before the loss as one after it.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				s.rec.mu.Lock()
				w := s.rec.writes
				s.rec.mu.Unlock()
				if w >= 1 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
			close(s.lock.lost)
		}
		yield(Record{ID: string(q.Filter) + string(rune('a'+n%26)), Values: make([]any, len(Tables[q.Entity].Columns))}, nil)
	}
}

func (s *windowSource) ServerNow() (time.Time, bool) {
	return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), true
}

// TestLostLockStopsAtTheWindowBoundary: a pass whose lock is lost while it
// reads a window reads no further window, writes no row and no watermark
// after the loss, runs no further entity, and records the run interrupted,
// with the cause of the loss the lock gives.
func TestLostLockStopsAtTheWindowBoundary(t *testing.T) {
	cause := errors.New("lease renewal: insert into account_leases: code: 242, message: Table is in readonly mode")
	lk := &lostLock{lost: make(chan struct{}), cause: cause}
	rec := &lockRecorder{lock: lk}
	src := &windowSource{lock: lk, rec: rec}
	s := &Syncer{Accounts: rec, Writer: rec, Catalog: rec, State: rec, Runs: rec, Locker: oneLocker{lk},
		Source: func(context.Context, Account) (Source, error) { return src, nil },
		Logger: zap.NewNop(), Holder: "test", NewRunID: func() string { return "run" },
		Options: Options{BatchSize: 1}, // insert and commit every window at once
	}
	res := s.SyncAccount(t.Context(), Account{ID: "acc", Persona: Partner},
		Request{Entities: []Entity{Actions, ActionUpdates}, Kind: RunIncremental})
	if src.windows != 3 {
		t.Errorf("%d windows read; the pass must stop at the boundary after the third", src.windows)
	}
	if len(rec.afterLoss) > 0 {
		t.Errorf("written after the lock was lost: %v", rec.afterLoss)
	}
	if len(res.Runs) != 1 || res.Runs[0].Entity != Actions || res.Runs[0].Status != RunInterrupted ||
		!strings.Contains(res.Runs[0].Error, "lock was lost") || strings.Count(res.Runs[0].Error, cause.Error()) != 1 {
		t.Fatalf("runs %+v; want one interrupted actions run naming the lost lock and why it was lost", res.Runs)
	}
	if !lk.unlocked {
		t.Error("the lock was not released")
	}
	t.Logf("before the loss: %d inserts, %d watermarks; run: %s", rec.writes, rec.marks, res.Runs[0].Error)
}
