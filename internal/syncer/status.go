package syncer

import "time"

// EntityStatus is where one entity of an account stands: its latest run and
// its latest successful run.
type EntityStatus struct {
	Entity      Entity
	Last        Run // the latest run (zero if none)
	LastSuccess Run // the latest successful run (zero if none)
}

// Freshness is the time since the last successful run finished, or -1 if
// none succeeded.
func (s EntityStatus) Freshness(now time.Time) time.Duration {
	if s.LastSuccess.FinishedAt.IsZero() {
		return -1
	}
	return now.Sub(s.LastSuccess.FinishedAt)
}

// EntityStatuses sums an account's runs, newest first, up into one status
// per entity its persona has, in the order of AllEntities; an entity without
// a run has a zero Last.
func EntityStatuses(p Persona, runs []Run) []EntityStatus {
	by := map[Entity]*EntityStatus{}
	for _, r := range runs {
		s, ok := by[r.Entity]
		if !ok {
			s = &EntityStatus{Entity: r.Entity, Last: r}
			by[r.Entity] = s
		}
		if s.LastSuccess.ID == "" && r.Status == RunSucceeded {
			s.LastSuccess = r
		}
	}
	var out []EntityStatus
	for _, e := range AllEntities {
		if !e.AvailableTo(p) {
			continue
		}
		if s, ok := by[e]; ok {
			out = append(out, *s)
		} else {
			out = append(out, EntityStatus{Entity: e})
		}
	}
	return out
}
