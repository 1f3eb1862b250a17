package extract

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// benchActionsPage renders one full page of n brand actions (realistic field
// values, as the simulator serves them) and returns its body.
func benchActionsPage(tb testing.TB, n int) []byte {
	tb.Helper()
	const sid, token = "IRbenchDecode000000000000000001", "bench-token"
	now := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	sim := impactsim.New(impactsim.Options{Now: now})
	if err := sim.AddAccount(impactsim.AccountSpec{SID: sid, Token: token, Persona: impactsim.Brand, Seed: 1,
		Campaigns: 1, Actions: n, MediaPartners: 50, PromoCodes: 20, History: 40 * 24 * time.Hour}); err != nil {
		tb.Fatal(err)
	}
	get := func(path string) []byte {
		req := httptest.NewRequest("GET", "/Advertisers/"+sid+path, nil)
		req.SetBasicAuth(sid, token)
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			tb.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
		return rec.Body.Bytes()
	}
	var camps struct{ Campaigns []struct{ Id string } }
	if err := json.Unmarshal(get("/Campaigns"), &camps); err != nil || len(camps.Campaigns) != 1 {
		tb.Fatalf("campaigns: %v %+v", err, camps)
	}
	body := get("/Actions?PageSize=20000&CampaignId=" + camps.Campaigns[0].Id +
		"&ActionDateStart=" + FormatTime(now.Add(-45*24*time.Hour)) + "&ActionDateEnd=" + FormatTime(now))
	p, err := parsePage(body, listKeys(syncer.Actions))
	if err != nil || len(p.records) != n {
		tb.Fatalf("page: %v, %d records", err, len(p.records))
	}
	return body
}

// decodePage is what Client.paginate does with one page body: scan it, then
// decode every record.
func decodePage(tb testing.TB, c *Client, body []byte, keep []syncer.Record) []syncer.Record {
	p, err := parsePage(body, listKeys(syncer.Actions))
	if err != nil {
		tb.Fatal(err)
	}
	for _, rv := range p.records {
		r, err := c.decode(syncer.Actions, rv.raw)
		if err != nil {
			tb.Fatal(err)
		}
		if keep != nil {
			keep = append(keep, r)
		}
	}
	return keep
}

// BenchmarkDecodeActionsPage20000 decodes one 20,000-action page (about
// 20 MB of JSON) into records: the extraction cost of one API request at the
// maximum page size. It also reports the heap a decoded record keeps alive
// (what the loader holds until ClickHouse acknowledges the insert).
func BenchmarkDecodeActionsPage20000(b *testing.B) {
	const n = 20000
	body := benchActionsPage(b, n)
	c, err := NewClient(Options{SID: "IRbenchDecode000000000000000001", Persona: syncer.Brand})
	if err != nil {
		b.Fatal(err)
	}
	// live heap per decoded record, measured once
	keep := make([]syncer.Record, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep = decodePage(b, c, body, keep)
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(keep)
	keep = nil

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		decodePage(b, c, body, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	b.ReportMetric(live, "live-B/record")
}
