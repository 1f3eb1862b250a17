package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/keeper"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
	"github.com/impact-syncer/impact-syncer/internal/zktest"
)

// The fleet test's ports (this engineer's range; the keeper package's own
// test uses ZooKeeper on 19281, the cluster tests 19100-19199).
const (
	fleetZKPort   = 19282
	fleetSimAddr  = "127.0.0.1:19250"
	fleetHTTPBase = 19210 // workers on 19210, 19211, ...
	fleetTick     = 6 * time.Second
	fleetSession  = 4 * time.Second
	fleetSpread   = time.Second
	fleetAccounts = 30
)

// fleet is the fleet test's world: the simulator on a fixed port, the
// test's ClickHouse database, a private ZooKeeper and the worker processes.
type fleet struct {
	t       *testing.T
	b       *bundle
	zk      *zktest.Server
	bin     string
	env     []string
	host    string
	ids     []string
	specs   map[string]impactsim.AccountSpec
	workers map[string]*workerProc // by member name
	gone    map[string]bool        // killed or stopped
	next    int
}

func setupFleet(t *testing.T) *fleet {
	t.Helper()
	db := chtest.Open(t)
	zk := zktest.Start(t, fleetZKPort)
	sim := impactsim.New(impactsim.Options{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)})
	ln, err := net.Listen("tcp", fleetSimAddr)
	if err != nil {
		t.Fatalf("simulator on %s: %v", fleetSimAddr, err)
	}
	api := httptest.NewUnstartedServer(sim.Handler())
	api.Listener.Close()
	api.Listener = ln
	api.Start()
	t.Cleanup(api.Close)
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	b := &bundle{t: t, sim: sim, api: api, db: db, key: base64.StdEncoding.EncodeToString(k)}
	t.Setenv("CLICKHOUSE_ADDR", chtest.Addr())
	t.Setenv("CLICKHOUSE_DATABASE", db.Database())
	t.Setenv("IMPACT_API_URL", api.URL)
	t.Setenv("SYNCER_ENCRYPTION_KEY", b.key)
	t.Setenv("SYNCER_LOG_LEVEL", "warn")
	t.Setenv("IMPACT_AUTH_TOKEN", "")
	b.mustCLI("", "migrate")

	host, _ := os.Hostname()
	f := &fleet{t: t, b: b, zk: zk, bin: buildSyncer(t), host: host, specs: map[string]impactsim.AccountSpec{},
		workers: map[string]*workerProc{}, gone: map[string]bool{}}
	for i := range fleetAccounts {
		id := fmt.Sprintf("fleet-%02d", i)
		var sp impactsim.AccountSpec
		if i%3 == 0 {
			sp = brandSpec(fmt.Sprintf("IRFLEETBRAND%020d", i))
			sp.Campaigns, sp.MediaPartners, sp.PromoCodes = 1, 3, 2
		} else {
			sp = partnerSpec(fmt.Sprintf("IRFLEETPARTNER%018d", i))
			sp.Campaigns, sp.PromoCodes = 1, 2
		}
		// two weeks of history: one partition month to compare per table
		sp.Seed, sp.Actions, sp.History = int64(100+i), 40, 14*24*time.Hour
		b.addAccount(id, sp)
		f.ids = append(f.ids, id)
		f.specs[id] = sp
	}
	f.env = append(os.Environ(),
		"SYNCER_KEEPER_ADDR="+zk.Addr, fmt.Sprintf("SYNCER_KEEPER_SESSION_TIMEOUT=%s", fleetSession),
		fmt.Sprintf("SYNCER_SCHEDULE_ACTIONS=*/%d * * * * *", int(fleetTick.Seconds())), "SYNCER_SCHEDULE_CATALOG=0 0 0 1 1 *",
		fmt.Sprintf("SYNCER_START_SPREAD=%s", fleetSpread), "SYNCER_SHUTDOWN_TIMEOUT=15s", "SYNCER_CONCURRENCY=6", "SYNCER_LOG_LEVEL=info")
	return f
}

// start starts one more `syncer run` and returns its member name.
func (f *fleet) start() string {
	f.t.Helper()
	w := startWorker(f.t, f.bin, f.env, fmt.Sprintf("127.0.0.1:%d", fleetHTTPBase+f.next))
	f.next++
	name := fmt.Sprintf("%s-%d", f.host, w.cmd.Process.Pid)
	f.workers[name] = w
	return name
}

func (f *fleet) live() []string {
	var out []string
	for n := range f.workers {
		if !f.gone[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// owned is the accounts member owns among members.
func (f *fleet) owned(member string, members []string) []string {
	var out []string
	owners := keeper.Assign(f.ids, members)
	for _, id := range f.ids {
		if owners[id] == member {
			out = append(out, id)
		}
	}
	return out
}

// fleetRun is a sync_runs row.
type fleetRun struct {
	id, account, entity, kind, status string
	started, finished                 time.Time
}

func (f *fleet) runs() []fleetRun {
	f.t.Helper()
	rows, err := f.b.db.Query(f.t.Context(), "SELECT run_id, account_id, entity, kind, status, started_at, finished_at FROM sync_runs FINAL ORDER BY account_id, started_at, run_id")
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []fleetRun
	for rows.Next() {
		var r fleetRun
		if err := rows.Scan(&r.id, &r.account, &r.entity, &r.kind, &r.status, &r.started, &r.finished); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// firstActionsRunAfter is when each account's first succeeded actions run
// started at or after t (zero if none yet).
func firstActionsRunAfter(runs []fleetRun, t time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, r := range runs {
		if r.entity != string(syncer.Actions) || r.status != string(syncer.RunSucceeded) || r.started.Before(t.Truncate(time.Second)) {
			continue
		}
		if cur, ok := out[r.account]; !ok || r.started.Before(cur) {
			out[r.account] = r.started
		}
	}
	return out
}

// steadyCycle is the longest time between the end of an actions run and
// the start of the account's next one among runs started in [from, to], and
// how many accounts had a run there.
func steadyCycle(runs []fleetRun, from, to time.Time) (time.Duration, int) {
	var worst time.Duration
	last := map[string]time.Time{}
	served := map[string]bool{}
	for _, r := range runs { // by account, then start
		if r.entity != string(syncer.Actions) || r.status == string(syncer.RunRunning) {
			continue
		}
		if end, ok := last[r.account]; ok && !r.started.Before(from.Truncate(time.Second)) && r.started.Before(to) {
			worst = max(worst, r.started.Sub(end))
			served[r.account] = true
		}
		last[r.account] = r.finished
	}
	return worst, len(served)
}

// checkNoOverlap: no two runs of one account overlap in time (a run still
// shown as running is open-ended). Times are stored to the second, and
// truncation keeps the order of a run's end and the next one's start; runs
// are ordered by start, then end, so that a run that began and ended
// within the second another began in comes first.
func checkNoOverlap(t *testing.T, runs []fleetRun) int {
	t.Helper()
	by := map[string][]fleetRun{}
	for _, r := range runs {
		by[r.account] = append(by[r.account], r)
	}
	n := 0
	for acct, rs := range by {
		sort.Slice(rs, func(i, j int) bool {
			if !rs[i].started.Equal(rs[j].started) {
				return rs[i].started.Before(rs[j].started)
			}
			return rs[i].finished.Before(rs[j].finished)
		})
		end, endID, endStart := time.Time{}, "", time.Time{}
		for _, r := range rs {
			n++
			if !end.IsZero() && r.started.Before(end) {
				t.Errorf("%s: run %s (%s %s, %s–%s) overlaps run %s (%s–%s)", acct, r.id, r.entity, r.kind,
					r.started.Format(time.TimeOnly), r.finished.Format(time.TimeOnly), endID, endStart.Format(time.TimeOnly), end.Format(time.TimeOnly))
			}
			fin := r.finished
			if r.status == string(syncer.RunRunning) {
				fin = time.Now().Add(time.Hour)
			}
			if fin.After(end) {
				end, endID, endStart = fin, r.id, r.started
			}
		}
	}
	return n
}

var runsTotal = regexp.MustCompile(`(?m)^impact_syncer_runs_total\{entity="actions",outcome="succeeded"\} (\d+)`)

func (w *workerProc) actionRuns() int {
	m := runsTotal.FindStringSubmatch(w.body("/metrics"))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestIntegrationFleet runs three `syncer run` processes against a real
// ZooKeeper, the simulator and ClickHouse, over 30 accounts with a 4 s
// actions schedule, through SIGKILL, SIGTERM, a 30 s ZooKeeper outage and a
// backfill of a held account; sync_runs must never show two runs of one
// account at once, and ClickHouse must end equal to the simulator.
func TestIntegrationFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and four worker processes")
	}
	f := setupFleet(t)
	began := time.Now()
	for range 3 {
		f.start()
	}
	members := f.live()

	// 1. steady state: every account synced, then at least 5 more ticks
	waitFor(t, 120*time.Second, "every account's first sync", func() bool {
		return len(firstActionsRunAfter(f.runs(), began)) == fleetAccounts
	})
	base := map[string]int{}
	for _, n := range members {
		base[n] = f.workers[n].actionRuns()
	}
	steady := time.Now()
	time.Sleep(5 * fleetTick)
	total, counts := 0, map[string]int{}
	for _, n := range members {
		counts[n] = f.workers[n].actionRuns() - base[n]
		total += counts[n]
	}
	// The cycle: how long an account waits between two passes in the
	// steady state. It is under a tick while the fleet keeps up; on a
	// loaded machine the passes of 30 accounts can take longer than a tick
	// (each queues one follow-up pass), and then the hand-over bounds below
	// allow the cycle instead of the tick.
	cycle, served := steadyCycle(f.runs(), steady, time.Now())
	t.Logf("steady state: %d account passes in %s of %s ticks over %d accounts; longest wait between two passes of an account %s",
		total, time.Since(steady).Round(time.Second), fleetTick, fleetAccounts, cycle)
	if served != fleetAccounts {
		t.Errorf("%d of %d accounts synced in %s of steady state", served, fleetAccounts, time.Since(steady).Round(time.Second))
	}
	wait := max(fleetTick, cycle)
	for _, n := range members {
		share := float64(counts[n]) / float64(total)
		t.Logf("split: %s ran %d of %d passes (%.0f%%), owns %d accounts", n, counts[n], total, 100*share, len(f.owned(n, members)))
		if share < 0.20 || share > 0.46 {
			t.Errorf("worker %s ran %.0f%% of the passes; want 20%%-46%%", n, 100*share)
		}
	}
	for _, n := range members {
		m := f.workers[n].body("/metrics")
		for _, want := range []string{`impact_syncer_keeper_session_up 1`, fmt.Sprintf(`impact_syncer_fleet_member{member=%q,self="true"} 1`, n),
			fmt.Sprintf(`impact_syncer_fleet_owned_accounts{member=%q} %d`, n, len(f.owned(n, members)))} {
			if !strings.Contains(m, want) {
				t.Errorf("%s /metrics lacks %s", n, want)
			}
		}
	}

	// 2. SIGKILL: the dead worker's accounts resume on the others within
	// the session timeout and a tick (plus the start spread and slack for a
	// loaded machine)
	f.b.sim.Clock().Advance(30 * time.Minute)
	for _, id := range f.ids[:6] {
		if _, err := f.b.sim.AddActions(f.specs[id].SID, 3, ""); err != nil {
			t.Fatal(err)
		}
	}
	victim := members[2]
	orphans := f.owned(victim, members)
	killed := time.Now()
	_ = f.workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-f.workers[victim].done
	f.gone[victim] = true
	limit := fleetSession + wait + fleetSpread
	waitFor(t, 60*time.Second, "the killed worker's accounts synced by the others", func() bool {
		return len(firstActionsRunAfter(f.runs(), killed.Add(time.Second))) == fleetAccounts
	})
	after := firstActionsRunAfter(f.runs(), killed.Add(time.Second))
	var worst time.Duration
	for _, id := range orphans {
		worst = max(worst, after[id].Sub(killed))
	}
	t.Logf("SIGKILL: %d accounts of %s resumed on the others at most %s after the kill (session timeout %s + tick %s (steady cycle %s) + spread %s)",
		len(orphans), victim, worst.Round(time.Second), fleetSession, fleetTick, cycle, fleetSpread)
	if worst > limit+8*time.Second {
		t.Errorf("the killed worker's accounts resumed %s after the kill; want within %s (+8 s slack for a loaded machine)", worst, limit)
	}

	// a replacement joins (as a container platform would start one)
	replacement := f.start()
	members = f.live()
	waitFor(t, 60*time.Second, "the replacement running passes", func() bool {
		return f.workers[replacement].actionRuns() > 0
	})

	// 3. SIGTERM: the stopped worker's accounts are handed over without a
	// gap longer than a tick between one pass's end and the next's start
	time.Sleep(fleetTick)
	leaver := members[0]
	handed := f.owned(leaver, members)
	termed := time.Now()
	if err := f.workers[leaver].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.workers[leaver].done:
		f.gone[leaver] = true
		if err != nil {
			t.Errorf("SIGTERM: %v\n%s", err, tail(f.workers[leaver].logs(), 2000))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not exit within 30 s of SIGTERM")
	}
	time.Sleep(2*fleetTick + fleetSpread + 2*time.Second)
	var gap time.Duration
	for _, id := range handed {
		var prevEnd time.Time
		for _, r := range f.runs() {
			if r.account != id || r.entity != string(syncer.Actions) || r.status == string(syncer.RunRunning) {
				continue
			}
			if !prevEnd.IsZero() && r.started.After(termed.Add(-fleetTick)) && r.started.Before(termed.Add(2*fleetTick)) {
				gap = max(gap, r.started.Sub(prevEnd))
			}
			prevEnd = r.finished
		}
	}
	t.Logf("SIGTERM: %d accounts of %s handed over; longest pause between passes around the hand-over %s (tick %s)", len(handed), leaver, gap, fleetTick)
	if gap > wait+fleetSpread+8*time.Second {
		t.Errorf("a gap of %s between passes at the hand-over; want at most a tick (%s; steady cycle %s) + spread + 8 s slack for a loaded machine", gap, fleetTick, cycle)
	}
	members = f.live()

	// 4. ZooKeeper stopped for 30 s: passes stop, /readyz says why; started
	// again: syncing resumes without a restart
	f.zk.Stop()
	stopped := time.Now()
	for _, n := range members {
		w := f.workers[n]
		waitFor(t, 20*time.Second, n+" /readyz not ready without ZooKeeper", func() bool {
			return w.get("/readyz") == http.StatusServiceUnavailable
		})
		if body := w.body("/readyz"); !strings.Contains(body, "keeper session lost") {
			t.Errorf("%s /readyz says %q; want the keeper session named", n, body)
		}
	}
	time.Sleep(30*time.Second - time.Since(stopped))
	restarted := time.Now()
	for _, r := range f.runs() {
		if r.started.After(stopped.Add(2*time.Second)) && r.started.Before(restarted.Add(-time.Second)) {
			t.Errorf("run %s of %s (%s) started at %s while ZooKeeper was down", r.id, r.account, r.entity, r.started.Format(time.TimeOnly))
		}
	}
	f.zk.Restart()
	for _, n := range members {
		w := f.workers[n]
		waitFor(t, 60*time.Second, n+" /readyz ready again", func() bool { return w.get("/readyz") == http.StatusOK })
	}
	waitFor(t, 90*time.Second, "every account synced again after ZooKeeper came back", func() bool {
		return len(firstActionsRunAfter(f.runs(), restarted)) == fleetAccounts
	})
	t.Logf("ZooKeeper outage: every account synced again %s after the restart", time.Since(restarted).Round(time.Second))

	// 5. a backfill of an account the fleet holds is refused with the
	// holder's name
	slow := f.ids[1]
	f.b.sim.InjectFaults(f.specs[slow].SID, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 1500 * time.Millisecond, Times: 1000000})
	watcher, err := keeper.Connect(t.Context(), keeper.Options{Addrs: []string{f.zk.Addr}, Root: "/impact-syncer/" + f.b.db.Database(),
		SessionTimeout: fleetSession, Name: "test-watcher", Holder: "test", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	refused := ""
	for try := 0; try < 5 && refused == ""; try++ {
		waitFor(t, 60*time.Second, slow+" held by the fleet", func() bool {
			h, err := watcher.Holders(t.Context())
			return err == nil && strings.HasPrefix(h[slow], "syncer run on ")
		})
		cmd := exec.Command(f.bin, "backfill", "--account", slow, "--from", "2026-11-01")
		cmd.Env = f.env
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Logf("backfill got the lock between two passes; trying again")
			continue
		}
		if m := regexp.MustCompile(`account \S+ is busy: (syncer run on [^)]*\))`).FindSubmatch(out); m != nil {
			refused = string(m[1])
		} else {
			t.Fatalf("backfill of a held account: %v\n%s", err, tail(string(out), 2000))
		}
	}
	if refused == "" {
		t.Fatal("the backfill was never refused while the fleet held the account")
	}
	t.Logf("backfill refused: held by %s", refused)
	cmd := exec.Command(f.bin, "status", "--account", slow)
	cmd.Env = f.env
	status, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(status), fmt.Sprintf("%d live workers", len(members))) {
		t.Errorf("syncer status: %v; want the fleet's %d live workers:\n%s", err, len(members), status)
	}
	t.Logf("syncer status with the account held:\n%s", status)
	page := f.workers[members[0]]
	waitFor(t, 60*time.Second, "the status page naming the fleet and the holder of "+slow, func() bool {
		b := page.body("/")
		return strings.Contains(b, fmt.Sprintf("Fleet of %d live workers", len(members))) &&
			strings.Contains(b, `<td class="holder">syncer run on `)
	})
	f.b.sim.ClearFaults(f.specs[slow].SID)

	// the end: stop the fleet gracefully; no overlap ever; ClickHouse
	// equals the simulator
	synced := time.Now()
	waitFor(t, 90*time.Second, "a last pass of every account", func() bool {
		return len(firstActionsRunAfter(f.runs(), synced)) == fleetAccounts
	})
	for _, n := range f.live() {
		_ = f.workers[n].cmd.Process.Signal(syscall.SIGTERM)
		<-f.workers[n].done
		f.gone[n] = true
	}
	runs := f.runs()
	n := checkNoOverlap(t, runs)
	t.Logf("%d runs over %d accounts in %s: no two runs of one account overlap", n, fleetAccounts, time.Since(began).Round(time.Second))
	compared := time.Now()
	var wg sync.WaitGroup
	ids := make(chan string)
	for range 3 {
		wg.Go(func() {
			for id := range ids {
				truth := f.b.sim.Truth(f.specs[id].SID)
				for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates} {
					res, err := truthcheck.Compare(t.Context(), f.b.db, id, truth, e, nil)
					if err != nil {
						t.Error(err)
					} else if !res.OK() || (e == syncer.Actions && res.Expected == 0) {
						t.Errorf("%s %s: %s\n%s", id, e, res, strings.Join(res.Diffs, "\n"))
					}
				}
			}
		})
	}
	for _, id := range f.ids {
		ids <- id
	}
	close(ids)
	wg.Wait()
	t.Logf("every account's actions and action updates equal the simulator's (compared in %s)", time.Since(compared).Round(time.Second))
	for _, table := range []string{"actions", "action_updates"} {
		f.b.noDuplicateKeys(table)
	}
	for n, w := range f.workers {
		if l := w.logs(); strings.Contains(l, `"level":"panic"`) || strings.Contains(l, "goroutine ") || strings.Contains(l, "DATA RACE") {
			t.Errorf("%s log shows a panic or race:\n%s", n, tail(l, 3000))
		}
	}
}

// TestIntegrationSecondWorkerRefused: without a keeper, a second `syncer
// run` on the same database is refused and names the first.
func TestIntegrationSecondWorkerRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the worker binary")
	}
	b := setup(t)
	b.mustCLI("", "migrate")
	bin := buildSyncer(t)
	env := append(os.Environ(), "SYNCER_SCHEDULE_ACTIONS=*/5 * * * * *", "SYNCER_KEEPER_ADDR=")
	first := startWorker(t, bin, env, "127.0.0.1:19240")
	cmd := exec.Command(bin, "run")
	cmd.Env = append(env, "SYNCER_HTTP_ADDR=127.0.0.1:19241")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to start: another `syncer run` works on this database: syncer run on ") {
		t.Fatalf("second worker: %v\n%s", err, tail(string(out), 2000))
	}
	if first.get("/readyz") != http.StatusOK {
		t.Errorf("the first worker is not ready: %s", first.body("/readyz"))
	}
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	<-first.done
	// once the first stopped, another may start
	second := startWorker(t, bin, env, "127.0.0.1:19241")
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-second.done; err != nil {
		t.Errorf("a worker started after the first stopped: %v\n%s", err, tail(second.logs(), 2000))
	}
}
