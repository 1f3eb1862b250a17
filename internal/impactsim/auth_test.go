package impactsim

import (
	"net/http"
	"testing"
	"time"
)

func TestAuthRejectsBadCredentialsWith401(t *testing.T) {
	b := setup(t)
	brandPath := "/Advertisers/" + brandSID + "/Campaigns"
	for _, tc := range []struct {
		name string
		path string
		opt  func(*http.Request)
	}{
		{"no credentials", brandPath, func(*http.Request) {}},
		{"unknown SID", "/Advertisers/IRnobody/Campaigns", basic("IRnobody", "x")},
		{"wrong token", brandPath, basic(brandSID, "wrong")},
		{"path SID differs from username", brandPath, basic(partnerSID, partnerToken)},
		{"brand SID under /Mediapartners", "/Mediapartners/" + brandSID + "/Campaigns", basic(brandSID, brandToken)},
		{"partner SID under /Advertisers", "/Advertisers/" + partnerSID + "/Campaigns", basic(partnerSID, partnerToken)},
		{"unknown bearer", brandPath, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }},
		{"other scheme", brandPath, func(r *http.Request) { r.Header.Set("Authorization", "Token "+brandToken) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("GET", tc.path, tc.opt, acceptJSON)
			wantError(t, r, http.StatusUnauthorized, "API key")
			if r.header.Get("Date") == "" {
				t.Error("401 without a Date header")
			}
		})
	}
}

func TestResetTokenOldTokenGets401(t *testing.T) {
	b := setup(t)
	newTok := b.sim.ResetToken(brandSID)
	if newTok == "" || newTok == brandToken {
		t.Fatalf("ResetToken returned %q", newTok)
	}
	wantError(t, b.brand("/Campaigns"), http.StatusUnauthorized, "")
	r := b.do("GET", "/Advertisers/"+brandSID+"/Campaigns", basic(brandSID, newTok), acceptJSON)
	wantStatus(t, r, http.StatusOK)
}

func TestDisableTokenGets401(t *testing.T) {
	b := setup(t)
	b.sim.DisableToken(brandSID)
	wantError(t, b.brand("/Campaigns"), http.StatusUnauthorized, "")
	b.sim.EnableToken(brandSID)
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
}

func TestBearerTokenUntilExpiryOnSimulatorClock(t *testing.T) {
	b := setup(t)
	b.sim.AddBearerToken(brandSID, "access-1", testNow.Add(time.Hour))
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	path := "/Advertisers/" + brandSID + "/CompanyInformation"
	wantStatus(t, b.do("GET", path, bearer("access-1"), acceptJSON), http.StatusOK)
	wantError(t, b.do("GET", "/Mediapartners/"+partnerSID+"/CompanyInformation", bearer("access-1"), acceptJSON), http.StatusUnauthorized, "")
	b.sim.Clock().Advance(time.Hour)
	wantError(t, b.do("GET", path, bearer("access-1"), acceptJSON), http.StatusUnauthorized, "")
	b.sim.AddBearerToken(brandSID, "access-2", testNow.Add(2*time.Hour))
	b.sim.RevokeBearerToken(brandSID, "access-2")
	wantError(t, b.do("GET", path, bearer("access-2"), acceptJSON), http.StatusUnauthorized, "")
}

func TestDenyEndpointAnswers403AccessDenied(t *testing.T) {
	b := setup(t)
	b.sim.DenyEndpoint(brandSID, "PromoCodes")
	for _, path := range []string{"/PromoCodes", "/PromoCodes/123"} {
		r := b.brand(path)
		wantStatus(t, r, http.StatusForbidden)
		if string(r.body) != `{"Status":"ERROR","Message":"Access Denied"}` {
			t.Errorf("body %s", r.body)
		}
	}
	wantStatus(t, b.brand("/Campaigns"), http.StatusOK)
	b.sim.AllowEndpoint(brandSID, "PromoCodes")
	wantStatus(t, b.brand("/PromoCodes"), http.StatusOK)
}
