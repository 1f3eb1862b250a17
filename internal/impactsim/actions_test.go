package impactsim

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func z(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func ids(recs []any) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.(map[string]any)["Id"].(string))
	}
	return out
}

func truthIDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func actionID(a Action) string       { return a.Id }
func updateID(u ActionUpdate) string { return u.Id }

// list GETs a list and returns its records (failing on non-200).
func list(t *testing.T, get func(string) result, path, key string) []any {
	t.Helper()
	r := get(path)
	wantStatus(t, r, http.StatusOK)
	recs, _ := r.json(t)[key].([]any)
	return recs
}

func inWindow(t, from, to time.Time) bool { return !t.Before(from) && !t.After(to) }

func TestActionsRequiresCampaignIdOnBrand(t *testing.T) {
	b := setup(t)
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		t.Run(res, func(t *testing.T) {
			wantError(t, b.brand(res), http.StatusBadRequest, "CampaignId")
			wantError(t, b.brand(res+"?StartDate="+z(testNow.AddDate(0, 0, -3))+"&EndDate="+z(testNow)), http.StatusBadRequest, "CampaignId")
		})
	}
}

func TestPartnerActionsCampaignIdOptional(t *testing.T) {
	b := setup(t)
	pt := b.sim.Truth(partnerSID)
	all := list(t, b.partner, "/Actions", "Actions")
	camp := pt.PartnerCampaigns[0].CampaignId
	one := list(t, b.partner, "/Actions?CampaignId="+camp, "Actions")
	if len(all) == 0 || len(one) == 0 || len(one) >= len(all) {
		t.Fatalf("all campaigns %d actions, campaign %s %d", len(all), camp, len(one))
	}
	for _, a := range one {
		if a.(map[string]any)["CampaignId"] != camp {
			t.Fatalf("CampaignId filter leaked %v", a.(map[string]any)["CampaignId"])
		}
	}
}

func TestActionsRejectsUnpairedDates(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	d := z(testNow.AddDate(0, 0, -2))
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		for _, p := range []string{"StartDate", "EndDate", "ActionDateStart", "ActionDateEnd", "LockingDateStart", "LockingDateEnd"} {
			t.Run(res+" "+p+" alone", func(t *testing.T) {
				wantError(t, b.brand(res+"?CampaignId="+camp+"&"+p+"="+d), http.StatusBadRequest, "together")
			})
		}
	}
}

func TestActionsRejectsSpanOver45Days(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	end := testNow
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		for _, pair := range [][2]string{{"StartDate", "EndDate"}, {"ActionDateStart", "ActionDateEnd"}, {"LockingDateStart", "LockingDateEnd"}} {
			t.Run(res+" "+pair[0], func(t *testing.T) {
				over := res + "?CampaignId=" + camp + "&" + pair[0] + "=" + z(end.Add(-45*24*time.Hour-time.Second)) + "&" + pair[1] + "=" + z(end)
				wantError(t, b.brand(over), http.StatusBadRequest, "45 days")
			})
		}
	}
}

func TestActionsAcceptsSpanOfExactly45Days(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	for _, pair := range [][2]string{{"StartDate", "EndDate"}, {"ActionDateStart", "ActionDateEnd"}, {"LockingDateStart", "LockingDateEnd"}} {
		path := "/Actions?CampaignId=" + camp + "&" + pair[0] + "=" + z(testNow.Add(-45*24*time.Hour)) + "&" + pair[1] + "=" + z(testNow)
		wantStatus(t, b.brand(path), http.StatusOK)
	}
}

func TestActionsRejectsStartMoreThan3YearsBack(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	limit := testNow.Add(-3 * 365 * 24 * time.Hour)
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		t.Run(res, func(t *testing.T) {
			tooOld := res + "?CampaignId=" + camp + "&StartDate=" + z(limit.Add(-time.Second)) + "&EndDate=" + z(limit.Add(24*time.Hour))
			wantError(t, b.brand(tooOld), http.StatusBadRequest, "3 years")
			tooOld = res + "?CampaignId=" + camp + "&ActionDateStart=" + z(limit.Add(-time.Second)) + "&ActionDateEnd=" + z(limit.Add(24*time.Hour))
			wantError(t, b.brand(tooOld), http.StatusBadRequest, "3 years")
			ok := res + "?CampaignId=" + camp + "&StartDate=" + z(limit) + "&EndDate=" + z(limit.Add(24*time.Hour))
			wantStatus(t, b.brand(ok), http.StatusOK)
		})
	}
}

func TestActionsRejectsMalformedDates(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	end := z(testNow)
	for _, bad := range []string{
		"2026-04-10",                // date only
		"2026-04-10T00:00:00",       // no zone
		"2026-04-10T00:00:00.000Z",  // fractions
		"04/10/2026",                // US format
		"2026-04-10T00:00:00+02:00", // raw '+' decodes to a space
		"2026-04-10%2000:00:00Z",    // space instead of T
		"2026-02-30T00:00:00Z",
		"",
	} {
		t.Run(bad, func(t *testing.T) {
			wantError(t, b.brand("/Actions?CampaignId="+camp+"&StartDate="+bad+"&EndDate="+end), http.StatusBadRequest, "date")
		})
	}
}

func TestActionsAcceptsZuluAndOffsetDates(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	base := "/Actions?CampaignId=" + camp + "&ActionDateEnd=" + z(testNow) + "&ActionDateStart="
	want := ids(list(t, b.brand, base+"2026-04-01T00:00:00Z", "Actions"))
	for _, s := range []string{"2026-04-01T02:00:00%2B02:00", "2026-03-31T17:00:00-07:00"} {
		if got := ids(list(t, b.brand, base+s, "Actions")); !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s: %d actions, want the same %d as with Z", s, len(got), len(want))
		}
	}
}

func TestActionsRejectsEndBeforeStart(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	wantError(t, b.brand("/Actions?CampaignId="+camp+"&StartDate="+z(testNow)+"&EndDate="+z(testNow.Add(-time.Hour))), http.StatusBadRequest, "before")
}

func TestActionsDefaultsToLast7DaysByLastUpdated(t *testing.T) {
	b := setup(t)
	bt := b.sim.Truth(brandSID)
	camp := bt.Campaigns[0].Id
	// An old action touched today belongs to the default window.
	old := filter(bt.Actions, func(a Action) bool {
		return a.CampaignId == camp && a.State == "PENDING" && a.CreationDate.Before(testNow.AddDate(0, 0, -20))
	})[0]
	b.sim.Clock().Advance(time.Hour)
	if err := b.sim.ReverseAction(brandSID, old.Id); err != nil {
		t.Fatal(err)
	}
	bt = b.sim.Truth(brandSID)
	now := testNow.Add(time.Hour)
	want := truthIDs(filter(bt.Actions, func(a Action) bool {
		return a.CampaignId == camp && inWindow(a.LastUpdated, now.AddDate(0, 0, -7), now)
	}), actionID)
	got := ids(list(t, b.brand, "/Actions?CampaignId="+camp, "Actions"))
	if !slices.Equal(got, want) || !slices.Contains(got, old.Id) {
		t.Fatalf("default window: %d actions (old one included: %v), want %d", len(got), slices.Contains(got, old.Id), len(want))
	}
	wantU := truthIDs(filter(bt.ActionUpdates, func(u ActionUpdate) bool {
		return u.CampaignId == camp && inWindow(u.UpdateDate, now.AddDate(0, 0, -7), now)
	}), updateID)
	if gotU := ids(list(t, b.brand, "/ActionUpdates?CampaignId="+camp, "ActionUpdates")); !slices.Equal(gotU, wantU) {
		t.Fatalf("default window: %d updates, want %d", len(gotU), len(wantU))
	}
}

func TestActionsRejectsPageSizeBelow2000(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		t.Run(res, func(t *testing.T) {
			wantError(t, b.brand(res+"?CampaignId="+camp+"&PageSize=1999"), http.StatusBadRequest, "PageSize")
			wantError(t, b.partner(res+"?PageSize=1000"), http.StatusBadRequest, "PageSize")
			wantStatus(t, b.brand(res+"?CampaignId="+camp+"&PageSize=2000"), http.StatusOK)
		})
	}
}

func TestActionsRejectsMoreThan10Pages(t *testing.T) {
	spec := AccountSpec{SID: "IRbig", Token: "t", Persona: Brand, Seed: 3, Campaigns: 1, Actions: 26500, History: 40 * 24 * time.Hour}
	b := setup(t, spec)
	camp := b.sim.Truth("IRbig").Campaigns[0].Id
	get := func(p string) result {
		return b.do("GET", "/Advertisers/IRbig"+p, basic("IRbig", "t"), acceptJSON)
	}
	window := "&ActionDateStart=" + z(testNow.AddDate(0, 0, -44)) + "&ActionDateEnd=" + z(testNow)
	for _, res := range []string{"/Actions", "/ActionUpdates"} {
		t.Run(res, func(t *testing.T) {
			wantError(t, get(res+"?CampaignId="+camp+"&PageSize=2000"+window), http.StatusBadRequest, "more than 10 pages")
			r := get(res + "?CampaignId=" + camp + window) // default PageSize 20000
			wantStatus(t, r, http.StatusOK)
			total := 0
			for _, c := range r.json(t)["@total"].(string) {
				total = total*10 + int(c-'0')
			}
			size := (total + 9) / 10 // the smallest PageSize giving at most 10 pages
			r = get(res + "?CampaignId=" + camp + "&PageSize=" + itoa(size) + window)
			wantStatus(t, r, http.StatusOK)
			if m := r.json(t); m["@numpages"] != "10" {
				t.Errorf("@numpages = %v (total %d, PageSize %d), want 10", m["@numpages"], total, size)
			}
			wantError(t, get(res+"?CampaignId="+camp+"&PageSize="+itoa(size-1)+window), http.StatusBadRequest, "10 pages")
		})
	}
}

func TestActionsFilterSemantics(t *testing.T) {
	b := setup(t)
	// Touch some actions so lastUpdated differs from CreationDate.
	b.sim.Clock().Advance(2 * time.Hour)
	now := testNow.Add(2 * time.Hour)
	bt := b.sim.Truth(brandSID)
	camp := bt.Campaigns[0].Id
	mine := filter(bt.Actions, func(a Action) bool { return a.CampaignId == camp })
	touched := 0
	for _, a := range mine {
		if a.State == "PENDING" && a.CreationDate.Before(now.AddDate(0, 0, -30)) && touched < 3 {
			if err := b.sim.ModifyAction(brandSID, a.Id, "10.00", "1.0000"); err != nil {
				t.Fatal(err)
			}
			touched++
		}
	}
	bt = b.sim.Truth(brandSID)
	mine = filter(bt.Actions, func(a Action) bool { return a.CampaignId == camp })
	pivot := mine[len(mine)/2]
	from, to := pivot.EventDate, pivot.EventDate.Add(20*24*time.Hour)
	lfrom, lto := pivot.LockingDate.Add(-10*24*time.Hour), pivot.LockingDate
	for _, tc := range []struct {
		name  string
		query string
		keep  func(Action) bool
	}{
		{"StartDate/EndDate on the hidden lastUpdated", "&StartDate=" + z(now.Add(-40*24*time.Hour)) + "&EndDate=" + z(now),
			func(a Action) bool { return inWindow(a.LastUpdated, now.Add(-40*24*time.Hour), now) }},
		{"ActionDateStart/End on EventDate, inclusive", "&ActionDateStart=" + z(from) + "&ActionDateEnd=" + z(to),
			func(a Action) bool { return inWindow(a.EventDate, from, to) }},
		{"LockingDateStart/End on LockingDate, inclusive", "&LockingDateStart=" + z(lfrom) + "&LockingDateEnd=" + z(lto),
			func(a Action) bool { return inWindow(a.LockingDate, lfrom, lto) }},
		{"State with a window", "&State=APPROVED&ActionDateStart=" + z(now.Add(-44*24*time.Hour)) + "&ActionDateEnd=" + z(now),
			func(a Action) bool {
				return a.State == "APPROVED" && inWindow(a.EventDate, now.Add(-44*24*time.Hour), now)
			}},
		{"two pairs combine", "&ActionDateStart=" + z(from) + "&ActionDateEnd=" + z(to) + "&StartDate=" + z(from) + "&EndDate=" + z(from.Add(5*24*time.Hour)),
			func(a Action) bool {
				return inWindow(a.EventDate, from, to) && inWindow(a.LastUpdated, from, from.Add(5*24*time.Hour))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := truthIDs(filter(mine, tc.keep), actionID)
			got := ids(list(t, b.brand, "/Actions?CampaignId="+camp+tc.query, "Actions"))
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("served %d actions, want %d (order included)", len(got), len(want))
			}
		})
	}
	if !slices.Contains(ids(list(t, b.brand, "/Actions?CampaignId="+camp+"&ActionDateStart="+z(from)+"&ActionDateEnd="+z(from.Add(time.Hour)), "Actions")), pivot.Id) {
		t.Error("ActionDateStart equal to EventDate excludes the action")
	}
	if !slices.Contains(ids(list(t, b.brand, "/Actions?CampaignId="+camp+"&LockingDateStart="+z(lto.Add(-time.Hour))+"&LockingDateEnd="+z(lto), "Actions")), pivot.Id) {
		t.Error("LockingDateEnd equal to LockingDate excludes the action")
	}
	wantError(t, b.brand("/Actions?CampaignId="+camp+"&State=OPEN"), http.StatusBadRequest, "State")
}

func TestActionsOrderedNewestCreationFirst(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	// Several actions created in the same second: ties go by Id.
	added, err := b.sim.AddActions(brandSID, 5, camp)
	if err != nil {
		t.Fatal(err)
	}
	recs := list(t, b.brand, "/Actions?CampaignId="+camp+"&ActionDateStart="+z(testNow.AddDate(0, 0, -30))+"&ActionDateEnd="+z(testNow), "Actions")
	if got := ids(recs[:5]); !slices.Equal(got, added) || !slices.IsSorted(got) {
		t.Errorf("first five %v, want the new actions %v in Id order", got, added)
	}
	prev := ""
	for _, r := range recs {
		c := r.(map[string]any)["CreationDate"].(string)
		if prev != "" && mustTime(t, c).After(mustTime(t, prev)) {
			t.Fatalf("CreationDate %s after %s: not newest first", c, prev)
		}
		prev = c
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestActionUpdatesFilterOnUpdateDate(t *testing.T) {
	b := setup(t)
	bt := b.sim.Truth(brandSID)
	camp := bt.Campaigns[0].Id
	from, to := testNow.Add(-30*24*time.Hour), testNow.Add(-10*24*time.Hour)
	want := truthIDs(filter(bt.ActionUpdates, func(u ActionUpdate) bool {
		return u.CampaignId == camp && inWindow(u.UpdateDate, from, to)
	}), updateID)
	got := ids(list(t, b.brand, "/ActionUpdates?CampaignId="+camp+"&StartDate="+z(from)+"&EndDate="+z(to), "ActionUpdates"))
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("served %d updates, want %d", len(got), len(want))
	}
	later := filter(bt.ActionUpdates, func(u ActionUpdate) bool { return !strings.HasSuffix(u.Id, ".1") })
	if len(later) == 0 {
		t.Fatal("no modification or reversal updates generated")
	}
	rev := filter(later, func(u ActionUpdate) bool { return u.State == "REVERSED" })
	wantState := truthIDs(filter(bt.ActionUpdates, func(u ActionUpdate) bool {
		return u.CampaignId == camp && u.State == "REVERSED" && inWindow(u.UpdateDate, from, to)
	}), updateID)
	gotState := ids(list(t, b.brand, "/ActionUpdates?CampaignId="+camp+"&State=REVERSED&StartDate="+z(from)+"&EndDate="+z(to), "ActionUpdates"))
	if len(rev) == 0 || !slices.Equal(gotState, wantState) {
		t.Fatalf("State=REVERSED: %d updates, want %d", len(gotState), len(wantState))
	}
}
