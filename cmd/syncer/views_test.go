package main

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// The view tests sync a small world through the real CLI, change it in the
// simulator (modifications, reversals, approvals at the locking date,
// clearing, new actions), sync again, and then compute every figure of every
// analyst view from the simulator's ground truth in Go, independently of the
// SQL, and require equality to the 1e-8 (money to the cent and beyond).

// viewsWorld is the synced scenario the view tests read.
type viewsWorld struct {
	b      *bundle
	synced []viewsAccount // accounts whose data is complete and current
	now    time.Time      // the simulator clock when the truth was taken
}

type viewsAccount struct {
	id    string
	truth impactsim.Truth
}

const (
	viewsBrandSID    = "IRVIEWSBRAND00000000000000000001"
	viewsPartnerSID  = "IRVIEWSPARTNER000000000000000001"
	viewsScopedSID   = "IRVIEWSSCOPED0000000000000000001"
	viewsRevokedSID  = "IRVIEWSREVOKED000000000000000001"
	viewsRemovedSID  = "IRVIEWSREMOVED000000000000000001"
	viewsDisabledSID = "IRVIEWSDISABLED00000000000000001"
)

// viewsScenario builds the world: northwind (brand) and trailhead (partner)
// fully synced twice around a round of changes; acme (brand) whose token
// lacks the PromoCodes permission; globex (brand) whose token is reset
// before the second pass (needs reconnecting); initech (brand) registered
// and disabled, never synced; umbrella (brand) synced and then removed.
//
// The simulator clock starts 72 hours before the wall clock and ends on it,
// so that the example queries about "this month" and "the last 30 days"
// find data.
func viewsScenario(t *testing.T) *viewsWorld {
	t.Helper()
	return viewsScenarioOn(t, setup(t), "trailhead")
}

// viewsScenarioOn builds the world through b (whose environment says which
// ClickHouse), the partner account registered as partnerID (the cluster
// suite picks an id that lands on the other shard than northwind's).
func viewsScenarioOn(t *testing.T, b *bundle, partnerID string) *viewsWorld {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Second)
	b.sim.Clock().Set(end.Add(-72 * time.Hour))
	b.mustCLI("", "migrate")

	small := func(sid string, seed int64) impactsim.AccountSpec {
		return impactsim.AccountSpec{SID: sid, Token: "tok-" + sid + "-s3cr3t-value", Persona: impactsim.Brand, Seed: seed,
			Campaigns: 1, Actions: 150, MediaPartners: 5, PromoCodes: 3}
	}
	b.addAccount("northwind", brandSpec(viewsBrandSID))
	b.addAccount(partnerID, partnerSpec(viewsPartnerSID))
	b.addAccount("acme", small(viewsScopedSID, 21))
	b.addAccount("globex", small(viewsRevokedSID, 22))
	b.addAccount("umbrella", small(viewsRemovedSID, 23))
	b.addAccount("initech", small(viewsDisabledSID, 24))
	b.mustCLI("", "accounts", "disable", "initech")
	b.sim.DenyEndpoint(viewsScopedSID, "PromoCodes")

	// first pass: acme's promo codes fail with 403, so the command fails
	if _, _, err := b.cli("", "sync"); err == nil {
		t.Log("first sync reported no failure (acme's promo codes should have failed)")
	}
	b.mustCLI("", "accounts", "remove", "umbrella")

	// changes in impact.com while the worker is not looking
	for _, sid := range []string{viewsBrandSID, viewsPartnerSID} {
		var pending []string
		for _, a := range b.sim.Truth(sid).Actions {
			if a.State == "PENDING" {
				pending = append(pending, a.Id)
			}
		}
		if len(pending) < 60 {
			t.Fatalf("%s: only %d pending actions to change", sid, len(pending))
		}
		for k, id := range pending[:20] { // modified once
			amount := fmt.Sprintf("%d.%02d", 20+k*7, (k*37)%100)
			payout := fmt.Sprintf("%d.%04d", 1+k%5, (k*1237)%10000)
			if err := b.sim.ModifyAction(sid, id, amount, payout); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range pending[20:40] { // reversed
			if err := b.sim.ReverseAction(sid, id); err != nil {
				t.Fatal(err)
			}
		}
		for k, id := range pending[40:50] { // modified twice, then reversed
			if err := b.sim.ModifyAction(sid, id, fmt.Sprintf("%d.50", 90+k), "9.9999"); err != nil {
				t.Fatal(err)
			}
			if err := b.sim.ModifyAction(sid, id, fmt.Sprintf("%d.25", 40+k), "3.0001"); err != nil {
				t.Fatal(err)
			}
			if err := b.sim.ReverseAction(sid, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.sim.ResetToken(viewsRevokedSID)
	// three days pass: actions reach their locking date (approved), approved
	// ones clear, and new actions arrive
	b.sim.Clock().Set(end)
	for _, sid := range []string{viewsBrandSID, viewsPartnerSID} {
		if _, err := b.sim.AddActions(sid, 40, ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // distinct started_at seconds per pass
	if _, _, err := b.cli("", "sync"); err == nil {
		t.Log("second sync reported no failure (globex should need reconnecting)")
	}

	w := &viewsWorld{b: b, now: b.sim.Clock().Now()}
	for _, a := range []struct{ id, sid string }{{"northwind", viewsBrandSID}, {partnerID, viewsPartnerSID}} {
		w.synced = append(w.synced, viewsAccount{id: a.id, truth: b.sim.Truth(a.sid)})
	}
	// Precondition: the tables equal the simulator; the views are what is
	// under test, not the sync.
	b.compareAll("northwind", viewsBrandSID, syncer.AllEntities...)
	b.compareAll(partnerID, viewsPartnerSID, syncer.CompanyInformation, syncer.Campaigns, syncer.PromoCodes, syncer.Actions, syncer.ActionUpdates)
	if t.Failed() {
		t.FailNow()
	}
	return w
}

func TestIntegrationViewsEqualSimulatorTruth(t *testing.T) {
	w := viewsScenario(t)
	checkScenarioHasEverything(t, w)
	t.Run("actions_current", func(t *testing.T) { checkActionsCurrent(t, w) })
	t.Run("attribution_daily", func(t *testing.T) { checkAttributionDaily(t, w) })
	t.Run("partner_performance", func(t *testing.T) { checkPartnerPerformance(t, w) })
	t.Run("promo_code_performance", func(t *testing.T) { checkPromoCodePerformance(t, w) })
	t.Run("account_health", func(t *testing.T) { checkAccountHealth(t, w) })
	t.Run("analysts.md examples", func(t *testing.T) { checkAnalystExamples(t, w) })
	t.Run("analysts.md columns", func(t *testing.T) { checkAnalystColumns(t, w) })
}

// checkScenarioHasEverything makes sure the truth holds what the views must
// get right: approvals, reversals, modifications, clearing, promo codes.
func checkScenarioHasEverything(t *testing.T, w *viewsWorld) {
	for _, acct := range w.synced {
		var approved, reversed, pending, cleared, promo, modified int
		for _, a := range acct.truth.Actions {
			switch a.State {
			case "APPROVED":
				approved++
			case "REVERSED":
				reversed++
			case "PENDING":
				pending++
			}
			if !a.ClearedDate.IsZero() {
				cleared++
			}
			if a.PromoCode != "" {
				promo++
			}
			if a.Amount != a.IntendedAmount && a.State != "REVERSED" {
				modified++
			}
		}
		t.Logf("%s: %d actions: %d approved (%d cleared), %d pending (%d modified), %d reversed, %d with a promo code",
			acct.id, len(acct.truth.Actions), approved, cleared, pending, modified, reversed, promo)
		if approved == 0 || reversed < 30 || pending == 0 || cleared == 0 || promo == 0 || modified < 20 {
			t.Fatalf("%s: the scenario lacks a case", acct.id)
		}
	}
}

// parseUnits parses a decimal ("-12.3400", "0.00000000") into units of 1e-8.
func parseUnits(t testing.TB, s string) int64 {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 8 {
		t.Fatalf("money %q: more than 8 decimals", s)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt((frac + "00000000")[:8], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("money %q: not a decimal", s)
	}
	v := w*100_000_000 + f
	if neg {
		v = -v
	}
	return v
}

// fmtUnits renders 1e-8 units canonically, the way both sides are compared.
func fmtUnits(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%08d", sign, v/100_000_000, v%100_000_000)
}

var gmtOffset = regexp.MustCompile(`^\((?:GMT|UTC) ?([+-])(\d{1,2}):(\d{2})`)

// standardOffset is the fixed offset at the start of impact's timezone
// label, "(GMT -08:00) Pacific Time (US & Canada); Tijuana"; 0 if none.
func standardOffset(label string) time.Duration {
	m := gmtOffset.FindStringSubmatch(label)
	if m == nil {
		return 0
	}
	h, _ := strconv.Atoi(m[2])
	mm, _ := strconv.Atoi(m[3])
	d := time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute
	if m[1] == "-" {
		d = -d
	}
	return d
}

func TestStandardOffset(t *testing.T) {
	for label, want := range map[string]time.Duration{
		"(GMT -08:00) Pacific Time (US & Canada); Tijuana": -8 * time.Hour,
		"(GMT +05:30) Chennai, Kolkata, Mumbai, New Delhi": 5*time.Hour + 30*time.Minute,
		"(GMT+09:00) Osaka, Sapporo, Tokyo":                9 * time.Hour,
		"(GMT) Casablanca, Monrovia":                       0,
		"America/Los_Angeles":                              0,
		"":                                                 0,
	} {
		if got := standardOffset(label); got != want {
			t.Errorf("standardOffset(%q) = %v, want %v", label, got, want)
		}
	}
}

// actionFigures are an action's figures as the views define them.
type actionFigures struct {
	amount, payout, revAmount, revPayout int64
}

func viewFigures(t testing.TB, a impactsim.Action) actionFigures {
	f := actionFigures{amount: parseUnits(t, a.Amount), payout: parseUnits(t, a.Payout)}
	if a.State == "REVERSED" {
		f.revAmount, f.revPayout = -parseUnits(t, a.DeltaAmount), -parseUnits(t, a.DeltaPayout)
	}
	return f
}

// viewSums accumulates one aggregated row.
type viewSums struct {
	n, approved, pending, reversed                           int64
	sale, approvedSale, pendingSale                          int64
	payout, approvedPayout, pendingPayout, revAmt, revPayout int64
}

func (s *viewSums) add(state string, f actionFigures) {
	s.n++
	s.sale += f.amount
	s.payout += f.payout
	s.revAmt += f.revAmount
	s.revPayout += f.revPayout
	switch state {
	case "APPROVED":
		s.approved++
		s.approvedSale += f.amount
		s.approvedPayout += f.payout
	case "PENDING":
		s.pending++
		s.pendingSale += f.amount
		s.pendingPayout += f.payout
	case "REVERSED":
		s.reversed++
	}
}

// byState renders the per-state columns of partner_performance and
// promo_code_performance, in their SELECT order.
func (s *viewSums) byState() []string {
	return []string{strconv.FormatInt(s.n, 10), strconv.FormatInt(s.approved, 10), strconv.FormatInt(s.pending, 10),
		strconv.FormatInt(s.reversed, 10), fmtUnits(s.sale), fmtUnits(s.approvedSale), fmtUnits(s.pendingSale), fmtUnits(s.payout),
		fmtUnits(s.approvedPayout), fmtUnits(s.pendingPayout), fmtUnits(s.revAmt), fmtUnits(s.revPayout)}
}

const byStateColumns = "toString(actions), toString(approved_actions), toString(pending_actions), toString(reversed_actions), " +
	"toString(sale_amount), toString(approved_sale_amount), toString(pending_sale_amount), toString(payout), " +
	"toString(approved_payout), toString(pending_payout), toString(reversed_amount), toString(reversed_payout)"

// readView runs q (every column a String) and returns its rows keyed by the
// first keyCols columns joined with "|". Columns listed in moneyCols are
// normalised through parseUnits and fmtUnits.
func readView(t *testing.T, db *load.DB, q string, keyCols int, moneyCols ...int) map[string][]string {
	t.Helper()
	rows, err := db.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	n := len(rows.Columns())
	out := map[string][]string{}
	for rows.Next() {
		vals := make([]string, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		for _, c := range moneyCols {
			vals[c] = fmtUnits(parseUnits(t, vals[c]))
		}
		key := strings.Join(vals[:keyCols], "|")
		if _, dup := out[key]; dup {
			t.Errorf("duplicate row for key %s", key)
		}
		out[key] = vals[keyCols:]
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compareViewRows reports missing, unexpected and different rows (at most 15).
func compareViewRows(t *testing.T, view string, want, got map[string][]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the truth has no rows; the comparison proves nothing", view)
	}
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s: want %v", k, w))
		case !slices.Equal(w, g):
			diffs = append(diffs, fmt.Sprintf("row %s:\n      got  %v\n      want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s: %v", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		more := ""
		if len(diffs) > 15 {
			more = fmt.Sprintf("\n  … and %d more", len(diffs)-15)
			diffs = diffs[:15]
		}
		t.Errorf("%s differs from the expected figures in %d of %d rows:\n  %s%s", view, len(diffs), len(want), strings.Join(diffs, "\n  "), more)
		return
	}
	t.Logf("%s: %d rows equal the expected figures", view, len(want))
}

func (w *viewsWorld) accountFilter() string {
	var ids []string
	for _, a := range w.synced {
		ids = append(ids, "'"+a.id+"'")
	}
	return "account_id IN (" + strings.Join(ids, ", ") + ")"
}

func utcDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

func checkActionsCurrent(t *testing.T, w *viewsWorld) {
	want := map[string][]string{}
	for _, acct := range w.synced {
		for _, a := range acct.truth.Actions {
			f := viewFigures(t, a)
			cleared := "NULL"
			if !a.ClearedDate.IsZero() {
				cleared = a.ClearedDate.UTC().Format(time.DateTime)
			}
			want[acct.id+"|"+a.Id] = []string{a.State, fmtUnits(f.amount), fmtUnits(f.payout), fmtUnits(f.revAmount), fmtUnits(f.revPayout),
				fmtUnits(parseUnits(t, a.DeltaAmount)), fmtUnits(parseUnits(t, a.IntendedAmount)), cleared, a.LockingDate.UTC().Format(time.DateTime),
				a.EventDate.UTC().Format(time.DateTime), a.CampaignId, a.MediaPartnerId, a.PromoCode, a.ReferringType}
		}
	}
	got := readView(t, w.b.db, `SELECT account_id, id, state, toString(amount), toString(payout), toString(reversed_amount),
		toString(reversed_payout), toString(delta_amount), toString(intended_amount), ifNull(toString(cleared_date), 'NULL'),
		toString(locking_date), toString(event_date), campaign_id, media_partner_id, promo_code, referring_type
		FROM actions_current WHERE `+w.accountFilter(), 2, 3, 4, 5, 6, 7, 8)
	compareViewRows(t, "actions_current", want, got)

	// no duplicates are ever visible, even while the table holds several
	// versions of an action (merges stopped, so they surely do)
	db := w.b.db
	if err := db.Exec(t.Context(), "SYSTEM STOP MERGES actions"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Exec(t.Context(), "SYSTEM START MERGES actions") }()
	w.b.mustCLI("", "sync", "--account", "northwind", "--entities", "actions")
	var stored, keys, visible, visibleKeys uint64
	if err := db.QueryRow(t.Context(), "SELECT count(), uniqExact(account_id, id) FROM actions WHERE account_id = 'northwind'").Scan(&stored, &keys); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(t.Context(), "SELECT count(), uniqExact(account_id, id) FROM actions_current WHERE account_id = 'northwind'").Scan(&visible, &visibleKeys); err != nil {
		t.Fatal(err)
	}
	t.Logf("northwind: the actions table holds %d rows for %d actions; actions_current shows %d", stored, keys, visible)
	if stored <= keys {
		t.Errorf("the table holds no duplicate versions (%d rows, %d keys): the check proves nothing", stored, keys)
	}
	if visible != keys || visibleKeys != keys {
		t.Errorf("actions_current shows %d rows for %d actions", visible, keys)
	}
	// a WHERE on a column that changed filters the latest state, not an old one
	var stale uint64
	q := "SELECT count() FROM actions_current WHERE account_id = 'northwind' AND state = 'PENDING' AND id IN (SELECT id FROM actions_current WHERE account_id = 'northwind' AND state = 'REVERSED')"
	if err := db.QueryRow(t.Context(), q).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("%d reversed actions also show as PENDING", stale)
	}
}

// attribution rows: key account|day|local_day|campaign|partner|promo|referring|state|currency.
func checkAttributionDaily(t *testing.T, w *viewsWorld) {
	type agg struct {
		viewSums
		off                  int
		campaignName, mpName string
		campaignAt           time.Time
	}
	rows := map[string]*agg{}
	for _, acct := range w.synced {
		off := standardOffset(acct.truth.CompanyInformation.Timezone)
		if off == 0 {
			t.Fatalf("%s: timezone %q has no offset; local_day would prove nothing", acct.id, acct.truth.CompanyInformation.Timezone)
		}
		for _, a := range acct.truth.Actions {
			k := strings.Join([]string{acct.id, utcDay(a.EventDate), utcDay(a.EventDate.Add(off)), a.CampaignId, a.MediaPartnerId,
				a.PromoCode, a.ReferringType, a.State, a.Currency}, "|")
			r := rows[k]
			if r == nil {
				r = &agg{off: int(off / time.Minute)}
				rows[k] = r
			}
			r.add(a.State, viewFigures(t, a))
			if !a.CreationDate.Before(r.campaignAt) {
				r.campaignAt, r.campaignName, r.mpName = a.CreationDate, a.CampaignName, a.MediaPartnerName
			}
		}
	}
	want := map[string][]string{}
	for k, r := range rows {
		want[k] = []string{strconv.Itoa(r.off), r.campaignName, r.mpName, strconv.FormatInt(r.n, 10),
			fmtUnits(r.sale), fmtUnits(r.payout), fmtUnits(r.revAmt), fmtUnits(r.revPayout)}
	}
	got := readView(t, w.b.db, `SELECT account_id, toString(day), toString(local_day), campaign_id, media_partner_id, promo_code,
		referring_type, state, currency, toString(utc_offset_minutes), campaign_name, media_partner_name, toString(actions),
		toString(sale_amount), toString(payout), toString(reversed_amount), toString(reversed_payout)
		FROM attribution_daily WHERE `+w.accountFilter(), 9, 13, 14, 15, 16)
	compareViewRows(t, "attribution_daily", want, got)
	var split int
	for k := range want {
		if p := strings.Split(k, "|"); p[1] != p[2] {
			split++
		}
	}
	if split == 0 {
		t.Error("no row has a local day different from the UTC day: local_day is untested")
	}
}

// partner rows: key account|day|local_day|currency|partner.
func checkPartnerPerformance(t *testing.T, w *viewsWorld) {
	type agg struct {
		viewSums
		actionName string
		lastDay    string
		catalog    *impactsim.MediaPartner
	}
	rows := map[string]*agg{}
	for _, acct := range w.synced {
		off := standardOffset(acct.truth.CompanyInformation.Timezone)
		partners := map[string]*impactsim.MediaPartner{}
		for i := range acct.truth.MediaPartners {
			partners[acct.truth.MediaPartners[i].Id] = &acct.truth.MediaPartners[i]
		}
		for _, a := range acct.truth.Actions {
			k := strings.Join([]string{acct.id, utcDay(a.EventDate), utcDay(a.EventDate.Add(off)), a.Currency, a.MediaPartnerId}, "|")
			r := rows[k]
			if r == nil {
				r = &agg{catalog: partners[a.MediaPartnerId]}
				rows[k] = r
			}
			r.add(a.State, viewFigures(t, a))
			if d := utcDay(a.EventDate); d >= r.lastDay {
				r.lastDay, r.actionName = d, a.MediaPartnerName
			}
		}
	}
	want := map[string][]string{}
	named := 0
	for k, r := range rows {
		name, state := r.actionName, ""
		if r.catalog != nil {
			name, state = r.catalog.Name, r.catalog.State
			named++
		}
		want[k] = append([]string{name, state}, r.byState()...)
	}
	if named == 0 {
		t.Error("no partner matched the catalog: the name join is untested")
	}
	got := readView(t, w.b.db, `SELECT account_id, toString(day), toString(local_day), currency, media_partner_id,
		partner_name, partner_state, `+byStateColumns+`
		FROM partner_performance WHERE `+w.accountFilter(), 5, 11, 12, 13, 14, 15, 16, 17, 18)
	compareViewRows(t, "partner_performance", want, got)
}

// promo rows: key account|day|local_day|currency|campaign|code.
func checkPromoCodePerformance(t *testing.T, w *viewsWorld) {
	type catalogCode struct {
		id, state, credit, partnerID, partnerName, deal string
	}
	type agg struct {
		viewSums
		campaignName string
		lastDay      string
		entries      []catalogCode
	}
	rows := map[string]*agg{}
	for _, acct := range w.synced {
		off := standardOffset(acct.truth.CompanyInformation.Timezone)
		codes := map[string][]catalogCode{} // campaign|code
		for _, p := range acct.truth.PromoCodes {
			codes[p.CampaignId+"|"+p.Code] = append(codes[p.CampaignId+"|"+p.Code],
				catalogCode{p.Id, p.State, p.CreditPolicy, p.AssignedPartnerId, p.AssignedPartnerName, p.DealName})
		}
		for _, p := range acct.truth.PartnerPromoCodes {
			codes[p.Program.Id+"|"+p.Code] = append(codes[p.Program.Id+"|"+p.Code],
				catalogCode{p.Id, p.State, p.CreditRule, "", "", p.Deal.Name})
		}
		for _, a := range acct.truth.Actions {
			if a.PromoCode == "" {
				continue
			}
			k := strings.Join([]string{acct.id, utcDay(a.EventDate), utcDay(a.EventDate.Add(off)), a.Currency, a.CampaignId, a.PromoCode}, "|")
			r := rows[k]
			if r == nil {
				r = &agg{entries: codes[a.CampaignId+"|"+a.PromoCode]}
				rows[k] = r
			}
			r.add(a.State, viewFigures(t, a))
			if d := utcDay(a.EventDate); d >= r.lastDay {
				r.lastDay, r.campaignName = d, a.CampaignName
			}
		}
	}
	want := map[string][]string{}
	matched := 0
	for k, r := range rows {
		var c catalogCode
		for i, e := range r.entries { // the lowest id, compared as strings like ClickHouse does
			if i == 0 || e.id < c.id {
				c = e
			}
		}
		if len(r.entries) > 0 {
			matched++
		}
		want[k] = append([]string{r.campaignName, c.id, strconv.Itoa(len(r.entries)), c.state, c.credit, c.partnerID,
			c.partnerName, c.deal}, r.byState()...)
	}
	if matched == 0 {
		t.Error("no promo code matched the catalog: the catalog join is untested")
	}
	got := readView(t, w.b.db, `SELECT account_id, toString(day), toString(local_day), currency, campaign_id, promo_code,
		campaign_name, promo_code_id, toString(catalog_entries), promo_code_state, credit_policy, assigned_partner_id,
		assigned_partner_name, deal_name, `+byStateColumns+`
		FROM promo_code_performance WHERE `+w.accountFilter(), 6, 18, 19, 20, 21, 22, 23, 24, 25)
	compareViewRows(t, "promo_code_performance", want, got)
}

// account_health is checked against what the stores hold: the accounts and
// their sync_runs, read through the Go API.
func checkAccountHealth(t *testing.T, w *viewsWorld) {
	ctx := t.Context()
	accounts := load.NewAccountStore(w.b.db)
	runsStore := load.NewRunStore(w.b.db)
	accts, err := accounts.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var before time.Time
	if err := w.b.db.QueryRow(ctx, "SELECT now()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	freshWant := map[string]int64{}
	statuses := map[syncer.Status]int{}
	for _, acct := range accts {
		statuses[acct.Status]++
		runs, err := runsStore.Runs(ctx, acct.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range syncer.AllEntities {
			if !e.AvailableTo(acct.Persona) {
				continue
			}
			var last *syncer.Run
			var success time.Time
			var rows24, failed24 uint64
			for i, r := range runs {
				if r.Entity != e {
					continue
				}
				if last == nil {
					last = &runs[i]
				}
				if r.Status == syncer.RunSucceeded && r.FinishedAt.After(success) {
					success = r.FinishedAt
				}
				if !r.FinishedAt.IsZero() && before.Sub(r.FinishedAt) <= 24*time.Hour {
					rows24 += r.Rows
				}
				if r.Status == syncer.RunFailed && before.Sub(r.StartedAt) <= 24*time.Hour {
					failed24++
				}
			}
			row := []string{string(acct.Persona), string(acct.Status), acct.StatusReason, strings.Join(acct.MissingPermissions, ";")}
			k := acct.ID + "|" + string(e)
			if success.IsZero() {
				row = append(row, "NULL")
			} else {
				row = append(row, success.Format(time.DateTime))
				freshWant[k] = int64(before.Sub(success) / time.Minute)
			}
			if last == nil {
				row = append(row, "NULL", "", "")
			} else {
				row = append(row, last.StartedAt.Format(time.DateTime), string(last.Status), last.Error)
			}
			row = append(row, strconv.FormatUint(rows24, 10), strconv.FormatUint(failed24, 10))
			want[k] = row
		}
	}
	got := readView(t, w.b.db, `SELECT account_id, entity, persona, status, status_reason,
		arrayStringConcat(missing_permissions, ';'), ifNull(toString(last_success_at), 'NULL'),
		ifNull(toString(last_run_at), 'NULL'), last_run_status, last_run_error, toString(rows_loaded_24h),
		toString(failed_runs_24h), ifNull(toString(freshness_minutes), 'NULL')
		FROM account_health`, 2)
	// freshness depends on the moment of the query: check it separately
	for k, g := range got {
		fresh := g[len(g)-1]
		got[k] = g[:len(g)-1]
		fw, ok := freshWant[k]
		switch {
		case !ok && fresh != "NULL":
			t.Errorf("%s: freshness %s minutes, want NULL (never succeeded)", k, fresh)
		case ok:
			f, err := strconv.ParseInt(fresh, 10, 64)
			if err != nil || f < fw || f > fw+1 {
				t.Errorf("%s: freshness %s minutes, want %d", k, fresh, fw)
			}
		}
	}
	compareViewRows(t, "account_health", want, got)
	for _, id := range []string{"umbrella"} {
		for k := range got {
			if strings.HasPrefix(k, id+"|") {
				t.Errorf("account_health shows the removed account %s", id)
			}
		}
	}
	if statuses[syncer.StatusNeedsReconnect] != 1 || statuses[syncer.StatusDisabled] != 1 || statuses[syncer.StatusActive] != 3 {
		t.Errorf("account statuses %v: the scenario should hold 3 active, 1 needing reconnection, 1 disabled", statuses)
	}
	var withMissing int
	for _, g := range got {
		if g[3] != "" {
			withMissing++
		}
	}
	if withMissing == 0 {
		t.Error("no account shows missing permissions: that column is untested")
	}
}

const analystsDoc = "../../docs/analysts.md"

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// timeRelative marks example queries whose result depends on the day the
// test runs: they must run, but may find nothing.
var timeRelative = regexp.MustCompile(`today\(\)|now\(\)|'20\d\d-\d\d-\d\d'`)

// checkAnalystExamples runs every SQL block of docs/analysts.md, so the
// documentation and the views cannot drift apart.
func checkAnalystExamples(t *testing.T, w *viewsWorld) {
	doc, err := os.ReadFile(analystsDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) != 10 {
		t.Errorf("docs/analysts.md has %d SQL examples, want 10", len(blocks))
	}
	for i, m := range blocks {
		q := strings.TrimSpace(m[1])
		rows, err := w.b.db.Query(t.Context(), q)
		if err != nil {
			t.Errorf("example %d fails: %v\n%s", i+1, err, q)
			continue
		}
		cols := rows.Columns()
		types := rows.ColumnTypes()
		n := 0
		accounts := map[string]bool{}
		for rows.Next() {
			vals := make([]any, len(cols))
			for k, ct := range types {
				vals[k] = reflect.New(ct.ScanType()).Interface()
			}
			if err := rows.Scan(vals...); err != nil {
				t.Errorf("example %d: %v", i+1, err)
				break
			}
			if cols[0] == "account_id" {
				accounts[*(vals[0].(*string))] = true
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
		rows.Close()
		t.Logf("example %d: %d rows, columns %v", i+1, n, cols)
		if n == 0 && !timeRelative.MatchString(q) {
			t.Errorf("example %d returns no rows from the scenario:\n%s", i+1, q)
		}
		if strings.Contains(q, "FROM account_health") {
			got := slices.Sorted(maps.Keys(accounts))
			if want := []string{"acme", "globex"}; !slices.Equal(got, want) {
				t.Errorf("the freshness alarm lists %v, want %v (acme lacks a permission, globex needs reconnecting)", got, want)
			}
		}
	}
}

// checkAnalystColumns requires docs/analysts.md to name every column of
// every table and view in the section about it.
func checkAnalystColumns(t *testing.T, w *viewsWorld) {
	b, err := os.ReadFile(analystsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows, err := w.b.db.Query(t.Context(), "SELECT table, name FROM system.columns WHERE database = currentDatabase() AND table != 'schema_migrations'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	columns := map[string][]string{}
	for rows.Next() {
		var table, name string
		if err := rows.Scan(&table, &name); err != nil {
			t.Fatal(err)
		}
		columns[table] = append(columns[table], name)
	}
	if len(columns) < 15 {
		t.Fatalf("only %d tables and views in the database", len(columns))
	}
	for table, cols := range columns {
		start := strings.Index(doc, "### `"+table+"`")
		if start < 0 {
			t.Errorf("docs/analysts.md has no section \"### `%s`\"", table)
			continue
		}
		section := doc[start+1:]
		if end := regexp.MustCompile("\n##").FindStringIndex(section); end != nil {
			section = section[:end[0]]
		}
		var missing []string
		for _, c := range cols {
			if !strings.Contains(section, "`"+c+"`") {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			t.Errorf("docs/analysts.md, section %s, does not describe %v", table, missing)
		}
	}
}
