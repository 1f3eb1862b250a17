package impactsim

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

func TestMillionActionAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 1,000,000 actions")
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	sim := New(Options{Now: testNow})
	spec := AccountSpec{SID: "IRmillion", Token: "t", Persona: Brand, Seed: 1, Campaigns: 20, Actions: 1_000_000, MediaPartners: 200, PromoCodes: 100}
	if err := sim.AddAccount(spec); err != nil {
		t.Fatal(err)
	}
	gen := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perAction := float64(after.HeapAlloc-before.HeapAlloc) / 1e6
	t.Logf("generated 1,000,000 actions in %v, %.0f bytes/action", gen, perAction)
	if gen > 10*time.Second {
		t.Errorf("generation took %v", gen)
	}
	if perAction > 120 {
		t.Errorf("%.0f bytes per action, want a compact record", perAction)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	info := sim.Accounts()[0]
	if info.Counts["Actions"] != 1_000_000 {
		t.Fatalf("counts %v", info.Counts)
	}
	camp := sim.account("IRmillion").camps[0].idStr
	for _, q := range []string{
		"/Actions?CampaignId=" + camp + "&ActionDateStart=" + z(testNow.AddDate(0, 0, -3)) + "&ActionDateEnd=" + z(testNow),
		"/Actions?CampaignId=" + camp + "&StartDate=" + z(testNow.AddDate(0, 0, -2)) + "&EndDate=" + z(testNow),
		"/ActionUpdates?CampaignId=" + camp + "&StartDate=" + z(testNow.AddDate(0, 0, -2)) + "&EndDate=" + z(testNow),
		"/Actions?CampaignId=" + camp + "&LockingDateStart=" + z(testNow.AddDate(0, 0, -1)) + "&LockingDateEnd=" + z(testNow),
	} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/Advertisers/IRmillion"+q, nil)
		req.SetBasicAuth("IRmillion", "t")
		req.Header.Set("Accept", "application/json")
		start = time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", q, resp.StatusCode)
		}
		t.Logf("%s: %s bytes in %v", q, resp.Header.Get("Content-Length"), time.Since(start))
	}
}

// BenchmarkRenderActionsPage20000 renders one full page of 20,000 brand
// actions (the default Actions PageSize), envelope included.
func BenchmarkRenderActionsPage20000(b *testing.B) {
	sim := New(Options{Now: testNow})
	if err := sim.AddAccount(AccountSpec{SID: "IRbench", Token: "t", Persona: Brand, Seed: 1, Campaigns: 1, Actions: 20000, MediaPartners: 50, PromoCodes: 20, History: 40 * 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	a := sim.account("IRbench")
	rq := &request{a: a, json: true, now: testNow, path: "/Advertisers/IRbench/Actions", rawQuery: "CampaignId=" + a.camps[0].idStr}
	q, e := parseActionQuery(rq)
	if e != nil {
		b.Fatal(e.msg)
	}
	q.updated = window{}
	q.event = window{set: true, from: testNow.Add(-45 * 24 * time.Hour).Unix(), to: testNow.Unix()}
	now := testNow.Unix()
	matched := a.matchActions(&q, now)
	if len(matched) != 20000 {
		b.Fatalf("matched %d", len(matched))
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		body := sim.list(rq, "Actions", len(matched), q.pg, func(w *writer, name string, k int) {
			v := a.view(matched[k], now)
			a.writeAction(w, name, &v)
		})
		size = len(body)
	}
	b.SetBytes(int64(size))
}

// BenchmarkActionsRequest20000 serves a whole 20,000-action request through
// the handler (auth, filtering, rendering), without the network.
func BenchmarkActionsRequest20000(b *testing.B) {
	sim := New(Options{Now: testNow})
	if err := sim.AddAccount(AccountSpec{SID: "IRbench", Token: "t", Persona: Brand, Seed: 1, Campaigns: 1, Actions: 20000, History: 40 * 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	camp := sim.account("IRbench").camps[0].idStr
	h := sim.Handler()
	req := httptest.NewRequest("GET", "/Advertisers/IRbench/Actions?CampaignId="+camp+"&ActionDateStart="+z(testNow.AddDate(0, 0, -45))+"&ActionDateEnd="+z(testNow), nil)
	req.SetBasicAuth("IRbench", "t")
	req.Header.Set("Accept", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
