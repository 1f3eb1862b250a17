package impactsim

import (
	"net/http"
	"testing"
)

func TestCompanyInformationIsBareObject(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name string
		get  func(string) result
		sid  string
	}{
		{"brand", b.brand, brandSID},
		{"partner", b.partner, partnerSID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.get("/CompanyInformation")
			wantStatus(t, r, http.StatusOK)
			m := r.json(t)
			if _, ok := m["@page"]; ok {
				t.Error("CompanyInformation carries a paging envelope")
			}
			want := b.sim.Truth(tc.sid).CompanyInformation
			if m["CompanyName"] != want.CompanyName || m["Uri"] != want.Uri {
				t.Errorf("CompanyName/Uri = %v/%v, want %v/%v", m["CompanyName"], m["Uri"], want.CompanyName, want.Uri)
			}
		})
	}
}
