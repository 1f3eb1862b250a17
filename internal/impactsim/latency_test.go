package impactsim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"
)

// The latency knob delays API requests by exactly the configured time (on a
// fake clock, so the test does not depend on the machine's speed), leaves the
// admin endpoints alone, and gives up when the client does.
func TestLatencyDelaysAPIRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency time.Duration
		path    string
	}{
		{"none", 0, "/Advertisers/" + brandSID + "/CompanyInformation"},
		{"50ms", 50 * time.Millisecond, "/Advertisers/" + brandSID + "/CompanyInformation"},
		{"admin not delayed", 50 * time.Millisecond, "/_sim/clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := New(Options{Now: testNow, Latency: tc.latency})
				if err := sim.AddAccount(brandSpec()); err != nil {
					t.Fatal(err)
				}
				req := httptest.NewRequest("GET", tc.path, nil)
				req.SetBasicAuth(brandSID, brandToken)
				req.Header.Set("Accept", "application/json")
				rec := httptest.NewRecorder()
				start := time.Now()
				sim.Mux().ServeHTTP(rec, req)
				took := time.Since(start)
				want := tc.latency
				if tc.path == "/_sim/clock" {
					want = 0
				}
				if rec.Code != http.StatusOK || took != want {
					t.Errorf("status %d after %v, want 200 after %v", rec.Code, took, want)
				}
			})
		})
	}
	t.Run("cancelled request", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := New(Options{Now: testNow, Latency: time.Hour})
			if err := sim.AddAccount(brandSpec()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, "GET", "/Advertisers/"+brandSID+"/CompanyInformation", nil)
			req.SetBasicAuth(brandSID, brandToken)
			rec := httptest.NewRecorder()
			start := time.Now()
			sim.Handler().ServeHTTP(rec, req)
			if took := time.Since(start); took != time.Second || rec.Body.Len() != 0 {
				t.Errorf("returned after %v with %d bytes, want after the 1s deadline with none", took, rec.Body.Len())
			}
			if st := sim.Stats(brandSID); st.Requests != 0 {
				t.Errorf("a request the client gave up on was counted: %+v", st)
			}
		})
	})
}

func TestAdminLatencyAndTotalStats(t *testing.T) {
	sim := New(Options{Now: testNow})
	for _, sp := range []AccountSpec{brandSpec(), partnerSpec()} {
		if err := sim.AddAccount(sp); err != nil {
			t.Fatal(err)
		}
	}
	h := sim.Mux()
	do := func(method, path, sid, token string, v any) int {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if sid != "" {
			req.SetBasicAuth(sid, token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if v != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return rec.Code
	}
	var lat map[string]string
	if st := do("POST", "/_sim/latency?d=50ms", "", "", &lat); st != 200 || lat["latency"] != "50ms" || sim.Latency() != 50*time.Millisecond {
		t.Errorf("set latency: %d %v", st, lat)
	}
	if st := do("GET", "/_sim/latency", "", "", &lat); st != 200 || lat["latency"] != "50ms" {
		t.Errorf("get latency: %d %v", st, lat)
	}
	for _, bad := range []string{"soon", "-1s", ""} {
		if st := do("POST", "/_sim/latency?d="+bad, "", "", nil); st != 400 {
			t.Errorf("latency %q: %d, want 400", bad, st)
		}
	}
	sim.SetLatency(0)
	do("GET", "/Advertisers/"+brandSID+"/Campaigns", brandSID, brandToken, nil)
	do("GET", "/Advertisers/"+brandSID+"/PromoCodes", brandSID, brandToken, nil)
	do("GET", "/Mediapartners/"+partnerSID+"/Campaigns", partnerSID, partnerToken, nil)
	var tot Stats
	if st := do("GET", "/_sim/stats", "", "", &tot); st != 200 || tot.Requests != 3 || tot.ByResource["Campaigns"] != 2 || tot.ByResource["PromoCodes"] != 1 || tot.ByStatus[200] != 3 {
		t.Errorf("total stats: %d %+v", st, tot)
	}
}
