package load

import (
	"fmt"
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// benchActions returns n action records shaped like decoded impact.com
// actions: short ids and names, 4-decimal money, datetimes, and a raw JSON
// of about 1 KB.
func benchActions(n int) []syncer.Record {
	tb := syncer.Tables[syncer.Actions]
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]syncer.Record, n)
	for i := range recs {
		vals := make([]any, len(tb.Columns))
		for c, col := range tb.Columns {
			switch col.Type {
			case syncer.String, syncer.JSON:
				vals[c] = fmt.Sprintf("%s-%d", col.Name, 1000000+i*7+c)
			case syncer.Decimal:
				vals[c] = decimal.New(int64(1000+(i*37+c)%90000), -2)
			case syncer.DateTime:
				vals[c] = base.Add(time.Duration(i*61+c) * time.Second)
			case syncer.Bool:
				vals[c] = uint8(i % 2)
			case syncer.Int:
				vals[c] = int64(i)
			case syncer.Strings:
				vals[c] = []string{"a", "b"}
			}
		}
		id := fmt.Sprintf("28001.2569.%d", 3000000+i)
		vals[tb.Key] = id
		raw := `{"Id":"` + id + `",` + strings.Repeat(`"Field":"value of a field",`, 38) + `"Uri":"/Advertisers/IRx/Actions/` + id + `"}`
		recs[i] = syncer.Record{ID: id, Values: vals, Raw: raw}
	}
	return recs
}

// newBenchBlock is an empty native-protocol block with the columns of an
// actions insert, as PrepareBatch builds it from the server's answer.
func newBenchBlock(b *testing.B) *proto.Block {
	tb := syncer.Tables[syncer.Actions]
	types := map[string]string{"account_id": "String", "raw": "String", "version": "UInt64", "synced_at": "DateTime('UTC')"}
	for _, c := range tb.Columns {
		types[c.Name] = ColumnType(c.Type)
	}
	block := proto.NewBlock()
	for _, name := range insertColumns(tb, false) {
		if err := block.AddColumn(name, column.Type(types[name])); err != nil {
			b.Fatal(err)
		}
	}
	return block
}

// BenchmarkBuildBatch builds one insert of 10,000 actions (the default
// SYNCER_BATCH_SIZE) without a server: the Writer's validation, its rows, the
// driver's column buffers and their native encoding, block by block, as
// Write does through PrepareBatch, Flush and Send.
func BenchmarkBuildBatch(b *testing.B) {
	const n = 10000
	recs := benchActions(n)
	tb := syncer.Tables[syncer.Actions]
	var block *proto.Block
	var wire chproto.Buffer
	const revision = 54412 // ClickHouse 18.16
	encode := func() error {
		wire.Reset()
		if err := block.Encode(&wire, revision); err != nil {
			return err
		}
		block.Reset()
		return nil
	}
	synced := time.Now().UTC().Truncate(time.Second)
	row := func(i int, buf []any) []any { return appendEntityRow(buf[:0], "bench", recs[i], 1, synced) }
	bytes := 0
	b.ReportAllocs()
	for b.Loop() {
		block = newBenchBlock(b) // PrepareBatch starts every insert with empty columns
		if err := validate("bench", tb, recs); err != nil {
			b.Fatal(err)
		}
		if err := appendBlocks(block, encode, n, row); err != nil {
			b.Fatal(err)
		}
		if err := encode(); err != nil {
			b.Fatal(err)
		}
		bytes = len(wire.Buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	_ = bytes
}
