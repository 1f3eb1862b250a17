package load_test

import (
	"sort"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

type seen struct {
	first, last time.Time
	present     uint8
	raw         string
}

func catalogRows(t *testing.T, db *load.DB, e syncer.Entity, accountID string) map[string]seen {
	t.Helper()
	key := "''"
	if tb := syncer.Tables[e]; tb.Key >= 0 {
		key = tb.Columns[tb.Key].Name
	}
	rows, err := db.Query(t.Context(), "SELECT "+key+", first_seen_at, last_seen_at, is_present, raw FROM "+string(e)+" FINAL WHERE account_id = ?", accountID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]seen{}
	for rows.Next() {
		var id string
		var s seen
		if err := rows.Scan(&id, &s.first, &s.last, &s.present, &s.raw); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}
	return out
}

func ids(m map[string]seen) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestReplaceCatalog(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	cw := load.NewCatalogWriter(db)
	e := syncer.Campaigns
	t1, t2, t3, t4 := t0, t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	a, b, c := record(e, "A", t0, 1), record(e, "B", t0, 1), record(e, "C", t0, 1)

	check := func(step string, want map[string]seen) {
		t.Helper()
		got := catalogRows(t, db, e, "acc")
		if len(got) != len(want) {
			t.Fatalf("%s: rows %v, want %v", step, ids(got), ids(want))
		}
		for id, w := range want {
			g := got[id]
			if !g.first.Equal(w.first) || !g.last.Equal(w.last) || g.present != w.present {
				t.Errorf("%s: %s first %s last %s present %d; want first %s last %s present %d",
					step, id, g.first, g.last, g.present, w.first, w.last, w.present)
			}
		}
	}

	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{a, b}, t1); err != nil {
		t.Fatal(err)
	}
	check("first refresh", map[string]seen{"A": {t1, t1, 1, ""}, "B": {t1, t1, 1, ""}})

	// A disappears, C appears, B changes.
	b2 := record(e, "B", t0, 2)
	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{b2, c}, t2); err != nil {
		t.Fatal(err)
	}
	check("A gone", map[string]seen{"A": {t1, t1, 0, ""}, "B": {t1, t2, 1, ""}, "C": {t2, t2, 1, ""}})
	got := catalogRows(t, db, e, "acc")
	if got["A"].raw != a.Raw || got["B"].raw != b2.Raw {
		t.Errorf("raw A %q (want unchanged %q), raw B %q (want %q)", got["A"].raw, a.Raw, got["B"].raw, b2.Raw)
	}
	vals, _, _ := readValues(t, db, e, "acc", "A")
	sameValues(t, e, vals, a.Values)

	// A comes back: it keeps its first sighting.
	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{a}, t3); err != nil {
		t.Fatal(err)
	}
	check("A back", map[string]seen{"A": {t1, t3, 1, ""}, "B": {t1, t2, 0, ""}, "C": {t2, t2, 0, ""}})

	// The same refresh again is a no-op for readers.
	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{a}, t3); err != nil {
		t.Fatal(err)
	}
	check("repeat", map[string]seen{"A": {t1, t3, 1, ""}, "B": {t1, t2, 0, ""}, "C": {t2, t2, 0, ""}})

	// Write upserts without marking others absent.
	if err := load.NewWriter(db).WriteVersioned(ctx, "acc", e, 0, t4, []syncer.Record{c}); err != nil {
		t.Fatal(err)
	}
	check("write", map[string]seen{"A": {t1, t3, 1, ""}, "B": {t1, t2, 0, ""}, "C": {t2, t4, 1, ""}})

	// An empty refresh marks everything absent; other accounts are untouched.
	if err := cw.ReplaceCatalog(ctx, "other", e, []syncer.Record{a}, t1); err != nil {
		t.Fatal(err)
	}
	if err := cw.ReplaceCatalog(ctx, "acc", e, nil, t4); err != nil {
		t.Fatal(err)
	}
	check("empty", map[string]seen{"A": {t1, t3, 0, ""}, "B": {t1, t2, 0, ""}, "C": {t2, t4, 0, ""}})
	if o := catalogRows(t, db, e, "other"); o["A"].present != 1 {
		t.Errorf("other account's A: %+v", o["A"])
	}
	if n, _ := db.CountFinal(ctx, string(e), "acc"); n != 3 {
		t.Errorf("CountFinal = %d, want 3", n)
	}

	if err := cw.ReplaceCatalog(ctx, "acc", syncer.Actions, nil, t1); err == nil {
		t.Error("ReplaceCatalog of actions: want an error")
	}
}

func TestReplaceCompanyInformation(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	cw := load.NewCatalogWriter(db)
	e := syncer.CompanyInformation
	t1, t2 := t0, t0.Add(24*time.Hour)
	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{record(e, "", t0, 1)}, t1); err != nil {
		t.Fatal(err)
	}
	r2 := record(e, "", t0, 2)
	if err := cw.ReplaceCatalog(ctx, "acc", e, []syncer.Record{r2}, t2); err != nil {
		t.Fatal(err)
	}
	got := catalogRows(t, db, e, "acc")
	if len(got) != 1 || !got[""].first.Equal(t1) || !got[""].last.Equal(t2) || got[""].present != 1 || got[""].raw != r2.Raw {
		t.Fatalf("company information: %+v", got)
	}
	vals, _, _ := readValues(t, db, e, "acc", "")
	sameValues(t, e, vals, r2.Values)
}

// TestBatchWritesOfManyAccounts: ReplaceCatalogs and WriteBatch (the staged
// commits of many passes) store each account as ReplaceCatalog and Write
// do — absent records marked, rows in several inserts when more than
// MaxBatchRows — and an account whose rows do not validate fails alone.
func TestBatchWritesOfManyAccounts(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	cw := load.NewCatalogWriter(db)
	e := syncer.Campaigns
	t1, t2 := t0, t0.Add(time.Hour)
	bad := record(e, "BAD", t0, 1)
	bad.Values[0] = 42 // not a string
	errs := cw.ReplaceCatalogs(ctx, e, []syncer.CatalogRefresh{
		{AccountID: "x", Records: []syncer.Record{record(e, "A", t0, 1), record(e, "B", t0, 1)}, SeenAt: t1},
		{AccountID: "z", Records: []syncer.Record{bad}, SeenAt: t1},
		{AccountID: "y", Records: []syncer.Record{record(e, "C", t0, 1)}, SeenAt: t1},
	})
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("errors %v; want only z's (a bad value)", errs)
	}
	errs = cw.ReplaceCatalogs(ctx, e, []syncer.CatalogRefresh{
		{AccountID: "x", Records: []syncer.Record{record(e, "B", t0, 2)}, SeenAt: t2},
		{AccountID: "y", SeenAt: t2}, // y's campaign is gone
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("second refresh: %v", errs)
	}
	x, y, z := catalogRows(t, db, e, "x"), catalogRows(t, db, e, "y"), catalogRows(t, db, e, "z")
	if x["A"].present != 0 || x["B"].present != 1 || !x["B"].first.Equal(t1) || !x["B"].last.Equal(t2) || len(x) != 2 {
		t.Errorf("x: %+v; want A absent, B present first seen %s, last %s", x, t1, t2)
	}
	if y["C"].present != 0 || len(y) != 1 || len(z) != 0 {
		t.Errorf("y: %+v (want C absent), z: %+v (want nothing)", y, z)
	}

	w := load.NewWriter(db)
	w.MaxBatchRows = 2
	a := syncer.Actions
	badAction := record(a, "BAD", t0, 1)
	badAction.Values[0] = 42
	errs = w.WriteBatch(ctx, a, []syncer.AccountRecords{
		{AccountID: "p", Records: records(a, 3, t0, 1)},
		{AccountID: "r", Records: []syncer.Record{badAction}},
		{AccountID: "q", Records: records(a, 1, t0, 1)},
	})
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("WriteBatch errors %v; want only r's (a bad value)", errs)
	}
	for acct, want := range map[string]uint64{"p": 3, "q": 1, "r": 0} {
		var n uint64
		if err := db.QueryRow(ctx, "SELECT count() FROM actions FINAL WHERE account_id = ?", acct).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d actions stored; want %d", acct, n, want)
		}
	}
}
