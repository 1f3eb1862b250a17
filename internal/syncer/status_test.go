package syncer

import (
	"testing"
	"time"
)

func TestEntityStatuses(t *testing.T) {
	t0 := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	run := func(id string, e Entity, st RunStatus, finished time.Time) Run {
		return Run{ID: id, Entity: e, Status: st, StartedAt: finished.Add(-time.Minute), FinishedAt: finished}
	}
	runs := []Run{ // newest first, as RunStore reads them
		run("a3", Actions, RunFailed, t0.Add(3*time.Hour)),
		run("c2", Campaigns, RunSucceeded, t0.Add(2*time.Hour)),
		run("a2", Actions, RunSucceeded, t0.Add(time.Hour)),
		run("a1", Actions, RunSucceeded, t0),
		run("m1", MediaPartners, RunSucceeded, t0), // a partner has no media partners
	}
	now := t0.Add(4 * time.Hour)
	for _, tc := range []struct {
		persona Persona
		want    []Entity
	}{
		{Brand, AllEntities},
		{Partner, []Entity{CompanyInformation, Campaigns, PromoCodes, Actions, ActionUpdates}},
	} {
		t.Run(string(tc.persona), func(t *testing.T) {
			got := EntityStatuses(tc.persona, runs)
			if len(got) != len(tc.want) {
				t.Fatalf("%d statuses, want %d: %+v", len(got), len(tc.want), got)
			}
			by := map[Entity]EntityStatus{}
			for i, s := range got {
				if s.Entity != tc.want[i] {
					t.Errorf("status %d is %s, want %s (the order of AllEntities)", i, s.Entity, tc.want[i])
				}
				by[s.Entity] = s
			}
			if s := by[Actions]; s.Last.ID != "a3" || s.LastSuccess.ID != "a2" || s.Freshness(now) != 3*time.Hour {
				t.Errorf("actions: last %s, last success %s, freshness %s; want a3, a2, 3h", s.Last.ID, s.LastSuccess.ID, s.Freshness(now))
			}
			if s := by[Campaigns]; s.Last.ID != "c2" || s.LastSuccess.ID != "c2" || s.Freshness(now) != 2*time.Hour {
				t.Errorf("campaigns: last %s, last success %s, freshness %s; want c2, c2, 2h", s.Last.ID, s.LastSuccess.ID, s.Freshness(now))
			}
			if s := by[PromoCodes]; s.Last.ID != "" || s.LastSuccess.ID != "" || s.Freshness(now) != -1 {
				t.Errorf("promo codes without a run: %+v, freshness %s; want zero runs, -1", s, s.Freshness(now))
			}
		})
	}
}
