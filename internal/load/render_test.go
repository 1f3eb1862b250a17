package load

import (
	"strings"
	"testing"

	"github.com/impact-syncer/impact-syncer/schema"
)

func TestRenderSingleNodeIsTheFile(t *testing.T) {
	migs, err := loadMigrations(schema.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(migs, migration{Name: "bookkeeping", SQL: createMigrationsTable}) {
		got, err := layout{Database: "impact", Shards: 1}.render(m.SQL)
		if err != nil || len(got) != 1 || got[0] != m.SQL {
			t.Errorf("%s: single node rendering changed the statement: %v %q", m.Name, err, got)
		}
	}
}

func TestRenderCluster(t *testing.T) {
	one := layout{Database: "impact", Cluster: "prod", Shards: 1}
	two := layout{Database: "impact", Cluster: "prod", Shards: 2, ReplicaPath: "/ch/{layer}-{shard}/{database}/{table}"}
	for _, tc := range []struct {
		name string
		l    layout
		sql  string
		want []string // each rendered statement, in order
	}{
		{"table, one shard", one,
			"CREATE TABLE IF NOT EXISTS actions\n(\n    account_id String,\n    id String,\n    version UInt64\n)\nENGINE = ReplacingMergeTree(version)\nORDER BY (account_id, id)",
			[]string{"CREATE TABLE IF NOT EXISTS `impact`.`actions` ON CLUSTER `prod`\n(\n    account_id String,\n    id String,\n    version UInt64\n)\n" +
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/impact/actions', '{replica}', version)\nORDER BY (account_id, id)"}},
		{"engine without arguments", one,
			"CREATE TABLE IF NOT EXISTS schema_migrations\n(\n    version UInt32\n)\nENGINE = ReplacingMergeTree\nORDER BY version",
			[]string{"CREATE TABLE IF NOT EXISTS `impact`.`schema_migrations` ON CLUSTER `prod`\n(\n    version UInt32\n)\n" +
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/impact/schema_migrations', '{replica}')\nORDER BY version"}},
		{"table, two shards: local + Distributed by account", two,
			"CREATE TABLE IF NOT EXISTS sync_runs\n(\n    run_id String,\n    account_id String,\n    version UInt64\n)\nENGINE = ReplacingMergeTree(version)\nPARTITION BY toYYYYMM(started_at)\nORDER BY (account_id, run_id)",
			[]string{"CREATE TABLE IF NOT EXISTS `impact`.`sync_runs_local` ON CLUSTER `prod`\n(\n    run_id String,\n    account_id String,\n    version UInt64\n)\n" +
				"ENGINE = ReplicatedReplacingMergeTree('/ch/{layer}-{shard}/impact/sync_runs_local', '{replica}', version)\nPARTITION BY toYYYYMM(started_at)\nORDER BY (account_id, run_id)",
				"CREATE TABLE IF NOT EXISTS `impact`.`sync_runs` ON CLUSTER `prod` AS `impact`.`sync_runs_local` ENGINE = Distributed(`prod`, `impact`, `sync_runs_local`, cityHash64(`account_id`))"}},
		{"two shards, no account_id: the first ORDER BY column", two,
			"CREATE TABLE IF NOT EXISTS accounts (id String, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY id",
			[]string{"CREATE TABLE IF NOT EXISTS `impact`.`accounts_local` ON CLUSTER `prod`\n(id String, version UInt64) ENGINE = ReplicatedReplacingMergeTree('/ch/{layer}-{shard}/impact/accounts_local', '{replica}', version) ORDER BY id",
				"CREATE TABLE IF NOT EXISTS `impact`.`accounts` ON CLUSTER `prod` AS `impact`.`accounts_local` ENGINE = Distributed(`prod`, `impact`, `accounts_local`, cityHash64(`id`))"}},
		{"view: tables qualified, subqueries and system tables left alone", one,
			"CREATE VIEW IF NOT EXISTS v AS\nSELECT a.x FROM actions FINAL\nANY LEFT JOIN\n(\n    SELECT x FROM company_information FINAL\n) USING x\nWHERE x IN (SELECT name FROM system.tables)",
			[]string{"CREATE VIEW IF NOT EXISTS `impact`.`v` ON CLUSTER `prod` AS SELECT a.x FROM `impact`.`actions` FINAL\nANY LEFT JOIN\n(\n    SELECT x FROM `impact`.`company_information` FINAL\n) USING x\nWHERE x IN (SELECT name FROM system.tables)"}},
		{"add column, one shard", one, "ALTER TABLE actions ADD COLUMN c String AFTER id",
			[]string{"ALTER TABLE `impact`.`actions` ON CLUSTER `prod` ADD COLUMN c String AFTER id"}},
		{"add column, two shards: local and Distributed", two, "ALTER TABLE actions ADD COLUMN c String AFTER id",
			[]string{"ALTER TABLE `impact`.`actions_local` ON CLUSTER `prod` ADD COLUMN c String AFTER id",
				"ALTER TABLE `impact`.`actions` ON CLUSTER `prod` ADD COLUMN c String AFTER id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.l.render(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n;\n") != strings.Join(tc.want, "\n;\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n;\n"), strings.Join(tc.want, "\n;\n"))
			}
		})
	}
}

func TestRenderClusterRefuses(t *testing.T) {
	l := layout{Database: "impact", Cluster: "prod", Shards: 1}
	for _, sql := range []string{
		"DROP TABLE actions",
		"CREATE TABLE IF NOT EXISTS t (a String) ENGINE = Log",
		"CREATE TABLE IF NOT EXISTS t (a String) ENGINE = ReplicatedMergeTree('/x', 'y') ORDER BY a",
	} {
		if got, err := l.render(sql); err == nil {
			t.Errorf("%q rendered as %q, want an error", sql, got)
		}
	}
}

// Every embedded migration renders for a cluster of one and of two shards.
func TestRenderEveryMigrationForACluster(t *testing.T) {
	migs, err := loadMigrations(schema.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, shards := range []int{1, 2} {
		l := layout{Database: "impact", Cluster: "prod", Shards: shards}
		for _, m := range migs {
			got, err := l.render(m.SQL)
			if err != nil {
				t.Errorf("%d shards: %s: %v", shards, m.Name, err)
				continue
			}
			for _, q := range got {
				if !strings.Contains(q, " ON CLUSTER `prod`") {
					t.Errorf("%d shards: %s: not ON CLUSTER: %s", shards, m.Name, q)
				}
				if strings.Contains(q, "ENGINE = ReplacingMergeTree") {
					t.Errorf("%d shards: %s: engine not replicated: %s", shards, m.Name, q)
				}
			}
		}
	}
}
