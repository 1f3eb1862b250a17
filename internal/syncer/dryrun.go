package syncer

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"sync"
	"time"
)

// DryRun plans the pass req over acct without doing it: it runs the pass as
// s would against the real accounts, watermarks (so a resumed backfill skips
// what is done) and catalog reads (the campaign list, the API's clock), but
// answers every Actions and ActionUpdates window with nothing, writes
// nothing, records no run and takes no lock. It returns how many windows of
// each entity the pass would read.
func (s *Syncer) DryRun(ctx context.Context, acct Account, req Request) (map[Entity]int, error) {
	src, err := s.Source(ctx, acct)
	if err != nil {
		return nil, err
	}
	dry := &planSource{real: src, windows: map[Entity]int{}}
	plan := &Syncer{
		Accounts: readOnlyAccounts{s.Accounts}, Writer: discard{}, Catalog: discard{}, State: readOnlyState{s.State},
		Runs: discard{}, Source: func(context.Context, Account) (Source, error) { return dry, nil },
		Logger: s.Logger, Holder: s.Holder, NewRunID: s.NewRunID, Options: s.Options,
	}
	res := plan.SyncAccount(ctx, acct, req)
	if res.Err != nil {
		return nil, res.Err
	}
	for _, r := range res.Runs {
		if r.Status != RunSucceeded && r.Status != RunSkipped {
			return nil, fmt.Errorf("planning %s: %s", r.Entity, r.Error)
		}
	}
	dry.mu.Lock()
	defer dry.mu.Unlock()
	return maps.Clone(dry.windows), nil
}

// planSource passes the catalog reads a plan needs (campaigns, the API's
// clock) to the real source and answers every windowed read with nothing,
// counting the windows.
type planSource struct {
	real    Source
	mu      sync.Mutex
	windows map[Entity]int
}

func (s *planSource) Records(ctx context.Context, q Query) iter.Seq2[Record, error] {
	if q.Entity == Actions || q.Entity == ActionUpdates {
		s.mu.Lock()
		s.windows[q.Entity]++
		s.mu.Unlock()
		return func(func(Record, error) bool) {}
	}
	return s.real.Records(ctx, q)
}

func (s *planSource) ServerNow() (time.Time, bool) { return s.real.ServerNow() }

// discard writes nothing.
type discard struct{}

func (discard) Write(context.Context, string, Entity, []Record) error { return nil }
func (discard) ReplaceCatalog(context.Context, string, Entity, []Record, time.Time) error {
	return nil
}
func (discard) RecordRun(context.Context, Run) error                        { return nil }
func (discard) CloseAbandoned(context.Context, string, string) (int, error) { return 0, nil }

// readOnlyState reads the real watermarks and stores none.
type readOnlyState struct{ s StateStore }

func (r readOnlyState) Watermark(ctx context.Context, k WatermarkKey) (time.Time, bool, error) {
	return r.s.Watermark(ctx, k)
}
func (readOnlyState) SetWatermark(context.Context, WatermarkKey, time.Time) error { return nil }

// readOnlyAccounts reads the real accounts and changes none.
type readOnlyAccounts struct{ AccountStore }

func (readOnlyAccounts) PutAccount(context.Context, Account, SealedSecret) error { return nil }
func (readOnlyAccounts) SetSecret(context.Context, string, SealedSecret) error   { return nil }
func (readOnlyAccounts) SetStatus(context.Context, string, Status, string, []string) error {
	return nil
}
func (readOnlyAccounts) DeleteAccount(context.Context, string) error { return nil }
