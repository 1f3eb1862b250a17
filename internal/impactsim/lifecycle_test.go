package impactsim

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestApprovalAtLockingDateDoesNotBumpLastUpdated(t *testing.T) {
	b := setup(t)
	bt := b.sim.Truth(brandSID)
	// A pending, untouched action that locks in the next 40 days.
	var a Action
	for _, x := range bt.Actions {
		if x.State == "PENDING" && x.LastUpdated.Equal(x.CreationDate) && x.LockingDate.Before(testNow.AddDate(0, 0, 40)) {
			a = x
			break
		}
	}
	if a.Id == "" {
		t.Fatal("no pending action locking soon")
	}
	updatesBefore := len(b.sim.Truth(brandSID).ActionUpdates)
	b.sim.Clock().Set(a.LockingDate.Add(-time.Second))
	if got, _ := b.sim.TruthAction(brandSID, a.Id); got.State != "PENDING" {
		t.Fatalf("one second before LockingDate: %s", got.State)
	}
	b.sim.Clock().Set(a.LockingDate)
	now := a.LockingDate
	got, err := b.sim.TruthAction(brandSID, a.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "APPROVED" || !got.LastUpdated.Equal(a.LastUpdated) {
		t.Fatalf("at LockingDate: State %s LastUpdated %v, want APPROVED and %v", got.State, got.LastUpdated, a.LastUpdated)
	}
	if n := len(b.sim.Truth(brandSID).ActionUpdates); n != updatesBefore {
		t.Fatalf("approval created ActionUpdates: %d -> %d", updatesBefore, n)
	}
	// Served: a StartDate/EndDate window around now misses it; a LockingDate window finds it APPROVED.
	byUpdate := ids(list(t, b.brand, "/Actions?CampaignId="+a.CampaignId+"&StartDate="+z(now.AddDate(0, 0, -1))+"&EndDate="+z(now), "Actions"))
	if slices.Contains(byUpdate, a.Id) {
		t.Error("the approved action shows up in a last-updated window")
	}
	byLock := list(t, b.brand, "/Actions?CampaignId="+a.CampaignId+"&LockingDateStart="+z(now.AddDate(0, 0, -1))+"&LockingDateEnd="+z(now), "Actions")
	k := slices.Index(ids(byLock), a.Id)
	if k < 0 || byLock[k].(map[string]any)["State"] != "APPROVED" {
		t.Fatal("the approved action is missing from its LockingDate window or not APPROVED")
	}
	if byLock[k].(map[string]any)["ClearedDate"] != "" {
		t.Error("ClearedDate set at approval")
	}
}

func TestClearedDateAppearsAfterTheClockPassesIt(t *testing.T) {
	b := setup(t)
	var a Action
	for _, x := range b.sim.Truth(brandSID).Actions {
		if x.State == "PENDING" && x.LockingDate.Before(testNow.AddDate(0, 0, 30)) {
			a = x
			break
		}
	}
	b.sim.Clock().Set(a.LockingDate.AddDate(0, 0, 45)) // cleared is LockingDate + 5..30 days
	got, _ := b.sim.TruthAction(brandSID, a.Id)
	if got.State != "APPROVED" || got.ClearedDate.IsZero() || !got.ClearedDate.After(got.LockingDate) {
		t.Fatalf("State %s ClearedDate %v LockingDate %v", got.State, got.ClearedDate, got.LockingDate)
	}
	if !got.LastUpdated.Equal(a.LastUpdated) {
		t.Error("clearing bumped lastUpdated")
	}
	b.sim.Clock().Set(got.ClearedDate.Add(-time.Second))
	if before, _ := b.sim.TruthAction(brandSID, a.Id); !before.ClearedDate.IsZero() {
		t.Errorf("ClearedDate %v shown before it happened", before.ClearedDate)
	}
	b.sim.Clock().Set(got.ClearedDate)
	r := b.brand("/Actions/" + a.Id).json(t)
	if r["ClearedDate"] != got.ClearedDate.Format(time.RFC3339) {
		t.Errorf("served ClearedDate %v, want %s", r["ClearedDate"], got.ClearedDate.Format(time.RFC3339))
	}
}

func pendingAction(t *testing.T, b *bundle, sid string) Action {
	t.Helper()
	for _, x := range b.sim.Truth(sid).Actions {
		if x.State == "PENDING" && x.LastUpdated.Equal(x.CreationDate) && x.Payout != "0.00" {
			return x
		}
	}
	t.Fatal("no untouched pending action")
	return Action{}
}

func TestModifyActionBumpsLastUpdatedAndAppendsUpdate(t *testing.T) {
	b := setup(t)
	a := pendingAction(t, b, brandSID)
	b.sim.Clock().Advance(3 * time.Hour)
	now := testNow.Add(3 * time.Hour)
	if err := b.sim.ModifyAction(brandSID, a.Id, "10.50", "1.2345"); err != nil {
		t.Fatal(err)
	}
	got, _ := b.sim.TruthAction(brandSID, a.Id)
	if got.State != "PENDING" || got.Amount != "10.50" || got.Payout != "1.2345" || got.IntendedAmount != a.IntendedAmount || !got.LastUpdated.Equal(now) {
		t.Fatalf("after modify: %+v", got)
	}
	if got.DeltaAmount != subMoney(t, "10.50", a.Amount) {
		t.Errorf("DeltaAmount %s, want 10.50 - %s", got.DeltaAmount, a.Amount)
	}
	tr := b.sim.Truth(brandSID)
	u := tr.ActionUpdates[0] // newest first
	if u.Id != a.Id+".2" || u.ActionId != a.Id || !u.UpdateDate.Equal(now) || u.DeltaAmount != got.DeltaAmount || u.DeltaPayout != got.DeltaPayout || u.State != "PENDING" {
		t.Fatalf("newest ActionUpdate %+v", u)
	}
	// Served: it is in a last-updated window ending now, and its update too.
	win := "&StartDate=" + z(now.Add(-time.Minute)) + "&EndDate=" + z(now)
	if got := ids(list(t, b.brand, "/Actions?CampaignId="+a.CampaignId+win, "Actions")); !slices.Equal(got, []string{a.Id}) {
		t.Errorf("last-updated window served %v, want [%s]", got, a.Id)
	}
	if got := ids(list(t, b.brand, "/ActionUpdates?CampaignId="+a.CampaignId+win, "ActionUpdates")); !slices.Equal(got, []string{a.Id + ".2"}) {
		t.Errorf("ActionUpdates window served %v, want [%s.2]", got, a.Id)
	}
	for _, bad := range [][2]string{{"10.505", "1"}, {"-1", "1"}, {"1", "1.23456"}, {"abc", "1"}, {"1.", "1"}} {
		if err := b.sim.ModifyAction(brandSID, a.Id, bad[0], bad[1]); !errors.Is(err, ErrBadAmount) {
			t.Errorf("ModifyAction(%q, %q) = %v, want ErrBadAmount", bad[0], bad[1], err)
		}
	}
}

// subMoney returns x - y for two 2-decimal strings.
func subMoney(t *testing.T, x, y string) string {
	t.Helper()
	a, err1 := parseMoney(x, 2)
	c, err2 := parseMoney(y, 2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return formatMoney(a-c, false)
}

func TestReverseActionZeroesAndRecordsNegativeDeltas(t *testing.T) {
	b := setup(t)
	a := pendingAction(t, b, partnerSID)
	b.sim.Clock().Advance(time.Hour)
	if err := b.sim.ReverseAction(partnerSID, a.Id); err != nil {
		t.Fatal(err)
	}
	got, _ := b.sim.TruthAction(partnerSID, a.Id)
	if got.State != "REVERSED" || got.Payout != "0.00" || got.Amount != "0.00" || got.DeltaAmount != "-"+a.Amount || got.DeltaPayout != "-"+a.Payout || got.IntendedPayout != a.IntendedPayout {
		t.Fatalf("after reverse: %+v", got)
	}
	u := b.sim.Truth(partnerSID).ActionUpdates[0]
	if u.Id != a.Id+".2" || u.State != "REVERSED" || u.ReportingState != "REVERSED" || u.DeltaAmount != "-"+a.Amount {
		t.Fatalf("newest ActionUpdate %+v", u)
	}
	served := b.partner("/Actions/" + a.Id).json(t)
	if served["State"] != "REVERSED" || served["Payout"] != "0.00" {
		t.Errorf("served %v %v", served["State"], served["Payout"])
	}
	// Reversed and approved actions can no longer change.
	if err := b.sim.ReverseAction(partnerSID, a.Id); !errors.Is(err, ErrNotPending) {
		t.Errorf("second reverse: %v, want ErrNotPending", err)
	}
	b.sim.Clock().Set(got.LockingDate.AddDate(0, 0, 1))
	if st, _ := b.sim.TruthAction(partnerSID, a.Id); st.State != "REVERSED" || !st.ClearedDate.IsZero() {
		t.Errorf("reversed action became %s (cleared %v) after locking", st.State, st.ClearedDate)
	}
	var approved Action
	for _, x := range b.sim.Truth(partnerSID).Actions {
		if x.State == "APPROVED" {
			approved = x
			break
		}
	}
	if err := b.sim.ModifyAction(partnerSID, approved.Id, "1.00", "0.10"); !errors.Is(err, ErrNotPending) {
		t.Errorf("modify approved: %v, want ErrNotPending", err)
	}
	if err := b.sim.ReverseAction(partnerSID, "1.2.3"); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("unknown action: %v", err)
	}
	if err := b.sim.ReverseAction("nobody", a.Id); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
}

func TestAddActionsAppearAtClockNow(t *testing.T) {
	b := setup(t)
	b.sim.Clock().Advance(10 * 24 * time.Hour)
	now := testNow.Add(10 * 24 * time.Hour)
	camp := b.sim.Truth(brandSID).Campaigns[1].Id
	added, err := b.sim.AddActions(brandSID, 3, camp)
	if err != nil || len(added) != 3 {
		t.Fatal(added, err)
	}
	for _, id := range added {
		a, err := b.sim.TruthAction(brandSID, id)
		if err != nil || !a.CreationDate.Equal(now) || a.State != "PENDING" || a.CampaignId != camp {
			t.Fatalf("%s: %+v %v", id, a, err)
		}
	}
	got := ids(list(t, b.brand, "/Actions?CampaignId="+camp+"&StartDate="+z(now.Add(-time.Minute))+"&EndDate="+z(now), "Actions"))
	if !slices.Equal(got, added) {
		t.Errorf("served %v, want %v", got, added)
	}
	random, err := b.sim.AddActions(partnerSID, 4, "")
	if err != nil || len(random) != 4 {
		t.Fatal(random, err)
	}
	if _, err := b.sim.AddActions(brandSID, 1, "1"); !errors.Is(err, ErrUnknownCamp) {
		t.Errorf("unknown campaign: %v", err)
	}
}

func TestAddCampaignThenActions(t *testing.T) {
	b := setup(t)
	id, err := b.sim.AddCampaign(brandSID)
	if err != nil {
		t.Fatal(err)
	}
	camps := b.sim.Truth(brandSID).Campaigns
	if last := camps[len(camps)-1]; last.Id != id || len(camps) != 4 {
		t.Fatalf("campaigns %d, last %s, want 4 ending with %s", len(camps), last.Id, id)
	}
	wantStatus(t, b.brand("/Campaigns/"+id), http.StatusOK)
	added, err := b.sim.AddActions(brandSID, 2, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(list(t, b.brand, "/Actions?CampaignId="+id, "Actions")); !slices.Equal(got, added) {
		t.Errorf("new campaign serves %v, want %v", got, added)
	}
	pid, err := b.sim.AddCampaign(partnerSID)
	if err != nil {
		t.Fatal(err)
	}
	if m := b.partner("/Campaigns/" + pid).json(t); m["CampaignId"] != pid {
		t.Errorf("partner campaign %v", m)
	}
}
