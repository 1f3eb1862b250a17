package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/auth"
	"github.com/impact-syncer/impact-syncer/internal/extract"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// cmdProfile runs one backfill of a brand account in-process, wired as
// cmd/syncer wires it (load.Writer, load stores, extract.Client over HTTP
// Basic), with a CPU profile and the heap profile taken at the largest live
// heap seen. The database must be migrated.
func cmdProfile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8088", "API base URL (the simulator)")
	sid := fs.String("sid", "", "brand Account SID")
	id := fs.String("account", "bench", "our account id")
	from := fs.String("from", "", "backfill start (date or RFC 3339; default the API's full reach, three filters)")
	cpu := fs.String("cpuprofile", "", "write a CPU profile here")
	mem := fs.String("memprofile", "", "write the heap profile at the peak live heap here")
	batch := fs.Int("batch-size", 2000, "decoded rows held (SYNCER_BATCH_SIZE)")
	insertRows := fs.Int("insert-rows", syncer.DefaultInsertRows, "rows per streamed insert (SYNCER_INSERT_ROWS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := os.Getenv("BENCH_TOKEN")
	if *sid == "" || token == "" {
		return fmt.Errorf("profile: -sid and BENCH_TOKEN in the environment are required")
	}
	db, err := load.Open(ctx, load.Options{Addrs: strings.Split(env("CLICKHOUSE_ADDR", "127.0.0.1:19000"), ","),
		Database: env("CLICKHOUSE_DATABASE", "bench")}, zap.NewNop())
	if err != nil {
		return err
	}
	defer db.Close()
	acct := syncer.Account{ID: *id, Persona: syncer.Brand, SID: *sid, AuthKind: syncer.AuthBasic, Status: syncer.StatusActive}
	req := syncer.Request{Entities: []syncer.Entity{syncer.Actions}, Kind: syncer.RunBackfill}
	if *from != "" {
		if req.From, err = parseWhen(*from); err != nil {
			return fmt.Errorf("-from: %w", err)
		}
	}
	s := &syncer.Syncer{
		Accounts: load.NewAccountStore(db), Writer: load.NewWriter(db), Catalog: load.NewCatalogWriter(db),
		State: load.NewStateStore(db), Runs: load.NewRunStore(db), Logger: zap.NewNop(), Holder: "benchbaseline profile",
		NewRunID: func() string { return fmt.Sprintf("profile-%d", time.Now().UnixNano()) },
		Options:  syncer.Options{BatchSize: *batch, InsertRows: *insertRows},
		Source: func(ctx context.Context, a syncer.Account) (syncer.Source, error) {
			return extract.NewClient(extract.Options{BaseURL: *base, AccountID: a.ID, Persona: a.Persona, SID: a.SID,
				Transport: &auth.BasicTransport{SID: a.SID, Token: syncer.Secret(token)}})
		},
	}

	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	peak := &peakHeap{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); peak.watch(stop, *mem != "") }()

	start := time.Now()
	res := s.SyncAccount(ctx, acct, req)
	took := time.Since(start)
	close(stop)
	<-done
	if res.Failed() {
		return fmt.Errorf("backfill failed: %v %+v", res.Err, res.Runs)
	}
	if *mem != "" && peak.profile.Len() > 0 {
		if err := os.WriteFile(*mem, peak.profile.Bytes(), 0o644); err != nil {
			return err
		}
		// and every allocation of the run (alloc_space, alloc_objects)
		runtime.GC()
		f, err := os.Create(*mem + ".allocs")
		if err != nil {
			return err
		}
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	var rows, requests uint64
	for _, r := range res.Runs {
		rows += r.Rows
		requests += r.Requests
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return json.NewEncoder(stdout).Encode(map[string]any{
		"seconds": took.Seconds(), "rows": rows, "requests": requests,
		"peak_heap_inuse_mib": float64(peak.max) / (1 << 20), "vm_hwm_mib": vmHWM(),
		"total_alloc_mib": float64(ms.TotalAlloc) / (1 << 20), "num_gc": ms.NumGC,
	})
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// peakHeap samples the heap and keeps a heap profile from its largest point.
type peakHeap struct {
	max     uint64
	profile bytes.Buffer
}

func (p *peakHeap) watch(stop <-chan struct{}, keep bool) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > p.max {
			p.max = ms.HeapInuse
			if keep {
				p.profile.Reset()
				_ = pprof.Lookup("heap").WriteTo(&p.profile, 0)
			}
		}
	}
}

// vmHWM is the process's peak resident set size in MiB, from /proc.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
