package extract

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// The decoder's fast paths (profile-guided; see docs/performance.md) must
// agree exactly with the general code they short-cut. These tests compare
// them on chosen cases, and the fuzz targets on everything else.

var moneyCases = []string{"6.30", "-3.15", "0", "-0.00", "007.5", "45", "9999999999.99999999", "10000000000",
	"-9999999999", "1.123456789", "1.100000000", "12,34", "1e2", "+5", ".5", "5.", "-", "", "--1", "1.2.3",
	"123456789012345678", "1234567890.12345678", "0.00000001", "00000000000000000001", "٣"}

var timeCases = []string{"2026-03-30T21:19:47-07:00", "2026-03-31T04:19:47Z", "2026-03-31T04:19:47.123Z",
	"2026-03-30T21:19:47-0700", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
	"2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
	"2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-23:59", "2026-01-01T00:00:00+24:00",
	"1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:01", "1969-12-31T23:59:59Z", "2105-12-31T23:59:59Z",
	"2106-01-01T00:00:00Z", "2026-01-01t00:00:00Z", "2026-01-01 00:00:00Z", "0000-01-01T00:00:00Z",
	"2026-1-01T00:00:00Z+00:00", "2026-01-01T00:00:00z", "2026-01-01T00:00:00-00:00"}

func checkMoneyAgrees(t *testing.T, s string) {
	t.Helper()
	fast, ok := parseMoneyFast(strings.TrimSpace(s))
	if strings.TrimSpace(s) == "" || !ok {
		return
	}
	slow, err := parseMoneySlow(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("parseMoneyFast(%q) = %s, but the general parser refuses it: %v", s, fast, err)
	}
	if fast.Exponent() != slow.Exponent() || fast.Coefficient().Cmp(slow.Coefficient()) != 0 {
		t.Fatalf("parseMoneyFast(%q) = %se%d, general parser %se%d", s, fast.Coefficient(), fast.Exponent(), slow.Coefficient(), slow.Exponent())
	}
}

func checkTimeAgrees(t *testing.T, s string) {
	t.Helper()
	fast, ok := parseTimeFast(s)
	if !ok {
		return
	}
	slow, err := parseTimeSlow(s)
	if err != nil {
		t.Fatalf("parseTimeFast(%q) = %v, but the general parser refuses it: %v", s, fast, err)
	}
	if !fast.Equal(slow) || fast.Location() != slow.Location() {
		t.Fatalf("parseTimeFast(%q) = %v, general parser %v", s, fast, slow)
	}
}

func TestFastPathsAgreeWithGeneralParsers(t *testing.T) {
	for _, s := range moneyCases {
		checkMoneyAgrees(t, s)
	}
	for _, s := range timeCases {
		checkTimeAgrees(t, s)
	}
	// and the fast paths do take the usual forms
	for _, s := range []string{"6.30", "-3.15", "0", "45", "9999999999.99999999"} {
		if _, ok := parseMoneyFast(s); !ok {
			t.Errorf("parseMoneyFast(%q) fell back", s)
		}
	}
	for _, s := range []string{"2026-03-30T21:19:47-07:00", "2026-03-31T04:19:47Z", "2024-02-29T00:00:00Z"} {
		if _, ok := parseTimeFast(s); !ok {
			t.Errorf("parseTimeFast(%q) fell back", s)
		}
	}
}

func FuzzParseMoneyFastPath(f *testing.F) {
	for _, s := range moneyCases {
		f.Add(s)
	}
	f.Fuzz(checkMoneyAgrees)
}

func FuzzParseTimeFastPath(f *testing.F) {
	for _, s := range timeCases {
		f.Add(s)
	}
	f.Fuzz(checkTimeAgrees)
}

// parsePageReference is the page scan as it was before the one-pass
// version: validate the whole document, then walk its members, then the
// list's elements.
func parsePageReference(body []byte, keys []string) (page, error) {
	var p page
	root, err := document(body)
	if err != nil {
		return p, err
	}
	if root.kind != kObject {
		return p, fmt.Errorf("expected a JSON object, got %s", root.kind)
	}
	var list value
	listFound := false
	var others []string
	err = members(root.raw, func(key string, v value) error {
		if strings.HasPrefix(key, "@") {
			return p.envelope(key, v)
		}
		for _, k := range keys {
			if key == k && !listFound {
				list, listFound = v, true
				return nil
			}
		}
		others = append(others, key)
		return nil
	})
	if err != nil {
		return p, err
	}
	if !listFound {
		if p.total > 0 || len(others) > 0 {
			sort.Strings(others)
			return p, &listKeyError{want: keys, found: others, total: p.total}
		}
		return p, nil
	}
	switch list.kind {
	case kArray:
		err = elements(list.raw, func(v value) error {
			if v.kind != kObject {
				return fmt.Errorf("list element is %s, not an object", v.kind)
			}
			p.records = append(p.records, v)
			return nil
		})
	case kObject:
		p.records = []value{list}
	case kNull:
	default:
		err = fmt.Errorf("list %q is %s, not an array", keys[0], list.kind)
	}
	return p, err
}

func checkPageAgrees(t *testing.T, body []byte) {
	t.Helper()
	keys := []string{"Partners", "MediaPartners"}
	if bytes.Contains(body, []byte(`"Actions"`)) {
		keys = []string{"Actions"}
	}
	got, gerr := parsePage(body, keys)
	want, werr := parsePageReference(body, keys)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("parsePage(%q): error %v, reference %v", body, gerr, werr)
	}
	var glk, wlk *listKeyError
	if errors.As(gerr, &glk) != errors.As(werr, &wlk) || (errors.Is(gerr, errTruncated) != errors.Is(werr, errTruncated)) {
		t.Fatalf("parsePage(%q): error %v, reference %v", body, gerr, werr)
	}
	if gerr != nil {
		return
	}
	if got.num != want.num || got.numPages != want.numPages || got.total != want.total || got.hasTotal != want.hasTotal ||
		got.hasNumPages != want.hasNumPages || got.next != want.next || len(got.records) != len(want.records) {
		t.Fatalf("parsePage(%q) = %+v, reference %+v", body, got, want)
	}
	for i := range got.records {
		if got.records[i].kind != want.records[i].kind || !bytes.Equal(got.records[i].raw, want.records[i].raw) {
			t.Fatalf("parsePage(%q) record %d = %q, reference %q", body, i, got.records[i].raw, want.records[i].raw)
		}
	}
}

func TestParsePageAgreesWithReference(t *testing.T) {
	for _, name := range []string{"brand_actions.json", "partner_actions.json", "brand_media_partners.json", "brand_campaigns.json"} {
		body, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n <= len(body); n++ {
			checkPageAgrees(t, body[:n])
		}
	}
	for _, s := range []string{`{"@total":"1","Actions":{"Id":"1"}}`, `{"@total":"3","Records":[{},{},{}]}`,
		`{"@total":"0","Actions":[]}`, `{"Actions":[1,2]}`, `{"Actions":"x"}`, `{"Actions":null}`, `[]`, `"x"`,
		`{"@total":"x","Actions":[{}]} `, `{"Actions":[{}]} x`, `{"Actions":[{},"a",{]}`, `{"\u0041ctions":[{}]}`,
		`{"Actions":[{}],"Actions":[{"Id":"2"}]}`, `{"@nextpageuri":"/x?Page=2","@page":"1","Actions":[{}]}`} {
		checkPageAgrees(t, []byte(s))
	}
}

func FuzzParsePageOnePass(f *testing.F) {
	for _, name := range []string{"brand_actions.json", "brand_media_partners.json"} {
		body, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"@total":"1","Actions":{"Id":"1"}}`))
	f.Add([]byte(`{"Actions":[{},"a"],"@page":"x"}`))
	f.Fuzz(checkPageAgrees)
}
