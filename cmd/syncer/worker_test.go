package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
)

// privateClickHouse starts a ClickHouse of the test's own (scripts/clickhouse.sh
// with its own directory and port), so the test can stop and restart it
// without disturbing other tests.
type privateClickHouse struct {
	t    *testing.T
	env  []string
	addr string
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	port := strings.Split(freeAddr(t), ":")[1]
	httpPort := strings.Split(freeAddr(t), ":")[1]
	ch := &privateClickHouse{t: t, addr: "127.0.0.1:" + port,
		env: append(os.Environ(), "CH_DIR="+t.TempDir(), "CH_PORT="+port, "CH_HTTP_PORT="+httpPort)}
	ch.script("start")
	ch.script("wait")
	t.Cleanup(func() { ch.script("stop") })
	return ch
}

func (c *privateClickHouse) script(verb string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(c.t), "scripts/clickhouse.sh"), verb)
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("clickhouse.sh %s: %v\n%s", verb, err, out)
	}
}

func buildSyncer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "syncer")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/syncer")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// worker is a running `syncer run` process.
type workerProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
	http   string
}

func startWorker(t *testing.T, bin string, env []string, httpAddr string) *workerProc {
	t.Helper()
	w := &workerProc{cmd: exec.Command(bin, "run"), stderr: &bytes.Buffer{}, done: make(chan error, 1), http: "http://" + httpAddr}
	w.cmd.Env = append(env, "SYNCER_HTTP_ADDR="+httpAddr)
	w.cmd.Stderr = &lockedWriter{w: w.stderr}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	waitFor(t, 30*time.Second, "the worker's /healthz", func() bool { return w.get("/healthz") == 200 })
	return w
}

type lockedWriter struct {
	mu syncBuffer
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) { return l.mu.Write(p) }

func (w *workerProc) logs() string { return w.cmd.Stderr.(*lockedWriter).mu.String() }

func (w *workerProc) get(path string) int {
	resp, err := http.Get(w.http + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (w *workerProc) body(path string) string {
	resp, err := http.Get(w.http + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
}

func countRuns(t *testing.T, db *load.DB, account string, entity syncer.Entity, status syncer.RunStatus) uint64 {
	t.Helper()
	var n uint64
	_ = db.QueryRow(context.Background(), "SELECT count() FROM sync_runs FINAL WHERE account_id = ? AND entity = ? AND status = ?",
		account, string(entity), string(status)).Scan(&n)
	return n
}

// TestIntegrationWorker runs the real binary with second-level schedules
// against the simulator and a private ClickHouse.
func TestIntegrationWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ClickHouse and the worker binary")
	}
	chtest.Open(t) // skips (or fails under CI) when ClickHouse is not installed and running
	ch := startPrivateClickHouse(t)
	bin := buildSyncer(t)

	b := setup(t) // simulator + environment; the database below is the private server's
	t.Setenv("CLICKHOUSE_ADDR", ch.addr)
	t.Setenv("CLICKHOUSE_DATABASE", "worker_test")
	b.mustCLI("", "migrate")
	db, err := load.Open(t.Context(), load.Options{Addrs: []string{ch.addr}, Database: "worker_test"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b.db = db

	specs := map[string]impactsim.AccountSpec{
		"brand-a":   brandSpec("IRWORKERBRANDA000000000000000001"),
		"partner-b": partnerSpec("IRWORKERPARTNERB0000000000000001"),
		"revoked-c": brandSpec("IRWORKERREVOKEDC0000000000000001"),
		"slow-d":    brandSpec("IRWORKERSLOWD0000000000000000001"),
	}
	for id, sp := range specs {
		sp.Actions = 300
		b.addAccount(id, sp)
	}
	b.sim.ResetToken(specs["revoked-c"].SID)
	b.sim.InjectFaults(specs["slow-d"].SID, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 700 * time.Millisecond, Times: 100000})

	env := append(os.Environ(),
		"SYNCER_SCHEDULE_ACTIONS=*/2 * * * * *", "SYNCER_SCHEDULE_CATALOG=*/3 * * * * *",
		"SYNCER_START_SPREAD=0s", "SYNCER_SHUTDOWN_TIMEOUT=8s", "SYNCER_LOG_LEVEL=info", "SYNCER_CONCURRENCY=3")
	w := startWorker(t, bin, env, freeAddr(t))

	// every healthy account syncs on schedule, more than once
	waitFor(t, 60*time.Second, "two scheduled action runs for brand-a and partner-b", func() bool {
		return countRuns(t, db, "brand-a", syncer.Actions, syncer.RunSucceeded) >= 2 &&
			countRuns(t, db, "partner-b", syncer.Actions, syncer.RunSucceeded) >= 2 &&
			countRuns(t, db, "brand-a", syncer.Campaigns, syncer.RunSucceeded) >= 1
	})
	// the revoked account is flagged once, then skipped
	store := load.NewAccountStore(db)
	waitFor(t, 20*time.Second, "revoked-c flagged needs_reconnect", func() bool {
		a, err := store.Account(t.Context(), "revoked-c")
		return err == nil && a.Status == syncer.StatusNeedsReconnect
	})
	revokedRequests := b.sim.Stats(specs["revoked-c"].SID).Requests
	time.Sleep(4500 * time.Millisecond)
	if n := b.sim.Stats(specs["revoked-c"].SID).Requests; n != revokedRequests {
		t.Errorf("the flagged account still gets requests: %d → %d", revokedRequests, n)
	}
	// the slow account does not hold up the others
	if countRuns(t, db, "brand-a", syncer.Actions, syncer.RunSucceeded) < 3 {
		t.Errorf("brand-a is not syncing on schedule beside the slow account")
	}

	metrics := w.body("/metrics")
	for _, want := range []string{`impact_syncer_rows_loaded_total{account_id="brand-a",entity="actions"}`,
		`impact_syncer_accounts{status="needs_reconnect"} 1`, `impact_syncer_accounts{status="active"} 3`,
		`impact_syncer_last_success_timestamp_seconds{account_id="partner-b",entity="actions"}`,
		`impact_syncer_api_requests_total{entity="actions",status="200"}`,
		`impact_syncer_watermark_lag_seconds{account_id="brand-a",entity="actions"}`,
		`impact_syncer_account_status{account_id="revoked-c",status="needs_reconnect"} 1`,
		`impact_syncer_api_request_duration_seconds_bucket{endpoint="Actions"`, "impact_syncer_clickhouse_up 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// readiness follows ClickHouse
	if code := w.get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d with ClickHouse up", code)
	}
	ch.script("stop")
	waitFor(t, 20*time.Second, "/readyz to turn unready", func() bool { return w.get("/readyz") == http.StatusServiceUnavailable })
	if code := w.get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d while ClickHouse is down; the process is alive", code)
	}
	ch.script("start")
	ch.script("wait")
	waitFor(t, 30*time.Second, "/readyz to be ready again", func() bool { return w.get("/readyz") == 200 })

	// SIGTERM during runs: exit 0 within the timeout
	waitFor(t, 20*time.Second, "a run of slow-d in progress", func() bool {
		return countRuns(t, db, "slow-d", syncer.Actions, syncer.RunRunning) > 0 || strings.Contains(w.logs(), `"account_id":"slow-d","entity":"actions"`)
	})
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker exit after SIGTERM: %v\n%s", err, tail(w.logs(), 2000))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("worker did not exit within 20s of SIGTERM")
	}
	took := time.Since(start)
	t.Logf("worker exited %s after SIGTERM", took.Round(time.Millisecond))
	if took > 8*time.Second+3*time.Second {
		t.Errorf("shutdown took %s, timeout is 8s", took)
	}
	if !strings.Contains(w.logs(), "worker stopped") {
		t.Errorf("no 'worker stopped' log line:\n%s", tail(w.logs(), 1500))
	}

	// the next start continues without loss or duplicates
	b.sim.ClearFaults(specs["slow-d"].SID)
	b.sim.Clock().Advance(2 * time.Hour)
	w2 := startWorker(t, bin, env, freeAddr(t))
	before := countRuns(t, db, "slow-d", syncer.Actions, syncer.RunSucceeded)
	waitFor(t, 60*time.Second, "slow-d synced after the restart", func() bool {
		return countRuns(t, db, "slow-d", syncer.Actions, syncer.RunSucceeded) > before &&
			countRuns(t, db, "slow-d", syncer.ActionUpdates, syncer.RunSucceeded) > 0
	})
	_ = w2.cmd.Process.Signal(syscall.SIGTERM)
	<-w2.done
	for _, id := range []string{"brand-a", "slow-d"} {
		truth := b.sim.Truth(specs[id].SID)
		for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates} {
			res, err := truthcheck.Compare(t.Context(), db, id, truth, e, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Errorf("%s %s after restart: %s\n%s", id, e, res, strings.Join(res.Diffs, "\n"))
			}
		}
	}
	for _, table := range []string{"actions", "action_updates"} {
		b.noDuplicateKeys(table)
	}
	if strings.Contains(w.logs(), `"level":"panic"`) || strings.Contains(w.logs(), "goroutine ") {
		t.Errorf("worker log shows a panic")
	}
	fmt.Fprint(io.Discard, w2.logs())
}
