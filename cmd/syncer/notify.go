package main

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/webhook"
)

// accountWatch compares accounts with how the worker saw them last and
// notifies the changes an operator must hear about (webhook.Changes).
type accountWatch struct {
	notify func(webhook.Event)
	log    *zap.Logger
	mu     sync.Mutex
	seen   map[string]syncer.Account
}

func newAccountWatch(notify func(webhook.Event), log *zap.Logger) *accountWatch {
	return &accountWatch{notify: notify, log: log, seen: map[string]syncer.Account{}}
}

// observe records accounts; all says the list is every account (those
// missing were removed). The first sight of an account (at start, or just
// registered) only records it; a snapshot older than the one seen (a tick's
// list read before a pass flagged the account) is ignored.
func (w *accountWatch) observe(accts []syncer.Account, all bool) {
	w.mu.Lock()
	var events []webhook.Event
	live := map[string]bool{}
	for _, a := range accts {
		live[a.ID] = true
		before, ok := w.seen[a.ID]
		if ok && a.UpdatedAt.Before(before.UpdatedAt) {
			continue
		}
		if ok {
			events = append(events, webhook.Changes(before, a, time.Now())...)
		}
		w.seen[a.ID] = a
	}
	if all {
		for id := range w.seen {
			if !live[id] {
				delete(w.seen, id)
			}
		}
	}
	w.mu.Unlock()
	for _, e := range events {
		w.log.Info("notifying", zap.String("event", e.Event), zap.String("account_id", e.AccountID))
		w.notify(e)
	}
}

// inFlightSyncer counts the passes running (impact_syncer_passes_in_flight).
type inFlightSyncer struct {
	svc *syncer.Syncer
	m   *metrics
}

func (s inFlightSyncer) SyncAccount(ctx context.Context, a syncer.Account, req syncer.Request) syncer.AccountResult {
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	return s.svc.SyncAccount(ctx, a, req)
}
