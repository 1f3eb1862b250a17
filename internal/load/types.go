package load

import "github.com/impact-syncer/impact-syncer/internal/syncer"

// ColumnType is the ClickHouse type of a column of type t, as the schema/
// migrations declare it.
func ColumnType(t syncer.Type) string {
	switch t {
	case syncer.String, syncer.JSON:
		return "String"
	case syncer.Decimal:
		return "Decimal(18, 8)"
	case syncer.DateTime:
		return "DateTime('UTC')"
	case syncer.Bool:
		return "UInt8"
	case syncer.Int:
		return "Int64"
	case syncer.Strings:
		return "Array(String)"
	}
	return "String"
}
