package extract

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// FuzzDecodeRecord: no input may panic, a scanned document must be valid
// JSON, and a decoded record keeps its raw bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"brand_actions.json", "partner_actions.json", "brand_campaigns.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Id": 1, "Payout": "1e3", "EventDate": "2026-01-01T00:00:00Z", "ShippingRegions": "US"}`))
	f.Add([]byte(`{"Actions": {"Id": "1"}, "@total": "1"}`))
	f.Add([]byte(`{"Id": 7, "Programs": {"Id": 1, "Groups": {"GroupId": 2}}, "Contacts": [{"Labels": "P", "Phones": null, "k\\u0001\\"": 1.5e3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := document(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("scanner accepted invalid JSON %q", data)
		}
		if v.kind == kObject {
			for _, e := range syncer.AllEntities {
				d, err := decodeRecord(layouts[e], v.raw)
				if err == nil && d.rec.Raw != string(v.raw) {
					t.Fatalf("raw changed")
				}
				if err != nil {
					continue
				}
				for i, c := range syncer.Tables[e].Columns {
					if c.Type != syncer.JSON {
						continue
					}
					if s := d.rec.Values[i].(string); !json.Valid([]byte(s)) {
						t.Fatalf("%s column %s is not JSON: %q", e, c.Name, s)
					}
				}
			}
		}
		p, err := parsePage(data, []string{"Actions"})
		if err == nil {
			for _, r := range p.records {
				if !json.Valid(r.raw) {
					t.Fatalf("record span is not JSON: %q", r.raw)
				}
			}
		}
	})
}

// FuzzParseTime: accepted datetimes are UTC, whole seconds, and round-trip
// through the API's request format.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-03-30T21:19:47-07:00", "2026-03-31T04:19:47.123Z", "2026-03-30T21:19:47-0700", "", "2026-03-30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Nanosecond() != 0 {
			t.Fatalf("ParseTime(%q) = %v: not whole-second UTC", s, got)
		}
		back, err := ParseTime(FormatTime(got))
		if err != nil || !back.Equal(got) {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}

// FuzzResolveNext: a next-page URI is either refused or resolves to a path
// on the API's own host with a page after the current one.
func FuzzResolveNext(f *testing.F) {
	for _, s := range []string{"/Advertisers/S/Actions?PageSize=2000&Page=2&CampaignId=1", "https://evil.example/x?Page=9",
		"/x?Page=1", "//evil.example/x", "x?Page=3", "/x?Page=abc", "http://api.test/y?Page=5"} {
		f.Add(s, 1)
	}
	c, err := NewClient(Options{BaseURL: "http://api.test", SID: "S", Persona: syncer.Brand})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, next string, current int) {
		u, page, err := c.resolveNext(next, current, 0)
		if err != nil {
			return
		}
		if len(u) < len("http://api.test/") || u[:len("http://api.test/")] != "http://api.test/" {
			t.Fatalf("resolveNext(%q) = %q: left the API host", next, u)
		}
		if page != 0 && page <= current {
			t.Fatalf("resolveNext(%q, %d) went back to page %d", next, current, page)
		}
	})
}
