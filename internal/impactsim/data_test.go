package impactsim

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// wireEqual compares one decoded JSON value with the truth value it must
// carry, reporting the first difference under path. Money, ids and other
// strings compare as strings; time.Time compares to an RFC 3339 string with
// the same instant and offset ("" for zero); bool compares to "true"/"false"
// or, where the API uses JSON-native booleans, to a JSON bool.
func wireEqual(path string, wire any, truth reflect.Value) error {
	switch tv := truth.Interface().(type) {
	case time.Time:
		s, ok := wire.(string)
		if !ok {
			return fmt.Errorf("%s: wire %T %v, want a datetime string", path, wire, wire)
		}
		if tv.IsZero() {
			if s != "" {
				return fmt.Errorf("%s: wire %q, want \"\"", path, s)
			}
			return nil
		}
		got, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("%s: wire %q: %v", path, s, err)
		}
		_, wantOff := tv.Zone()
		_, gotOff := got.Zone()
		if !got.Equal(tv) || gotOff != wantOff {
			return fmt.Errorf("%s: wire %q, want %s", path, s, tv.Format(time.RFC3339))
		}
		return nil
	case string:
		if wire != tv {
			return fmt.Errorf("%s: wire %#v, want %q", path, wire, tv)
		}
		return nil
	case bool:
		if wire != fmt.Sprint(tv) && wire != tv {
			return fmt.Errorf("%s: wire %#v, want %v", path, wire, tv)
		}
		return nil
	}
	switch truth.Kind() {
	case reflect.Slice:
		arr, ok := wire.([]any)
		if !ok || len(arr) != truth.Len() {
			return fmt.Errorf("%s: wire %#v, want %d elements", path, wire, truth.Len())
		}
		for k := range arr {
			if err := wireEqual(fmt.Sprintf("%s[%d]", path, k), arr[k], truth.Index(k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		obj, ok := wire.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: wire %T, want an object", path, wire)
		}
		for key, v := range obj {
			f := truth.FieldByName(key)
			if !f.IsValid() {
				return fmt.Errorf("%s.%s: served but missing from the truth type", path, key)
			}
			if err := wireEqual(path+"."+key, v, f); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: unhandled truth kind %s", path, truth.Kind())
}

// collect follows @nextpageuri from first and returns every record.
func (b *bundle) collect(get func(string) result, root, first, key string) []any {
	b.t.Helper()
	var out []any
	next := first
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			b.t.Fatal("more than 100 pages")
		}
		r := get(strings.TrimPrefix(next, root))
		wantStatus(b.t, r, http.StatusOK)
		m := r.json(b.t)
		recs, ok := m[key].([]any)
		if !ok {
			b.t.Fatalf("%s: list key %q missing or not an array", next, key)
		}
		out = append(out, recs...)
		next, _ = m["@nextpageuri"].(string)
	}
	return out
}

// checkRecords compares served records with the truth slice, in order.
func checkRecords(t *testing.T, name string, wire []any, truth any) {
	t.Helper()
	tv := reflect.ValueOf(truth)
	if len(wire) != tv.Len() {
		t.Fatalf("%s: served %d records, truth has %d", name, len(wire), tv.Len())
	}
	for k := range wire {
		if err := wireEqual(fmt.Sprintf("%s[%d]", name, k), wire[k], tv.Index(k)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRecordsByID compares served records with the truth slice by Id,
// whatever their order (records gathered over several windows).
func checkRecordsByID(t *testing.T, name string, wire []any, truth any) {
	t.Helper()
	tv := reflect.ValueOf(truth)
	if len(wire) != tv.Len() {
		t.Fatalf("%s: served %d records, truth has %d", name, len(wire), tv.Len())
	}
	byID := map[string]reflect.Value{}
	for k := 0; k < tv.Len(); k++ {
		byID[tv.Index(k).FieldByName("Id").String()] = tv.Index(k)
	}
	for k := range wire {
		id, _ := wire[k].(map[string]any)["Id"].(string)
		want, ok := byID[id]
		if !ok {
			t.Fatalf("%s: served %q twice or not in the truth", name, id)
		}
		delete(byID, id)
		if err := wireEqual(name+"["+id+"]", wire[k], want); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServedRecordsMatchTruth(t *testing.T) {
	b := setup(t)
	bt, pt := b.sim.Truth(brandSID), b.sim.Truth(partnerSID)
	broot, proot := "/Advertisers/"+brandSID, "/Mediapartners/"+partnerSID

	t.Run("brand catalog", func(t *testing.T) {
		checkRecords(t, "Campaigns", b.collect(b.brand, broot, broot+"/Campaigns?PageSize=2", "Campaigns"), bt.Campaigns)
		checkRecords(t, "Partners", b.collect(b.brand, broot, broot+"/MediaPartners?PageSize=5", "Partners"), bt.MediaPartners)
		checkRecords(t, "PromoCodes", b.collect(b.brand, broot, broot+"/PromoCodes?PageSize=3", "PromoCodes"), bt.PromoCodes)
		ci := b.brand("/CompanyInformation").json(t)
		if err := wireEqual("CompanyInformation", ci, reflect.ValueOf(bt.CompanyInformation)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("partner catalog", func(t *testing.T) {
		checkRecords(t, "Campaigns", b.collect(b.partner, proot, proot+"/Campaigns?PageSize=3", "Campaigns"), pt.PartnerCampaigns)
		checkRecords(t, "PromoCodes", b.collect(b.partner, proot, proot+"/PromoCodes?PageSize=50", "PromoCodes"), pt.PartnerPromoCodes)
		ci := b.partner("/CompanyInformation").json(t)
		if err := wireEqual("CompanyInformation", ci, reflect.ValueOf(pt.CompanyInformation)); err != nil {
			t.Fatal(err)
		}
		home := b.partner("").json(t)
		if err := wireEqual("Home", home, reflect.ValueOf(pt.Home)); err != nil {
			t.Fatal(err)
		}
	})
	// Every action and update, by 45-day windows on the hidden lastUpdated.
	windows := func(fn func(from, to string)) {
		end := testNow
		for start := end.Add(-150 * 24 * time.Hour); start.Before(end); start = start.Add(45*24*time.Hour + time.Second) {
			to := start.Add(45 * 24 * time.Hour)
			fn(start.Format(time.RFC3339), to.Format(time.RFC3339))
		}
	}
	t.Run("brand actions", func(t *testing.T) {
		for _, c := range bt.Campaigns {
			var acts, ups []any
			windows(func(from, to string) {
				q := "?CampaignId=" + c.Id + "&StartDate=" + from + "&EndDate=" + to + "&PageSize=2000"
				acts = append(acts, b.collect(b.brand, broot, broot+"/Actions"+q, "Actions")...)
				ups = append(ups, b.collect(b.brand, broot, broot+"/ActionUpdates"+q, "ActionUpdates")...)
			})
			checkRecordsByID(t, "Actions", acts, filter(bt.Actions, func(a Action) bool { return a.CampaignId == c.Id }))
			checkRecordsByID(t, "ActionUpdates", ups, filter(bt.ActionUpdates, func(u ActionUpdate) bool { return u.CampaignId == c.Id }))
		}
	})
	t.Run("partner actions", func(t *testing.T) {
		var acts, ups []any
		windows(func(from, to string) {
			q := "?StartDate=" + from + "&EndDate=" + to + "&PageSize=2000"
			acts = append(acts, b.collect(b.partner, proot, proot+"/Actions"+q, "Actions")...)
			ups = append(ups, b.collect(b.partner, proot, proot+"/ActionUpdates"+q, "ActionUpdates")...)
		})
		checkRecordsByID(t, "Actions", acts, pt.Actions)
		checkRecordsByID(t, "ActionUpdates", ups, pt.ActionUpdates)
	})
}

func filter[T any](xs []T, keep func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestActionShapesDifferByPersona(t *testing.T) {
	b := setup(t)
	brandOnly := []string{"MediaPartnerId", "MediaPartnerName", "ClientCost", "IpAddress", "CallerId", "Note", "CustomerId", "CustomerStatus", "CustomerPostCode"}
	partnerOnly := []string{"SubId1", "SubId2", "SubId3"}
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	br := b.brand("/Actions?CampaignId=" + camp).json(t)["Actions"].([]any)[0].(map[string]any)
	pr := b.partner("/Actions").json(t)["Actions"].([]any)[0].(map[string]any)
	for _, k := range brandOnly {
		if _, ok := br[k]; !ok {
			t.Errorf("brand action lacks %s", k)
		}
		if _, ok := pr[k]; ok {
			t.Errorf("partner action has brand-only %s", k)
		}
	}
	for _, k := range partnerOnly {
		if _, ok := pr[k]; !ok {
			t.Errorf("partner action lacks %s", k)
		}
		if _, ok := br[k]; ok {
			t.Errorf("brand action has partner-only %s", k)
		}
	}
	if len(br) != 39 || len(pr) != 33 {
		t.Errorf("field counts brand %d partner %d, want 39 and 33 (§7.7 samples): %v / %v", len(br), len(pr), keysOf(br), keysOf(pr))
	}
}

func TestSameSeedSameData(t *testing.T) {
	a := New(Options{Now: testNow})
	c := New(Options{Now: testNow})
	for _, s := range []*Server{a, c} {
		if err := s.AddAccount(brandSpec()); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(a.Truth(brandSID), c.Truth(brandSID)) {
		t.Fatal("two simulators with the same spec and clock differ")
	}
	other := brandSpec()
	other.Seed++
	d := New(Options{Now: testNow})
	if err := d.AddAccount(other); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.Truth(brandSID).Actions[:10], d.Truth(brandSID).Actions[:10]) {
		t.Fatal("a different seed produced the same actions")
	}
}

func TestGeneratedDataIsRealistic(t *testing.T) {
	b := setup(t)
	tr := b.sim.Truth(brandSID)
	var pay4, reversed, approved, cleared, openEnded, promo int
	updates := map[string]int{}
	for _, u := range tr.ActionUpdates {
		updates[u.ActionId]++
	}
	history := testNow.Add(-DefaultHistory)
	for _, a := range tr.Actions {
		if _, frac, _ := strings.Cut(a.Payout, "."); len(frac) == 4 {
			pay4++
		}
		switch a.State {
		case "REVERSED":
			reversed++
			if a.Payout != "0.00" || a.Amount != "0.00" || !strings.HasPrefix(a.DeltaAmount, "-") {
				t.Errorf("reversed action %s: payout %s amount %s delta %s", a.Id, a.Payout, a.Amount, a.DeltaAmount)
			}
		case "APPROVED":
			approved++
			if !a.ClearedDate.IsZero() {
				cleared++
			}
		}
		if a.LockingDate.Sub(a.EventDate) > 700*24*time.Hour {
			openEnded++
		}
		if a.PromoCode != "" {
			promo++
		}
		if !(a.ReferringDate.Before(a.EventDate) && !a.CreationDate.Before(a.EventDate)) {
			t.Fatalf("action %s: referring %v event %v creation %v out of order", a.Id, a.ReferringDate, a.EventDate, a.CreationDate)
		}
		if a.CreationDate.After(testNow) || a.CreationDate.Before(history) {
			t.Fatalf("action %s created %v, outside the history", a.Id, a.CreationDate)
		}
		if d := a.LockingDate.Sub(a.EventDate); d < 29*24*time.Hour {
			t.Fatalf("action %s locks %v after its event", a.Id, d)
		}
		if h, m, s := a.LockingDate.Clock(); h != 0 || m != 0 || s != 0 {
			t.Fatalf("LockingDate %v is not local midnight", a.LockingDate)
		}
		if updates[a.Id] == 0 {
			t.Fatalf("action %s has no initial ActionUpdate", a.Id)
		}
	}
	for name, n := range map[string]int{"4-decimal payouts": pay4, "reversed": reversed, "approved": approved, "cleared": cleared, "open-ended locking": openEnded, "promo code": promo} {
		if n == 0 {
			t.Errorf("no %s actions among %d", name, len(tr.Actions))
		}
	}
}

func TestDatetimesUseAccountOffsetAcrossDST(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	for _, tc := range []struct{ from, to, offset string }{
		{"2026-01-10T00:00:00Z", "2026-02-20T00:00:00Z", "-08:00"},
		{"2026-03-09T12:00:00Z", "2026-04-14T00:00:00Z", "-07:00"},
	} {
		r := b.brand("/Actions?CampaignId=" + camp + "&ActionDateStart=" + tc.from + "&ActionDateEnd=" + tc.to)
		wantStatus(t, r, http.StatusOK)
		acts := r.json(t)["Actions"].([]any)
		if len(acts) == 0 {
			t.Fatalf("no actions between %s and %s", tc.from, tc.to)
		}
		for _, a := range acts {
			if ev := a.(map[string]any)["EventDate"].(string); !strings.HasSuffix(ev, tc.offset) {
				t.Fatalf("EventDate %s, want offset %s", ev, tc.offset)
			}
		}
	}
}
