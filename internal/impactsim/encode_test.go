package impactsim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTZFormatterMatchesTimeFormat(t *testing.T) {
	for _, name := range []string{"America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		f := tzFormatter{loc: loc}
		r := rand.New(rand.NewPCG(1, 2))
		for k := 0; k < 20000; k++ {
			sec := testNow.Unix() - r.Int64N(5*365*day)
			want := time.Unix(sec, 0).In(loc).Format("2006-01-02T15:04:05-07:00")
			if got := string(f.append(nil, sec)); got != want {
				t.Fatalf("%s %d: %s, want %s", name, sec, got, want)
			}
		}
	}
	utc := tzFormatter{utcMillis: true}
	if got := string(utc.append(nil, 1488493122)); got != "2017-03-02T22:18:42.000Z" {
		t.Errorf("UTC millis: %s", got)
	}
}

func TestMoneyFormatting(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		pay4 bool
		want string
	}{
		{63000, true, "6.30"}, {31525, true, "3.1525"}, {-31500, true, "-3.15"}, {0, true, "0.00"},
		{899500, false, "89.95"}, {31525, false, "3.15"}, {-450000, false, "-45.00"}, {5, true, "0.0005"},
	} {
		if got := formatMoney(tc.v, tc.pay4); got != tc.want {
			t.Errorf("formatMoney(%d, %v) = %s, want %s", tc.v, tc.pay4, got, tc.want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\\`, "tab\tnew\nline", "\x00\x1f", "héllo ✓", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var wantS string
		_ = json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Fatalf("%q round-trips to %q, want %q", s, got, wantS)
		}
	})
}

func FuzzParseAPIDate(f *testing.F) {
	for _, s := range []string{"2026-04-01T00:00:00Z", "2026-04-01T00:00:00-07:00", "2026-04-01", "2026-13-01T00:00:00Z", "2026-04-01T00:00:00.5Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseAPIDate(s)
		if !ok {
			return
		}
		// Whatever is accepted is second-precision RFC 3339 with a zone.
		std, err := time.Parse(time.RFC3339, s)
		if err != nil || !std.Equal(v) || strings.Contains(s, ".") || (len(s) != 20 && len(s) != 25) {
			t.Fatalf("%q accepted (%v), time.Parse says %v, %v", s, v, std, err)
		}
	})
}

// FuzzHandler throws arbitrary paths and queries at the API: it must never
// panic, and every JSON answer must be valid JSON with a sane status.
func FuzzHandler(f *testing.F) {
	sim := New(Options{Now: testNow})
	if err := sim.AddAccount(AccountSpec{SID: "IRfuzz", Token: "t", Persona: Brand, Seed: 1, Campaigns: 2, Actions: 300, MediaPartners: 3, PromoCodes: 3}); err != nil {
		f.Fatal(err)
	}
	sim.SetRateLimit("IRfuzz", math.MaxInt, HeadersAuto) // millions of requests in one simulated hour
	camp := sim.Truth("IRfuzz").Campaigns[0].Id
	for _, s := range []string{
		"Actions?CampaignId=" + camp, "Actions.json?CampaignId=" + camp + "&StartDate=2026-04-01T00:00:00Z&EndDate=2026-04-02T00:00:00Z",
		"ActionUpdates?CampaignId=" + camp + "&PageSize=2000&Page=2", "Campaigns?PageSize=1&Page=3", "MediaPartners?startDate=x",
		"PromoCodes/1", "Actions/" + camp + ".1.2", "CompanyInformation", "Campaigns?%zz", "Actions?PageSize=-1", "",
	} {
		f.Add(s)
	}
	h := sim.Handler()
	f.Fuzz(func(t *testing.T, tail string) {
		target := "/Advertisers/IRfuzz/" + tail
		if strings.ContainsAny(tail, " \r\n\t#") || strings.Contains(tail, "..") {
			return
		}
		req, err := http.NewRequest("GET", target, nil)
		if err != nil {
			return
		}
		req.SetBasicAuth("IRfuzz", "t")
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("%s: status %d", target, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: invalid JSON %.200s", target, rec.Body.Bytes())
		}
	})
}
