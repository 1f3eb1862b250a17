package impactsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAdminEndpoints(t *testing.T) {
	sim := New(Options{Now: testNow})
	for _, sp := range []AccountSpec{brandSpec(), partnerSpec()} {
		if err := sim.AddAccount(sp); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(sim.Mux())
	defer srv.Close()
	get := func(method, path string, v any) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	var accounts []AccountInfo
	if st := get("GET", "/_sim/accounts", &accounts); st != 200 || len(accounts) != 2 {
		t.Fatalf("accounts: %d %v", st, accounts)
	}
	if a := accounts[0]; a.SID != brandSID || a.Persona != Brand || a.Counts["Actions"] != 3000 || a.Counts["MediaPartners"] != 30 || a.Counts["Campaigns"] != 3 || a.Counts["ActionUpdates"] <= 3000 {
		t.Errorf("brand account %+v", a)
	}
	var clock map[string]time.Time
	if st := get("POST", "/_sim/clock/advance?d=72h", &clock); st != 200 || !clock["now"].Equal(testNow.Add(72*time.Hour)) || !sim.Clock().Now().Equal(testNow.Add(72*time.Hour)) {
		t.Errorf("advance: %d %v", st, clock)
	}
	if st := get("POST", "/_sim/clock/advance?d=soon", nil); st != 400 {
		t.Errorf("bad duration: %d", st)
	}
	if st := get("GET", "/_sim/clock", &clock); st != 200 || !clock["now"].Equal(testNow.Add(72*time.Hour)) {
		t.Errorf("clock: %d %v", st, clock)
	}
	// The API still works on the same mux, and its requests show in the stats.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/Advertisers/"+brandSID+"/Campaigns", nil)
	req.SetBasicAuth(brandSID, brandToken)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err, resp)
	}
	resp.Body.Close()
	var stats struct {
		Requests int            `json:"requests"`
		ByStatus map[string]int `json:"by_status"`
	}
	if st := get("GET", "/_sim/stats?sid="+brandSID, &stats); st != 200 || stats.Requests != 1 || stats.ByStatus["200"] != 1 {
		t.Errorf("stats: %d %+v", st, stats)
	}
	if st := get("GET", "/_sim/stats?sid=nobody", nil); st != 404 {
		t.Errorf("unknown sid stats: %d", st)
	}
}

func TestAddAccountValidatesSpec(t *testing.T) {
	sim := New(Options{Now: testNow})
	for _, sp := range []AccountSpec{
		{Token: "t", Persona: Brand},
		{SID: "a/b", Token: "t", Persona: Brand},
		{SID: "x", Persona: Brand},
		{SID: "x", Token: "t", Persona: "agency"},
		{SID: "x", Token: "t", Persona: Brand, Actions: -1},
		{SID: "x", Token: "t", Persona: Brand, Actions: MaxActionsPerAccount + 1},
	} {
		if err := sim.AddAccount(sp); err == nil {
			t.Errorf("AddAccount(%+v) accepted", sp)
		}
	}
	if err := sim.AddAccount(AccountSpec{SID: "x", Token: "t", Persona: Partner, Actions: 10}); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddAccount(AccountSpec{SID: "x", Token: "t", Persona: Partner}); err == nil {
		t.Error("duplicate SID accepted")
	}
	if n := len(sim.Truth("x").PartnerCampaigns); n != 1 {
		t.Errorf("an account with actions and no campaigns got %d campaigns, want 1", n)
	}
}
