package impactsim

import (
	"net/http"
	"strings"
	"testing"
)

func TestQuirkNumbersAsJSON(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(brandSID, Quirks{NumbersAsJSON: true})
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	a := list(t, b.brand, "/Actions?CampaignId="+camp, "Actions")[0].(map[string]any)
	for _, k := range []string{"CampaignId", "AdId", "Payout", "Amount", "ClientCost", "MediaPartnerId"} {
		if _, ok := a[k].(float64); !ok {
			t.Errorf("%s = %#v, want a JSON number", k, a[k])
		}
	}
	for _, k := range []string{"Id", "Oid", "State", "EventDate", "PromoCode"} {
		if _, ok := a[k].(string); !ok {
			t.Errorf("%s = %#v, want a string", k, a[k])
		}
	}
	r := b.brand("/Actions?CampaignId=" + camp)
	if !strings.Contains(string(r.body), `"Amount":`) || strings.Contains(string(r.body), `"Amount":"`) {
		t.Error("Amount still quoted")
	}
	if m := r.json(t); m["@total"] == nil || m["@page"] != "1" {
		t.Errorf("envelope changed: @page %#v", m["@page"])
	}
}

func TestQuirkBoolsAsJSON(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(brandSID, Quirks{BoolsAsJSON: true})
	c := list(t, b.brand, "/Campaigns", "Campaigns")[0].(map[string]any)
	if _, ok := c["ListInMarketplace"].(bool); !ok {
		t.Errorf("ListInMarketplace = %#v, want a JSON bool", c["ListInMarketplace"])
	}
}

func TestQuirkEnvelopeNumbers(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(brandSID, Quirks{EnvelopeNumbers: true})
	m := b.brand("/Campaigns?PageSize=1").json(t)
	for _, k := range []string{"@page", "@numpages", "@pagesize", "@total", "@start", "@end"} {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s = %#v, want a JSON number", k, m[k])
		}
	}
	if _, ok := m["@nextpageuri"].(string); !ok {
		t.Error("@nextpageuri is not a string")
	}
}

func TestQuirkSingleObjectLists(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(brandSID, Quirks{SingleObjectLists: true})
	m := b.brand("/Campaigns?PageSize=1").json(t)
	c, ok := m["Campaigns"].(map[string]any)
	if !ok {
		t.Fatalf("Campaigns = %T, want a bare object", m["Campaigns"])
	}
	if _, ok := c["CompanyContacts"].(map[string]any); !ok {
		t.Errorf("one-element CompanyContacts = %T, want an object", c["CompanyContacts"])
	}
	if _, ok := c["ShippingRegions"].([]any); !ok {
		t.Errorf("ShippingRegions = %T, want string arrays untouched", c["ShippingRegions"])
	}
	if arr, ok := b.brand("/Campaigns?PageSize=2").json(t)["Campaigns"].([]any); !ok || len(arr) != 2 {
		t.Error("two records are not an array")
	}
}

func TestQuirkLegacyMediaPartnersKey(t *testing.T) {
	b := setup(t)
	if m := b.brand("/MediaPartners").json(t); m["Partners"] == nil || m["MediaPartners"] != nil {
		t.Fatal("default list key is not Partners")
	}
	b.sim.SetQuirks(brandSID, Quirks{LegacyPartnersKey: true})
	if m := b.brand("/MediaPartners").json(t); m["MediaPartners"] == nil || m["Partners"] != nil {
		t.Fatal("legacy quirk does not use the MediaPartners key")
	}
}

func TestQuirkExtraFields(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(partnerSID, Quirks{ExtraFields: true})
	for _, tc := range []struct{ path, key string }{{"/Actions", "Actions"}, {"/Campaigns", "Campaigns"}, {"/PromoCodes", "PromoCodes"}} {
		rec := list(t, b.partner, tc.path, tc.key)[0].(map[string]any)
		if rec["NewFieldFromV15"] != "x" || rec["NewObjectFromV16"] == nil {
			t.Errorf("%s: extra fields missing", tc.path)
		}
	}
	if m := b.partner("/CompanyInformation").json(t); m["NewFieldFromV15"] != "x" {
		t.Error("CompanyInformation lacks the extra field")
	}
}

func TestQuirkUTCDates(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(partnerSID, Quirks{UTCDates: true})
	a := list(t, b.partner, "/Actions", "Actions")[0].(map[string]any)
	ev := a["EventDate"].(string)
	if !strings.HasSuffix(ev, ".000Z") {
		t.Fatalf("EventDate %s, want UTC with milliseconds", ev)
	}
	want, _ := b.sim.TruthAction(partnerSID, a["Id"].(string))
	if !mustTime(t, ev).Equal(want.EventDate) {
		t.Errorf("EventDate %s, want the instant %v", ev, want.EventDate)
	}
}

func TestQuirksArePerAccount(t *testing.T) {
	b := setup(t)
	b.sim.SetQuirks(brandSID, Quirks{NumbersAsJSON: true})
	a := list(t, b.partner, "/Actions", "Actions")[0].(map[string]any)
	if _, ok := a["Amount"].(string); !ok {
		t.Error("the partner account picked up the brand's quirk")
	}
	wantStatus(t, b.partner("/Actions"), http.StatusOK)
}
