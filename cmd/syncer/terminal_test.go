package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressBarsWithLogLines: updates of two entities, one after the other,
// and log lines written while a bar runs all come out (the log above the
// bars), and the bars end without a deadlock between the renderer and the
// updates.
func TestProgressBarsWithLogLines(t *testing.T) {
	out := &lockedBuffer{}
	logOut := &logWriter{w: out}
	log := newLogger("info", logOut, true)
	pb := newProgressBars(out, logOut)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates} { // one after the other, as a backfill runs them
			for i := 1; i <= 200; i++ {
				pb.update(syncer.Progress{AccountID: "acme", Entity: e, WindowsDone: i, WindowsTotal: 200,
					Rows: uint64(i) * 1500, Elapsed: time.Duration(i) * time.Millisecond})
				if i%50 == 25 {
					log.Warn("a line while the bars run", zap.String("entity", string(e)), zap.Int("i", i))
				}
			}
		}
		pb.finish()
		log.Info("after the bars")
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("progress bars deadlocked")
	}
	text := out.String()
	if n := strings.Count(text, "a line while the bars run"); n != 8 {
		t.Errorf("%d log lines came through, want 8:\n%s", n, text)
	}
	for _, want := range []string{"acme actions", "acme action_updates", "200/200", "300.0k rows done", "after the bars"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, `{"level"`) {
		t.Errorf("JSON log lines on a terminal")
	}
}

func TestBarText(t *testing.T) {
	for _, tc := range []struct {
		p    syncer.Progress
		want string
	}{
		{syncer.Progress{WindowsDone: 1, WindowsTotal: 4, Rows: 999, Elapsed: 10 * time.Second}, "999 rows ETA 30s"},
		{syncer.Progress{WindowsDone: 2, WindowsTotal: 4, Rows: 12345, RateLimitWaits: 3, Elapsed: time.Minute}, "12.3k rows 3 waits ETA 1m0s"},
		{syncer.Progress{WindowsDone: 4, WindowsTotal: 4, Rows: 4_500_000}, "4.5M rows done"},
	} {
		if got := barText(tc.p); got != tc.want {
			t.Errorf("barText(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestProgressNotATerminal: without a terminal, progress stays structured log
// lines (at most every five seconds, and the last one).
func TestProgressNotATerminal(t *testing.T) {
	out := &lockedBuffer{}
	log := newLogger("info", out, false)
	update, finish := progressPrinter(out, log, nil)
	for i := 1; i <= 50; i++ {
		update(syncer.Progress{AccountID: "acme", Entity: syncer.Actions, WindowsDone: i, WindowsTotal: 50})
	}
	finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"windows_done":50`) || !strings.HasPrefix(lines[0], `{"level":"info"`) {
		t.Errorf("progress lines:\n%s", out.String())
	}
}
