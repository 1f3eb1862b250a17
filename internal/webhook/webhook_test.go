package webhook

import (
	"encoding/json"
	"go.uber.org/zap/zapcore"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestChanges(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	active := syncer.Account{ID: "acme", Persona: syncer.Brand, SID: "IR1", AuthKind: syncer.AuthOAuth, Status: syncer.StatusActive}
	dead := active
	dead.Status, dead.StatusReason = syncer.StatusNeedsReconnect, "impact.com rejected the refresh token (invalid_grant)"
	lacking := active
	lacking.MissingPermissions = []string{"Promo Codes → Retrieve promo codes"}
	disabled := active
	disabled.Status = syncer.StatusDisabled
	for _, tc := range []struct {
		name          string
		before, after syncer.Account
		want          []string
	}{
		{"unchanged", active, active, nil},
		{"turns needs_reconnect", active, dead, []string{NeedsReconnect}},
		{"still needs_reconnect", dead, dead, nil},
		{"reconnected", dead, active, []string{Recovered}},
		{"loses a permission", active, lacking, []string{PermissionLost}},
		{"permission granted again", lacking, active, []string{Recovered}},
		{"disabled by an operator", active, disabled, nil},
		{"enabled by an operator", disabled, active, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range Changes(tc.before, tc.after, at) {
				got = append(got, e.Event)
				if e.Text == "" || e.AccountID != "acme" || e.At != "2026-11-20T12:00:00Z" {
					t.Errorf("event %+v", e)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
	e := Changes(active, dead, at)[0]
	if !strings.Contains(e.Text, "syncer connect --account acme") || !strings.Contains(e.Text, "invalid_grant") {
		t.Errorf("the needs_reconnect text does not say what to do: %s", e.Text)
	}
}

// TestWatch: an account seen for the first time, or seen again in an older
// snapshot, notifies nothing; a change since it was last seen does; an
// account missing from a full list is forgotten.
func TestWatch(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var got []string
	w := NewWatch(func(e Event) { got = append(got, e.Event+" "+e.AccountID) }, zap.NewNop(), func() time.Time { return at })
	active := syncer.Account{ID: "acme", Persona: syncer.Brand, SID: "IR1", AuthKind: syncer.AuthBasic, Status: syncer.StatusActive,
		UpdatedAt: at.Add(-time.Hour)}
	dead := active
	dead.Status, dead.StatusReason, dead.UpdatedAt = syncer.StatusNeedsReconnect, "401", at
	other := syncer.Account{ID: "other", Persona: syncer.Partner, SID: "IR2", Status: syncer.StatusNeedsReconnect, UpdatedAt: at}

	for _, step := range []struct {
		name  string
		accts []syncer.Account
		all   bool
		want  []string
	}{
		{"first sight", []syncer.Account{active, other}, true, nil},
		{"flagged by a pass", []syncer.Account{dead}, false, []string{NeedsReconnect + " acme"}},
		{"a tick's older list", []syncer.Account{active, other}, true, nil},
		{"removed", []syncer.Account{dead}, true, nil},
		{"registered again", []syncer.Account{dead, other}, true, nil},
		{"recovered", []syncer.Account{func() syncer.Account { a := active; a.UpdatedAt = at.Add(time.Hour); return a }()}, false,
			[]string{Recovered + " acme"}},
	} {
		got = nil
		w.Observe(step.accts, step.all)
		if strings.Join(got, ",") != strings.Join(step.want, ",") {
			t.Errorf("%s: notified %v, want %v", step.name, got, step.want)
		}
	}
}

type results struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func (r *results) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	r.ch <- s
}

func newNotifier(t *testing.T, u string, attempts int) (*Notifier, *results) {
	t.Helper()
	r := &results{ch: make(chan string, 100)}
	n, err := New(Options{URL: u, Attempts: attempts, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Logger: zap.NewNop(), OnResult: r.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(5 * time.Second) })
	return n, r
}

func wait(t *testing.T, r *results) string {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery outcome within 30s")
	}
	return ""
}

// TestDeliveryRetriesThenSucceeds: a receiver failing twice gets the event
// once it answers, as one JSON body with a Slack-compatible text and no
// secret.
func TestDeliveryRetriesThenSucceeds(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		bodies = append(bodies, string(b))
	}))
	defer srv.Close()
	n, r := newNotifier(t, srv.URL+"/services/T000/B000/s3cr3t-hook-token", 5)
	acct := syncer.Account{ID: "acme", Persona: syncer.Brand, SID: "IR1", Status: syncer.StatusActive}
	dead := acct
	dead.Status, dead.StatusReason = syncer.StatusNeedsReconnect, "impact.com refused the Auth Token (401)"
	for _, e := range Changes(acct, dead, time.Now()) {
		n.Notify(e)
	}
	if got := wait(t, r); got != "sent" {
		t.Fatalf("outcome %q, want sent", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 || len(bodies) != 1 {
		t.Fatalf("%d calls, %d bodies", calls, len(bodies))
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e["text"] == "" || e["event"] != NeedsReconnect || e["account_id"] != "acme" {
		t.Errorf("body %v", e)
	}
	if strings.Contains(bodies[0], "s3cr3t") {
		t.Errorf("the body carries the webhook's secret: %s", bodies[0])
	}
}

// TestReceiverDown: with nothing listening, Notify still returns at once,
// the notifier retries, then gives up and says so; the log never shows the
// URL.
func TestReceiverDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := &results{ch: make(chan string, 100)}
	logs := &strings.Builder{}
	var logMu sync.Mutex
	log := zap.New(zapcoreFor(func(s string) { logMu.Lock(); logs.WriteString(s); logMu.Unlock() }))
	n, err := New(Options{URL: "http://" + addr + "/hook/s3cr3t-hook-token", Attempts: 3, Backoff: 10 * time.Millisecond,
		Logger: log, OnResult: r.add})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(time.Second)
	returned := make(chan struct{})
	go func() {
		for range 3 {
			n.Notify(Event{Event: NeedsReconnect, AccountID: "acme", Text: "x"})
		}
		close(returned)
	}()
	<-returned // Notify never waits for the receiver (a deadlock would time the test out)
	for range 3 {
		if got := wait(t, r); got != "failed" {
			t.Errorf("outcome %q, want failed", got)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(logs.String(), addr) {
		t.Errorf("the log shows the webhook URL:\n%s", logs.String())
	}
	if strings.Count(logs.String(), "retrying") != 6 || strings.Count(logs.String(), "giving up") != 3 {
		t.Errorf("want 2 retries and one give-up per event:\n%s", logs.String())
	}
}

// TestRefusedIsNotRetried: a 4xx (a revoked webhook) is final.
func TestRefusedIsNotRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "no_service", http.StatusNotFound)
	}))
	defer srv.Close()
	n, r := newNotifier(t, srv.URL, 5)
	n.Notify(Event{Event: Recovered, AccountID: "acme", Text: "x"})
	if got := wait(t, r); got != "failed" {
		t.Errorf("outcome %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d calls for a 404, want 1", calls)
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "hooks.slack.com/x", "ftp://x/y"} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

type funcSyncer func(string)

func (f funcSyncer) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }
func (f funcSyncer) Sync() error                 { return nil }

func zapcoreFor(f func(string)) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"}), funcSyncer(f), zapcore.DebugLevel)
}
