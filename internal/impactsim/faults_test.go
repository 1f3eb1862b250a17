package impactsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFaultHTML500(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultHTML500})
	r := b.brand("/Campaigns")
	wantStatus(t, r, http.StatusInternalServerError)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<html>") {
		t.Errorf("Content-Type %q body %q", r.header.Get("Content-Type"), r.body)
	}
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK) // consumed
}

func TestFaultEmpty500(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultEmpty500})
	r := b.brand("/Campaigns")
	wantStatus(t, r, http.StatusInternalServerError)
	if len(r.body) != 0 {
		t.Errorf("body %q, want empty", r.body)
	}
}

func TestFaultGatewayStatuses(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultStatus, Status: 502}, Fault{Kind: FaultStatus})
	wantStatus(t, b.brand("/Campaigns"), http.StatusBadGateway)
	wantStatus(t, b.brand("/Campaigns"), http.StatusServiceUnavailable)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
}

func TestFaultTruncatedJSON(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultTruncated})
	r := b.brand("/Campaigns")
	wantStatus(t, r, http.StatusOK)
	if json.Valid(r.body) || len(r.body) < 100 {
		t.Fatalf("body of %d bytes is valid JSON", len(r.body))
	}
	if r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %s for %d bytes", r.header.Get("Content-Length"), len(r.body))
	}
}

func TestFaultSlowHonoursRequestContext(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultSlow, Delay: 300 * time.Millisecond}, Fault{Kind: FaultSlow, Delay: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	r := b.do("GET", "/Advertisers/"+brandSID+"/Campaigns", basic(brandSID, brandToken), acceptJSON, func(r *http.Request) { *r = *r.WithContext(ctx) })
	if r.err == nil {
		t.Fatalf("slow request finished with %d before its deadline", r.status)
	}
	start := time.Now()
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("second slow response took %v, want >= 50ms", d)
	}
}

func TestFault429WithAndWithoutRetryAfter(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: Fault429, RetryAfter: 7}, Fault{Kind: Fault429})
	r := b.brand("/Campaigns")
	wantError(t, r, http.StatusTooManyRequests, "")
	if r.header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After %q, want 7", r.header.Get("Retry-After"))
	}
	r = b.partner("/Campaigns") // other account: no fault
	wantStatus(t, r, http.StatusOK)
	b.sim.InjectFaults(partnerSID, Fault{Kind: Fault429})
	r = b.partner("/Campaigns")
	wantError(t, r, http.StatusTooManyRequests, "")
	if r.header.Get("Retry-After") != "" {
		t.Errorf("Retry-After %q, want none", r.header.Get("Retry-After"))
	}
}

func TestFaultConnectionResetMidBody(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultReset})
	r := b.brand("/Campaigns")
	if r.err == nil {
		t.Fatalf("read %d bytes with status %d, want a transport error", len(r.body), r.status)
	}
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
}

func TestFaultNextPageURIBackwardsAndLooping(t *testing.T) {
	b := setup(t)
	root := "/Advertisers/" + brandSID
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultNextBackwards}, Fault{Kind: FaultNextLoop})
	if m := b.brand("/MediaPartners?PageSize=5&Page=3").json(t); m["@nextpageuri"] != root+"/MediaPartners?PageSize=5&Page=2" {
		t.Errorf("backwards: @nextpageuri %v", m["@nextpageuri"])
	}
	if m := b.brand("/MediaPartners?PageSize=5&Page=3").json(t); m["@nextpageuri"] != root+"/MediaPartners?PageSize=5&Page=3" {
		t.Errorf("loop: @nextpageuri %v", m["@nextpageuri"])
	}
}

func TestFaultTotalInconsistentWithPages(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultTotalMismatch})
	m := b.brand("/Campaigns").json(t)
	if m["@total"] != "1003" || m["@numpages"] != "2" || len(m["Campaigns"].([]any)) != 3 || m["@nextpageuri"] == "" {
		t.Errorf("@total %v @numpages %v next %v", m["@total"], m["@numpages"], m["@nextpageuri"])
	}
	next := b.brand(strings.TrimPrefix(m["@nextpageuri"].(string), "/Advertisers/"+brandSID)).json(t)
	if len(next["Campaigns"].([]any)) != 0 {
		t.Error("the promised page has records")
	}
}

func TestFaultUnknownListKey(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultUnknownListKey})
	m := b.brand("/Campaigns").json(t)
	if m["Campaigns"] != nil || len(m["Records"].([]any)) != 3 {
		t.Errorf("keys %v", keysOf(m))
	}
}

func TestFaultMalformedDateAndAmount(t *testing.T) {
	b := setup(t)
	b.sim.InjectFaults(partnerSID, Fault{Kind: FaultBadDate}, Fault{Kind: FaultBadAmount})
	first := list(t, b.partner, "/Actions", "Actions")
	if first[0].(map[string]any)["ReferringDate"] != "not-a-date" || first[1].(map[string]any)["ReferringDate"] == "not-a-date" {
		t.Errorf("bad date: %v / %v", first[0].(map[string]any)["ReferringDate"], first[1].(map[string]any)["ReferringDate"])
	}
	second := list(t, b.partner, "/Actions", "Actions")
	if second[0].(map[string]any)["Payout"] != "12,34" || second[0].(map[string]any)["Amount"] == "12,34" {
		t.Errorf("bad amount: %v", second[0])
	}
}

func TestFaultMatchAndTimes(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	b.sim.InjectFaults(brandSID,
		Fault{Kind: FaultEmpty500, Match: "PromoCodes", Times: 2},
		Fault{Kind: FaultStatus, Status: 504, Match: "/Actions?CampaignId=" + camp},
	)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
	wantStatus(t, b.brand("/PromoCodes"), http.StatusInternalServerError)
	wantStatus(t, b.brand("/PromoCodes/1"), http.StatusInternalServerError)
	wantStatus(t, b.brand("/PromoCodes"), http.StatusOK)
	wantStatus(t, b.brand("/ActionUpdates?CampaignId="+camp), http.StatusOK)
	wantStatus(t, b.brand("/Actions?CampaignId="+camp), http.StatusGatewayTimeout)
	wantStatus(t, b.brand("/Actions?CampaignId="+camp), http.StatusOK)
	if st := b.sim.Stats(brandSID); st.FaultsServed != 3 {
		t.Errorf("FaultsServed %d, want 3", st.FaultsServed)
	}
	b.sim.InjectFaults(brandSID, Fault{Kind: FaultEmpty500})
	b.sim.ClearFaults(brandSID)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
}

func TestStatsCountRequestsByStatusAndResource(t *testing.T) {
	b := setup(t)
	b.brand("/Campaigns")
	b.brand("/Campaigns")
	b.brand("/Actions")
	b.do("GET", "/Advertisers/"+brandSID+"/Campaigns", basic(brandSID, "wrong"))
	st := b.sim.Stats(brandSID)
	if st.Requests != 4 || st.ByStatus[200] != 2 || st.ByStatus[400] != 1 || st.ByStatus[401] != 1 || st.ByResource["Campaigns"] != 3 || st.ByResource["Actions"] != 1 {
		t.Errorf("stats %+v", st)
	}
	if other := b.sim.Stats(partnerSID); other.Requests != 0 {
		t.Errorf("partner stats %+v", other)
	}
}
