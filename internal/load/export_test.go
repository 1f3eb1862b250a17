package load

import (
	"context"
	"io/fs"
)

// MigrateFS applies the migrations in fsys instead of the embedded schema.
func (d *DB) MigrateFS(ctx context.Context, fsys fs.FS) ([]string, error) {
	return d.migrate(ctx, fsys)
}
