// Package truthcheck compares what landed in ClickHouse with the simulator's
// ground truth, field by field: every column of syncer.Tables is looked up by
// its API field path in the simulator's typed records (whose Go field names
// are the API's) and compared with the value read back through FINAL. Tests
// use it; the product does not.
package truthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/impactsim"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Result of one entity's comparison.
type Result struct {
	Entity   syncer.Entity
	Expected int      // records in the truth
	Got      int      // rows read through FINAL (present rows for catalogs)
	Fields   int      // field values compared
	Diffs    []string // human-readable differences (capped)
}

func (r Result) String() string {
	return fmt.Sprintf("%s: %d expected, %d in ClickHouse, %d fields compared, %d differences", r.Entity, r.Expected, r.Got, r.Fields, len(r.Diffs))
}

// OK reports whether ClickHouse equals the truth.
func (r Result) OK() bool { return len(r.Diffs) == 0 && r.Expected == r.Got }

const maxDiffs = 20

// Records returns the truth's records of an entity, keyed as the loader keys
// them ("" for company information).
func Records(t impactsim.Truth, e syncer.Entity) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	add := func(slice any, key string) {
		v := reflect.ValueOf(slice)
		for i := 0; i < v.Len(); i++ {
			out[v.Index(i).FieldByName(key).String()] = v.Index(i)
		}
	}
	switch e {
	case syncer.CompanyInformation:
		out[""] = reflect.ValueOf(t.CompanyInformation)
	case syncer.Campaigns:
		add(t.Campaigns, "Id")
		add(t.PartnerCampaigns, "CampaignId")
	case syncer.MediaPartners:
		add(t.MediaPartners, "Id")
	case syncer.PromoCodes:
		add(t.PromoCodes, "Id")
		add(t.PartnerPromoCodes, "Id")
	case syncer.Actions:
		add(t.Actions, "Id")
	case syncer.ActionUpdates:
		add(t.ActionUpdates, "Id")
	}
	return out
}

// Compare reads the account's rows of e through FINAL and compares them with
// the truth, every column. filter, when set, limits the truth to the records
// it accepts (for example the ones the API can still return).
func Compare(ctx context.Context, db *load.DB, accountID string, truth impactsim.Truth, e syncer.Entity, filter func(reflect.Value) bool) (Result, error) {
	want := Records(truth, e)
	if filter != nil {
		for k, v := range want {
			if !filter(v) {
				delete(want, k)
			}
		}
	}
	got, err := Read(ctx, db, accountID, e)
	if err != nil {
		return Result{Entity: e}, err
	}
	return Diff(e, want, got, "ClickHouse"), nil
}

// CompareRecords compares records as a client decoded them with the truth's
// records want (from Records), every column; a record delivered twice is a
// difference.
func CompareRecords(e syncer.Entity, want map[string]reflect.Value, recs []syncer.Record) Result {
	got := make(map[string][]any, len(recs))
	var dups []string
	for _, r := range recs {
		if _, dup := got[r.ID]; dup {
			dups = append(dups, fmt.Sprintf("%s %q: delivered twice", e, r.ID))
		}
		got[r.ID] = r.Values
	}
	res := Diff(e, want, got, "the client")
	res.Diffs = append(dups, res.Diffs...)
	return res
}

// Diff compares rows by key (column values in syncer.Tables order) with the
// truth's records; where names the rows' source in the differences.
func Diff(e syncer.Entity, want map[string]reflect.Value, got map[string][]any, where string) Result {
	res := Result{Entity: e, Expected: len(want), Got: len(got)}
	tb := syncer.Tables[e]
	diff := func(format string, a ...any) {
		if len(res.Diffs) < maxDiffs {
			res.Diffs = append(res.Diffs, fmt.Sprintf(format, a...))
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row, ok := got[k]
		if !ok {
			diff("%s %q: missing from %s", e, k, where)
			continue
		}
		rec := want[k]
		for i, c := range tb.Columns {
			exp, found := Expected(rec, c)
			if !found {
				continue // the persona's shape has no such field
			}
			res.Fields++
			if !equal(exp, row[i]) {
				diff("%s %q %s: %s has %v, truth %v", e, k, c.Name, where, show(row[i]), show(exp))
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff("%s %q: in %s but not in the truth", e, k, where)
		}
	}
	return res
}

// Read returns the account's rows of e through FINAL, by key, each as the
// typed column values. Catalog rows no longer present are left out.
//
// A partitioned table is read one month (partition) at a time: FINAL on
// ClickHouse 18.16 opens every part at once with a 1 MB read buffer per
// column, so a single query over a few years of monthly parts exceeds the
// memory limit. A key never spans partitions (the partition column is
// immutable), so the result is the same.
func Read(ctx context.Context, db *load.DB, accountID string, e syncer.Entity) (map[string][]any, error) {
	tb := syncer.Tables[e]
	out := map[string][]any{}
	if tb.Partition < 0 {
		return out, readRange(ctx, db, accountID, tb, "", out)
	}
	part := "`" + tb.Columns[tb.Partition].Name + "`"
	rows, err := db.Query(ctx, "SELECT DISTINCT toYYYYMM("+part+") FROM `"+string(e)+"` WHERE account_id = ?", accountID)
	if err != nil {
		return nil, err
	}
	var months []uint32
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return nil, err
		}
		months = append(months, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, m := range months {
		start := time.Date(int(m/100), time.Month(m%100), 1, 0, 0, 0, 0, time.UTC)
		where := fmt.Sprintf(" AND %s >= toDateTime(%d) AND %s < toDateTime(%d)", part, start.Unix(), part, start.AddDate(0, 1, 0).Unix())
		if err := readRange(ctx, db, accountID, tb, where, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRange reads the account's rows of tb through FINAL, limited by the
// extra condition where, into out.
func readRange(ctx context.Context, db *load.DB, accountID string, tb *syncer.Table, where string, out map[string][]any) error {
	e := tb.Entity
	cols := make([]string, len(tb.Columns))
	for i, c := range tb.Columns {
		cols[i] = "`" + c.Name + "`"
	}
	where = "account_id = ?" + where
	if e == syncer.CompanyInformation || e == syncer.Campaigns || e == syncer.MediaPartners || e == syncer.PromoCodes {
		where += " AND is_present = 1"
	}
	rows, err := db.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM `"+string(e)+"` FINAL WHERE "+where, accountID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		dest := make([]any, len(tb.Columns))
		for i, c := range tb.Columns {
			switch c.Type {
			case syncer.String, syncer.JSON:
				dest[i] = new(string)
			case syncer.Decimal:
				dest[i] = new(decimal.Decimal)
			case syncer.DateTime:
				dest[i] = new(time.Time)
			case syncer.Bool:
				dest[i] = new(uint8)
			case syncer.Int:
				dest[i] = new(int64)
			case syncer.Strings:
				dest[i] = new([]string)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		vals := make([]any, len(dest))
		for i := range dest {
			vals[i] = reflect.ValueOf(dest[i]).Elem().Interface()
		}
		key := ""
		if tb.Key >= 0 {
			key = vals[tb.Key].(string)
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("%s: key %q appears twice through FINAL", e, key)
		}
		out[key] = vals
	}
	return rows.Err()
}

// Expected finds the value a column should hold for a truth record, by the
// column's field paths; found is false when the record's shape has none.
func Expected(rec reflect.Value, c syncer.Column) (any, bool) {
	for _, path := range c.Fields {
		v, ok := field(rec, path)
		if !ok {
			continue
		}
		if v.Kind() == reflect.String && v.String() == "" && path != c.Fields[len(c.Fields)-1] {
			continue // an empty preferred field falls back to the next
		}
		return normalize(c.Type, v), true
	}
	return nil, false
}

func field(v reflect.Value, path string) (reflect.Value, bool) {
	for _, name := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		v = v.FieldByName(name)
		if !v.IsValid() {
			return reflect.Value{}, false
		}
	}
	return v, true
}

var epoch = time.Unix(0, 0).UTC()

// normalize converts a truth value into the Go value the column reads back as.
func normalize(t syncer.Type, v reflect.Value) any {
	switch t {
	case syncer.String:
		if v.Kind() == reflect.Bool {
			return strconv.FormatBool(v.Bool())
		}
		return v.String()
	case syncer.Decimal:
		if v.String() == "" {
			return decimal.Decimal{}
		}
		return decimal.RequireFromString(v.String())
	case syncer.DateTime:
		tm := v.Interface().(time.Time)
		if tm.IsZero() {
			return epoch
		}
		return tm.UTC().Truncate(time.Second)
	case syncer.Bool:
		if v.Kind() == reflect.Bool {
			if v.Bool() {
				return uint8(1)
			}
			return uint8(0)
		}
		if strings.EqualFold(v.String(), "true") {
			return uint8(1)
		}
		return uint8(0)
	case syncer.Int:
		if v.String() == "" {
			return int64(0)
		}
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return v.String()
		}
		return n
	case syncer.Strings:
		if v.Kind() == reflect.String {
			if v.String() == "" {
				return []string{}
			}
			return []string{v.String()}
		}
		out := []string{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, v.Index(i).String())
		}
		return out
	case syncer.JSON:
		return jsonShape{v}
	}
	return v.Interface()
}

// jsonShape is an expected JSON column: compared by decoding the stored JSON
// into the truth field's Go type.
type jsonShape struct{ v reflect.Value }

func equal(exp, got any) bool {
	switch e := exp.(type) {
	case decimal.Decimal:
		g, ok := got.(decimal.Decimal)
		return ok && e.Equal(g)
	case time.Time:
		g, ok := got.(time.Time)
		return ok && e.Equal(g) && g.Location() == time.UTC
	case []string:
		g, ok := got.([]string)
		return ok && reflect.DeepEqual(e, g)
	case jsonShape:
		s, ok := got.(string)
		if !ok {
			return false
		}
		if e.v.Kind() == reflect.String {
			var str string
			if json.Unmarshal([]byte(s), &str) == nil {
				return str == e.v.String()
			}
			return (s == "[]" && e.v.String() == "") || s == e.v.String()
		}
		var stored any
		if err := json.Unmarshal([]byte(s), &stored); err != nil {
			return false
		}
		return reflect.DeepEqual(canonJSON(stored), canonTruth(e.v))
	}
	return reflect.DeepEqual(exp, got)
}

// canonTruth renders a truth value as the generic JSON tree it is served
// as, with times as UTC RFC 3339 ("" when zero) and scalars as strings
// except booleans.
func canonTruth(v reflect.Value) any {
	if v.Type() == reflect.TypeOf(time.Time{}) {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			m[v.Type().Field(i).Name] = canonTruth(v.Field(i))
		}
		return m
	case reflect.Slice:
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, canonTruth(v.Index(i)))
		}
		return out
	case reflect.Bool:
		return v.Bool()
	}
	return v.String()
}

// canonJSON normalises stored JSON only where the column legitimately keeps
// the wire's variation: datetimes in another offset, booleans sent as
// strings. Numbers, and single objects where arrays are documented, are not
// forgiven: the client stores those as the documented strings and arrays.
func canonJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = canonJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = canonJSON(e)
		}
		return x
	case string:
		if t, err := time.Parse(time.RFC3339, x); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
		if x == "true" || x == "false" {
			return x == "true"
		}
		return x
	}
	return v
}

func show(v any) string {
	switch x := v.(type) {
	case jsonShape:
		b, _ := json.Marshal(x.v.Interface())
		return string(b)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%v", v)
}
