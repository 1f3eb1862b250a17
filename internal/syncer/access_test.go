package syncer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/syncertest"
)

func TestCheckAccess(t *testing.T) {
	partner := syncer.Account{ID: "pt", Persona: syncer.Partner, SID: "IRpt", AuthKind: syncer.AuthBasic, Status: syncer.StatusActive}
	forbidden := &syncer.ForbiddenError{Permission: "Promo Codes → Retrieve promo codes", Message: "no"}
	refused := &syncer.UnauthorizedError{Endpoint: "Campaigns", Message: "bad token"}
	type want struct {
		result     syncer.AccessResult
		permission string
	}
	for _, tc := range []struct {
		name    string
		acct    syncer.Account
		catalog map[syncer.Entity][]syncer.Record
		errs    map[syncer.Entity]error
		want    map[syncer.Entity]want
		refused bool
		ok      bool
	}{
		{name: "brand, all granted", acct: brand(), catalog: catalog(), ok: true, want: map[syncer.Entity]want{
			syncer.CompanyInformation: {result: syncer.AccessGranted}, syncer.Campaigns: {result: syncer.AccessGranted},
			syncer.MediaPartners: {result: syncer.AccessGranted}, syncer.PromoCodes: {result: syncer.AccessGranted},
			syncer.Actions: {result: syncer.AccessGranted}, syncer.ActionUpdates: {result: syncer.AccessGranted},
		}},
		{name: "a permission missing", acct: brand(), catalog: catalog(), errs: map[syncer.Entity]error{syncer.PromoCodes: forbidden},
			want: map[syncer.Entity]want{
				syncer.CompanyInformation: {result: syncer.AccessGranted}, syncer.Campaigns: {result: syncer.AccessGranted},
				syncer.MediaPartners: {result: syncer.AccessGranted}, syncer.PromoCodes: {result: syncer.AccessMissing, permission: forbidden.Permission},
				syncer.Actions: {result: syncer.AccessGranted}, syncer.ActionUpdates: {result: syncer.AccessGranted},
			}},
		{name: "brand without campaigns", acct: brand(), want: map[syncer.Entity]want{
			syncer.CompanyInformation: {result: syncer.AccessGranted}, syncer.Campaigns: {result: syncer.AccessGranted},
			syncer.MediaPartners: {result: syncer.AccessGranted}, syncer.PromoCodes: {result: syncer.AccessGranted},
			syncer.Actions: {result: syncer.AccessSkipped}, syncer.ActionUpdates: {result: syncer.AccessSkipped},
		}},
		{name: "credentials refused stop the check", acct: brand(), catalog: catalog(), refused: true,
			errs: map[syncer.Entity]error{syncer.Campaigns: refused},
			want: map[syncer.Entity]want{
				syncer.CompanyInformation: {result: syncer.AccessGranted}, syncer.Campaigns: {result: syncer.AccessError},
			}},
		{name: "partner: account-wide actions, no media partners", acct: partner, catalog: catalog(), ok: true, want: map[syncer.Entity]want{
			syncer.CompanyInformation: {result: syncer.AccessGranted}, syncer.Campaigns: {result: syncer.AccessGranted},
			syncer.PromoCodes: {result: syncer.AccessGranted},
			syncer.Actions:    {result: syncer.AccessGranted}, syncer.ActionUpdates: {result: syncer.AccessGranted},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &syncertest.Source{Now: apiNow, Catalog: tc.catalog, Errs: tc.errs}
			got := syncer.CheckAccess(t.Context(), src, tc.acct, func() time.Time { return apiNow })
			if len(got.Entities) != len(tc.want) {
				t.Fatalf("%d entities checked, want %d: %+v", len(got.Entities), len(tc.want), got.Entities)
			}
			for _, e := range got.Entities {
				w, ok := tc.want[e.Entity]
				if !ok || e.Result != w.result || e.Permission != w.permission {
					t.Errorf("%s: %s %q, want %s %q", e.Entity, e.Result, e.Permission, w.result, w.permission)
				}
			}
			if (got.Refused != nil) != tc.refused || (tc.refused && !errors.Is(got.Refused, refused)) {
				t.Errorf("Refused = %v, want refused %v", got.Refused, tc.refused)
			}
			if got.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", got.OK(), tc.ok)
			}
			for _, q := range src.Queries() {
				if q.Entity != syncer.Actions && q.Entity != syncer.ActionUpdates {
					continue
				}
				if q.Window.End != apiNow || q.Window.Start != apiNow.Add(-aDay) || q.Filter != syncer.ByUpdated {
					t.Errorf("%s asked %s over %v, want the last day of the API's clock by update", q.Entity, q.Filter, q.Window)
				}
				if want := map[syncer.Persona]string{syncer.Brand: "c1"}[tc.acct.Persona]; q.CampaignID != want {
					t.Errorf("%s asked campaign %q, want %q", q.Entity, q.CampaignID, want)
				}
			}
		})
	}
}
