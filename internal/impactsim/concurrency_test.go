package impactsim

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUseIsSafe mixes requests with every kind of mutation; run it
// with -race.
func TestConcurrentUseIsSafe(t *testing.T) {
	b := setup(t)
	camp := b.sim.Truth(brandSID).Campaigns[0].Id
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for k := 0; k < 15; k++ {
				r := b.brand("/ActionUpdates?CampaignId=" + camp)
				if r.err != nil || (r.status != http.StatusOK && r.status != http.StatusInternalServerError) {
					t.Errorf("status %d err %v", r.status, r.err)
					return
				}
				b.partner("/Actions")
			}
		})
	}
	wg.Go(func() {
		for k := 0; k < 15; k++ {
			ids, err := b.sim.AddActions(brandSID, 3, camp)
			if err != nil {
				t.Error(err)
				return
			}
			if err := b.sim.ModifyAction(brandSID, ids[0], "5.00", "0.50"); err != nil {
				t.Error(err)
			}
			if err := b.sim.ReverseAction(brandSID, ids[1]); err != nil {
				t.Error(err)
			}
			b.sim.Clock().Advance(time.Minute)
			b.sim.SetQuirks(brandSID, Quirks{NumbersAsJSON: k%2 == 0})
			b.sim.InjectFaults(brandSID, Fault{Kind: FaultEmpty500})
			b.sim.Stats(brandSID)
			b.sim.Accounts()
		}
	})
	wg.Wait()
	if n := b.sim.Stats(brandSID).Requests; n != 60 {
		t.Errorf("brand requests %d, want 60", n)
	}
}
