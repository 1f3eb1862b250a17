package load

import "testing"

func TestStatementKind(t *testing.T) {
	for q, want := range map[string]string{
		"INSERT INTO sync_runs (account_id, run_id) VALUES":              "INSERT sync_runs",
		"insert into `db`.`actions` FORMAT Native":                       "INSERT actions",
		"SELECT account_id, max(v) FROM sync_state FINAL WHERE x IN (?)": "SELECT sync_state",
		"SELECT count() FROM (SELECT 1 FROM leases) WHERE 1":             "SELECT leases",
		"\n\t  OPTIMIZE TABLE db.actions PARTITION 202601 FINAL":         "OPTIMIZE actions",
		"SELECT 1": "SELECT",
		"CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Memory": "CREATE",
		"": "?",
	} {
		if got := statementKind(q); got != want {
			t.Errorf("statementKind(%q) = %q, want %q", q, got, want)
		}
	}
}
