package extract

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func val(t *testing.T, e syncer.Entity, r syncer.Record, col string) any {
	t.Helper()
	i := syncer.Tables[e].ColumnIndex(col)
	if i < 0 {
		t.Fatalf("no column %s in %s", col, e)
	}
	return r.Values[i]
}

func decodePageFile(t *testing.T, name string, e syncer.Entity) ([]syncer.Record, []string) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePage(body, listKeys(e))
	if err != nil {
		t.Fatalf("parsePage: %v", err)
	}
	var recs []syncer.Record
	var unknown []string
	for _, rv := range p.records {
		d, err := decodeRecord(layouts[e], rv.raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		recs = append(recs, d.rec)
		unknown = append(unknown, d.unknown...)
	}
	return recs, unknown
}

func TestDecodeBrandActionsGolden(t *testing.T) {
	recs, unknown := decodePageFile(t, "brand_actions.json", syncer.Actions)
	if len(recs) != 2 {
		t.Fatalf("got %d records", len(recs))
	}
	if len(unknown) != 0 {
		t.Errorf("unexpected unknown fields %v", unknown)
	}
	r := recs[1]
	if r.ID != "24125.8812.3376954" {
		t.Errorf("id %q", r.ID)
	}
	checks := map[string]any{
		"campaign_id":        "24125",
		"media_partner_name": "CashBackly",
		"state":              "REVERSED",
		"oid":                "NW-1039951",
		"promo_code":         "SPRING15",
		"customer_post_code": "",
	}
	for col, want := range checks {
		if got := val(t, syncer.Actions, r, col); got != want {
			t.Errorf("%s = %#v, want %#v", col, got, want)
		}
	}
	for col, want := range map[string]string{"delta_payout": "-3.15", "intended_amount": "45", "payout": "0"} {
		got := val(t, syncer.Actions, r, col).(decimal.Decimal)
		if !got.Equal(decimal.RequireFromString(want)) {
			t.Errorf("%s = %s, want %s", col, got, want)
		}
	}
	// -08:00 before the DST change, converted to UTC
	if got := val(t, syncer.Actions, r, "event_date").(time.Time); !got.Equal(time.Date(2026, 3, 2, 16, 3, 10, 0, time.UTC)) {
		t.Errorf("event_date %v", got)
	}
	if got := val(t, syncer.Actions, r, "locking_date").(time.Time); !got.Equal(time.Date(2026, 4, 27, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("locking_date %v", got)
	}
	if got := val(t, syncer.Actions, r, "cleared_date").(time.Time); !got.Equal(epoch) {
		t.Errorf("empty cleared_date = %v, want the epoch", got)
	}
	if !json.Valid([]byte(r.Raw)) || !strings.Contains(r.Raw, `"Id": "24125.8812.3376954"`) {
		t.Errorf("raw is not the record as received: %.80s", r.Raw)
	}
}

func TestDecodeOtherGoldenPages(t *testing.T) {
	for _, tc := range []struct {
		file   string
		entity syncer.Entity
		n      int
		col    string
		want   any
	}{
		{"partner_actions.json", syncer.Actions, 1, "sub_id1", "post-4471"},
		{"brand_action_updates.json", syncer.ActionUpdates, 1, "disposition", "ITEM_RETURNED"},
		{"brand_campaigns.json", syncer.Campaigns, 1, "gateway_tracking_settings_ssl_support", uint8(1)},
		{"brand_campaigns.json", syncer.Campaigns, 1, "rating", int64(4)},
		{"brand_campaigns.json", syncer.Campaigns, 1, "categories_primary_category", "Sports, Outdoor & Fitness"},
		{"brand_media_partners.json", syncer.MediaPartners, 1, "address_city", "Boise"},
	} {
		t.Run(tc.file+"/"+tc.col, func(t *testing.T) {
			recs, unknown := decodePageFile(t, tc.file, tc.entity)
			if len(recs) != tc.n {
				t.Fatalf("got %d records", len(recs))
			}
			if len(unknown) != 0 {
				t.Errorf("unknown fields %v", unknown)
			}
			if got := val(t, tc.entity, recs[0], tc.col); got != tc.want {
				t.Errorf("%s = %#v, want %#v", tc.col, got, tc.want)
			}
		})
	}
}

func TestDecodeCompanyInformationGolden(t *testing.T) {
	body, err := os.ReadFile("testdata/brand_company_information.json")
	if err != nil {
		t.Fatal(err)
	}
	root, err := document(body)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeRecord(layouts[syncer.CompanyInformation], root.raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.unknown) != 0 {
		t.Errorf("unknown %v", d.unknown)
	}
	if got := val(t, syncer.CompanyInformation, d.rec, "financial_contact_email"); got != "ap@northwind-outdoor.example" {
		t.Errorf("financial_contact_email = %v", got)
	}
}

func TestDecodeToleratesWireVariants(t *testing.T) {
	raw := `{"Id": 24125, "Name": "N", "ListInMarketplace": true, "Rating": 3, "ShippingRegions": "US",
		"CompanyContacts": {"FirstName": "Dana"}, "Categories": null, "HasStandDownPolicy": "",
		"NewFieldFromV15": "x", "GatewayTrackingSettings": {"SSLSupport": "TRUE", "Brand": 1}}`
	d, err := decodeRecord(layouts[syncer.Campaigns], []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":                                    "24125",
		"list_in_marketplace":                   uint8(1),
		"rating":                                int64(3),
		"company_contacts":                      `[{"FirstName":"Dana"}]`,
		"has_stand_down_policy":                 uint8(0),
		"gateway_tracking_settings_ssl_support": uint8(1),
	}
	for col, w := range want {
		if got := val(t, syncer.Campaigns, d.rec, col); got != w {
			t.Errorf("%s = %#v, want %#v", col, got, w)
		}
	}
	if got := val(t, syncer.Campaigns, d.rec, "shipping_regions").([]string); len(got) != 1 || got[0] != "US" {
		t.Errorf("shipping_regions %v", got)
	}
	if strings.Join(d.unknown, ",") != "NewFieldFromV15,GatewayTrackingSettings.Brand" {
		t.Errorf("unknown = %v", d.unknown)
	}
}

// JSON columns are stored in the documented shape whatever the wire quirks:
// numbers as the strings the API documents, documented nested arrays as
// arrays even when one element came as a bare object, and nothing else
// touched.
func TestDecodeJSONColumnsCanonical(t *testing.T) {
	raw := `{"Id": 1,
		"Programs": {"Id": 24125, "Groups": {"GroupId": 7731, "GroupName": "Content"}, "JoinDate": "2024-02-09T13:05:51-08:00", "ExpirationDate": ""},
		"Contacts": [{"Labels": "Primary", "Phones": null, "IsPrimary": true, "Rate": -1.50e2, "Odd \"key\"\n": {"Nested": 2}},
		             {"Labels": ["A", "B"], "Phones": "", "IsPrimary": false}],
		"LinkedAccounts": [],
		"Properties": null}`
	d, err := decodeRecord(layouts[syncer.MediaPartners], []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"programs": `[{"Id":"24125","Groups":[{"GroupId":"7731","GroupName":"Content"}],"JoinDate":"2024-02-09T13:05:51-08:00","ExpirationDate":""}]`,
		"contacts": `[{"Labels":["Primary"],"Phones":[],"IsPrimary":true,"Rate":"-1.50e2","Odd \"key\"\u000a":{"Nested":"2"}},` +
			`{"Labels":["A","B"],"Phones":[],"IsPrimary":false}]`,
		"linked_accounts": `[]`,
		"properties":      `[]`,
	}
	for col, w := range want {
		got := val(t, syncer.MediaPartners, d.rec, col).(string)
		if got != w {
			t.Errorf("%s =\n %s\nwant\n %s", col, got, w)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s is not valid JSON", col)
		}
	}
	if d.rec.Raw != raw {
		t.Error("Raw is not the record as received")
	}
}

func TestDecodePartnerCampaignKeyFallsBackToCampaignId(t *testing.T) {
	d, err := decodeRecord(layouts[syncer.Campaigns], []byte(`{"CampaignId": "11630", "CampaignName": "X", "AllowsDeeplinking": "true"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.rec.ID != "11630" || val(t, syncer.Campaigns, d.rec, "campaign_id") != "11630" {
		t.Errorf("id %q campaign_id %v", d.rec.ID, val(t, syncer.Campaigns, d.rec, "campaign_id"))
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ raw, field string }{
		{`{"Id": "1", "Payout": "12,50"}`, "Payout"},
		{`{"Id": "1", "EventDate": "2026-03-30"}`, "EventDate"},
		{`{"Id": "1", "EventDate": "2026-03-30T10:00:00"}`, "EventDate"},
		{`{"Id": "1", "Amount": "1.123456789"}`, "Amount"},
		{`{"Id": "1", "State": {"x": 1}}`, "State"},
	} {
		_, err := decodeRecord(layouts[syncer.Actions], []byte(tc.raw))
		var fe *fieldError
		if !errors.As(err, &fe) || fe.field != tc.field {
			t.Errorf("%s: err = %v, want a field error on %s", tc.raw, err, tc.field)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 3, 31, 4, 19, 47, 0, time.UTC)
	for _, s := range []string{
		"2026-03-30T21:19:47-07:00", "2026-03-31T04:19:47Z", "2026-03-31T04:19:47.000Z",
		"2026-03-31T04:19:47.999Z", "2026-03-31T09:19:47+05:00", "2026-03-30T21:19:47-0700",
	} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"2026-03-30", "03/30/2026", "2026-03-30T21:19:47", "yesterday"} {
		if _, err := ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted", s)
		}
	}
	if got, err := ParseTime(""); err != nil || !got.Equal(epoch) {
		t.Errorf("empty: %v %v", got, err)
	}
}

func TestParseMoney(t *testing.T) {
	for in, want := range map[string]string{"6.30": "6.3", "-3.15": "-3.15", "0.00": "0", "32252.1922": "32252.1922",
		"1e2": "100", "007.50": "7.5", "": "0", "12345678.12345678": "12345678.12345678"} {
		got, err := ParseMoney(in)
		if err != nil || !got.Equal(decimal.RequireFromString(want)) {
			t.Errorf("ParseMoney(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"12,50", "NaN", "Inf", "0x10", "1.", ".", "1.123456789", "12345678901", "$5", "1 000"} {
		if _, err := ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) accepted", in)
		}
	}
}

func TestParsePage(t *testing.T) {
	t.Run("single object instead of array", func(t *testing.T) {
		p, err := parsePage([]byte(`{"@total":"1","Actions":{"Id":"1"}}`), []string{"Actions"})
		if err != nil || len(p.records) != 1 {
			t.Fatalf("%v %d", err, len(p.records))
		}
	})
	t.Run("legacy MediaPartners key", func(t *testing.T) {
		p, err := parsePage([]byte(`{"@total":"1","MediaPartners":[{"Id":"1"}]}`), listKeys(syncer.MediaPartners))
		if err != nil || len(p.records) != 1 {
			t.Fatalf("%v %d", err, len(p.records))
		}
	})
	t.Run("missing list key with a total is an error", func(t *testing.T) {
		_, err := parsePage([]byte(`{"@total":"3","Records":[{},{},{}]}`), listKeys(syncer.MediaPartners))
		var lk *listKeyError
		if !errors.As(err, &lk) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("empty result", func(t *testing.T) {
		p, err := parsePage([]byte(`{"@total":"0","@numpages":"0","Actions":[]}`), []string{"Actions"})
		if err != nil || len(p.records) != 0 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("numbers as numbers in the envelope", func(t *testing.T) {
		p, err := parsePage([]byte(`{"@page":2,"@numpages":3,"@total":5,"@nextpageuri":"/x?Page=3","Actions":[]}`), []string{"Actions"})
		if err != nil || p.num != 2 || p.numPages != 3 || p.total != 5 || p.next != "/x?Page=3" {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("truncated body is an error", func(t *testing.T) {
		body, _ := os.ReadFile("testdata/brand_actions.json")
		for _, n := range []int{1, 10, len(body) / 2, len(body) - 2} {
			if _, err := parsePage(body[:n], []string{"Actions"}); err == nil {
				t.Errorf("truncated at %d accepted", n)
			}
		}
	})
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\n\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"caf\u00e9 ☕"`, `"\ud800x"`} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		got, err := unquote([]byte(s))
		if err != nil || got != want {
			t.Errorf("unquote(%s) = %q, want %q", s, got, want)
		}
	}
}
