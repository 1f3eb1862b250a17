package impactsim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRoutesPersonaSegmentCaseInsensitive(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct{ root, user, pass string }{
		{"/Advertisers/" + brandSID, brandSID, brandToken},
		{"/advertisers/" + brandSID, brandSID, brandToken},
		{"/ADVERTISERS/" + brandSID, brandSID, brandToken},
		{"/Mediapartners/" + partnerSID, partnerSID, partnerToken},
		{"/MediaPartners/" + partnerSID, partnerSID, partnerToken},
		{"/mediapartners/" + partnerSID, partnerSID, partnerToken},
	} {
		t.Run(tc.root, func(t *testing.T) {
			r := b.do("GET", tc.root+"/CompanyInformation", basic(tc.user, tc.pass), acceptJSON)
			wantStatus(t, r, http.StatusOK)
		})
	}
}

func TestRoutesJSONSuffixSelectsJSONAndIsKeptInPageURIs(t *testing.T) {
	b := setup(t)
	root := "/Advertisers/" + brandSID
	r := b.do("GET", root+"/Campaigns.json?PageSize=1", basic(brandSID, brandToken)) // no Accept
	wantStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	m := r.json(t)
	if got, want := m["@nextpageuri"], root+"/Campaigns.json?PageSize=1&Page=2"; got != want {
		t.Errorf("@nextpageuri = %v, want %v", got, want)
	}
	if got, want := m["@uri"], root+"/Campaigns.json"; got != want {
		t.Errorf("@uri = %v, want %v", got, want)
	}
	one := b.do("GET", root+"/CompanyInformation.json", basic(brandSID, brandToken))
	wantStatus(t, one, http.StatusOK)
	one.json(t)
}

func TestContentNegotiationXMLUnlessJSONRequested(t *testing.T) {
	b := setup(t)
	path := "/Advertisers/" + brandSID + "/Campaigns"
	for _, tc := range []struct {
		name   string
		accept string
		json   bool
	}{
		{"no Accept", "", false},
		{"wildcard", "*/*", false},
		{"xml", "application/xml", false},
		{"json", "application/json", true},
		{"json in a list", "text/html, application/json;q=0.9", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("GET", path, basic(brandSID, brandToken), func(r *http.Request) {
				if tc.accept != "" {
					r.Header.Set("Accept", tc.accept)
				}
			})
			wantStatus(t, r, http.StatusOK)
			ct := r.header.Get("Content-Type")
			if tc.json {
				if !strings.HasPrefix(ct, "application/json") || r.body[0] != '{' {
					t.Fatalf("Content-Type %q body %.40s, want JSON", ct, r.body)
				}
				return
			}
			if !strings.HasPrefix(ct, "application/xml") || !strings.Contains(string(r.body), "<ImpactRadiusResponse><Campaigns page=\"1\"") {
				t.Fatalf("Content-Type %q body %.120s, want ImpactRadiusResponse XML", ct, r.body)
			}
		})
	}
}

func TestErrorsAreXMLWithoutAccept(t *testing.T) {
	b := setup(t)
	r := b.do("GET", "/Advertisers/"+brandSID+"/Actions", basic(brandSID, brandToken))
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "<ImpactRadiusResponse><Status>ERROR</Status><Message>") {
		t.Fatalf("body %s, want an XML error envelope", r.body)
	}
}

func TestUnknownResourceAndIdAre404(t *testing.T) {
	b := setup(t)
	tr := b.sim.Truth(brandSID)
	for _, path := range []string{
		"/Widgets",
		"/Actions/999.999.123",
		"/Actions/" + tr.Actions[0].Id + "/Items",
		"/Campaigns/1",
		"/MediaPartners/1",
		"/PromoCodes/1",
		"/ActionUpdates/" + tr.Actions[0].Id + ".99",
		"/CompanyInformation/1",
		"/Campaigns/",
		"", // the brand account home is undocumented
	} {
		t.Run(path, func(t *testing.T) {
			wantError(t, b.brand(path), http.StatusNotFound, "not found")
		})
	}
	t.Run("outside the API roots", func(t *testing.T) {
		wantError(t, b.do("GET", "/Agencies/x/Actions", acceptJSON), http.StatusNotFound, "not found")
	})
}

func TestMediaPartnersIsBrandOnly(t *testing.T) {
	b := setup(t)
	wantError(t, b.partner("/MediaPartners"), http.StatusNotFound, "not found")
}

func TestSingleObjectGets(t *testing.T) {
	b := setup(t)
	bt, pt := b.sim.Truth(brandSID), b.sim.Truth(partnerSID)
	for _, tc := range []struct {
		name string
		get  func(string) result
		path string
		id   string
		key  string
	}{
		{"brand action", b.brand, "/Actions/" + bt.Actions[5].Id, bt.Actions[5].Id, "Id"},
		{"brand campaign", b.brand, "/Campaigns/" + bt.Campaigns[1].Id, bt.Campaigns[1].Id, "Id"},
		{"brand partner", b.brand, "/MediaPartners/" + bt.MediaPartners[2].Id, bt.MediaPartners[2].Id, "Id"},
		{"brand promo code", b.brand, "/PromoCodes/" + bt.PromoCodes[0].Id, bt.PromoCodes[0].Id, "Id"},
		{"brand action update", b.brand, "/ActionUpdates/" + bt.ActionUpdates[3].Id, bt.ActionUpdates[3].Id, "Id"},
		{"partner action", b.partner, "/Actions/" + pt.Actions[0].Id + ".json", pt.Actions[0].Id, "Id"},
		{"partner campaign", b.partner, "/Campaigns/" + pt.PartnerCampaigns[0].CampaignId, pt.PartnerCampaigns[0].CampaignId, "CampaignId"},
		{"partner promo code", b.partner, "/PromoCodes/" + pt.PartnerPromoCodes[0].Id, pt.PartnerPromoCodes[0].Id, "Id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.get(tc.path)
			wantStatus(t, r, http.StatusOK)
			m := r.json(t)
			if m[tc.key] != tc.id {
				t.Errorf("%s = %v, want %s", tc.key, m[tc.key], tc.id)
			}
			if _, ok := m["@page"]; ok {
				t.Error("single object carries a paging envelope")
			}
		})
	}
}

func TestMethodsOtherThanGetAre405(t *testing.T) {
	b := setup(t)
	r := b.do("POST", "/Advertisers/"+brandSID+"/Campaigns", basic(brandSID, brandToken), acceptJSON)
	wantError(t, r, http.StatusMethodNotAllowed, "not allowed")
}

func TestDateHeaderFollowsSimulatorClock(t *testing.T) {
	b := setup(t)
	b.sim.Clock().Advance(50 * time.Hour)
	for _, r := range []result{b.brand("/Campaigns"), b.brand("/Nope"), b.do("GET", "/Advertisers/unknown/Campaigns")} {
		got, err := http.ParseTime(r.header.Get("Date"))
		if err != nil || !got.Equal(testNow.Add(50*time.Hour)) {
			t.Fatalf("Date %q (%v), want the simulator clock %v", r.header.Get("Date"), err, testNow.Add(50*time.Hour))
		}
	}
}
