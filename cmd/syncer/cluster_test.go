package main

// Cluster suite (issue 13, `make test-cluster`): a real ZooKeeper and two
// clickhouse-server processes started by scripts/cluster.sh, described as a
// cluster of one shard × two replicas (syncer_replicated) and of two shards ×
// one replica (syncer_sharded), node 1 also serving TLS with a certificate of
// the script's own CA. Every scenario ends with ClickHouse equal to the
// simulator's truth on every replica (after SYSTEM SYNC REPLICA) and no key
// twice through FINAL.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// The ports of scripts/cluster.sh (this suite's range is 19100-19199).
const (
	clusterNode1 = "127.0.0.1:19101"
	clusterNode2 = "127.0.0.1:19102"
	clusterTLS   = "127.0.0.1:19141"
	replicated   = "syncer_replicated"
	sharded      = "syncer_sharded"
	// shardedPath gives each node its own shard in syncer_sharded: the same
	// two servers are one shard in syncer_replicated, so {shard} is 01 on
	// both; scripts/cluster.sh defines {sharded_shard} for this layout.
	shardedPath = "/clickhouse/tables/{sharded_shard}/{database}/{table}"
)

// testCluster is the running cluster of scripts/cluster.sh.
type testCluster struct {
	t        *testing.T
	dir      string
	password string
	bin      string // the syncer binary
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts ZooKeeper, two ClickHouse servers and the syncer binary")
	}
	c := &testCluster{t: t, dir: t.TempDir()}
	// scripts/clickhouse.sh would take a server already on these ports for
	// its own: a cluster left running (make cluster) must be stopped first.
	for _, addr := range []string{clusterNode1, clusterNode2, clusterTLS, "127.0.0.1:19181"} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Fatalf("something already listens on %s (a cluster left running? stop it: scripts/cluster.sh stop)", addr)
		}
	}
	start := time.Now()
	if out, err := c.script("start"); err != nil {
		c.script("stop")
		msg := fmt.Sprintf("scripts/cluster.sh start: %v\n%s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := c.script("stop"); err != nil {
			t.Errorf("scripts/cluster.sh stop: %v\n%s", err, out)
		}
	})
	b, err := os.ReadFile(filepath.Join(c.dir, "password"))
	if err != nil {
		t.Fatal(err)
	}
	c.password = strings.TrimSpace(string(b))
	started := time.Now()
	c.bin = buildSyncer(t)
	t.Logf("cluster started in %s, binary built in %s", started.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	return c
}

// script runs scripts/cluster.sh for this cluster.
func (c *testCluster) script(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(repoRoot(c.t), "scripts/cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+c.dir, "CH_STOP_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *testCluster) mustScript(args ...string) {
	c.t.Helper()
	if out, err := c.script(args...); err != nil {
		c.t.Fatalf("scripts/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// restoreAtCleanup runs the script commands at the test's cleanup unless the
// returned done was called: a scenario that stops a server must not leave it
// stopped for the scenarios after it when one of its checks fails first
// (a dead replica leaves DDL queued behind 10 s timeouts).
func (c *testCluster) restoreAtCleanup(t *testing.T, commands ...[]string) (done func()) {
	restored := false
	t.Cleanup(func() {
		if !restored {
			for _, args := range commands {
				c.script(args...)
			}
		}
	})
	return func() { restored = true }
}

func (c *testCluster) caFile() string      { return filepath.Join(c.dir, "tls", "ca.pem") }
func (c *testCluster) otherCAFile() string { return filepath.Join(c.dir, "tls", "other-ca.pem") }
func (c *testCluster) passwordFile() string {
	return filepath.Join(c.dir, "password")
}

// open connects to one node as the syncer user.
func (c *testCluster) open(t *testing.T, addr, database string) *load.DB {
	t.Helper()
	db, err := load.Open(t.Context(), load.Options{Addrs: []string{addr}, Database: database, User: "syncer", Password: c.password, DialTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// syncReplicas waits until the node has every part its peers have of the
// database's replicated tables (SYSTEM SYNC REPLICA).
func syncReplicas(t *testing.T, db *load.DB) {
	t.Helper()
	rows, err := db.Query(t.Context(), "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatalf("no replicated table in %s", db.Database())
	}
	for _, table := range tables {
		if err := db.Exec(t.Context(), "SYSTEM SYNC REPLICA "+table); err != nil {
			t.Fatalf("SYSTEM SYNC REPLICA %s: %v", table, err)
		}
	}
}

// clusterEnv points the CLI at the cluster: both nodes as replicas, the
// syncer user, the password from a file.
func (c *testCluster) env(t *testing.T, database, cluster string) {
	t.Setenv("CLICKHOUSE_ADDR", clusterNode1+","+clusterNode2)
	t.Setenv("CLICKHOUSE_DATABASE", database)
	t.Setenv("CLICKHOUSE_CLUSTER", cluster)
	t.Setenv("CLICKHOUSE_USER", "syncer")
	t.Setenv("CLICKHOUSE_PASSWORD", "")
	t.Setenv("CLICKHOUSE_PASSWORD_FILE", c.passwordFile())
	t.Setenv("CLICKHOUSE_SECURE", "false")
	t.Setenv("CLICKHOUSE_CA_FILE", "")
	t.Setenv("CLICKHOUSE_TLS_SERVER_NAME", "")
	if cluster == sharded {
		t.Setenv("CLICKHOUSE_REPLICA_PATH", shardedPath)
	} else {
		t.Setenv("CLICKHOUSE_REPLICA_PATH", load.DefaultReplicaPath)
	}
}

// dropDatabase drops a test database on every node when the test ends.
func (c *testCluster) dropDatabase(t *testing.T, database, cluster string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		db, err := load.Open(ctx, load.Options{Addrs: []string{clusterNode1, clusterNode2}, Database: "default", User: "syncer", Password: c.password}, nil)
		if err != nil {
			t.Logf("drop %s: %v", database, err)
			return
		}
		defer db.Close()
		if err := db.Exec(ctx, "DROP DATABASE IF EXISTS `"+database+"` ON CLUSTER "+cluster); err != nil {
			t.Logf("drop %s: %v", database, err)
		}
	})
}

// setupCluster is a fault bundle (simulator, CLI in-process, secret scan)
// whose CLI works on the cluster, migrated, and the DBs of both nodes.
func (c *testCluster) setup(t *testing.T, database, cluster string) (*faultBundle, []*load.DB) {
	t.Helper()
	f := setupFaults(t)
	c.env(t, database, cluster)
	c.dropDatabase(t, database, cluster)
	*f.secrets = append(*f.secrets, c.password)
	f.mustRun("", "migrate")
	nodes := []*load.DB{c.open(t, clusterNode1, database), c.open(t, clusterNode2, database)}
	f.db = nodes[0]
	return f, nodes
}

// equalsTruthEverywhere syncs each node with its peers and compares it with
// the simulator's truth.
func equalsTruthEverywhere(t *testing.T, f *faultBundle, nodes []*load.DB, id, sid string, entities ...syncer.Entity) {
	t.Helper()
	for i, db := range nodes {
		syncReplicas(t, db)
		t.Run(fmt.Sprintf("node%d", i+1), func(t *testing.T) {
			compareTruth(t, db, f.counts, id, f.sim.Truth(sid), entities...)
		})
	}
}

func TestIntegrationCluster(t *testing.T) {
	c := startCluster(t)
	t.Run("secure connections", func(t *testing.T) { clusterSecure(t, c) })
	t.Run("migrate twice and at once", func(t *testing.T) { clusterMigrate(t, c) })
	t.Run("migrate with a replica down", func(t *testing.T) { clusterMigrateReplicaDown(t, c) })
	t.Run("lost acknowledgements", func(t *testing.T) { clusterAckLost(t, c) })
	t.Run("replica killed mid-backfill", func(t *testing.T) { clusterReplicaKilled(t, c) })
	t.Run("zookeeper stopped mid-sync", func(t *testing.T) { clusterZooKeeperStopped(t, c) })
	t.Run("two shards", func(t *testing.T) { clusterTwoShards(t, c) })
}

// clusterSecure: TLS with the right CA migrates and syncs through node 1,
// and node 2 (a replica the sync never talked to) equals the truth; every
// wrong setting is one clear line, exit 1, nothing created, no secret shown.
func clusterSecure(t *testing.T, c *testCluster) {
	const database = "cluster_tls"
	const id, sid = "tls", "IRCLUSTERTLS00000000000000000001"
	f := setupFaults(t)
	c.env(t, database, replicated)
	c.dropDatabase(t, database, replicated)
	*f.secrets = append(*f.secrets, c.password)

	// What a user gets wrong, through the real binary.
	base := []string{"CLICKHOUSE_ADDR=" + clusterTLS, "CLICKHOUSE_SECURE=true", "CLICKHOUSE_CA_FILE=" + c.caFile()}
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"wrong CA", []string{"CLICKHOUSE_ADDR=" + clusterTLS, "CLICKHOUSE_SECURE=true", "CLICKHOUSE_CA_FILE=" + c.otherCAFile()},
			[]string{"not signed by", "CLICKHOUSE_CA_FILE"}},
		{"TLS against the plaintext port", []string{"CLICKHOUSE_ADDR=" + clusterNode1, "CLICKHOUSE_SECURE=true", "CLICKHOUSE_CA_FILE=" + c.caFile()},
			[]string{"does not speak TLS", "CLICKHOUSE_SECURE=false"}},
		{"plaintext against the TLS port", []string{"CLICKHOUSE_ADDR=" + clusterTLS},
			[]string{"expect TLS", "CLICKHOUSE_SECURE=true"}},
		{"name not in the certificate", append(slices.Clone(base), "CLICKHOUSE_ADDR=localhost:19141", "CLICKHOUSE_TLS_SERVER_NAME=clickhouse.example.com"),
			[]string{"not valid for", "CLICKHOUSE_TLS_SERVER_NAME"}},
		{"bad password", append(slices.Clone(base), "CLICKHOUSE_PASSWORD_FILE=", "CLICKHOUSE_PASSWORD=not-the-Passw0rd"),
			[]string{`refused user "syncer"`, "CLICKHOUSE_PASSWORD"}},
		{"unknown cluster", append(slices.Clone(base), "CLICKHOUSE_CLUSTER=prod"),
			[]string{`"prod" is not in the server's remote_servers`, replicated}},
		{"nothing listening", []string{"CLICKHOUSE_ADDR=127.0.0.1:19199"},
			[]string{"nothing listens there", "native port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append(os.Environ(), tc.env...)
			p := startBinEnv(t, c.bin, env, "", "migrate")
			code := p.wait(t, time.Minute)
			stderr := strings.TrimSpace(p.stderr.String())
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if strings.Count(stderr, "\n") != 0 || !strings.HasPrefix(stderr, "syncer: connecting to ClickHouse") {
				t.Errorf("want one line starting \"syncer: connecting to ClickHouse\", got:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("the error does not say %q:\n%s", w, stderr)
				}
			}
			for _, s := range []string{c.password, "not-the-Passw0rd"} {
				if strings.Contains(stderr+p.stdout.String(), s) {
					t.Errorf("the output shows a password:\n%s", stderr)
				}
			}
			noCrash(t, tc.name, stderr)
			t.Logf("observed: exit %d: %s", code, stderr)
		})
	}
	// A replica path with a macro the servers lack: refused before any DDL.
	missing := append(os.Environ(), "CLICKHOUSE_REPLICA_PATH=/clickhouse/tables/{region}/{shard}/{database}/{table}")
	p := startBinEnv(t, c.bin, missing, "", "migrate")
	if code := p.wait(t, time.Minute); code != 1 || !strings.Contains(p.stderr.String(), "lacks the macros {region}") {
		t.Errorf("migrate with a missing macro: exit %d\n%s", code, p.stderr.String())
	}
	plain := c.open(t, clusterNode1, "default")
	var n uint64
	if err := plain.QueryRow(t.Context(), "SELECT count() FROM system.databases WHERE name = ?", database).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the failed attempts the database exists (%d, %v): something was written", n, err)
	}

	// The right CA: migrate and sync over TLS through node 1 alone.
	t.Setenv("CLICKHOUSE_ADDR", clusterTLS)
	t.Setenv("CLICKHOUSE_SECURE", "true")
	t.Setenv("CLICKHOUSE_CA_FILE", c.caFile())
	f.mustRun("", "migrate")
	nodes := []*load.DB{c.open(t, clusterNode1, database), c.open(t, clusterNode2, database)}
	f.db = nodes[0]
	spec := brandSpec(sid)
	spec.Actions = 600
	f.addAccount(id, spec)
	f.mustRun("", "sync")
	if !strings.Contains(f.logs.String(), `"secure":true`) {
		t.Errorf("the connection log line does not say TLS was on")
	}
	// read on replica 2, which the sync never connected to
	equalsTruthEverywhere(t, f, nodes, id, sid, syncer.AllEntities...)
	f.counts.scenarios.Add(7)
}

// clusterMigrate: migrate on the cluster from two processes at once, one
// through each node, then again; every table exists on both replicas and
// each step is recorded once.
func clusterMigrate(t *testing.T, c *testCluster) {
	const database = "cluster_migrate"
	c.env(t, database, replicated)
	c.dropDatabase(t, database, replicated)
	// two hosts: one migrator talks to node 1, the other to node 2
	var wg sync.WaitGroup
	procs := []*proc{
		startBinEnv(t, c.bin, append(os.Environ(), "CLICKHOUSE_ADDR="+clusterNode1), "", "migrate"),
		startBinEnv(t, c.bin, append(os.Environ(), "CLICKHOUSE_ADDR="+clusterNode2), "", "migrate"),
	}
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); <-p.done }()
	}
	wg.Wait()
	applied := 0
	for i, p := range procs {
		if code := p.wait(t, time.Second); code != 0 {
			t.Fatalf("concurrent migrate %d exited %d:\n%s", i+1, code, tail(p.stderr.String(), 2000))
		}
		out := p.stdout.String()
		t.Logf("migrate %d: %s", i+1, strings.SplitN(out, "\n", 2)[0])
		if strings.Contains(out, "applied") {
			applied++
		}
	}
	if applied == 0 {
		t.Errorf("neither concurrent migrate applied anything")
	}
	out, stderr, code := runBin(t, c.bin, "", "migrate")
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("the third migrate: exit %d\n%s\n%s", code, out, tail(stderr, 2000))
	}
	migs, err := fsMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{clusterNode1, clusterNode2} {
		db := c.open(t, addr, database)
		syncReplicas(t, db)
		var tables, replicatedTables, views uint64
		if err := db.QueryRow(t.Context(), "SELECT count(), countIf(engine = 'ReplicatedReplacingMergeTree'), countIf(engine = 'View') FROM system.tables WHERE database = currentDatabase()").
			Scan(&tables, &replicatedTables, &views); err != nil {
			t.Fatal(err)
		}
		var rows, versions uint64
		if err := db.QueryRow(t.Context(), "SELECT count(), uniqExact(version) FROM schema_migrations FINAL").Scan(&rows, &versions); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d tables (%d replicated, %d views), schema_migrations %d rows for %d versions", addr, tables, replicatedTables, views, rows, versions)
		if tables != uint64(len(migs))+1 || replicatedTables != tables-views || views == 0 {
			t.Errorf("%s: %d tables (%d replicated, %d views), want %d, every table replicated", addr, tables, replicatedTables, views, len(migs)+1)
		}
		if rows != uint64(len(migs)) || versions != uint64(len(migs)) {
			t.Errorf("%s: schema_migrations shows %d rows for %d versions, want %d each", addr, rows, versions, len(migs))
		}
		if ok, err := db.SchemaCurrent(t.Context()); !ok || err != nil {
			t.Errorf("%s: SchemaCurrent = %v, %v", addr, ok, err)
		}
	}
}

// clusterMigrateReplicaDown: with node 2 stopped, migrate fails clearly
// after the servers' distributed_ddl_task_timeout (10 s in
// scripts/cluster.sh); node 2, started again, runs the queued statements,
// and the next migrate completes with every table on both replicas.
func clusterMigrateReplicaDown(t *testing.T, c *testCluster) {
	const database = "cluster_down"
	c.env(t, database, replicated)
	c.dropDatabase(t, database, replicated)
	c.mustScript("stop-node", "2")
	restarted := c.restoreAtCleanup(t, []string{"start-node", "2"})
	out, stderr, code := runBin(t, c.bin, "", "migrate")
	if code == 0 {
		t.Fatalf("migrate exited 0 with node 2 down:\n%s", out)
	}
	if !strings.Contains(stderr, "did not run the statement") || !strings.Contains(stderr, "syncer migrate` again") {
		t.Errorf("the error does not say a host is missing and what to do:\n%s", tail(stderr, 2000))
	}
	t.Logf("observed: exit %d: %s", code, strings.TrimSpace(grepLines(stderr, "^syncer:")))
	c.mustScript("start-node", "2")
	restarted()
	node2 := c.open(t, clusterNode2, "default")
	waitFor(t, 60*time.Second, "node 2 to run the queued CREATE DATABASE", func() bool {
		var n uint64
		return node2.QueryRow(t.Context(), "SELECT count() FROM system.databases WHERE name = ?", database).Scan(&n) == nil && n == 1
	})
	out, stderr, code = runBin(t, c.bin, "", "migrate")
	if code != 0 {
		t.Fatalf("migrate after node 2 came back: exit %d\n%s\n%s", code, out, tail(stderr, 2000))
	}
	for _, addr := range []string{clusterNode1, clusterNode2} {
		db := c.open(t, addr, database)
		syncReplicas(t, db) // schema_migrations reaches the other replica asynchronously
		if ok, err := db.SchemaCurrent(t.Context()); !ok || err != nil {
			t.Errorf("%s: SchemaCurrent = %v, %v", addr, ok, err)
		}
	}
}

// fsMigrations lists the embedded migration files.
func fsMigrations() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "schema"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// clusterAckLost: the proxy of the fault suite in front of replica 1 lets
// inserts reach the server and drops their acknowledgements; the blocks the
// syncer sends again whole (catalog, sync_state, sync_runs) are deduplicated
// by the replicated tables; a streamed insert of actions or action updates
// is not kept, so its rows are read again and written with a later version
// (FINAL shows one copy); both replicas equal the truth.
func clusterAckLost(t *testing.T, c *testCluster) {
	const database = "cluster_acklost"
	const id, sid = "acklost", "IRCLUSTERACK00000000000000000001"
	f, nodes := c.setup(t, database, replicated)
	proxy := startProxy(t, clusterNode1)
	t.Setenv("CLICKHOUSE_ADDR", proxy.addr())
	spec := partnerSpec(sid)
	spec.Actions, spec.PromoCodes = 300, 5
	f.addAccount(id, spec)
	dupBefore := duplicatedBlocks(t, nodes[0])
	tables := []string{"actions", "action_updates", "campaigns", "sync_state", "sync_runs"}
	for _, table := range tables {
		proxy.dropAck(table, 1)
	}
	before := runIDs(t, f.db, id)
	f.mustRun("", "sync")
	if _, dropped := proxy.stats(); dropped != len(tables) {
		t.Fatalf("the proxy dropped %d acknowledgements, want %d", dropped, len(tables))
	}
	requireAllSucceeded(t, newRuns(t, f.db, id, before), "the sync whose acknowledgements were lost")
	dup := duplicatedBlocks(t, nodes[0]) - dupBefore
	resent := uint64(len(tables) - 2) // all but actions and action_updates
	if dup < resent {
		t.Errorf("replica 1 deduplicated %d retried blocks, want at least %d (one per dropped acknowledgement of a block sent again whole)", dup, resent)
	}
	t.Logf("observed: %d acknowledgements dropped, %d retried blocks deduplicated by the replicated tables", len(tables), dup)
	equalsTruthEverywhere(t, f, nodes, id, sid, syncer.CompanyInformation, syncer.Campaigns, syncer.PromoCodes, syncer.Actions, syncer.ActionUpdates)
	// The first sync writes each campaign once: had the retried block
	// landed, the raw table would hold it twice (as on a single server,
	// where only FINAL hides the copy).
	for i, db := range nodes {
		var rows, keys uint64
		if err := db.QueryRow(t.Context(), "SELECT count(), uniqExact(id) FROM campaigns WHERE account_id = ?", id).Scan(&rows, &keys); err != nil {
			t.Fatal(err)
		}
		if rows != keys {
			t.Errorf("node %d: campaigns holds %d raw rows for %d campaigns: the retried insert landed twice", i+1, rows, keys)
		}
	}
	checkWatermarks(t, nodes[1], f.counts, id, f.sim.Truth(sid))
	f.counts.scenarios.Add(int64(len(tables)))
}

// duplicatedBlocks is the server's count of inserted blocks it recognised as
// already written (ReplicatedMergeTree's insert deduplication).
func duplicatedBlocks(t *testing.T, db *load.DB) uint64 {
	t.Helper()
	var n uint64
	if err := db.QueryRow(t.Context(), "SELECT sum(value) FROM system.events WHERE event = 'DuplicatedInsertedBlocks'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// clusterReplicaKilled: replica 1 is killed (SIGKILL) while a backfill whose
// CLICKHOUSE_ADDR lists both replicas is loading; the backfill completes
// through replica 2, and so does a sync started while replica 1 is down;
// replica 1, started again, catches up, and both equal the truth (replica 2
// may lack rows replica 1 acknowledged just before it died until then).
func clusterReplicaKilled(t *testing.T, c *testCluster) {
	const database = "cluster_kill"
	const id, sid = "killed", "IRCLUSTERKILL0000000000000000001"
	f, nodes := c.setup(t, database, replicated)
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = 2, 1500, 3, 3
	spec.History = 400 * day
	f.addAccount(id, spec)
	from := f.sim.Clock().Now().Add(-401 * day).Format("2006-01-02")
	for _, r := range []string{"Actions", "ActionUpdates"} {
		f.sim.InjectFaults(sid, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 100 * time.Millisecond, Times: 1000, Match: r})
	}
	before := runIDs(t, nodes[1], id)
	bf := startBin(t, c.bin, "", "backfill", "--account", id, "--from", from)
	waitFor(t, 60*time.Second, "the backfill to commit a few windows", func() bool {
		n := 0
		for _, w := range readWatermarks(t, nodes[1], id) {
			if strings.HasPrefix(w.scan, "backfill:") {
				n++
			}
		}
		return n >= 2
	})
	select {
	case <-bf.done:
		t.Fatalf("the backfill ended before replica 1 could be killed: the scenario proves nothing")
	default:
	}
	c.mustScript("kill-node", "1")
	t.Logf("replica 1 killed")
	restarted := c.restoreAtCleanup(t, []string{"start-node", "1"})
	code := bf.wait(t, 3*time.Minute)
	if code != 0 {
		t.Fatalf("the backfill exited %d with replica 2 up:\n%s\n%s", code, bf.stdout.String(),
			tail(grepLines(bf.stderr.String(), `"level":"(warn|error)"|syncer:`), 4000))
	}
	f.scanSecrets(bf.stderr.String(), "the backfill's stderr")
	runs := newRuns(t, nodes[1], id, before)
	requireAllSucceeded(t, runs, "the backfill that lost replica 1")
	t.Logf("observed: the backfill exited 0 through replica 2: %s", runSummary(runs))
	// Replication is asynchronous: rows replica 1 acknowledged just before
	// it died may not have reached replica 2 yet. They are not lost (they
	// come back with replica 1, checked below); measure how many are
	// missing meanwhile.
	truth := f.sim.Truth(sid)
	for _, e := range []syncer.Entity{syncer.Actions, syncer.ActionUpdates} {
		n, err := nodes[1].CountFinal(t.Context(), string(e), id)
		if err != nil {
			t.Fatal(err)
		}
		want := len(truth.Actions)
		if e == syncer.ActionUpdates {
			want = len(truth.ActionUpdates)
		}
		t.Logf("observed: with replica 1 down, replica 2 holds %d of %d %s", n, want, e)
	}

	// A run that starts while replica 1 is down works through replica 2.
	f.sim.ClearFaults(sid)
	if out, stderr, code := runBin(t, c.bin, "", "sync", "--account", id); code != 0 {
		t.Fatalf("a sync started with replica 1 down exited %d:\n%s\n%s", code, out, tail(stderr, 3000))
	}

	c.mustScript("start-node", "1")
	restarted()
	waitFor(t, 60*time.Second, "replica 1 answering again", func() bool { return nodes[0].Ping(t.Context()) == nil })
	equalsTruthEverywhere(t, f, nodes, id, sid, syncer.AllEntities...)
	checkWatermarks(t, nodes[0], f.counts, id, f.sim.Truth(sid))
	requireNoRunning(t, nodes[0], id)
	f.counts.scenarios.Add(1)
}

// clusterZooKeeperStopped: ZooKeeper dies while a sync is loading; the
// replicated tables turn readonly, the sync fails loudly (non-zero exit, the
// readonly table named) with no watermark past what is stored; once
// ZooKeeper is back the next sync closes the cut-off runs as interrupted,
// completes, and both replicas equal the truth.
func clusterZooKeeperStopped(t *testing.T, c *testCluster) {
	const database = "cluster_zk"
	const id, sid = "zk", "IRCLUSTERZK000000000000000000001"
	f, nodes := c.setup(t, database, replicated)
	spec := brandSpec(sid)
	spec.Campaigns, spec.Actions, spec.MediaPartners, spec.PromoCodes = 2, 600, 3, 3
	spec.History = 400 * day
	f.addAccount(id, spec)
	// every window takes a while, so that ZooKeeper dies midway
	for _, r := range []string{"Actions", "ActionUpdates"} {
		f.sim.InjectFaults(sid, impactsim.Fault{Kind: impactsim.FaultSlow, Delay: 200 * time.Millisecond, Times: 1000, Match: r})
	}
	before := runIDs(t, nodes[0], id)
	sy := startBin(t, c.bin, "", "sync")
	waitFor(t, 60*time.Second, "the sync to commit a few windows", func() bool {
		n := 0
		for _, w := range readWatermarks(t, nodes[0], id) {
			if w.entity == syncer.Actions || w.entity == syncer.ActionUpdates {
				n++
			}
		}
		return n >= 2
	})
	c.mustScript("zk", "kill")
	t.Logf("ZooKeeper killed")
	zkBack := c.restoreAtCleanup(t, []string{"zk", "start"}, []string{"zk", "wait"})
	code := sy.wait(t, 3*time.Minute)
	stderr, report := sy.stderr.String(), sy.stdout.String()
	if code == 0 {
		t.Fatalf("the sync exited 0 although ZooKeeper died under it\n%s\n%s", report, tail(stderr, 3000))
	}
	noCrash(t, "sync without ZooKeeper", stderr)
	// Usually "Table is in readonly mode" (code 242); an insert that meets
	// the lost session first fails with a ZooKeeper (coordination) error.
	// Whichever insert meets it first names it: the rows' (the run failed)
	// or the lease renewal's (the run was interrupted: the lock is lost).
	zkWords := regexp.MustCompile(`readonly mode|ZooKeeper|Coordination|Keeper`)
	if !zkWords.MatchString(report) || !strings.Contains(report, "insert into ") ||
		!(strings.Contains(report, "failed") || strings.Contains(report, "interrupted")) {
		t.Errorf("the sync's report does not name the table made readonly by the lost ZooKeeper:\n%s", report)
	}
	last := stderr[strings.LastIndex(strings.TrimRight(stderr, "\n"), "\n")+1:]
	t.Logf("observed: exit %d; %s\n%s", code, strings.TrimSpace(last), report)
	f.scanSecrets(stderr+report, "the sync's output")
	// nothing half-committed: no watermark past what either replica holds
	for _, db := range nodes {
		checkWatermarks(t, db, f.counts, id, f.sim.Truth(sid))
	}

	c.mustScript("zk", "start")
	c.mustScript("zk", "wait")
	zkBack()
	waitFor(t, 90*time.Second, "the replicated tables to leave readonly mode", func() bool {
		for _, db := range nodes {
			var n uint64
			if err := db.QueryRow(t.Context(), "SELECT count() FROM system.replicas WHERE database = currentDatabase() AND is_readonly").Scan(&n); err != nil || n > 0 {
				return false
			}
		}
		return true
	})
	f.sim.ClearFaults(sid)
	out, stderr, code := runBin(t, c.bin, "", "sync")
	if code != 0 {
		t.Fatalf("the sync after ZooKeeper came back exited %d:\n%s\n%s", code, out, tail(grepLines(stderr, `"level":"(warn|error)"|syncer:`), 3000))
	}
	runs := newRuns(t, nodes[0], id, before)
	t.Logf("sync_runs: %s", runSummary(runs))
	cut := 0
	for _, r := range runs {
		if r.Status == syncer.RunFailed || r.Status == syncer.RunInterrupted {
			cut++
		}
	}
	if cut == 0 {
		t.Errorf("sync_runs records no failed or interrupted run for the sync ZooKeeper's death cut off")
	}
	requireNoRunning(t, nodes[0], id)
	equalsTruthEverywhere(t, f, nodes, id, sid, syncer.AllEntities...)
	for _, db := range nodes {
		checkWatermarks(t, db, f.counts, id, f.sim.Truth(sid))
	}
	f.counts.scenarios.Add(1)
}

// clusterTwoShards: the views scenario on syncer_sharded (two shards, a
// Distributed table per table, sharded by account): accounts land on both
// shards and every view's figures equal the ones computed from the truth.
func clusterTwoShards(t *testing.T, c *testCluster) {
	const database = "cluster_sharded"
	b := setup(t)
	c.env(t, database, sharded)
	c.dropDatabase(t, database, sharded)
	b.db = c.open(t, clusterNode2, database)
	// cityHash64 puts northwind on shard 2 and trailhead_eu on shard 1
	w := viewsScenarioOn(t, b, "trailhead_eu")
	for _, addr := range []string{clusterNode1, clusterNode2} {
		db := c.open(t, addr, database)
		var accounts []string
		rows, err := db.Query(t.Context(), "SELECT DISTINCT account_id FROM actions"+load.LocalSuffix+" ORDER BY account_id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				t.Fatal(err)
			}
			accounts = append(accounts, a)
		}
		rows.Close()
		t.Logf("shard %s holds the actions of %v", addr, accounts)
		synced := 0
		for _, a := range w.synced {
			if slices.Contains(accounts, a.id) {
				synced++
			}
		}
		if synced != 1 {
			t.Errorf("shard %s holds the actions of %d of the checked accounts, want 1: the scenario does not spread them", addr, synced)
		}
	}
	checkScenarioHasEverything(t, w)
	t.Run("actions_current", func(t *testing.T) { checkActionsCurrent(t, w) })
	t.Run("attribution_daily", func(t *testing.T) { checkAttributionDaily(t, w) })
	t.Run("partner_performance", func(t *testing.T) { checkPartnerPerformance(t, w) })
	t.Run("promo_code_performance", func(t *testing.T) { checkPromoCodePerformance(t, w) })
	t.Run("account_health", func(t *testing.T) { checkAccountHealth(t, w) })
}
