// Package schema holds the ClickHouse schema as numbered, forward-only
// migrations, one SQL statement per file (NNNN_name.sql), embedded in FS and
// applied in order by load.(*DB).Migrate.
//
// Rules for a new migration, so it runs on Debian's ClickHouse 18.16 and on
// modern servers alike:
//
//   - one statement per file, no trailing semicolon needed;
//   - unqualified table names (the migrator's connection has the target
//     database as its default);
//   - no DateTime64, Map, JSON, LowCardinality, TTL or ADD COLUMN IF NOT
//     EXISTS; a new column is "ALTER TABLE t ADD COLUMN c T [AFTER x]", which
//     the migrator skips when system.columns already has c;
//   - never edit a file once it is committed: add the next number instead.
//
// The entity tables follow internal/syncer.Tables; a test against a real
// server fails when they drift and prints the ALTER to add.
package schema

import "embed"

// FS holds the migrations, *.sql at its root.
//
//go:embed *.sql
var FS embed.FS
