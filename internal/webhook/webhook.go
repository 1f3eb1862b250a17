// Package webhook tells an operator when an account needs them: one JSON
// POST per event to a webhook URL (Slack's incoming webhooks and most chat
// tools accept its "text"), sent in the background with retries, so that a
// slow or dead receiver never holds up a sync.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Event kinds.
const (
	NeedsReconnect = "needs_reconnect" // the credential died: reconnect or set a new token
	PermissionLost = "permission_lost" // the token lost a permission: some entities stop syncing
	Recovered      = "recovered"       // reconnected, or permissions granted again
)

// Event is the JSON body of one notification. Text is what chat tools show;
// the other fields are for programs. It carries no secret: account ids,
// SIDs, statuses and the reasons the syncer records for operators.
type Event struct {
	Text               string   `json:"text"`
	Event              string   `json:"event"`
	AccountID          string   `json:"account_id"`
	Persona            string   `json:"persona"`
	SID                string   `json:"sid"`
	Status             string   `json:"status"`
	Reason             string   `json:"reason"`
	MissingPermissions []string `json:"missing_permissions"`
	Permissions        []string `json:"permissions"` // lost or regained by this event
	At                 string   `json:"at"`          // RFC 3339
}

// Changes compares an account before and after and returns the events to
// send (none for an account just registered, disabled or enabled by an
// operator).
func Changes(before, after syncer.Account, at time.Time) []Event {
	mk := func(kind, text string, perms []string) Event {
		return Event{Text: text, Event: kind, AccountID: after.ID, Persona: string(after.Persona), SID: after.SID,
			Status: string(after.Status), Reason: after.StatusReason, MissingPermissions: nonNil(after.MissingPermissions),
			Permissions: nonNil(perms), At: at.UTC().Format(time.RFC3339)}
	}
	var out []Event
	was, is := before.Status == syncer.StatusNeedsReconnect, after.Status == syncer.StatusNeedsReconnect
	switch {
	case !was && is:
		text := fmt.Sprintf("impact-syncer: account %s (%s, SID %s) needs reconnecting and is no longer synced: %s.",
			after.ID, after.Persona, after.SID, reasonOr(after.StatusReason))
		if !strings.Contains(after.StatusReason, "syncer ") { // the reason does not say what to run
			text += " " + fixFor(after)
		}
		out = append(out, mk(NeedsReconnect, text, nil))
	case was && after.Active():
		out = append(out, mk(Recovered, fmt.Sprintf("impact-syncer: account %s (%s, SID %s) is connected again and syncing.",
			after.ID, after.Persona, after.SID), nil))
	}
	lost, regained := diff(after.MissingPermissions, before.MissingPermissions), diff(before.MissingPermissions, after.MissingPermissions)
	if len(lost) > 0 {
		out = append(out, mk(PermissionLost, fmt.Sprintf(
			"impact-syncer: account %s (%s, SID %s) lacks the permission %s; what needs it is not synced. Grant it in impact.com (Settings → Technical → API), then run: syncer accounts check %s",
			after.ID, after.Persona, after.SID, strings.Join(lost, "; "), after.ID), lost))
	}
	if len(regained) > 0 && after.Active() && !was {
		out = append(out, mk(Recovered, fmt.Sprintf("impact-syncer: account %s (%s, SID %s) has the permission %s again.",
			after.ID, after.Persona, after.SID, strings.Join(regained, "; ")), regained))
	}
	return out
}

// Watch compares accounts with how it saw them last and notifies the
// changes an operator must hear about (Changes).
type Watch struct {
	notify func(Event)
	log    *zap.Logger
	now    func() time.Time
	mu     sync.Mutex
	seen   map[string]syncer.Account
}

// NewWatch returns a Watch that passes each event to notify (a Notifier's
// Notify) and logs it.
func NewWatch(notify func(Event), log *zap.Logger, now func() time.Time) *Watch {
	return &Watch{notify: notify, log: log, now: now, seen: map[string]syncer.Account{}}
}

// Observe records accounts; all says the list is every account (those
// missing were removed). The first sight of an account (at start, or just
// registered) only records it; a snapshot older than the one seen (a tick's
// list read before a pass flagged the account) is ignored.
func (w *Watch) Observe(accts []syncer.Account, all bool) {
	w.mu.Lock()
	var events []Event
	live := map[string]bool{}
	for _, a := range accts {
		live[a.ID] = true
		before, ok := w.seen[a.ID]
		if ok && a.UpdatedAt.Before(before.UpdatedAt) {
			continue
		}
		if ok {
			events = append(events, Changes(before, a, w.now())...)
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

func fixFor(a syncer.Account) string {
	if a.AuthKind == syncer.AuthOAuth {
		return fmt.Sprintf("Reconnect it: syncer connect --account %s --persona %s --sid %s", a.ID, a.Persona, a.SID)
	}
	return fmt.Sprintf("Set a new Auth Token: syncer accounts set-token %s --token-stdin", a.ID)
}

func reasonOr(s string) string {
	if s == "" {
		return "no reason recorded"
	}
	return strings.TrimSuffix(s, ".")
}

// diff returns the elements of a not in b.
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Options configure a Notifier. Zero values take the defaults.
type Options struct {
	URL    string       // where to POST; a secret, never logged
	Client *http.Client // default: 10s timeout
	Logger *zap.Logger
	// Attempts per event (default 6) and the first wait between them
	// (default 2s; doubles, jittered, at most MaxBackoff, default 5m).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Queue is how many events may wait (default 100); beyond that new
	// events are dropped and logged.
	Queue int
	// OnResult is called with "sent", "failed" (gave up) or "dropped".
	OnResult func(outcome string)
}

// Notifier sends events in the background, one at a time, in order.
type Notifier struct {
	o     Options
	queue chan Event
	done  chan struct{}
	stop  context.CancelFunc
	ctx   context.Context

	mu     sync.Mutex
	closed bool
}

// New starts a Notifier; Close stops it.
func New(o Options) (*Notifier, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("SYNCER_NOTIFY_WEBHOOK_URL: want an http(s) URL")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Queue <= 0 {
		o.Queue = 100
	}
	if o.OnResult == nil {
		o.OnResult = func(string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{o: o, queue: make(chan Event, o.Queue), done: make(chan struct{}), ctx: ctx, stop: cancel}
	go n.loop()
	return n, nil
}

// Notify queues an event and returns at once.
func (n *Notifier) Notify(e Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.o.OnResult("dropped")
		return
	}
	select {
	case n.queue <- e:
	default:
		n.o.Logger.Warn("webhook queue full; notification dropped", zap.String("event", e.Event), zap.String("account_id", e.AccountID))
		n.o.OnResult("dropped")
	}
}

// Close sends what is queued for at most wait, then gives up on the rest.
func (n *Notifier) Close(wait time.Duration) {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
	case <-time.After(wait):
		n.stop()
		<-n.done
	}
	n.stop()
}

func (n *Notifier) loop() {
	defer close(n.done)
	for e := range n.queue {
		if n.ctx.Err() != nil {
			n.o.OnResult("failed")
			continue
		}
		n.deliver(e)
	}
}

// deliver posts e until it is accepted (2xx), refused for good (4xx other
// than 408 and 429), out of attempts, or the notifier is closed.
func (n *Notifier) deliver(e Event) {
	body, _ := json.Marshal(e)
	log := n.o.Logger.With(zap.String("event", e.Event), zap.String("account_id", e.AccountID))
	wait := n.o.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(body)
		if err == nil {
			log.Info("webhook notification sent", zap.Int("attempt", attempt))
			n.o.OnResult("sent")
			return
		}
		if !retry || attempt >= n.o.Attempts {
			log.Error("webhook notification not delivered; giving up", zap.Int("attempts", attempt), zap.String("error", err.Error()))
			n.o.OnResult("failed")
			return
		}
		d := wait/2 + rand.N(wait/2+1)
		log.Warn("webhook notification failed; retrying", zap.Int("attempt", attempt), zap.Duration("wait", d), zap.String("error", err.Error()))
		t := time.NewTimer(d)
		select {
		case <-n.ctx.Done():
			t.Stop()
			log.Error("webhook notification not delivered: shutting down")
			n.o.OnResult("failed")
			return
		case <-t.C:
		}
		wait = min(wait*2, n.o.MaxBackoff)
	}
}

// post sends one attempt. Errors never carry the URL (a secret).
func (n *Notifier) post(body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, n.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "impact-syncer")
	resp, err := n.o.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("no answer: %s", describe(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	}
	return false, fmt.Errorf("answered %s", resp.Status)
}

// describe says why a request got no answer without naming the URL or its
// host (a webhook URL is a secret).
func describe(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	var ue *url.Error
	switch {
	case errors.As(err, &dns):
		return "the receiver's host name did not resolve"
	case errors.As(err, &op):
		return op.Op + ": " + op.Err.Error()
	case errors.As(err, &ue) && ue.Timeout():
		return "timed out"
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}
