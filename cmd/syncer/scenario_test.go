package main

// Scenario tests for the Actions sync strategy (issues 4 and 10): the
// warehouse, read through FINAL, must equal the simulator's truth field by
// field after late changes, bisected and interrupted backfills, idle runs,
// a skewed API clock, and a first sync over the API's full reach.

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/truthcheck"
)

const day = 24 * time.Hour

// scenarioPersonas runs every scenario for a brand and a partner account.
var scenarioPersonas = []impactsim.Persona{impactsim.Brand, impactsim.Partner}

// scenarioAccount is the account a scenario syncs: our id and its SID.
type scenarioAccount struct {
	id, sid string
	persona impactsim.Persona
}

func scenarioSpec(p impactsim.Persona, sid string, actions int) impactsim.AccountSpec {
	spec := impactsim.AccountSpec{SID: sid, Token: "tok-" + sid + "-s3cr3t-value", Persona: p, Seed: 21,
		Campaigns: 3, Actions: actions, PromoCodes: 6}
	if p == impactsim.Brand {
		spec.MediaPartners = 12
	}
	return spec
}

// addScenarioAccount registers an account generated from spec.
func (b *bundle) addScenarioAccount(spec impactsim.AccountSpec) scenarioAccount {
	b.t.Helper()
	id := string(spec.Persona) + "-acct"
	b.addAccount(id, spec)
	return scenarioAccount{id: id, sid: spec.SID, persona: spec.Persona}
}

// keep limits a comparison to the truth records it accepts; nil keeps all.
type keep func(reflect.Value) bool

// compareActivity checks actions and action_updates against the truth (as
// filtered), every field, and that FINAL shows each key once.
func (b *bundle) compareActivity(acct scenarioAccount, actions, updates keep) {
	b.t.Helper()
	truth := b.sim.Truth(acct.sid)
	for _, c := range []struct {
		e    syncer.Entity
		keep keep
	}{{syncer.Actions, actions}, {syncer.ActionUpdates, updates}} {
		res, err := truthcheck.Compare(b.t.Context(), b.db, acct.id, truth, c.e, c.keep)
		if err != nil {
			b.t.Fatalf("%s: %v", c.e, err)
		}
		b.t.Log(res)
		if res.Expected == 0 {
			b.t.Errorf("%s: the truth holds no records here; the comparison proves nothing", c.e)
		}
		if !res.OK() {
			b.t.Errorf("%s differs from the simulator:\n  %s", res, strings.Join(res.Diffs, "\n  "))
		}
	}
}

// snapshot reads the account's actions and action_updates through FINAL.
func (b *bundle) snapshot(acct scenarioAccount) map[syncer.Entity]map[string][]any {
	b.t.Helper()
	out := map[syncer.Entity]map[string][]any{}
	for _, e := range syncer.ActivityEntities {
		rows, err := truthcheck.Read(b.t.Context(), b.db, acct.id, e)
		if err != nil {
			b.t.Fatal(err)
		}
		out[e] = rows
	}
	return out
}

// churn applies the kind of changes that happen between two runs: pending
// actions modified and reversed, new actions in existing campaigns and in a
// campaign created now.
type churn struct {
	modified, reversed, added, addedNewCampaign []string
	newCampaign                                 string
}

func (b *bundle) churn(acct scenarioAccount, n int) churn {
	b.t.Helper()
	var c churn
	var pending []impactsim.Action
	for _, a := range b.sim.Truth(acct.sid).Actions {
		if a.State == "PENDING" {
			pending = append(pending, a)
		}
	}
	stride := max(1, len(pending)/(2*n))
	for k := 0; k*stride < len(pending) && k < 2*n; k++ {
		a := pending[k*stride]
		if k%2 == 0 {
			amount := decimal.RequireFromString(a.Amount).Mul(decimal.RequireFromString("0.8")).Round(2)
			payout := decimal.RequireFromString(a.Payout).Mul(decimal.RequireFromString("0.8")).Round(4)
			if err := b.sim.ModifyAction(acct.sid, a.Id, amount.String(), payout.String()); err != nil {
				b.t.Fatal(err)
			}
			c.modified = append(c.modified, a.Id)
		} else {
			if err := b.sim.ReverseAction(acct.sid, a.Id); err != nil {
				b.t.Fatal(err)
			}
			c.reversed = append(c.reversed, a.Id)
		}
	}
	var err error
	if c.added, err = b.sim.AddActions(acct.sid, 3*n, ""); err != nil {
		b.t.Fatal(err)
	}
	if c.newCampaign, err = b.sim.AddCampaign(acct.sid); err != nil {
		b.t.Fatal(err)
	}
	if c.addedNewCampaign, err = b.sim.AddActions(acct.sid, n, c.newCampaign); err != nil {
		b.t.Fatal(err)
	}
	if len(c.modified) < n || len(c.reversed) < n {
		b.t.Fatalf("only %d pending actions modified and %d reversed, want %d each", len(c.modified), len(c.reversed), n)
	}
	return c
}

// transitions counts what changed in the truth between two runs, so a
// scenario can show that it exercised every path.
type transitions struct {
	approvedOnly int // PENDING → APPROVED at the locking date, last-updated unchanged
	cleared      int // ClearedDate filled in
	modified     int
	reversed     int
	added        int
}

func (tr transitions) String() string {
	return fmt.Sprintf("%d approved at their locking date (no update), %d cleared, %d modified, %d reversed, %d new",
		tr.approvedOnly, tr.cleared, tr.modified, tr.reversed, tr.added)
}

func diffTruth(before, after impactsim.Truth) transitions {
	old := map[string]impactsim.Action{}
	for _, a := range before.Actions {
		old[a.Id] = a
	}
	var tr transitions
	for _, a := range after.Actions {
		o, ok := old[a.Id]
		switch {
		case !ok:
			tr.added++
		case a.State == "REVERSED" && o.State != "REVERSED":
			tr.reversed++
		case !a.LastUpdated.Equal(o.LastUpdated):
			tr.modified++
		case o.State == "PENDING" && a.State == "APPROVED":
			tr.approvedOnly++
		}
		if ok && o.ClearedDate.IsZero() && !a.ClearedDate.IsZero() {
			tr.cleared++
		}
	}
	return tr
}

// requireAll fails unless every kind of transition happened.
func (tr transitions) requireAll(t *testing.T) {
	t.Helper()
	t.Log("between the runs: ", tr)
	if tr.approvedOnly == 0 || tr.cleared == 0 || tr.modified == 0 || tr.reversed == 0 || tr.added == 0 {
		t.Fatalf("the scenario does not exercise every kind of change: %s", tr)
	}
}

// TestIntegrationScenarioLateChangesReachTheWarehouse: after the first sync
// the clock passes locking and clearing dates, actions are modified and
// reversed, new ones arrive in old campaigns and in a new one; each
// incremental sync leaves the warehouse equal to the truth. The second round
// follows a 75-day gap (the worker was down), longer than the clearing
// look-back.
func TestIntegrationScenarioLateChangesReachTheWarehouse(t *testing.T) {
	for _, p := range scenarioPersonas {
		t.Run(string(p), func(t *testing.T) {
			b := setup(t)
			b.mustCLI("", "migrate")
			acct := b.addScenarioAccount(scenarioSpec(p, "IRSCEN"+strings.ToUpper(string(p))+"0000000000001", 3000))
			b.mustCLI("", "sync")
			b.compareAll(acct.id, acct.sid, entitiesOf(p)...)

			rounds := []struct {
				name          string
				before, after time.Duration // clock moves before and after the changes
			}{
				{"two weeks later", 10 * day, 4 * day},
				{"after a 75-day outage", 40 * day, 35 * day},
			}
			for _, r := range rounds {
				before := b.sim.Truth(acct.sid)
				b.sim.Clock().Advance(r.before)
				c := b.churn(acct, 20)
				b.sim.Clock().Advance(r.after)
				diffTruth(before, b.sim.Truth(acct.sid)).requireAll(t)
				t.Logf("%s: %d new actions in new campaign %s", r.name, len(c.addedNewCampaign), c.newCampaign)
				b.mustCLI("", "sync")
				b.compareAll(acct.id, acct.sid, entitiesOf(p)...)
				for _, e := range []string{"actions", "action_updates"} {
					b.noDuplicateKeys(e)
				}
				if t.Failed() {
					t.Fatalf("round %q failed", r.name)
				}
			}
		})
	}
}

func entitiesOf(p impactsim.Persona) []syncer.Entity {
	var out []syncer.Entity
	for _, e := range syncer.AllEntities {
		if e.AvailableTo(syncer.Persona(p)) {
			out = append(out, e)
		}
	}
	return out
}
