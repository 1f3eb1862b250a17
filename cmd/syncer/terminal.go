package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newLogger logs JSON lines, or, for a person at a terminal, readable
// console lines.
func newLogger(level string, w io.Writer, console bool) *zap.Logger {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = zapcore.InfoLevel
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if console {
		enc.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02 15:04:05Z07:00")
		enc.EncodeDuration = zapcore.StringDurationEncoder
		enc.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc.EncodeCaller = nil
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), lvl))
}

// logWriter is where the log goes: stderr, or, while a progress bar is
// drawn, the bar's container, which prints each line above the bars.
type logWriter struct {
	mu   sync.Mutex
	w    io.Writer
	prev io.Writer // the terminal, while the bars borrow the log
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if err != nil && n == 0 && l.prev != nil { // the bars just finished: the terminal itself
		return l.prev.Write(p)
	}
	return n, err
}

func (l *logWriter) swap(w io.Writer) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.w
	l.w = w
	if l.prev == nil {
		l.prev = old
	} else {
		l.prev = nil // given back
	}
	return old
}

// progressBars draws one bar per entity of a backfill on the terminal and
// sends log lines above them; finish stops drawing and gives the log its
// terminal back.
type progressBars struct {
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[syncer.Entity]*barState
	logOut *logWriter
	prev   io.Writer
}

type barState struct {
	bar  *mpb.Bar
	last atomic.Pointer[syncer.Progress] // read by the bar's renderer: no lock shared with update
}

func newProgressBars(stderr io.Writer, logOut *logWriter) *progressBars {
	pb := &progressBars{p: mpb.New(mpb.WithOutput(stderr), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh()),
		bars: map[syncer.Entity]*barState{}, logOut: logOut}
	if logOut != nil {
		pb.prev = logOut.swap(pb.p)
	}
	return pb
}

func (pb *progressBars) update(pr syncer.Progress) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	st := pb.bars[pr.Entity]
	if st == nil {
		st = &barState{}
		name := fmt.Sprintf("%s %s", pr.AccountID, pr.Entity)
		st.bar = pb.p.AddBar(int64(max(pr.WindowsTotal, 1)),
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d win", decor.WCSyncSpace)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				if p := st.last.Load(); p != nil {
					return barText(*p)
				}
				return ""
			}, decor.WCSyncSpace)),
			mpb.BarFillerClearOnComplete())
		pb.bars[pr.Entity] = st
	}
	st.last.Store(&pr)
	st.bar.SetTotal(int64(max(pr.WindowsTotal, 1)), false)
	st.bar.SetCurrent(int64(pr.WindowsDone))
	if pr.WindowsDone >= pr.WindowsTotal {
		st.bar.SetTotal(int64(max(pr.WindowsTotal, 1)), true)
	}
}

// barText is what follows the bar: rows, 429 waits and the time left.
func barText(p syncer.Progress) string {
	s := fmt.Sprintf("%s rows", compact(p.Rows))
	if p.RateLimitWaits > 0 {
		s += fmt.Sprintf(" %d waits", p.RateLimitWaits)
	}
	if p.WindowsDone >= p.WindowsTotal {
		return s + " done"
	}
	if eta := p.ETA(); eta > 0 {
		s += " ETA " + eta.Round(time.Second).String()
	}
	return s
}

// compact writes a count in at most five characters: 999, 12.3k, 4.5M.
func compact(n uint64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}

// finish completes the bars (a stopped backfill leaves them where they are)
// and waits for the last frame.
func (pb *progressBars) finish() {
	pb.mu.Lock()
	for _, st := range pb.bars {
		if !st.bar.Completed() {
			st.bar.Abort(false)
		}
	}
	pb.mu.Unlock()
	pb.p.Wait()
	if pb.logOut != nil {
		pb.logOut.swap(pb.prev)
	}
}

// progressPrinter shows backfill progress: bars on a terminal (call the
// returned finish when the backfill ends), structured log lines at most every
// five seconds otherwise.
func progressPrinter(stderr io.Writer, log *zap.Logger, logOut *logWriter) (func(syncer.Progress), func()) {
	if isTerminal(stderr) {
		pb := newProgressBars(stderr, logOut)
		return pb.update, pb.finish
	}
	var mu sync.Mutex
	var last time.Time
	return func(p syncer.Progress) {
		done := p.WindowsDone >= p.WindowsTotal
		mu.Lock()
		if !done && time.Since(last) < 5*time.Second {
			mu.Unlock()
			return
		}
		last = time.Now()
		mu.Unlock()
		log.Info("backfill progress", zap.String("account_id", p.AccountID), zap.String("entity", string(p.Entity)),
			zap.Int("windows_done", p.WindowsDone), zap.Int("windows_total", p.WindowsTotal), zap.Uint64("rows", p.Rows),
			zap.Uint64("requests", p.Requests), zap.Uint64("rate_limit_waits", p.RateLimitWaits), zap.Duration("eta", p.ETA()))
	}, func() {}
}
