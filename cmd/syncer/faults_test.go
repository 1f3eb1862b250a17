package main

// Fault-injection suite (issue 9, `make test-faults`): faults at every joint
// of a sync — the impact.com API, ClickHouse, the process, the credentials,
// the command line and the HTTP surface. Every scenario ends by comparing
// ClickHouse with the simulator's truth through FINAL, by reading sync_runs
// (a failed run is recorded as failed with its account, entity and reason;
// the next run completes) and by checking sync_state: no watermark stands
// past a record that is not in ClickHouse. docs/reliability.md is the table
// of what is tried here; the counts it quotes come from the t.Logf lines
// "fault counts: ...".

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/oauthsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
)

// faultCounts are what a test reports for docs/reliability.md.
type faultCounts struct {
	scenarios  atomic.Int64
	killPoints atomic.Int64
	rows       atomic.Int64 // truth records compared with ClickHouse, field by field
	watermarks atomic.Int64 // sync_state watermarks checked against ClickHouse
}

func (c *faultCounts) log(t *testing.T) {
	t.Helper()
	t.Logf("fault counts: %d scenarios, %d kill points, %d rows compared, %d watermarks checked",
		c.scenarios.Load(), c.killPoints.Load(), c.rows.Load(), c.watermarks.Load())
}

// faultBundle is a bundle whose CLI runs log at debug level into one buffer,
// scanned for secrets when the test ends.
type faultBundle struct {
	*bundle
	logs    *syncBuffer
	secrets *[]string
	counts  *faultCounts
}

// with returns the bundle reporting to t (a subtest).
func (f *faultBundle) with(t *testing.T) *faultBundle {
	b := *f.bundle
	b.t = t
	g := *f
	g.bundle = &b
	return &g
}

func setupFaults(t *testing.T) *faultBundle {
	t.Helper()
	b := setup(t)
	t.Setenv("SYNCER_LOG_LEVEL", "debug")
	// ClearedDate arrives by a re-scan every SYNCER_CLEARING_INTERVAL (6h of
	// API time by default); every run re-scans here, so that "equals the
	// truth" holds after every run, whatever the clock did in between.
	t.Setenv("SYNCER_CLEARING_INTERVAL", "1s")
	f := &faultBundle{bundle: b, logs: &syncBuffer{}, secrets: &[]string{b.key}, counts: &faultCounts{}}
	t.Cleanup(func() {
		if !t.Failed() {
			f.scanSecrets(f.logs.String(), "the debug logs")
		}
		f.counts.log(t)
	})
	return f
}

// scanSecrets fails the test if any known secret appears in text.
func (f *faultBundle) scanSecrets(text, where string) {
	f.t.Helper()
	for _, s := range *f.secrets {
		if s != "" && strings.Contains(text, s) {
			f.t.Errorf("a secret (%d chars) appears in %s", len(s), where)
		}
	}
}

// run runs the CLI in-process; its logs go to f.logs.
func (f *faultBundle) run(stdin string, args ...string) (string, error) {
	f.t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(f.t.Context(), 4*time.Minute)
	defer cancel()
	err := run(ctx, args, strings.NewReader(stdin), &out, f.logs)
	if err != nil {
		// what a user sees: the error, the report and the log lines of the run
		f.scanSecrets(err.Error(), "an error message")
	}
	f.scanSecrets(out.String(), "the command output")
	return out.String(), err
}

func (f *faultBundle) mustRun(stdin string, args ...string) string {
	f.t.Helper()
	out, err := f.run(stdin, args...)
	if err != nil {
		f.t.Fatalf("syncer %s: %v\n%s\nlogs:\n%s", strings.Join(args, " "), err, out, tail(f.logs.String(), 4000))
	}
	return out
}

// addAccount creates the simulator account and registers it.
func (f *faultBundle) addAccount(id string, spec impactsim.AccountSpec) {
	f.t.Helper()
	if err := f.sim.AddAccount(spec); err != nil {
		f.t.Fatal(err)
	}
	*f.secrets = append(*f.secrets, spec.Token)
	f.mustRun(spec.Token+"\n", "accounts", "add", "--id", id, "--persona", string(spec.Persona), "--sid", spec.SID, "--token-stdin")
}

// equalsTruth compares every entity of the account with the simulator's
// truth, field by field, and checks that FINAL shows every key once.
func (f *faultBundle) equalsTruth(id, sid string, entities ...syncer.Entity) {
	f.t.Helper()
	compareTruth(f.t, f.db, f.counts, id, f.sim.Truth(sid), entities...)
}

func compareTruth(t *testing.T, db *load.DB, c *faultCounts, id string, truth impactsim.Truth, entities ...syncer.Entity) {
	t.Helper()
	for _, e := range entities {
		res, err := truthcheck.Compare(t.Context(), db, id, truth, e, nil)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if res.Expected == 0 {
			t.Errorf("%s: the simulator holds no records; the comparison proves nothing", e)
		}
		if !res.OK() {
			t.Errorf("%s %s differs from the simulator:\n  %s", id, res, strings.Join(res.Diffs, "\n  "))
		}
		c.rows.Add(int64(res.Expected))
	}
	for _, table := range []string{"actions", "action_updates"} {
		var rows, keys uint64
		q := fmt.Sprintf("SELECT count(), uniqExact(id) FROM `%s` FINAL WHERE account_id = ?", table)
		if err := db.QueryRow(t.Context(), q, id).Scan(&rows, &keys); err != nil {
			t.Fatal(err)
		}
		if rows != keys {
			t.Errorf("%s %s: %d rows through FINAL for %d keys", id, table, rows, keys)
		}
	}
}

// watermark is one sync_state row as readers see it.
type watermark struct {
	entity   syncer.Entity
	campaign string
	scan     string
	at       time.Time
}

func readWatermarks(t *testing.T, db *load.DB, id string) []watermark {
	t.Helper()
	rows, err := db.Query(t.Context(), "SELECT entity, campaign_id, scan, argMax(watermark, version) FROM sync_state "+
		"WHERE account_id = ? GROUP BY entity, campaign_id, scan ORDER BY entity, campaign_id, scan", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []watermark
	for rows.Next() {
		var w watermark
		var e string
		if err := rows.Scan(&e, &w.campaign, &w.scan, &w.at); err != nil {
			t.Fatal(err)
		}
		w.entity = syncer.Entity(e)
		out = append(out, w)
	}
	return out
}

// checkWatermarks proves that no watermark of the account stands past data
// that is not loaded: every truth record whose filter date is at or before a
// watermark of its campaign scope is in ClickHouse, and a record the
// last-updated watermark covers is there as it was last updated (amounts,
// every other column but the state and clearing, which change without an
// update). It returns the number of watermarks checked.
func checkWatermarks(t *testing.T, db *load.DB, c *faultCounts, id string, truth impactsim.Truth) int {
	t.Helper()
	wms := readWatermarks(t, db, id)
	loaded := map[syncer.Entity]map[string][]any{}
	for _, e := range syncer.ActivityEntities {
		rows, err := truthcheck.Read(t.Context(), db, id, e)
		if err != nil {
			t.Fatal(err)
		}
		loaded[e] = rows
	}
	// each truth record with its campaign and the dates each filter reads
	type dated struct {
		key, campaign string
		dates         map[syncer.DateFilter]time.Time
		rec           reflect.Value
	}
	records := map[syncer.Entity][]dated{}
	for _, e := range syncer.ActivityEntities {
		for key, rec := range truthcheck.Records(truth, e) {
			d := dated{key: key, campaign: rec.FieldByName("CampaignId").String(), rec: rec, dates: map[syncer.DateFilter]time.Time{}}
			for _, f := range []syncer.DateFilter{syncer.ByUpdated, syncer.ByEvent, syncer.ByLocking} {
				d.dates[f] = filterDate(e, rec, f)
			}
			records[e] = append(records[e], d)
		}
	}
	staleCache := map[string][]string{} // entity and key → columns that differ from the truth
	checked := 0
	for _, w := range wms {
		filter, from, ok := scanFilter(w.scan)
		if !ok {
			continue
		}
		checked++
		tb := syncer.Tables[w.entity]
		var missing, stale []string
		for _, r := range records[w.entity] {
			key, rec := r.key, r.rec
			if w.campaign != "" && r.campaign != w.campaign {
				continue
			}
			d := r.dates[filter]
			if d.IsZero() || d.After(w.at) || d.Before(from) {
				continue
			}
			row, ok := loaded[w.entity][key]
			if !ok {
				missing = append(missing, fmt.Sprintf("%s (%s %s)", key, filter, d.Format(time.RFC3339)))
				continue
			}
			if filter != syncer.ByUpdated {
				continue
			}
			ck := string(w.entity) + "\x00" + key
			diffs, ok := staleCache[ck]
			if !ok {
				for i, col := range tb.Columns {
					if col.Name == "state" || col.Name == "cleared_date" || col.Name == "clearing_date" {
						continue
					}
					exp, found := truthcheck.Expected(rec, col)
					if found && fmt.Sprint(exp) != fmt.Sprint(row[i]) && !sameValue(exp, row[i]) {
						diffs = append(diffs, fmt.Sprintf("%s %s: ClickHouse %v, truth %v", key, col.Name, row[i], exp))
					}
				}
				staleCache[ck] = diffs
			}
			stale = append(stale, diffs...)
		}
		sort.Strings(missing)
		sort.Strings(stale)
		if len(missing) > 0 {
			t.Errorf("sync_state %s %s campaign %q scan %s stands at %s, but %d records at or before it are not in ClickHouse: %v",
				id, w.entity, w.campaign, w.scan, w.at.Format(time.RFC3339), len(missing), firstN(missing, 5))
		}
		if len(stale) > 0 {
			t.Errorf("sync_state %s %s campaign %q scan %s stands at %s, but %d values updated before it are stale in ClickHouse: %v",
				id, w.entity, w.campaign, w.scan, w.at.Format(time.RFC3339), len(stale), firstN(stale, 5))
		}
	}
	if c != nil {
		c.watermarks.Add(int64(checked))
	}
	return checked
}

// sameValue compares a normalised truth value with a ClickHouse value
// loosely enough for decimals and times.
func sameValue(exp, got any) bool {
	type decimalish interface{ String() string }
	switch g := got.(type) {
	case time.Time:
		if e, ok := exp.(time.Time); ok {
			return e.Equal(g) || (e.IsZero() && g.Unix() == 0)
		}
	}
	if e, ok := exp.(decimalish); ok {
		if g, ok := got.(decimalish); ok {
			return strings.TrimRight(strings.TrimRight(e.String(), "0"), ".") == strings.TrimRight(strings.TrimRight(g.String(), "0"), ".")
		}
	}
	return reflect.DeepEqual(exp, got)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// scanFilter maps a watermark's scan name to its date filter and the start
// of the range it covers.
func scanFilter(scan string) (syncer.DateFilter, time.Time, bool) {
	switch scan {
	case syncer.ScanUpdated:
		return syncer.ByUpdated, time.Time{}, true
	case syncer.ScanLocking, syncer.ScanClearing:
		return syncer.ByLocking, time.Time{}, true
	case syncer.ScanEvent:
		return syncer.ByEvent, time.Time{}, true
	}
	// backfill:<filter>:<from>..<to>
	if rest, ok := strings.CutPrefix(scan, "backfill:"); ok {
		f, rng, ok := strings.Cut(rest, ":")
		if !ok {
			return "", time.Time{}, false
		}
		fromName, _, _ := strings.Cut(rng, "..")
		from, _ := time.Parse(time.RFC3339, fromName) // "reach": zero
		return syncer.DateFilter(f), from, true
	}
	return "", time.Time{}, false // event_until and the like are not watermarks of loaded data
}

// filterDate is the date a record is filtered on.
func filterDate(e syncer.Entity, rec reflect.Value, f syncer.DateFilter) time.Time {
	name := map[syncer.DateFilter]string{syncer.ByUpdated: "LastUpdated", syncer.ByEvent: "EventDate", syncer.ByLocking: "LockingDate"}[f]
	if e == syncer.ActionUpdates {
		name = map[syncer.DateFilter]string{syncer.ByUpdated: "UpdateDate", syncer.ByEvent: "ActionDate", syncer.ByLocking: "LockingDate"}[f]
	}
	v := rec.FieldByName(name)
	if !v.IsValid() {
		return time.Time{}
	}
	return v.Interface().(time.Time)
}

// runIDs lists the ids of the account's runs in sync_runs.
func runIDs(t *testing.T, db *load.DB, id string) map[string]bool {
	t.Helper()
	runs, err := load.NewRunStore(db).Runs(t.Context(), id, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range runs {
		out[r.ID] = true
	}
	return out
}

// newRuns returns the account's runs not in before, as sync_runs shows them.
func newRuns(t *testing.T, db *load.DB, id string, before map[string]bool) []syncer.Run {
	t.Helper()
	runs, err := load.NewRunStore(db).Runs(t.Context(), id, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []syncer.Run
	for _, r := range runs {
		if !before[r.ID] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b syncer.Run) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

// requireAllSucceeded fails unless every run in runs succeeded.
func requireAllSucceeded(t *testing.T, runs []syncer.Run, what string) {
	t.Helper()
	if len(runs) == 0 {
		t.Errorf("%s: no runs recorded", what)
	}
	for _, r := range runs {
		if r.Status != syncer.RunSucceeded {
			t.Errorf("%s: run %s %s %s: %s %q", what, r.ID, r.AccountID, r.Entity, r.Status, r.Error)
		}
	}
}

// requireFailedRun finds the run of entity that failed, recorded with a
// reason containing every one of reason.
func requireFailedRun(t *testing.T, runs []syncer.Run, id string, e syncer.Entity, reason ...string) syncer.Run {
	t.Helper()
	for _, r := range runs {
		if r.Entity != e {
			continue
		}
		if r.Status != syncer.RunFailed || r.AccountID != id {
			t.Errorf("run %s of %s %s: status %s, want failed (error %q)", r.ID, r.AccountID, e, r.Status, r.Error)
			return r
		}
		for _, want := range reason {
			if !strings.Contains(r.Error, want) {
				t.Errorf("failed run of %s %s: the reason %q does not say %q", id, e, r.Error, want)
			}
		}
		return r
	}
	t.Errorf("no run of %s %s recorded among %d new runs", id, e, len(runs))
	return syncer.Run{}
}

// --- a TCP proxy between the syncer and ClickHouse -------------------------

// chProxy forwards the native protocol to ClickHouse and fails inserts into
// a table on request: before the server sees them (failInsert) or after the
// server has written them, by dropping the connection instead of passing the
// server's acknowledgement on (dropAck).
type chProxy struct {
	t      *testing.T
	target string
	ln     net.Listener

	mu      sync.Mutex
	failN   map[string]int           // table → inserts still to cut before the server sees them
	hold    map[string]chan struct{} // table → closed when an insert is held (never forwarded)
	dropN   map[string]int           // table → inserts whose acknowledgement is still to drop
	onDrop  func(table string, ack []byte)
	cut     int // inserts cut
	dropped int // acknowledgements dropped
	conns   map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *chProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chProxy{t: t, target: target, ln: ln, failN: map[string]int{}, dropN: map[string]int{},
		hold: map[string]chan struct{}{}, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *chProxy) addr() string { return p.ln.Addr().String() }

// failInsert cuts the next n inserts into table before ClickHouse sees them.
func (p *chProxy) failInsert(table string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failN[table] = n
}

// dropAck lets the next n inserts into table reach ClickHouse, then drops
// the connection instead of forwarding the server's answer.
func (p *chProxy) dropAck(table string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropN[table] = n
}

// holdInsert keeps the next insert into table from ClickHouse, its
// connection hanging, and closes the returned channel when it arrives.
func (p *chProxy) holdInsert(table string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	p.hold[table] = ch
	return ch
}

func (p *chProxy) stats() (cut, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut, p.dropped
}

func (p *chProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pipe(c, s)
	}
}

// insertTable returns the table of an INSERT in b, if any.
func insertTable(b []byte) string {
	i := bytes.Index(b, []byte("INSERT INTO `"))
	if i < 0 {
		return ""
	}
	rest := b[i+len("INSERT INTO `"):]
	j := bytes.IndexByte(rest, '`')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

func (p *chProxy) pipe(client, server net.Conn) {
	var (
		mu         sync.Mutex
		dropTable  string // an insert whose ack is to be dropped is under way
		replied    bool   // the server answered the insert query (its sample block)
		clientSent bool   // the client sent its data after that answer
		once       sync.Once
	)
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	go func() { // client → server
		defer closeBoth()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				if table := insertTable(chunk); table != "" {
					p.mu.Lock()
					if held, ok := p.hold[table]; ok {
						delete(p.hold, table)
						p.mu.Unlock()
						close(held)
						_, _ = io.Copy(io.Discard, client) // hang until the client goes
						return
					}
					cut := p.failN[table] > 0
					if cut {
						p.failN[table]--
						p.cut++
					}
					drop := !cut && p.dropN[table] > 0
					if drop {
						p.dropN[table]--
					}
					p.mu.Unlock()
					if cut {
						return
					}
					if drop {
						mu.Lock()
						dropTable, replied, clientSent = table, false, false
						mu.Unlock()
					}
				} else {
					mu.Lock()
					if dropTable != "" && replied {
						clientSent = true
					}
					mu.Unlock()
				}
				if _, err := server.Write(chunk); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	// server → client
	defer closeBoth()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			mu.Lock()
			table, ack := dropTable, dropTable != "" && replied && clientSent
			if dropTable != "" && !replied {
				replied = true
			}
			mu.Unlock()
			if ack {
				p.mu.Lock()
				p.dropped++
				hook := p.onDrop
				p.mu.Unlock()
				if hook != nil {
					hook(table, slices.Clone(buf[:n]))
				}
				return // the server wrote the rows; the client never hears it
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// --- the impact.com API -----------------------------------------------------

// apiFault is one API fault scenario: faults injected before an incremental
// sync, and what that sync must do.
type apiFault struct {
	name   string
	faults []impactsim.Fault
	env    map[string]string // extra environment for the faulted run
	bulk   int               // actions to add first (PageSize 2000: 2,100 make two pages)
	before func(f *faultBundle, sid string)
	// fails is the entity whose run must fail loudly ("" when the run
	// recovers), with a reason holding every one of reason.
	fails  syncer.Entity
	reason []string
	check  func(t *testing.T, runs []syncer.Run)
}

// TestIntegrationFaultAPI injects every API fault of issue 9 into the
// incremental syncs of a brand account whose Actions and ActionUpdates run
// to three pages (4,100 actions in the 24-hour overlap at PageSize 2000).
// Each scenario either recovers and completes, or fails loudly — sync_runs
// names the account, the entity and the reason — and the next run completes;
// after each, ClickHouse equals the truth and no watermark stands past data
// that is not loaded.
func TestIntegrationFaultAPI(t *testing.T) {
	f := setupFaults(t)
	t.Setenv("SYNCER_PAGE_SIZE_ACTIONS", "2000")
	// Incremental runs reach back one second before their watermark, so a
	// scenario reads what changed since the previous one and nothing more.
	t.Setenv("SYNCER_OVERLAP", "1s")
	f.mustRun("", "migrate")
	const id, sid = "api", "IRFAULTAPI000000000000000000001"
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = 1, 300, 8, 6
	f.addAccount(id, spec)
	f.mustRun("", "sync")
	f.equalsTruth(id, sid, syncer.AllEntities...)
	checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))

	page := func(resource string, n int) string {
		return fmt.Sprintf("/%s?PageSize=2000&Page=%d", resource, n)
	}
	waited := func(min uint64) func(t *testing.T, runs []syncer.Run) {
		return func(t *testing.T, runs []syncer.Run) {
			var got uint64
			for _, r := range runs {
				got += r.RateLimitWaits
			}
			if got < min {
				t.Errorf("sync_runs shows %d rate-limit waits, want at least %d", got, min)
			}
		}
	}
	cases := []apiFault{
		{name: "html_500", faults: []impactsim.Fault{{Kind: impactsim.FaultHTML500, Times: 2, Match: "Actions"}}},
		{name: "empty_500", faults: []impactsim.Fault{{Kind: impactsim.FaultEmpty500, Times: 2, Match: "ActionUpdates"}}},
		{name: "gateway_502_503_504", faults: []impactsim.Fault{
			{Kind: impactsim.FaultStatus, Status: 502, Match: "Campaigns"},
			{Kind: impactsim.FaultStatus, Status: 503, Match: "Actions"},
			{Kind: impactsim.FaultStatus, Status: 504, Match: "ActionUpdates"}}},
		{name: "truncated_json", faults: []impactsim.Fault{{Kind: impactsim.FaultTruncated, Times: 2, Match: "Actions"}}},
		{name: "connection_reset_mid_body", faults: []impactsim.Fault{{Kind: impactsim.FaultReset, Times: 2, Match: "ActionUpdates"}}},
		{name: "slower_than_client_timeout", env: map[string]string{"SYNCER_REQUEST_TIMEOUT": "2s"},
			faults: []impactsim.Fault{{Kind: impactsim.FaultSlow, Delay: 6 * time.Second, Times: 2, Match: "Actions"}}},
		{name: "429_storm_with_retry_after", check: waited(3),
			faults: []impactsim.Fault{{Kind: impactsim.Fault429, RetryAfter: 1, Times: 3, Match: "Actions"}}},
		{name: "429_storm_without_retry_after", check: waited(2), before: nearRateWindowEnd,
			faults: []impactsim.Fault{{Kind: impactsim.Fault429, Times: 2, Match: "ActionUpdates"}}},
		{name: "total_inconsistent_once", faults: []impactsim.Fault{{Kind: impactsim.FaultTotalMismatch, Match: "Actions"}}},
		{name: "total_inconsistent_every_read", faults: []impactsim.Fault{{Kind: impactsim.FaultTotalMismatch, Times: 8, Match: "ActionUpdates"}},
			fails: syncer.ActionUpdates, reason: []string{"@total", "kept changing"}},
		{name: "unknown_list_key", faults: []impactsim.Fault{{Kind: impactsim.FaultUnknownListKey, Match: "Actions"}},
			fails: syncer.Actions, reason: []string{`no "Actions" list`, "Records"}},
		{name: "malformed_date_in_record", faults: []impactsim.Fault{{Kind: impactsim.FaultBadDate, Match: "ActionUpdates"}},
			fails: syncer.ActionUpdates, reason: []string{"could not be decoded", "not-a-date"}},
		{name: "malformed_amount_in_record", faults: []impactsim.Fault{{Kind: impactsim.FaultBadAmount, Match: "Actions"}},
			fails: syncer.Actions, reason: []string{"could not be decoded", "12,34"}},
		{name: "malformed_date_in_catalog", faults: []impactsim.Fault{{Kind: impactsim.FaultBadDate, Match: "PromoCodes"}},
			fails: syncer.PromoCodes, reason: []string{"could not be decoded", "not-a-date"}},
		{name: "nextpageuri_backwards", bulk: 4100, faults: []impactsim.Fault{{Kind: impactsim.FaultNextBackwards, Match: page("Actions", 2)}},
			fails: syncer.Actions, reason: []string{"@nextpageuri", "goes back to page 1 from page 2"}},
		// on page 2 (a loop on the only page of a result is harmless: the
		// client stops at the last page whatever @nextpageuri says)
		{name: "nextpageuri_loop", bulk: 2100, faults: []impactsim.Fault{{Kind: impactsim.FaultNextLoop, Match: page("ActionUpdates", 2)}},
			fails: syncer.ActionUpdates, reason: []string{"@nextpageuri", "page 2 from page 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := f.with(t)
			g.apiScenario(id, sid, c)
		})
	}
}

// nearRateWindowEnd moves the simulator clock to a second before the
// account's hourly rate window renews, so a 429 without Retry-After tells
// the client (by X-RateLimit-Reset) to wait a second, not an hour.
func nearRateWindowEnd(f *faultBundle, sid string) {
	f.t.Helper()
	reset := probeRateReset(f, sid)
	if reset > 1 {
		f.sim.Clock().Advance(time.Duration(reset-1) * time.Second)
	}
	if r := probeRateReset(f, sid); r > 2 {
		f.t.Fatalf("X-RateLimit-Reset is %d s after moving the clock", r)
	}
}

func probeRateReset(f *faultBundle, sid string) int {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/Advertisers/"+sid+"/CompanyInformation", nil)
	req.SetBasicAuth(sid, "tok-"+sid+"-s3cr3t-value")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Reset"))
	if err != nil {
		f.t.Fatalf("X-RateLimit-Reset %q: %v", resp.Header.Get("X-RateLimit-Reset"), err)
	}
	return n
}

// churn makes changes for the next incremental run to pick up: new
// actions, a modified and a reversed one.
func (f *faultBundle) churn(sid string, n int) {
	f.t.Helper()
	f.sim.Clock().Advance(30 * time.Minute)
	if _, err := f.sim.AddActions(sid, n, ""); err != nil {
		f.t.Fatal(err)
	}
	var pending []impactsim.Action
	for _, a := range f.sim.Truth(sid).Actions {
		if a.State == "PENDING" {
			pending = append(pending, a)
		}
	}
	if len(pending) < 2 {
		f.t.Fatalf("only %d pending actions left", len(pending))
	}
	a, b := pending[len(pending)/3], pending[2*len(pending)/3]
	if err := f.sim.ModifyAction(sid, a.Id, "1.50", "0.15"); err != nil {
		f.t.Fatal(err)
	}
	if err := f.sim.ReverseAction(sid, b.Id); err != nil {
		f.t.Fatal(err)
	}
}

func (f *faultBundle) apiScenario(id, sid string, c apiFault) {
	t := f.t
	f.churn(sid, 7+c.bulk)
	if c.before != nil {
		c.before(f, sid)
	}
	for k, v := range c.env {
		t.Setenv(k, v)
	}
	before := runIDs(t, f.db, id)
	servedBefore := f.sim.Stats(sid).FaultsServed
	want := 0
	for _, ft := range c.faults {
		want += max(ft.Times, 1)
	}
	f.sim.InjectFaults(sid, c.faults...)
	start := time.Now()
	out, err := f.run("", "sync", "--account", id)
	took := time.Since(start)
	served := f.sim.Stats(sid).FaultsServed - servedBefore
	f.sim.ClearFaults(sid)
	if served != want {
		t.Errorf("the simulator served %d faulted responses, want %d: the scenario did not exercise the fault", served, want)
	}
	runs := newRuns(t, f.db, id, before)
	f.counts.scenarios.Add(1)
	if c.fails == "" {
		if err != nil {
			t.Fatalf("the run did not recover: %v\n%s", err, out)
		}
		requireAllSucceeded(t, runs, "faulted run")
		if c.check != nil {
			c.check(t, runs)
		}
		t.Logf("observed: recovered in %s; %s", took.Round(100*time.Millisecond), runSummary(runs))
	} else {
		if err == nil {
			t.Fatalf("the run succeeded despite the fault:\n%s\nlogs:\n%s", out, tail(f.logs.String(), 6000))
		}
		r := requireFailedRun(t, runs, id, c.fails, c.reason...)
		for _, want := range []string{id, string(c.fails), "failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("the sync report does not show %q:\n%s", want, out)
			}
		}
		for _, other := range runs {
			if other.Entity != c.fails && other.Status != syncer.RunSucceeded {
				t.Errorf("the fault in %s also failed %s: %s %q", c.fails, other.Entity, other.Status, other.Error)
			}
		}
		// nothing is committed past what was not loaded
		checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))
		t.Logf("observed: failed loudly in %s: exit %v; sync_runs %s %s: %q", took.Round(100*time.Millisecond), err, r.Entity, r.Status, r.Error)
		before = runIDs(t, f.db, id)
		f.mustRun("", "sync", "--account", id)
		requireAllSucceeded(t, newRuns(t, f.db, id, before), "the next run")
	}
	for k := range c.env {
		t.Setenv(k, "")
		if k == "SYNCER_REQUEST_TIMEOUT" {
			t.Setenv(k, "2m")
		}
	}
	f.equalsTruth(id, sid, syncer.AllEntities...)
	checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))
}

func runSummary(runs []syncer.Run) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s %s (%d rows, %d requests, %d 429 waits)", r.Entity, r.Status, r.Rows, r.Requests, r.RateLimitWaits))
	}
	return strings.Join(parts, ", ")
}

// --- ClickHouse -------------------------------------------------------------

// TestIntegrationFaultClickHouseAckLost puts a proxy between the syncer and
// ClickHouse that lets an insert reach the server and then drops the
// connection instead of passing the server's acknowledgement on — for the
// entity tables, a catalog, sync_state and sync_runs. The server has the
// rows; the syncer sees a broken connection, retries (the same rows with the
// same version, or, for a streamed insert, the same windows read again), and
// readers see every key once.
func TestIntegrationFaultClickHouseAckLost(t *testing.T) {
	f := setupFaults(t)
	f.mustRun("", "migrate")
	proxy := startProxy(t, chtest.Addr())
	t.Setenv("CLICKHOUSE_ADDR", proxy.addr())
	const id, sid = "acklost", "IRFAULTACK000000000000000000001"
	spec := partnerSpec(sid)
	spec.Actions, spec.PromoCodes = 300, 5
	f.addAccount(id, spec)

	tables := []string{"actions", "action_updates", "campaigns", "sync_state", "sync_runs"}
	landed := map[string]bool{}
	var mu sync.Mutex
	before := map[string]uint64{}
	for _, table := range tables {
		before[table] = rawCount(t, f.db, table)
	}
	proxy.onDrop = func(table string, ack []byte) {
		// The client has not heard back: the rows must be on the server.
		n := rawCount(t, f.db, table)
		mu.Lock()
		landed[table] = n > before[table]
		mu.Unlock()
		t.Logf("dropped the acknowledgement of an insert into %s (answer packet type %d); the table holds %d rows, %d before",
			table, ack[0], n, before[table])
	}
	for _, table := range tables {
		proxy.dropAck(table, 1)
	}
	runsBefore := runIDs(t, f.db, id)
	out := f.mustRun("", "sync")
	_, dropped := proxy.stats()
	if dropped != len(tables) {
		t.Fatalf("the proxy dropped %d acknowledgements, want %d (one per table of %v)", dropped, len(tables), tables)
	}
	for _, table := range tables {
		if !landed[table] {
			t.Errorf("%s: the insert whose acknowledgement was dropped had not reached the server; the scenario proves nothing", table)
		}
	}
	// Catalog, state and run inserts are sent again as they were; a streamed
	// actions or action updates insert keeps no rows, so its windows are read
	// again from the last stored watermark.
	logs := f.logs.String()
	if n := strings.Count(logs, "clickhouse write failed; retrying the same rows") +
		strings.Count(logs, "clickhouse write failed; reading the windows since the last stored watermark again"); n < len(tables) {
		t.Errorf("%d retries logged, want at least %d", n, len(tables))
	}
	requireAllSucceeded(t, newRuns(t, f.db, id, runsBefore), "the sync whose acknowledgements were lost")
	f.counts.scenarios.Add(int64(len(tables)))
	f.equalsTruth(id, sid, syncer.CompanyInformation, syncer.Campaigns, syncer.PromoCodes, syncer.Actions, syncer.ActionUpdates)
	for _, table := range []string{"campaigns", "promo_codes"} {
		var rows, keys uint64
		if err := f.db.QueryRow(t.Context(), "SELECT count(), uniqExact(id) FROM `"+table+"` FINAL WHERE account_id = ?", id).Scan(&rows, &keys); err != nil {
			t.Fatal(err)
		}
		if rows != keys {
			t.Errorf("%s: %d rows through FINAL for %d keys", table, rows, keys)
		}
	}
	var running uint64
	if err := f.db.QueryRow(t.Context(), "SELECT count() FROM sync_runs FINAL WHERE account_id = ? AND status = 'running'", id).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if running != 0 {
		t.Errorf("sync_runs shows %d runs still running after the sync", running)
	}
	checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))
	t.Logf("observed: %d acknowledgements dropped after the server wrote the rows, each insert retried, no duplicate through FINAL; raw rows now actions %d, sync_state %d\n%s",
		dropped, rawCount(t, f.db, "actions"), rawCount(t, f.db, "sync_state"), out)
}

func rawCount(t *testing.T, db *load.DB, table string) uint64 {
	var n uint64
	if err := db.QueryRow(context.Background(), "SELECT count() FROM `"+table+"`").Scan(&n); err != nil {
		t.Errorf("count %s: %v", table, err)
	}
	return n
}

// TestIntegrationFaultClickHouseMissingColumn drops a column of the actions
// table: the sync fails with an error naming the table and the column, the
// other entities load, no Actions watermark moves; once the column is back
// the next sync loads everything.
func TestIntegrationFaultClickHouseMissingColumn(t *testing.T) {
	f := setupFaults(t)
	f.mustRun("", "migrate")
	const id, sid = "nocolumn", "IRFAULTCOLUMN00000000000000000001"
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions = 2, 300
	f.addAccount(id, spec)
	if err := f.db.Exec(t.Context(), "ALTER TABLE actions DROP COLUMN customer_city"); err != nil {
		t.Fatal(err)
	}
	before := runIDs(t, f.db, id)
	out, err := f.run("", "sync")
	if err == nil {
		t.Fatalf("the sync succeeded without the column:\n%s", out)
	}
	runs := newRuns(t, f.db, id, before)
	r := requireFailedRun(t, runs, id, syncer.Actions, "actions", "customer_city")
	for _, other := range runs {
		if other.Entity != syncer.Actions && other.Status != syncer.RunSucceeded {
			t.Errorf("%s: %s %q", other.Entity, other.Status, other.Error)
		}
	}
	if !strings.Contains(out, "customer_city") {
		t.Errorf("the sync report does not name the missing column:\n%s", out)
	}
	if n := strings.Count(r.Error, "lacks columns"); n != 1 {
		t.Errorf("sync_runs states the missing column %d times: %q", n, r.Error)
	}
	// Watermarks may pass windows that held no action; none passes an action.
	checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))
	if n, _ := f.db.CountFinal(t.Context(), "actions", id); n != 0 {
		t.Errorf("%d actions stored without the column", n)
	}
	f.counts.scenarios.Add(1)
	t.Logf("observed: exit %v; sync_runs actions %s: %q", err, r.Status, r.Error)

	if err := f.db.Exec(t.Context(), "ALTER TABLE actions ADD COLUMN customer_city String AFTER customer_area"); err != nil {
		t.Fatal(err)
	}
	before = runIDs(t, f.db, id)
	f.mustRun("", "sync")
	requireAllSucceeded(t, newRuns(t, f.db, id, before), "the sync after the column came back")
	f.equalsTruth(id, sid, syncer.AllEntities...)
	checkWatermarks(t, f.db, f.counts, id, f.sim.Truth(sid))
}

// proc is a syncer binary started by a test.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

func startBin(t *testing.T, bin string, stdin string, args ...string) *proc {
	t.Helper()
	return startBinEnv(t, bin, os.Environ(), stdin, args...)
}

func startBinEnv(t *testing.T, bin string, env []string, stdin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdin = strings.NewReader(stdin)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process and returns its exit code (-1: killed).
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("syncer %s did not exit within %s\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), limit, tail(p.stderr.String(), 3000))
		return -1
	}
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// runBin runs the binary to completion.
func runBin(t *testing.T, bin string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startBin(t, bin, stdin, args...)
	code = p.wait(t, 3*time.Minute)
	return p.stdout.String(), p.stderr.String(), code
}

// noCrash fails if a process's output shows a panic or a stack trace.
func noCrash(t *testing.T, what, output string) {
	t.Helper()
	for _, sign := range []string{"panic:", "goroutine ", "runtime error", "[signal ", ".go:"} {
		if strings.Contains(output, sign) {
			t.Errorf("%s: the output shows a crash (%q):\n%s", what, sign, tail(output, 3000))
			return
		}
	}
}

// privateFaults is a fault bundle on a ClickHouse of the test's own, which
// it can stop and start, and the syncer binary.
type privateFaults struct {
	*faultBundle
	ch  *privateClickHouse
	bin string
	// others are more accounts (id, SID) the killed command syncs, checked
	// like the first after every kill point.
	others [][2]string
}

func setupPrivate(t *testing.T, database string) *privateFaults {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a ClickHouse and the syncer binary")
	}
	chtest.Open(t) // skips (or fails under CI) when ClickHouse is not installed and running
	start := time.Now()
	ch := startPrivateClickHouse(t)
	t.Cleanup(func() {
		// its data goes with the test: do not wait for a graceful shutdown
		fast := &privateClickHouse{t: t, addr: ch.addr, env: append(slices.Clone(ch.env), "CH_STOP_TIMEOUT=1")}
		fast.script("stop")
	})
	started := time.Now()
	bin := buildSyncer(t)
	built := time.Now()
	f := setupFaults(t)
	t.Setenv("CLICKHOUSE_ADDR", ch.addr)
	t.Setenv("CLICKHOUSE_DATABASE", database)
	f.mustRun("", "migrate")
	t.Logf("private ClickHouse started in %s, binary built in %s, migrated in %s", started.Sub(start).Round(time.Millisecond),
		built.Sub(started).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	db, err := load.Open(t.Context(), load.Options{Addrs: []string{ch.addr}, Database: database}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	return &privateFaults{faultBundle: f, ch: ch, bin: bin}
}

// TestIntegrationFaultClickHouseStoppedMidBackfill stops ClickHouse while a
// backfill (the real binary) is loading: the backfill fails with a clear
// error and a non-zero exit, no watermark passes what was not stored; with
// ClickHouse back, the same command resumes from its last committed window
// and the result equals the truth.
func TestIntegrationFaultClickHouseStoppedMidBackfill(t *testing.T) {
	p := setupPrivate(t, "faults_backfill")
	const id, sid = "backfill", "IRFAULTBACKFILL000000000000000001"
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = 2, 1500, 3, 3
	spec.History = 400 * day
	p.addAccount(id, spec)
	from := p.sim.Clock().Now().Add(-401 * day).Format("2006-01-02")
	args := []string{"backfill", "--account", id, "--from", from}

	// Every window takes a while, so that ClickHouse stops midway: left
	// alone, this backfill can finish in a fraction of a second.
	for _, r := range []string{"Actions", "ActionUpdates"} {
		p.sim.InjectFaults(sid, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 100 * time.Millisecond, Times: 1000, Match: r})
	}
	before := runIDs(t, p.db, id)
	bf := startBin(t, p.bin, "", args...)
	waitFor(t, 60*time.Second, "the backfill to commit a few windows", func() bool {
		n := 0
		for _, w := range readWatermarks(t, p.db, id) {
			if strings.HasPrefix(w.scan, "backfill:") {
				n++
			}
		}
		return n >= 2
	})
	p.ch.script("stop")
	code := bf.wait(t, 2*time.Minute)
	stderr := bf.stderr.String()
	if code == 0 {
		t.Fatalf("the backfill exited 0 although ClickHouse stopped under it\n%s", tail(stderr, 2000))
	}
	noCrash(t, "backfill with ClickHouse stopped", stderr)
	last := stderr[strings.LastIndex(strings.TrimRight(stderr, "\n"), "\n")+1:]
	if !strings.Contains(stderr, "syncer:") || !strings.Contains(strings.ToLower(stderr), "clickhouse") {
		t.Errorf("the backfill's error does not say ClickHouse failed:\n%s", tail(stderr, 2000))
	}
	report := bf.stdout.String()
	if !strings.Contains(report, id) || !strings.Contains(report, "failed") {
		t.Errorf("the backfill's report does not show the failed account:\n%s", report)
	}
	t.Logf("observed: exit %d; %s\n%s", code, strings.TrimSpace(last), report)
	p.scanSecrets(stderr, "the backfill's stderr")

	p.ch.script("start")
	p.ch.script("wait")
	p.sim.ClearFaults(sid)
	waitFor(t, 30*time.Second, "ClickHouse answering again", func() bool { return p.db.Ping(t.Context()) == nil })
	checkWatermarks(t, p.db, p.counts, id, p.sim.Truth(sid))
	first := newRuns(t, p.db, id, before)
	t.Logf("sync_runs after the outage: %s", runSummary(first))

	before = runIDs(t, p.db, id)
	out, stderr, code := runBin(t, p.bin, "", args...)
	if code != 0 {
		t.Fatalf("the resumed backfill exited %d:\n%s\n%s", code, out, tail(grepLines(stderr, `"level":"(info|warn|error)"|syncer:`), 3000))
	}
	p.scanSecrets(stderr, "the backfill's stderr")
	resumed := newRuns(t, p.db, id, before)
	requireAllSucceeded(t, resumed, "the resumed backfill")
	var windows uint64
	for _, r := range resumed {
		windows += r.Windows
	}
	const total = 2 * 2 * 10 // campaigns × entities × 44-day windows in 401 days
	if windows >= total {
		t.Errorf("the resumed backfill read %d windows, the whole range is %d: it did not resume", windows, total)
	}
	t.Logf("observed: the resumed backfill read %d of %d windows: %s", windows, total, runSummary(resumed))
	p.counts.scenarios.Add(1)
	compareTruth(t, p.db, p.counts, id, p.sim.Truth(sid), syncer.Actions, syncer.ActionUpdates)
	checkWatermarks(t, p.db, p.counts, id, p.sim.Truth(sid))
	requireNoRunning(t, p.db, id)
	// the run ClickHouse's outage kept from recording its end is closed by
	// the next one, with the reason
	after := newRuns(t, p.db, id, nil)
	for _, r := range first {
		for _, a := range after {
			if a.ID == r.ID && r.Status == syncer.RunRunning && (a.Status != syncer.RunInterrupted || !strings.Contains(a.Error, "ended without recording an outcome")) {
				t.Errorf("the run cut off by the outage (%s %s) is now %s %q", a.AccountID, a.Entity, a.Status, a.Error)
			}
		}
	}
}

// requireNoRunning fails if sync_runs still shows a run of the account as
// running: a run whose process died must not look alive.
func requireNoRunning(t *testing.T, db *load.DB, id string) {
	t.Helper()
	runs, err := load.NewRunStore(db).Runs(t.Context(), id, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Status == syncer.RunRunning {
			t.Errorf("sync_runs still shows run %s (%s %s, started %s) as running; its process is gone",
				r.ID, r.AccountID, r.Entity, r.StartedAt.Format(time.RFC3339))
		}
	}
}

// grepLines keeps the lines of s matching the regular expression.
func grepLines(s, expr string) string {
	re := regexp.MustCompile(expr)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// --- the process ------------------------------------------------------------

// killSeed is the seed of the kill points: FAULT_SEED reproduces a run.
func killSeed(t *testing.T) int64 {
	t.Helper()
	if s := os.Getenv("FAULT_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED %q: %v", s, err)
		}
		return n
	}
	return time.Now().UnixNano()
}

// lastLogPoint names where a killed process was: the message (and entity)
// of its last log line.
func lastLogPoint(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		m := regexp.MustCompile(`"msg":"([^"]*)"`).FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		msg := m[1]
		switch {
		case strings.Contains(msg, "clock differs"), strings.Contains(msg, "progress"):
			msg = "loading windows"
		case msg == "clickhouse connected":
			msg = "start-up (connected, taking the lease)"
		}
		if e := regexp.MustCompile(`"entity":"([^"]*)"`).FindStringSubmatch(lines[i]); e != nil {
			return e[1] + ": " + msg
		}
		return msg
	}
	return "before the first log line"
}

// killPoints kills `syncer args` at random points and follows each kill
// with a normal run of the same command, which must exit 0 and leave
// ClickHouse equal to the truth. churn runs before each point; entities are
// compared. It returns the number of kills that landed while the process
// ran.
func (p *privateFaults) killPoints(rng *rand.Rand, want int, id, sid string, args func(i int) []string, churn func(i int), entities ...syncer.Entity) int {
	t := p.t
	estimate := 3 * time.Second // the first run: the longest
	kills, late := 0, 0
	phases := map[string]int{}
	for i := 0; kills < want; i++ {
		if i >= 3*want {
			t.Fatalf("only %d of %d kills landed while the process ran", kills, i)
		}
		churn(i)
		a := args(i)
		d := time.Duration(rng.Int63n(int64(estimate)))
		proc := startBin(t, p.bin, "", a...)
		timer := time.NewTimer(d)
		select {
		case <-proc.done:
			timer.Stop()
			late++
		case <-timer.C:
			proc.kill9()
			kills++
			phases[lastLogPoint(proc.stderr.String())]++
		}
		p.scanSecrets(proc.stderr.String()+proc.stdout.String(), "a killed process's output")

		start := time.Now()
		out, stderr, code := runBin(t, p.bin, "", a...)
		took := time.Since(start)
		if code != 0 {
			t.Fatalf("point %d (killed after %s): the next run exited %d:\n%s\n%s", i, d, code, out,
				tail(grepLines(stderr, `"level":"(warn|error)"|syncer:`), 3000))
		}
		noCrash(t, "the run after a kill", stderr)
		p.scanSecrets(stderr+out, "the next run's output")
		estimate = max(took+took/4, 300*time.Millisecond)
		cstart := time.Now()
		for _, acct := range append([][2]string{{id, sid}}, p.others...) {
			truth := p.sim.Truth(acct[1])
			compareTruth(t, p.db, p.counts, acct[0], truth, entities...)
			checkWatermarks(t, p.db, p.counts, acct[0], truth)
			requireNoRunning(t, p.db, acct[0])
		}
		t.Logf("point %d: %s after start (%s); the next run took %s, the checks %s", i, d.Round(time.Millisecond),
			lastLogPoint(proc.stderr.String()), took.Round(time.Millisecond), time.Since(cstart).Round(time.Millisecond))
		if t.Failed() {
			t.Fatalf("point %d: killed %s after start (%s); the next run took %s", i, d, lastLogPoint(proc.stderr.String()), took)
		}
	}
	p.counts.killPoints.Add(int64(kills))
	p.counts.scenarios.Add(1)
	var where []string
	for ph, n := range phases {
		where = append(where, fmt.Sprintf("%d× %s", n, ph))
	}
	sort.Strings(where)
	t.Logf("observed: %d kill -9 points while the process ran (%d more runs finished before their kill point), each followed by a run that exited 0 with ClickHouse equal to the truth; killed at: %s",
		kills, late, strings.Join(where, "; "))
	return kills
}

// TestIntegrationFaultKill9 kills the real binary with SIGKILL at random
// points (seeded; FAULT_SEED=<seed> repeats a run) of a sync and of a
// backfill, at least 20 points each. After every kill a normal run of the
// same command exits 0 — the dead process's lease is taken over, its
// runs are recorded as interrupted — and ClickHouse equals the truth, with
// no watermark past data not loaded.
func TestIntegrationFaultKill9(t *testing.T) {
	p := setupPrivate(t, "faults_kill9")
	seed := killSeed(t)
	t.Logf("kill points seed %d (FAULT_SEED=%d repeats them)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	const id, sid = "kill9", "IRFAULTKILL900000000000000000001"
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = 2, 300, 5, 4
	p.addAccount(id, spec)

	change := func(sid string) {
		if _, err := p.sim.AddActions(sid, rng.Intn(30), ""); err != nil {
			t.Fatal(err)
		}
		var pending []string
		for _, a := range p.sim.Truth(sid).Actions {
			if a.State == "PENDING" {
				pending = append(pending, a.Id)
			}
		}
		for k := 0; k < 2 && len(pending) > 0; k++ {
			a := pending[rng.Intn(len(pending))]
			if k == 0 {
				_ = p.sim.ModifyAction(sid, a, "3.25", "0.33")
			} else {
				_ = p.sim.ReverseAction(sid, a)
			}
		}
	}
	var others [][2]string // the accounts of the many-accounts sync, added for it
	churn := func(i int) {
		if i == 0 {
			return // the first point kills the first sync
		}
		p.sim.Clock().Advance(time.Duration(1+rng.Intn(48)) * time.Hour)
		change(sid)
		for _, o := range others {
			change(o[1])
		}
	}
	t.Run("sync", func(t *testing.T) {
		q := &privateFaults{faultBundle: p.faultBundle.with(t), ch: p.ch, bin: p.bin}
		q.killPoints(rng, 20, id, sid, func(int) []string { return []string{"sync"} }, churn, syncer.AllEntities...)
	})
	// several accounts: steady-state passes stage their writes and commit
	// together (internal/syncer/commit.go); a kill before, during or after a
	// shared commit loses nothing
	t.Run("sync of three accounts", func(t *testing.T) {
		for i := range 2 {
			o := [2]string{fmt.Sprintf("kill9-%d", i), fmt.Sprintf("IRFAULTKILL9MANY00000000000000%02d", i)}
			spec := brandSpec(o[1])
			spec.Seed, spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = int64(30+i), 2, 200, 4, 3
			p.addAccount(o[0], spec)
			others = append(others, o)
		}
		defer func() { others = nil }()
		q := &privateFaults{faultBundle: p.faultBundle.with(t), ch: p.ch, bin: p.bin, others: others}
		q.killPoints(rng, 12, id, sid, func(int) []string { return []string{"sync"} }, churn, syncer.AllEntities...)
	})
	t.Run("backfill", func(t *testing.T) {
		q := &privateFaults{faultBundle: p.faultBundle.with(t), ch: p.ch, bin: p.bin}
		// before every EventDate (120 days of history, and the clock has moved
		// on since): the backfill covers every action the churn changes
		from := p.sim.Clock().Now().Add(-200 * day).Format("2006-01-02")
		q.killPoints(rng, 20, id, sid, func(i int) []string {
			// a new --to each point makes it a new backfill, resumed by the run after the kill
			to := p.sim.Clock().Now().Add(time.Duration(i) * time.Second).Format(time.RFC3339)
			return []string{"backfill", "--account", id, "--from", from, "--to", to}
		}, churn, syncer.Actions, syncer.ActionUpdates)
	})
}

// --- credentials ------------------------------------------------------------

// credFaults wires OAuth (the simulated authorization server), a ClickHouse
// proxy and a hookable API in front of the simulator.
type credFaults struct {
	*faultBundle
	as    *oauthsim.Server
	proxy *chProxy
	hooks *apiHooks
	bin   string
}

// apiHooks runs a function before the simulator serves a matching request.
type apiHooks struct {
	mu    sync.Mutex
	hooks []apiHook
}

type apiHook struct {
	match func(r *http.Request) bool
	fn    func(r *http.Request)
}

// before runs fn once, before the first request match accepts is served.
func (h *apiHooks) before(match func(r *http.Request) bool, fn func(r *http.Request)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hooks = append(h.hooks, apiHook{match, fn})
}

func (h *apiHooks) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		var fn func(*http.Request)
		for i, k := range h.hooks {
			if k.match(r) {
				fn = k.fn
				h.hooks = append(h.hooks[:i], h.hooks[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
		if fn != nil {
			fn(r)
		}
		next.ServeHTTP(w, r)
	})
}

func setupCredFaults(t *testing.T) *credFaults {
	t.Helper()
	f := setupFaults(t)
	c := &credFaults{faultBundle: f, hooks: &apiHooks{}}
	api := httptest.NewServer(c.hooks.wrap(f.sim.Handler()))
	t.Cleanup(api.Close)
	t.Setenv("IMPACT_API_URL", api.URL)
	redirect := "http://" + freeAddr(t) + "/oauth/callback"
	var mu sync.Mutex
	c.as = oauthsim.New(oauthsim.Options{
		ClientID: oauthClientID, ClientSecret: oauthClientSecret, RedirectURIs: []string{redirect},
		Now: f.sim.Clock().Now,
		OnAccessIssued: func(sid, token string, expiry time.Time) {
			f.sim.AddBearerToken(sid, token, expiry)
			mu.Lock()
			*f.secrets = append(*f.secrets, token)
			mu.Unlock()
		},
	})
	as := httptest.NewServer(c.as.Handler())
	t.Cleanup(as.Close)
	t.Setenv("IMPACT_OAUTH_CLIENT_ID", oauthClientID)
	t.Setenv("IMPACT_OAUTH_CLIENT_SECRET", oauthClientSecret)
	t.Setenv("IMPACT_OAUTH_AUTHORIZE_URL", as.URL+"/oauth2/authorize")
	t.Setenv("IMPACT_OAUTH_TOKEN_URL", as.URL+"/oauth2/token")
	t.Setenv("IMPACT_OAUTH_REDIRECT_URL", redirect)
	t.Setenv("IMPACT_OAUTH_SCOPES", "offline_access")
	*f.secrets = append(*f.secrets, oauthClientSecret)
	f.mustRun("", "migrate")
	c.proxy = startProxy(t, chtest.Addr())
	t.Setenv("CLICKHOUSE_ADDR", c.proxy.addr())
	t.Cleanup(func() { *f.secrets = append(*f.secrets, c.as.IssuedTokens()...) })
	return c
}

func (c *credFaults) with(t *testing.T) *credFaults {
	d := *c
	d.faultBundle = c.faultBundle.with(t)
	return &d
}

// connect runs `syncer connect` and consents, as a browser would.
func (c *credFaults) connect(id string, persona impactsim.Persona, sid string) {
	c.t.Helper()
	o := &oauthBundle{bundle: c.bundle, as: c.as, logs: c.logs}
	if err := o.connect(id, string(persona), sid); err != nil {
		c.t.Fatalf("connect %s: %v\nlogs:\n%s", id, err, tail(c.logs.String(), 3000))
	}
}

func (c *credFaults) account(id string) syncer.Account {
	c.t.Helper()
	a, err := load.NewAccountStore(c.db).Account(c.t.Context(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

func (c *credFaults) storedRefreshToken(id string) string {
	c.t.Helper()
	o := &oauthBundle{bundle: c.bundle, as: c.as, logs: c.logs}
	return o.storedRefreshToken(id)
}

// liveRefreshToken is the refresh token the authorization server accepts
// now for the account's newest grant ("" if revoked).
func (c *credFaults) liveRefreshToken(sid string) string {
	g := c.as.Grants(sid)
	if len(g) == 0 {
		return ""
	}
	slices.SortFunc(g, func(a, b string) int {
		ai, _ := strconv.Atoi(strings.TrimPrefix(a, "grant-"))
		bi, _ := strconv.Atoi(strings.TrimPrefix(b, "grant-"))
		return ai - bi
	})
	return c.as.LiveRefreshToken(g[len(g)-1])
}

// TestIntegrationFaultCredentials breaks credentials mid-flight: the store
// write of a rotated refresh token failing (and recovering) within a run;
// the process killed between the token endpoint's answer and that write;
// the grant revoked in the middle of a run; a Basic token reset between two
// pages. Each is either recovered or flagged needs_reconnect with a reason
// that says what to do, recorded in sync_runs, with no further token
// requests; after reconnecting, the next run completes and ClickHouse
// equals the truth.
func TestIntegrationFaultCredentials(t *testing.T) {
	c := setupCredFaults(t)
	c.bin = buildSyncer(t)
	const id, sid = "oauth", "IRFAULTOAUTH0000000000000000001"
	spec := partnerSpec(sid)
	spec.Actions, spec.PromoCodes = 300, 4
	if err := c.sim.AddAccount(spec); err != nil {
		t.Fatal(err)
	}
	c.connect(id, spec.Persona, sid)
	c.mustRun("", "sync", "--account", id)
	c.equalsTruth(id, sid, entitiesOf(spec.Persona)...)

	t.Run("rotated_token_store_write_fails_then_recovers", func(t *testing.T) {
		c := c.with(t)
		c.sim.Clock().Advance(10 * time.Minute) // the access token (5 minutes) expires: the run refreshes
		c.churn(sid, 5)
		requests := c.as.TokenRequestsFor(sid)
		c.proxy.failInsert("accounts", 5) // the first save attempt fails, with all its insert retries
		before := runIDs(t, c.db, id)
		out := c.mustRun("", "sync", "--account", id)
		if cut, _ := c.proxy.stats(); cut < 5 {
			t.Fatalf("the proxy cut %d inserts into accounts, want 5", cut)
		}
		if !strings.Contains(c.logs.String(), "saving the rotated refresh token failed") {
			t.Errorf("no log line says the save of the rotated refresh token failed")
		}
		if n := c.as.TokenRequestsFor(sid) - requests; n != 1 {
			t.Errorf("%d token requests, want 1 (one refresh, its token saved on a later attempt)", n)
		}
		if got, live := c.storedRefreshToken(id), c.liveRefreshToken(sid); got == "" || got != live {
			t.Errorf("the store does not hold the live refresh token after the write recovered")
		}
		if a := c.account(id); a.Status != syncer.StatusActive {
			t.Errorf("account %s: %s %q", id, a.Status, a.StatusReason)
		}
		requireAllSucceeded(t, newRuns(t, c.db, id, before), "the run whose token save failed once")
		c.counts.scenarios.Add(1)
		c.equalsTruth(id, sid, entitiesOf(spec.Persona)...)
		checkWatermarks(t, c.db, c.counts, id, c.sim.Truth(sid))
		t.Logf("observed: the first save attempt failed (5 inserts cut), the next one stored the rotated token; run succeeded\n%s", out)
	})

	t.Run("process_killed_between_token_answer_and_store_write", func(t *testing.T) {
		c := c.with(t)
		c.sim.Clock().Advance(10 * time.Minute)
		c.churn(sid, 5)
		stored := c.storedRefreshToken(id)
		requests := c.as.TokenRequestsFor(sid)
		held := c.proxy.holdInsert("accounts")
		proc := startBin(t, c.bin, "", "sync", "--account", id)
		select {
		case <-held:
		case <-proc.done:
			t.Fatalf("the sync ended before writing a rotated refresh token:\n%s", tail(proc.stderr.String(), 3000))
		case <-time.After(90 * time.Second):
			t.Fatal("the sync never wrote a rotated refresh token")
		}
		proc.kill9() // impact.com has rotated the token; the store never got the new one
		c.scanSecrets(proc.stderr.String(), "the killed process's logs")
		if c.as.TokenRequestsFor(sid) != requests+1 {
			t.Fatalf("token requests %d → %d, want one refresh", requests, c.as.TokenRequestsFor(sid))
		}
		if c.storedRefreshToken(id) != stored || c.liveRefreshToken(sid) == stored {
			t.Fatalf("the scenario did not leave the store behind the authorization server")
		}
		// the next run presents the rotated-out token: impact.com refuses it
		// (reuse revokes the grant), the account is flagged, loudly
		before := runIDs(t, c.db, id)
		requests = c.as.TokenRequestsFor(sid)
		out, err := c.run("", "sync", "--account", id)
		if err == nil {
			t.Fatalf("the sync with a lost refresh token exited 0:\n%s", out)
		}
		runs := newRuns(t, c.db, id, before)
		r := requireFailedRun(t, runs, id, syncer.CompanyInformation, "invalid_grant", "syncer connect --account "+id)
		if len(runs) != 1 {
			t.Errorf("the pass went on after the credential died: %s", runSummary(runs))
		}
		a := c.account(id)
		if a.Status != syncer.StatusNeedsReconnect || !strings.Contains(a.StatusReason, "syncer connect --account "+id) {
			t.Errorf("account %s: %s %q, want needs_reconnect telling to run syncer connect", id, a.Status, a.StatusReason)
		}
		if n := c.as.TokenRequestsFor(sid) - requests; n != 1 {
			t.Errorf("%d token requests after the refusal, want 1", n)
		}
		out, _ = c.run("", "sync")
		if !strings.Contains(out, "skipping "+id) {
			t.Errorf("the flagged account is not skipped:\n%s", out)
		}
		if n := c.as.TokenRequestsFor(sid) - requests; n != 1 {
			t.Errorf("the flagged account made %d more token requests", n-1)
		}
		checkWatermarks(t, c.db, c.counts, id, c.sim.Truth(sid))
		t.Logf("observed: killed with the rotated token unsaved; next run: exit %v, account %s %q; sync_runs %s %s %q",
			err, a.Status, a.StatusReason, r.Entity, r.Status, r.Error)

		c.connect(id, spec.Persona, sid)
		before = runIDs(t, c.db, id)
		c.mustRun("", "sync", "--account", id)
		requireAllSucceeded(t, newRuns(t, c.db, id, before), "the sync after reconnecting")
		requireNoRunning(t, c.db, id)
		c.counts.scenarios.Add(1)
		c.equalsTruth(id, sid, entitiesOf(spec.Persona)...)
		checkWatermarks(t, c.db, c.counts, id, c.sim.Truth(sid))
	})

	t.Run("grant_revoked_mid_run", func(t *testing.T) {
		c := c.with(t)
		c.sim.Clock().Advance(time.Minute)
		c.churn(sid, 5)
		actionsRequests, requests := 0, -1
		c.hooks.before(func(r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/Actions") {
				actionsRequests++
			}
			return actionsRequests == 2 // the second Actions request of the run
		}, func(r *http.Request) {
			requests = c.as.TokenRequestsFor(sid)
			c.as.Revoke(sid)
			c.sim.RevokeBearerToken(sid, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		})
		before := runIDs(t, c.db, id)
		out, err := c.run("", "sync", "--account", id)
		if err == nil {
			t.Fatalf("the sync exited 0 with its grant revoked:\n%s", out)
		}
		runs := newRuns(t, c.db, id, before)
		r := requireFailedRun(t, runs, id, syncer.Actions, "invalid_grant", "syncer connect --account "+id)
		for _, o := range runs {
			if o.Entity == syncer.ActionUpdates {
				t.Errorf("the pass went on to %s after the credential died", o.Entity)
			}
		}
		a := c.account(id)
		if a.Status != syncer.StatusNeedsReconnect {
			t.Errorf("account %s: %s %q, want needs_reconnect", id, a.Status, a.StatusReason)
		}
		if requests < 0 {
			t.Fatal("the run made fewer than two Actions requests; nothing was revoked mid-run")
		}
		if n := c.as.TokenRequestsFor(sid) - requests; n != 1 {
			t.Errorf("%d token requests after the revocation, want 1 (the refresh refused with invalid_grant)", n)
		}
		checkWatermarks(t, c.db, c.counts, id, c.sim.Truth(sid))
		t.Logf("observed: exit %v; sync_runs %s %s %q; account %s %q", err, r.Entity, r.Status, r.Error, a.Status, a.StatusReason)

		c.connect(id, spec.Persona, sid)
		before = runIDs(t, c.db, id)
		c.mustRun("", "sync", "--account", id)
		requireAllSucceeded(t, newRuns(t, c.db, id, before), "the sync after reconnecting")
		c.counts.scenarios.Add(1)
		c.equalsTruth(id, sid, entitiesOf(spec.Persona)...)
		checkWatermarks(t, c.db, c.counts, id, c.sim.Truth(sid))
	})

	t.Run("basic_token_reset_between_pages", func(t *testing.T) {
		c := c.with(t)
		t.Setenv("SYNCER_PAGE_SIZE_ACTIONS", "2000")
		const bid, bsid = "basic", "IRFAULTRESET0000000000000000001"
		bspec := brandSpec(bsid)
		bspec.Campaigns, bspec.Actions, bspec.MediaPartners, bspec.PromoCodes = 1, 300, 4, 3
		c.addAccount(bid, bspec)
		c.mustRun("", "sync", "--account", bid)
		c.sim.Clock().Advance(time.Hour)
		if _, err := c.sim.AddActions(bsid, 2100, ""); err != nil { // two pages of Actions
			t.Fatal(err)
		}
		var newToken string
		c.hooks.before(func(r *http.Request) bool {
			return strings.Contains(r.URL.RequestURI(), bsid+"/Actions?PageSize=2000&Page=2")
		}, func(*http.Request) { newToken = c.sim.ResetToken(bsid) })
		before := runIDs(t, c.db, bid)
		out, err := c.run("", "sync", "--account", bid)
		if err == nil || newToken == "" {
			t.Fatalf("the sync exited %v with its token reset between pages (reset: %v):\n%s", err, newToken != "", out)
		}
		*c.secrets = append(*c.secrets, newToken)
		runs := newRuns(t, c.db, bid, before)
		r := requireFailedRun(t, runs, bid, syncer.Actions, "401")
		a := c.account(bid)
		if a.Status != syncer.StatusNeedsReconnect || !strings.Contains(a.StatusReason, "set-token "+bid) {
			t.Errorf("account %s: %s %q, want needs_reconnect telling to run set-token", bid, a.Status, a.StatusReason)
		}
		checkWatermarks(t, c.db, c.counts, bid, c.sim.Truth(bsid))
		t.Logf("observed: exit %v; sync_runs %s %s %q; account %s %q", err, r.Entity, r.Status, r.Error, a.Status, a.StatusReason)

		c.mustRun(newToken+"\n", "accounts", "set-token", bid, "--token-stdin")
		before = runIDs(t, c.db, bid)
		c.mustRun("", "sync", "--account", bid)
		requireAllSucceeded(t, newRuns(t, c.db, bid, before), "the sync after set-token")
		c.counts.scenarios.Add(1)
		c.equalsTruth(bid, bsid, syncer.AllEntities...)
		checkWatermarks(t, c.db, c.counts, bid, c.sim.Truth(bsid))
	})

	// nothing secret in any table either
	*c.secrets = append(*c.secrets, c.as.IssuedTokens()...)
	c.scanSecrets(dumpDatabase(t, c.db), "ClickHouse")
}

// --- bad input at the edges -------------------------------------------------

// TestIntegrationFaultBadInput runs the real binary with bad arguments, bad
// dates, bad configuration, a wrong SYNCER_ENCRYPTION_KEY and corrupted
// ciphertext in accounts: each a clear message naming the problem and a
// non-zero exit (2 for a bad command line), never a panic or a stack trace,
// never a secret echoed.
func TestIntegrationFaultBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the syncer binary")
	}
	f := setupFaults(t)
	bin := buildSyncer(t)
	f.mustRun("", "migrate")
	const id, sid = "edge", "IRFAULTEDGE0000000000000000001"
	spec := partnerSpec(sid)
	spec.Actions = 50
	f.addAccount(id, spec)
	otherKey := newKeyB64()
	badKey := "c2hvcnQta2V5LW5vdC0zMi1ieXRlcw==" // base64 of 25 bytes
	*f.secrets = append(*f.secrets, otherKey, badKey)

	type tc struct {
		name  string
		args  []string
		env   []string // added to the test's environment
		stdin string
		code  int      // 0: any non-zero
		want  []string // each must appear in stdout or stderr
	}
	cases := []tc{
		{name: "no_command", code: 2, want: []string{"no command given", "Usage: syncer"}},
		{name: "unknown_command", args: []string{"frobnicate"}, code: 2, want: []string{`unknown command "frobnicate"`}},
		{name: "unknown_flag", args: []string{"sync", "--bogus"}, code: 2, want: []string{"unknown flag --bogus", "--help"}},
		{name: "stray_argument", args: []string{"sync", "now"}, code: 2, want: []string{`unexpected argument "now"`}},
		{name: "unknown_entity", args: []string{"sync", "--entities", "actions,nope"}, code: 2, want: []string{"unknown entities nope"}},
		{name: "backfill_without_account", args: []string{"backfill"}, code: 2, want: []string{"--account is required"}},
		{name: "backfill_bad_from_date", args: []string{"backfill", "--account", id, "--from", "2024-13-45"}, code: 2,
			want: []string{"--from", `"2024-13-45" is neither a date`}},
		{name: "backfill_bad_to_time", args: []string{"backfill", "--account", id, "--to", "2025-01-01T25:00:00Z"}, code: 2,
			want: []string{"--to", "neither a date"}},
		{name: "backfill_words_for_date", args: []string{"backfill", "--account", id, "--from", "yesterday"}, code: 2,
			want: []string{`"yesterday" is neither a date`}},
		{name: "backfill_to_before_from", args: []string{"backfill", "--account", id, "--from", "2025-03-01", "--to", "2025-02-01"}, code: 2,
			want: []string{"--to 2025-02-01 is before --from 2025-03-01"}},
		{name: "backfill_catalog_entity", args: []string{"backfill", "--account", id, "--entities", "campaigns"}, code: 2,
			want: []string{"backfill takes actions and action_updates"}},
		{name: "backfill_unknown_account", args: []string{"backfill", "--account", "ghost"}, code: 1, want: []string{"ghost", "not found"}},
		{name: "sync_unknown_account", args: []string{"sync", "--account", "ghost"}, code: 1, want: []string{"ghost", "not found"}},
		{name: "status_unknown_account", args: []string{"status", "--account", "ghost"}, code: 1, want: []string{"ghost", "not found"}},
		{name: "accounts_without_subcommand", args: []string{"accounts"}, code: 2, want: []string{"no subcommand"}},
		{name: "accounts_add_bad_id", args: []string{"accounts", "add", "--id", "bad id!", "--persona", "brand", "--sid", "S"}, code: 2,
			want: []string{`account id "bad id!"`}},
		{name: "accounts_add_bad_persona", args: []string{"accounts", "add", "--id", "x", "--persona", "martian", "--sid", "S"},
			env: []string{"IMPACT_AUTH_TOKEN=t"}, code: 2, want: []string{"martian"}},
		{name: "accounts_add_missing_sid", args: []string{"accounts", "add", "--id", "x", "--persona", "brand"}, code: 2,
			want: []string{"--id, --persona and --sid are required"}},
		{name: "accounts_add_empty_token", args: []string{"accounts", "add", "--id", "x", "--persona", "brand", "--sid", "S", "--token-stdin"},
			stdin: "\n", code: 2, want: []string{"standard input held no Auth Token"}},
		{name: "accounts_set_token_without_id", args: []string{"accounts", "set-token"}, code: 2, want: []string{"account id is required"}},
		{name: "accounts_disable_unknown", args: []string{"accounts", "disable", "ghost"}, code: 1, want: []string{"ghost", "not found"}},
		{name: "keys_without_rotate", args: []string{"keys", "spin"}, code: 2, want: []string{"want 'keys rotate'"}},
		{name: "connect_without_oauth", args: []string{"connect", "--account", "o", "--persona", "brand", "--sid", "S"}, code: 1,
			want: []string{"OAuth is not configured", "IMPACT_OAUTH_CLIENT_ID"}},
		{name: "encryption_key_malformed", args: []string{"sync"}, env: []string{"SYNCER_ENCRYPTION_KEY=" + badKey}, code: 1,
			want: []string{"SYNCER_ENCRYPTION_KEY: want the base64 of 32 random bytes"}},
		{name: "encryption_key_missing", args: []string{"sync"}, env: []string{"SYNCER_ENCRYPTION_KEY="}, code: 1,
			want: []string{"SYNCER_ENCRYPTION_KEY is not set"}},
		{name: "encryption_key_wrong", args: []string{"sync"}, env: []string{"SYNCER_ENCRYPTION_KEY=" + otherKey}, code: 1,
			want: []string{id, "opening the stored Auth Token", "SYNCER_ENCRYPTION_KEY does not hold"}},
		{name: "config_bad_duration", args: []string{"sync"}, env: []string{"SYNCER_OVERLAP=soon"},
			code: 1, want: []string{"SYNCER_OVERLAP"}},
		{name: "config_bad_schedule", args: []string{"run"}, env: []string{"SYNCER_SCHEDULE_ACTIONS=61 * * * *"}, code: 1,
			want: []string{"SYNCER_SCHEDULE_ACTIONS", "61"}},
		{name: "clickhouse_unreachable", args: []string{"sync"}, env: []string{"CLICKHOUSE_ADDR=127.0.0.1:1"}, code: 1,
			want: []string{"connecting to ClickHouse at 127.0.0.1:1"}},
	}
	run := func(t *testing.T, c tc) string {
		t.Helper()
		p := startBinEnv(t, bin, append(os.Environ(), c.env...), c.stdin, c.args...)
		code := p.wait(t, time.Minute)
		out := p.stdout.String() + p.stderr.String()
		if code == 0 || (c.code != 0 && code != c.code) {
			t.Errorf("syncer %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, tail(out, 2000))
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("syncer %s: the output does not say %q:\n%s", strings.Join(c.args, " "), w, tail(out, 2000))
			}
		}
		noCrash(t, "syncer "+strings.Join(c.args, " "), out)
		f.with(t).scanSecrets(out, "the output of syncer "+strings.Join(c.args, " "))
		f.counts.scenarios.Add(1)
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := run(t, c)
			t.Logf("observed: %s", firstLine(out, `^syncer:|^`+id+` .*failed`))
		})
	}
	if a, err := load.NewAccountStore(f.db).Account(t.Context(), id); err != nil || a.Status != syncer.StatusActive {
		t.Errorf("after a wrong key the account is %s %q (%v); a configuration problem must not flag it", a.Status, a.StatusReason, err)
	}

	// corrupted ciphertext in accounts: altered, truncated, unknown format
	store := load.NewAccountStore(f.db)
	good, err := store.Secret(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good.Ciphertext)
	flipped[len(flipped)-3] ^= 0x40
	version := bytes.Clone(good.Ciphertext)
	version[0] = 9
	for _, cc := range []struct {
		name   string
		sealed syncer.SealedSecret
		want   string
	}{
		{"ciphertext_altered", syncer.SealedSecret{KeyID: good.KeyID, Ciphertext: flipped}, "it was altered"},
		{"ciphertext_truncated", syncer.SealedSecret{KeyID: good.KeyID, Ciphertext: good.Ciphertext[:7]}, "truncated"},
		{"ciphertext_unknown_format", syncer.SealedSecret{KeyID: good.KeyID, Ciphertext: version}, "unsupported format version 9"},
		{"ciphertext_unknown_key_id", syncer.SealedSecret{KeyID: "k-deadbeef", Ciphertext: good.Ciphertext}, `"k-deadbeef"`},
	} {
		t.Run(cc.name, func(t *testing.T) {
			if err := store.SetSecret(t.Context(), id, cc.sealed); err != nil {
				t.Fatal(err)
			}
			out := run(t, tc{args: []string{"sync", "--account", id}, code: 1, want: []string{id, "opening the stored Auth Token", cc.want}})
			out2 := run(t, tc{args: []string{"keys", "rotate"}, code: 1, want: []string{"account " + id, cc.want}})
			if strings.Count(out2, "account "+id+":") != 1 {
				t.Errorf("keys rotate names the account more than once:\n%s", out2)
			}
			t.Logf("observed: sync: %s; keys rotate: %s", firstLine(out, "^"+id+" .*"+regexp.QuoteMeta(cc.want)), firstLine(out2, "could not be re-encrypted"))
		})
	}
	if err := store.SetSecret(t.Context(), id, good); err != nil {
		t.Fatal(err)
	}
	// the account was never flagged, and works again with its real secret
	f.mustRun("", "sync", "--account", id)
	f.equalsTruth(id, sid, entitiesOf(spec.Persona)...)
}

// firstLine returns the first line of s matching expr (trimmed).
func firstLine(s, expr string) string {
	re := regexp.MustCompile(expr)
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

// --- security ---------------------------------------------------------------

// TestIntegrationFaultSecurity runs the worker binary at debug level with a
// Basic and an OAuth account (connected through the worker, its token
// rotated by the worker): the OAuth callback refuses requests without a
// pending state (none, unknown, replayed, an error redirect for no attempt)
// and changes nothing; no HTTP endpoint's answer, no debug log line and no
// table holds a secret.
func TestIntegrationFaultSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	c := setupCredFaults(t)
	bin := buildSyncer(t)
	const bid, bsid = "sec-basic", "IRFAULTSECBASIC000000000000000001"
	bspec := partnerSpec(bsid)
	bspec.Actions = 80
	c.addAccount(bid, bspec)
	const oid, osid = "sec-oauth", "IRFAULTSECOAUTH000000000000000001"
	ospec := brandSpec(osid)
	ospec.Campaigns, ospec.Actions = 1, 80
	if err := c.sim.AddAccount(ospec); err != nil {
		t.Fatal(err)
	}
	redirect, err := url.Parse(os.Getenv("IMPACT_OAUTH_REDIRECT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SYNCER_SCHEDULE_ACTIONS=*/2 * * * * *", "SYNCER_SCHEDULE_CATALOG=*/2 * * * * *",
		"SYNCER_START_SPREAD=0s", "SYNCER_SHUTDOWN_TIMEOUT=5s", "SYNCER_LOG_LEVEL=debug")
	w := startWorker(t, bin, env, redirect.Host)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	type answer struct {
		status int
		body   string
	}
	var answers []string // every body and header the worker served, for the scan
	get := func(u string) answer {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if strings.HasPrefix(u, w.http) {
			answers = append(answers, fmt.Sprint(resp.Header), string(b))
		}
		return answer{resp.StatusCode, string(b)}
	}

	// connect the OAuth account through the worker, keeping the callback URL
	resp, err := noFollow.Get(w.http + "/oauth/start?account=" + oid + "&persona=brand&sid=" + osid)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("/oauth/start: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = noFollow.Get(resp.Header.Get("Location")) // impact.com consents and redirects back
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %v %v", resp, err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	cb, err := url.Parse(callback)
	if err != nil || cb.Query().Get("code") == "" || cb.Query().Get("state") == "" {
		t.Fatalf("callback URL %q", callback)
	}
	code, state := cb.Query().Get("code"), cb.Query().Get("state")
	*c.secrets = append(*c.secrets, code)
	if a := get(callback); a.status != http.StatusOK || !strings.Contains(a.body, "connected") {
		t.Fatalf("the genuine callback: %d %s", a.status, a.body)
	}
	connected := c.account(oid)
	if connected.AuthKind != syncer.AuthOAuth || connected.Status != syncer.StatusActive {
		t.Fatalf("account after connecting: %+v", connected)
	}
	accountsBefore, err := load.NewAccountStore(c.db).Accounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	base := w.http + redirect.Path
	for _, bad := range []struct{ name, query string }{
		{"replayed_state_and_code", cb.RawQuery},
		{"unknown_state", "code=" + code + "&state=" + strings.Repeat("x", 43)},
		{"no_state", "code=" + code},
		{"no_parameters", ""},
		{"error_redirect_for_no_attempt", "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=" + strings.Repeat("y", 43)},
		{"state_of_another_flow", "code=forged&state=" + state},
	} {
		a := get(base + "?" + bad.query)
		if a.status < 400 || a.status >= 500 {
			t.Errorf("callback %s: %d, want a 4xx refusal:\n%s", bad.name, a.status, a.body)
		}
		for _, echoed := range []string{code, state, "<script>"} {
			if strings.Contains(a.body, echoed) {
				t.Errorf("callback %s: the page repeats %q from the request", bad.name, echoed)
			}
		}
		c.counts.scenarios.Add(1)
		t.Logf("observed: callback %s → %d %s", bad.name, a.status, firstLine(a.body, "<p>"))
	}
	accountsAfter, err := load.NewAccountStore(c.db).Accounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(accountsBefore, accountsAfter) {
		t.Errorf("refused callbacks changed the accounts:\nbefore %+v\nafter  %+v", accountsBefore, accountsAfter)
	}

	// the worker syncs both accounts, and rotates the OAuth token
	synced := func(id string, after int) func() bool {
		return func() bool {
			return int(countRuns(t, c.db, id, syncer.ActionUpdates, syncer.RunSucceeded)) > after
		}
	}
	waitFor(t, 90*time.Second, "both accounts synced by the worker", func() bool { return synced(bid, 0)() && synced(oid, 0)() })
	requests := c.as.TokenRequestsFor(osid)
	done := int(countRuns(t, c.db, oid, syncer.ActionUpdates, syncer.RunSucceeded))
	c.sim.Clock().Advance(10 * time.Minute) // the access token expires: the worker refreshes and rotates
	waitFor(t, 60*time.Second, "a sync of the OAuth account after its access token expired", synced(oid, done))
	if c.as.TokenRequestsFor(osid) <= requests {
		t.Errorf("the worker did not refresh the OAuth token")
	}

	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/nonexistent", "/oauth/start", "/oauth/start?account=x&persona=brand"} {
		a := get(w.http + path)
		t.Logf("observed: GET %s → %d (%d bytes)", path, a.status, len(a.body))
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
	c.equalsTruth(bid, bsid, entitiesOf(bspec.Persona)...)
	c.equalsTruth(oid, osid, syncer.AllEntities...)
	logs := w.logs()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Errorf("the worker logged nothing at debug level; the scan proves little")
	}
	noCrash(t, "the worker", logs)
	*c.secrets = append(*c.secrets, c.as.IssuedTokens()...)
	if len(*c.secrets) < 8 {
		t.Fatalf("only %d secrets to look for", len(*c.secrets))
	}
	c.scanSecrets(strings.Join(answers, "\n"), "an HTTP answer of the worker")
	c.scanSecrets(logs, "the worker's debug log")
	c.scanSecrets(dumpDatabase(t, c.db), "ClickHouse")
	c.counts.scenarios.Add(3)
	t.Logf("observed: %d secrets looked for in %d HTTP answers (%d bytes), %d bytes of debug log and every table: none found",
		len(*c.secrets), len(answers)/2, len(strings.Join(answers, "")), len(logs))
}
