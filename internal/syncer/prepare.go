package syncer

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Prepared is an account's pass made ready ahead of it by Prepare: its lock
// is taken and what the pass reads first was read for many accounts in one
// query each. Run it with SyncPrepared (once), then Release it.
type Prepared struct {
	Account Account
	lock    Lock  // nil without a Locker, or when err is set
	err     error // the lock could not be taken: the pass does not run
	// marks are the account's watermarks per activity entity, read while
	// the lock was held; nil: the pass reads them itself.
	marks map[Entity]map[WatermarkKey]time.Time
	// raised: the versions were raised above the account's rows
	// (VersionBatchRaiser), so the pass need not.
	raised bool
	// catalog, state: the catalog state or the watermarks were prefetched
	// (CatalogPrefetcher, WatermarkPrefetcher), to be dropped when the pass
	// ends.
	catalog, state bool
	// staged: the pass stages its short runs' writes for a commit shared
	// with other passes (see commit.go); reading: the committer counts it
	// among the passes whose staged writes are still to come.
	staged, reading bool
	// ReadDone, when set, is called once the pass has read everything and
	// waits only for its staged commit: its caller may start the next pass
	// then (RunOnce frees the pass's slot).
	ReadDone func()
}

// Prepare takes the locks of accts (with one call when the Locker is a
// BatchLocker) and, for the accounts it holds, closes the runs a dead
// process left running and reads ahead what their passes over req's
// entities read first, in one round trip each for all of them: watermarks,
// version floors and the stored catalog state, as far as the stores can.
// It returns one Prepared per account, in order; an account whose lock is
// held elsewhere gets its error, as SyncAccount would report it. A failed
// read ahead is logged and left to the pass.
func (s *Syncer) Prepare(ctx context.Context, accts []Account, req Request) []*Prepared {
	out := make([]*Prepared, len(accts))
	ids := make([]string, len(accts))
	staged := s.canStage() && (req.Kind == "" || req.Kind == RunIncremental)
	for i, a := range accts {
		out[i] = &Prepared{Account: a, staged: staged}
		ids[i] = a.ID
	}
	if s.Locker != nil {
		if bl, ok := s.Locker.(BatchLocker); ok {
			locks, errs := bl.LockMany(ctx, ids, s.Holder)
			for i := range out {
				out[i].lock, out[i].err = locks[i], errs[i]
			}
		} else {
			for i, p := range out {
				p.lock, p.err = s.Locker.Lock(ctx, p.Account.ID, s.Holder)
				if p.err != nil && ctx.Err() != nil {
					for _, q := range out[i+1:] {
						q.err = ctx.Err()
					}
					break
				}
			}
		}
	}
	var held []string
	for _, p := range out {
		if p.err == nil {
			held = append(held, p.Account.ID)
			if p.staged {
				p.reading = true
				s.commits.startReading()
			}
		}
	}
	if len(held) == 0 {
		return out
	}
	if s.Locker != nil {
		s.closeAbandoned(ctx, held)
	}
	var activity, catalog []Entity
	for _, e := range req.Entities {
		if e == Actions || e == ActionUpdates {
			activity = append(activity, e)
		} else {
			catalog = append(catalog, e)
		}
	}
	if wp, ok := s.State.(WatermarkPrefetcher); ok && len(activity) > 0 && req.Kind != RunBackfill {
		if marks, err := wp.WatermarksOf(ctx, held, activity); err != nil {
			s.Logger.Warn("could not read the watermarks of the accounts ahead; each pass reads its own", zap.Int("accounts", len(held)), zap.Error(err))
		} else {
			byAccount := map[string]*Prepared{}
			for _, p := range out {
				if p.err == nil {
					p.state = true
					p.marks = map[Entity]map[WatermarkKey]time.Time{}
					for _, e := range activity {
						p.marks[e] = map[WatermarkKey]time.Time{}
					}
					byAccount[p.Account.ID] = p
				}
			}
			for k, t := range marks {
				if p := byAccount[k.AccountID]; p != nil && p.marks[k.Entity] != nil {
					p.marks[k.Entity][k] = t
				}
			}
		}
	}
	if vr, ok := s.Writer.(VersionBatchRaiser); ok && len(activity) > 0 {
		if err := vr.RaiseVersionsOf(ctx, held, activity); err != nil {
			s.Logger.Warn("could not read the accounts' row versions ahead; each pass reads its own", zap.Int("accounts", len(held)), zap.Error(err))
		} else {
			for _, p := range out {
				p.raised = p.err == nil
			}
		}
	}
	if cp, ok := s.Catalog.(CatalogPrefetcher); ok && len(catalog) > 0 {
		if err := cp.PrefetchCatalog(ctx, held, catalog); err != nil {
			s.Logger.Warn("could not read the accounts' catalogs ahead; each pass reads its own", zap.Int("accounts", len(held)), zap.Error(err))
		} else {
			for _, p := range out {
				p.catalog = p.err == nil
			}
		}
	}
	return out
}

// closeAbandoned records the runs left running by a dead process as
// interrupted (RunStore.CloseAbandoned), for accounts whose locks are held.
func (s *Syncer) closeAbandoned(ctx context.Context, ids []string) {
	if rb, ok := s.Runs.(RunBatcher); ok && len(ids) > 1 {
		n, err := rb.CloseAbandonedOf(ctx, ids, AbandonedReason)
		if err != nil {
			s.Logger.Warn("could not close runs left running by a process that died", zap.Strings("account_ids", ids), zap.Error(err))
		}
		for _, id := range slices.Sorted(maps.Keys(n)) {
			if n[id] > 0 {
				s.Logger.Warn("runs left running by a process that died are recorded as interrupted", zap.String("account_id", id), zap.Int("runs", n[id]))
			}
		}
		return
	}
	for _, id := range ids {
		log := s.Logger.With(zap.String("account_id", id))
		if n, err := s.Runs.CloseAbandoned(ctx, id, AbandonedReason); err != nil {
			log.Warn("could not close runs left running by a process that died", zap.Error(err))
		} else if n > 0 {
			log.Warn("runs left running by a process that died are recorded as interrupted", zap.Int("runs", n))
		}
	}
}

// Release releases a prepared account's lock and what was read ahead for
// it: after its pass (SyncPrepared), or instead of it. Calling it again does
// nothing.
func (s *Syncer) Release(p *Prepared) {
	s.doneReading(p) // a pass that did not run, or did not get that far
	if p.state {
		p.state = false
		if wp, ok := s.State.(WatermarkPrefetcher); ok {
			wp.DropPrefetched(p.Account.ID)
		}
	}
	if p.catalog {
		p.catalog = false
		if cp, ok := s.Catalog.(CatalogPrefetcher); ok {
			cp.DropPrefetched(p.Account.ID)
		}
	}
	if p.lock != nil {
		p.lock.Unlock()
		p.lock = nil
	}
}

// SyncPrepared runs the pass Prepare made ready, as SyncAccount runs one.
// The account's lock stays held until Release, so that a caller with
// passes waiting can start the next one first.
func (s *Syncer) SyncPrepared(ctx context.Context, p *Prepared, req Request) AccountResult {
	if p.err != nil {
		return AccountResult{Account: p.Account, Err: p.err}
	}
	return s.sync(ctx, p, req)
}

// doneReading tells the committer that p's pass will stage nothing more.
func (s *Syncer) doneReading(p *Prepared) {
	if p.reading {
		p.reading = false
		s.commits.stopReading(s)
	}
}
