package load

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultReplicaPath is the ZooKeeper path of a replicated table when
// Options.ReplicaPath is empty. {database} and {table} are filled in by the
// migrator (ClickHouse 18.16 has no such macros); {shard} and every other
// {macro} are the server's <macros>.
const DefaultReplicaPath = "/clickhouse/tables/{shard}/{database}/{table}"

// LocalSuffix names the per-shard table behind a Distributed table on a
// cluster of more than one shard: actions_local holds a shard's rows, actions
// reads and writes all of them.
const LocalSuffix = "_local"

// layout is where the migrations go: one server, or a cluster.
type layout struct {
	Database    string
	Cluster     string // "" for a single node
	Shards      int    // shards of Cluster (1 when single node)
	ReplicaPath string // with {database} and {table} still to fill in
}

var (
	createTableHead = regexp.MustCompile("(?is)^CREATE\\s+TABLE\\s+IF\\s+NOT\\s+EXISTS\\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\\s*\\(")
	createViewHead  = regexp.MustCompile("(?is)^CREATE\\s+VIEW\\s+IF\\s+NOT\\s+EXISTS\\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\\s+AS\\s")
	alterTableHead  = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\\s")
	// engineClause is a MergeTree-family engine with optional arguments.
	engineClause = regexp.MustCompile(`(?is)\bENGINE\s*=\s*([A-Za-z]*MergeTree)\b(\s*\(([^()]*)\))?`)
	orderByFirst = regexp.MustCompile(`(?is)\bORDER\s+BY\s+\(?\s*` + "`?" + `([A-Za-z_][A-Za-z0-9_]*)`)
	accountCol   = regexp.MustCompile(`(?m)^\s*` + "`?" + `account_id` + "`?" + `\s+String\b`)
	// tableRef is a table read by a view: FROM t or JOIN t (not a subquery,
	// not a qualified name such as system.tables).
	tableRef = regexp.MustCompile("(?i)\\b(FROM|JOIN)(\\s+)`?([A-Za-z_][A-Za-z0-9_]*)`?(\\s|$)")
)

// render turns one migration statement into what runs on l. On a single node
// it is the statement unchanged. On a cluster:
//
//   - CREATE TABLE runs ON CLUSTER with the Replicated variant of its engine
//     (the replica path from l.ReplicaPath, the replica name from the
//     server's {replica} macro, the engine's own arguments after them); with
//     more than one shard the table is <name>_local and a Distributed table
//     <name> over it, sharded by account_id (or the first ORDER BY column),
//     so every version of a row lives on one shard;
//   - CREATE VIEW runs ON CLUSTER with the tables it reads qualified by the
//     database (a distributed DDL runs in the server's default database);
//   - ALTER TABLE runs ON CLUSTER, on the local and the Distributed table.
//
// Anything else is refused on a cluster: a new kind of statement needs a rule
// here, not a second copy of the migration.
func (l layout) render(sql string) ([]string, error) {
	if l.Cluster == "" {
		return []string{sql}, nil
	}
	onCluster := " ON CLUSTER " + quote(l.Cluster)
	db := quote(l.Database) + "."
	switch {
	case createTableHead.MatchString(sql):
		name := createTableHead.FindStringSubmatch(sql)[1]
		local := name
		if l.Shards > 1 {
			local = name + LocalSuffix
		}
		em := engineClause.FindStringSubmatchIndex(sql)
		if em == nil {
			return nil, fmt.Errorf("table %s: no MergeTree engine to replicate", name)
		}
		engine := sql[em[2]:em[3]]
		if strings.HasPrefix(strings.ToLower(engine), "replicated") {
			return nil, fmt.Errorf("table %s: write the plain engine in the migration; the migrator makes it Replicated", name)
		}
		args := []string{quoteString(l.replicaPath(local)), quoteString("{replica}")}
		if em[6] >= 0 {
			if a := strings.TrimSpace(sql[em[6]:em[7]]); a != "" {
				args = append(args, a)
			}
		}
		body := sql[:em[0]] + "ENGINE = Replicated" + engine + "(" + strings.Join(args, ", ") + ")" + sql[em[1]:]
		body = createTableHead.ReplaceAllLiteralString(body, "CREATE TABLE IF NOT EXISTS "+db+quote(local)+onCluster+"\n(")
		out := []string{body}
		if l.Shards > 1 {
			key := "account_id"
			if !accountCol.MatchString(sql) {
				m := orderByFirst.FindStringSubmatch(sql)
				if m == nil {
					return nil, fmt.Errorf("table %s: no account_id column and no ORDER BY to shard by", name)
				}
				key = m[1]
			}
			out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s%s AS %s%s ENGINE = Distributed(%s, %s, %s, cityHash64(%s))",
				db, quote(name), onCluster, db, quote(local), quote(l.Cluster), quote(l.Database), quote(local), quote(key)))
		}
		return out, nil
	case createViewHead.MatchString(sql):
		name := createViewHead.FindStringSubmatch(sql)[1]
		head := createViewHead.FindStringIndex(sql)
		body := tableRef.ReplaceAllString(sql[head[1]:], "$1$2"+db+"`$3`$4")
		return []string{"CREATE VIEW IF NOT EXISTS " + db + quote(name) + onCluster + " AS " + body}, nil
	case alterTableHead.MatchString(sql):
		name := alterTableHead.FindStringSubmatch(sql)[1]
		rest := sql[alterTableHead.FindStringIndex(sql)[1]:]
		if l.Shards > 1 {
			return []string{
				"ALTER TABLE " + db + quote(name+LocalSuffix) + onCluster + " " + rest,
				"ALTER TABLE " + db + quote(name) + onCluster + " " + rest,
			}, nil
		}
		return []string{"ALTER TABLE " + db + quote(name) + onCluster + " " + rest}, nil
	}
	first, _, _ := strings.Cut(sql, "\n")
	return nil, fmt.Errorf("cannot run %q on a cluster: the migrator knows CREATE TABLE IF NOT EXISTS, CREATE VIEW IF NOT EXISTS and ALTER TABLE", first)
}

// replicaPath is the ZooKeeper path of one table.
func (l layout) replicaPath(table string) string {
	p := l.ReplicaPath
	if p == "" {
		p = DefaultReplicaPath
	}
	return strings.NewReplacer("{database}", l.Database, "{table}", table).Replace(p)
}

// createDatabase is the statement that creates the database on l.
func (l layout) createDatabase() string {
	s := "CREATE DATABASE IF NOT EXISTS " + quote(l.Database)
	if l.Cluster != "" {
		s += " ON CLUSTER " + quote(l.Cluster)
	}
	return s
}

// quoteString quotes a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
