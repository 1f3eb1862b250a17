package impactsim

import (
	"net/http"
	"testing"
)

func TestPaginationEnvelopeMatchesReference(t *testing.T) {
	b := setup(t)
	root := "/Advertisers/" + brandSID
	r := b.brand("/MediaPartners?State=ACTIVE&PageSize=2&Page=2&Country=US")
	wantStatus(t, r, http.StatusOK)
	m := r.json(t)
	tr := b.sim.Truth(brandSID)
	active := len(filter(tr.MediaPartners, func(p MediaPartner) bool { return p.State == "ACTIVE" }))
	if active < 5 {
		t.Fatalf("test data has only %d active partners", active)
	}
	numPages := (active + 1) / 2
	filters := "&State=ACTIVE&Country=US"
	want := map[string]string{
		"@page":            "2",
		"@numpages":        itoa(numPages),
		"@pagesize":        "2",
		"@total":           itoa(active),
		"@start":           "2",
		"@end":             "3",
		"@uri":             root + "/MediaPartners?State=ACTIVE&Country=US",
		"@firstpageuri":    root + "/MediaPartners?PageSize=2&Page=1" + filters,
		"@previouspageuri": root + "/MediaPartners?PageSize=2&Page=1" + filters,
		"@nextpageuri":     root + "/MediaPartners?PageSize=2&Page=3" + filters,
		"@lastpageuri":     root + "/MediaPartners?PageSize=2&Page=" + itoa(numPages) + filters,
	}
	for k, v := range want {
		got, ok := m[k].(string)
		if !ok || got != v {
			t.Errorf("%s = %#v, want string %q", k, m[k], v)
		}
	}
	if n := len(m["Partners"].([]any)); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

func TestPaginationFirstAndLastPageHaveEmptyPrevAndNext(t *testing.T) {
	b := setup(t)
	first := b.brand("/Campaigns?PageSize=2").json(t)
	if first["@previouspageuri"] != "" || first["@nextpageuri"] == "" {
		t.Errorf("page 1: prev %q next %q", first["@previouspageuri"], first["@nextpageuri"])
	}
	last := b.brand("/Campaigns?PageSize=2&Page=2").json(t)
	if last["@nextpageuri"] != "" || last["@previouspageuri"] == "" {
		t.Errorf("last page: prev %q next %q", last["@previouspageuri"], last["@nextpageuri"])
	}
	if last["@start"] != "2" || last["@end"] != "2" {
		t.Errorf("last page @start/@end = %v/%v, want 2/2", last["@start"], last["@end"])
	}
}

func TestPaginationEmptyResult(t *testing.T) {
	b := setup(t)
	r := b.brand("/MediaPartners?State=NO_SUCH_STATE")
	wantStatus(t, r, http.StatusOK)
	m := r.json(t)
	for k, v := range map[string]string{"@total": "0", "@numpages": "0", "@start": "0", "@end": "0", "@nextpageuri": "", "@previouspageuri": ""} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %q", k, m[k], v)
		}
	}
	if recs, ok := m["Partners"].([]any); !ok || len(recs) != 0 {
		t.Errorf("Partners = %#v, want []", m["Partners"])
	}
	if string(r.body[len(r.body)-len(`"Partners":[]}`):]) != `"Partners":[]}` {
		t.Errorf("body ends %s", r.body[len(r.body)-20:])
	}
}

func TestPaginationPagePastTheEndIsEmpty(t *testing.T) {
	b := setup(t)
	m := b.brand("/Campaigns?Page=9").json(t)
	if recs := m["Campaigns"].([]any); len(recs) != 0 || m["@nextpageuri"] != "" || m["@total"] != "3" {
		t.Errorf("page 9: %d records, next %q, total %v", len(recs), m["@nextpageuri"], m["@total"])
	}
}

func TestPaginationDefaultPageSizes(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	for _, tc := range []struct {
		name string
		get  func(string) result
		path string
		want string
	}{
		{"brand Actions", b.brand, "/Actions?CampaignId=" + camp, "20000"},
		{"brand ActionUpdates", b.brand, "/ActionUpdates?CampaignId=" + camp, "20000"},
		{"brand Campaigns", b.brand, "/Campaigns", "1000"},
		{"brand MediaPartners", b.brand, "/MediaPartners", "1000"},
		{"brand PromoCodes", b.brand, "/PromoCodes", "1000"},
		{"partner Actions", b.partner, "/Actions", "20000"},
		{"partner ActionUpdates", b.partner, "/ActionUpdates", "20000"},
		{"partner Campaigns", b.partner, "/Campaigns", "100"},
		{"partner PromoCodes", b.partner, "/PromoCodes", "100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.get(tc.path).json(t)
			if m["@pagesize"] != tc.want {
				t.Errorf("@pagesize = %v, want %s", m["@pagesize"], tc.want)
			}
		})
	}
}

func TestPageSizeValidation(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name string
		get  func(string) result
		path string
		ok   bool
	}{
		{"20000 accepted", b.brand, "/Campaigns?PageSize=20000", true},
		{"over 20000 rejected", b.brand, "/Campaigns?PageSize=20001", false},
		{"zero rejected", b.brand, "/Campaigns?PageSize=0", false},
		{"non-numeric rejected", b.brand, "/Campaigns?PageSize=ten", false},
		{"Page zero rejected", b.brand, "/Campaigns?Page=0", false},
		{"Page non-numeric rejected", b.brand, "/Campaigns?Page=x", false},
		{"partner PromoCodes 50 accepted", b.partner, "/PromoCodes?PageSize=50", true},
		{"partner PromoCodes 1000 accepted", b.partner, "/PromoCodes?PageSize=1000", true},
		{"partner PromoCodes below 50 rejected", b.partner, "/PromoCodes?PageSize=49", false},
		{"partner PromoCodes above 1000 rejected", b.partner, "/PromoCodes?PageSize=1001", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.get(tc.path)
			if tc.ok {
				wantStatus(t, r, http.StatusOK)
				return
			}
			wantError(t, r, http.StatusBadRequest, "Page")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
