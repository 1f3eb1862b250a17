package schema_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/schema"
)

// TestAccountHealthListsEveryEntity keeps the entity list of the
// account_health view equal to syncer.AllEntities: a new entity needs a
// migration that recreates the view.
func TestAccountHealthListsEveryEntity(t *testing.T) {
	var body string
	entries, err := fs.ReadDir(schema.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := fs.ReadFile(schema.FS, e.Name())
		if strings.Contains(string(b), "VIEW IF NOT EXISTS account_health") {
			body = string(b) // the latest definition wins
		}
	}
	if body == "" {
		t.Fatal("no migration creates the account_health view")
	}
	m := regexp.MustCompile(`arrayJoin\(\[([^\]]*)\]\)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("account_health: no arrayJoin([...]) entity list")
	}
	var got []string
	for _, s := range strings.Split(m[1], ",") {
		got = append(got, strings.Trim(strings.TrimSpace(s), "'"))
	}
	var want []string
	for _, e := range syncer.AllEntities {
		want = append(want, string(e))
	}
	if !slices.Equal(got, want) {
		t.Errorf("account_health lists %v, syncer.AllEntities is %v", got, want)
	}
	for _, e := range syncer.AllEntities {
		for _, p := range []syncer.Persona{syncer.Brand, syncer.Partner} {
			excluded := strings.Contains(body, "persona = '"+string(p)+"' AND entity = '"+string(e)+"'")
			if excluded == e.AvailableTo(p) {
				t.Errorf("account_health: %s for %s accounts: excluded=%v, but AvailableTo=%v", e, p, excluded, e.AvailableTo(p))
			}
		}
	}
}

// TestViewsAvoidSyntaxOneServerRejects guards the view migrations against
// what ClickHouse 18.16 lacks and what modern servers refuse: unaliased
// joined subqueries (joined_subquery_requires_alias), a JOIN without ANY or
// ALL (18.16 may have no default strictness), more than one JOIN per
// SELECT (18.16), and the functions 18.16 does not have.
func TestViewsAvoidSyntaxOneServerRejects(t *testing.T) {
	entries, err := fs.ReadDir(schema.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	joinedSubquery := regexp.MustCompile(`(?s)JOIN\s*\((.*)\)\s*(USING|ON)`)
	views := 0
	for _, e := range entries {
		b, _ := fs.ReadFile(schema.FS, e.Name())
		sql := stripComments(string(b))
		if !strings.Contains(sql, "CREATE VIEW") {
			continue
		}
		views++
		if !strings.Contains(sql, "CREATE VIEW IF NOT EXISTS ") {
			t.Errorf("%s: use CREATE VIEW IF NOT EXISTS", e.Name())
		}
		for _, line := range strings.Split(sql, "\n") {
			l := strings.TrimSpace(line)
			if strings.Contains(l, "JOIN") && !strings.HasPrefix(l, "ANY LEFT JOIN") && !strings.HasPrefix(l, "ALL LEFT JOIN") &&
				!strings.HasPrefix(l, "ANY INNER JOIN") && !strings.HasPrefix(l, "ALL INNER JOIN") {
				t.Errorf("%s: %q: write the strictness (ANY/ALL) and the kind of every JOIN", e.Name(), l)
			}
		}
		if joinedSubquery.MatchString(sql) {
			t.Errorf("%s: a joined subquery needs an alias: JOIN (...) AS name USING (...)", e.Name())
		}
		for _, bad := range []string{"JSONExtract", "DateTime64", "dateDiff", "OVER (", "QUALIFY", "WITH RECURSIVE", "FILTER ("} {
			if strings.Contains(sql, bad) {
				t.Errorf("%s: uses %q", e.Name(), bad)
			}
		}
	}
	if views == 0 {
		t.Fatal("no view migrations")
	}
}
