package syncer

import "testing"

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"Id":                            "id",
		"CampaignId":                    "campaign_id",
		"MediaPartnerName":              "media_partner_name",
		"Oid":                           "oid",
		"SSLSupport":                    "ssl_support",
		"SubId1":                        "sub_id1",
		"AddressLine1":                  "address_line1",
		"IpAddress":                     "ip_address",
		"EinSsnForeignTaxId":            "ein_ssn_foreign_tax_id",
		"Categories.PrimaryCategory":    "categories_primary_category",
		"CatalogOriginalFormatCategory": "catalog_original_format_category",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTablesAreWellFormed(t *testing.T) {
	for _, e := range AllEntities {
		tb, ok := Tables[e]
		if !ok {
			t.Fatalf("no table for %s", e)
		}
		if tb.Entity != e {
			t.Errorf("table %s has entity %s", e, tb.Entity)
		}
		if e != CompanyInformation && tb.Key < 0 {
			t.Errorf("%s has no key column", e)
		}
		for _, c := range tb.Columns {
			switch c.Name {
			case "account_id", "raw", "version", "loaded_at":
				t.Errorf("%s: column %s collides with a loader column", e, c.Name)
			}
		}
	}
}

func TestParseEntities(t *testing.T) {
	got, err := ParseEntities("campaigns, actions,campaigns")
	if err != nil || len(got) != 2 || got[0] != Campaigns || got[1] != Actions {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseEntities("campaigns,bogus"); err == nil {
		t.Fatal("want error for unknown entity")
	}
	all, err := ParseEntities("")
	if err != nil || len(all) != len(AllEntities) {
		t.Fatalf("empty list: %v %v", all, err)
	}
}
