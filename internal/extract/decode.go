package extract

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// layout is a compiled syncer.Table: which columns each API field path feeds,
// and which nested objects to descend into.
type layout struct {
	table    *syncer.Table
	targets  map[string][]target // field path → columns it feeds
	prefixes map[string]bool     // object paths that hold documented fields
	decoders sync.Pool           // of *recordDecoder: scratch reused across records
}

type target struct {
	col      int
	priority int // index in Column.Fields; lower wins
}

func compile(t *syncer.Table) *layout {
	l := &layout{table: t, targets: map[string][]target{}, prefixes: map[string]bool{}}
	l.decoders.New = func() any { return newRecordDecoder(l) }
	for ci, c := range t.Columns {
		for pi, f := range c.Fields {
			l.targets[f] = append(l.targets[f], target{col: ci, priority: pi})
			parts := strings.Split(f, ".")
			for i := 1; i < len(parts); i++ {
				l.prefixes[strings.Join(parts[:i], ".")] = true
			}
		}
	}
	return l
}

var layouts = func() map[syncer.Entity]*layout {
	m := map[syncer.Entity]*layout{}
	for e, t := range syncer.Tables {
		m[e] = compile(t)
	}
	return m
}()

// decoded is one record's decoding result.
type decoded struct {
	rec     syncer.Record
	unknown []string // field paths not in the entity's layout
}

// fieldError is a decoding failure of one field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// decodeRecord turns one JSON object into a typed record. raw must be a
// complete object (validated by the page scan).
func decodeRecord(l *layout, raw []byte) (decoded, error) {
	d := l.decoders.Get().(*recordDecoder)
	defer l.decoders.Put(d)
	return d.decode(raw)
}

// recordDecoder decodes the records of one entity, reusing its scratch space
// from record to record (not safe for concurrent use: decodeRecord takes
// one from the layout's pool). Every string value of a record shares the
// memory of the record's Raw text: decoding copies a record's bytes once.
type recordDecoder struct {
	l     *layout
	found []value // per column: the winning field's value
	prio  []int   // per column: the winning field's priority, -1 for none
	// the record being decoded: its bytes, and the same as Raw
	raw     []byte
	text    string
	unknown []string
}

func newRecordDecoder(l *layout) *recordDecoder {
	n := len(l.table.Columns)
	return &recordDecoder{l: l, found: make([]value, n), prio: make([]int, n)}
}

func (d *recordDecoder) decode(raw []byte) (decoded, error) {
	for i := range d.prio {
		d.found[i], d.prio[i] = value{}, -1
	}
	d.raw, d.text, d.unknown = raw, string(raw), nil
	defer func() { d.raw, d.text = nil, "" }() // keep nothing alive in the pool
	out := decoded{}
	if err := d.walk(raw, ""); err != nil {
		return out, err
	}
	out.unknown = d.unknown
	out.rec.Raw = d.text
	l, cols := d.l, d.l.table.Columns
	if l.table.Key >= 0 {
		if v := d.found[l.table.Key]; v.kind == kString || v.kind == kNumber {
			out.rec.ID, _ = d.scalarText(v)
		}
	}
	out.rec.Values = make([]any, len(cols))
	for i, c := range cols {
		var v value
		present := d.prio[i] >= 0
		if present {
			v = d.found[i]
		}
		path := c.Fields[max(d.prio[i], 0)]
		val, err := d.convert(c.Type, v, present, path)
		if err != nil {
			return out, &fieldError{field: path, err: err}
		}
		out.rec.Values[i] = val
	}
	return out, nil
}

// walk records the members of obj (at field path prefix) that feed columns.
func (d *recordDecoder) walk(obj []byte, prefix string) error {
	l := d.l
	return membersRaw(obj, func(key []byte, v value) error {
		var ts []target
		var ok bool
		var path string
		if prefix == "" {
			ts, ok = l.targets[string(key)] // no allocation
		} else {
			path = prefix + "." + string(key)
			ts, ok = l.targets[path]
		}
		if ok {
			for _, t := range ts {
				if d.prio[t.col] < 0 || t.priority < d.prio[t.col] {
					// A fallback field only wins when present and non-empty.
					if t.priority > 0 && isEmpty(v) {
						continue
					}
					d.found[t.col] = v
					d.prio[t.col] = t.priority
				}
			}
			return nil
		}
		if prefix == "" {
			path = string(key)
		}
		if l.prefixes[path] {
			switch v.kind {
			case kObject:
				return d.walk(v.raw, path)
			case kNull:
				return nil // a documented object sent as null: its fields are empty
			case kString:
				if string(v.raw) == `""` {
					return nil
				}
			}
			return &fieldError{field: path, err: fmt.Errorf("expected an object, got %s", v.kind)}
		}
		d.unknown = append(d.unknown, path)
		return nil
	})
}

// scalarText is scalarText for a value of the record being decoded: a plain
// string, a number or a boolean is a slice of the record's Raw text, not a
// copy.
func (d *recordDecoder) scalarText(v value) (string, error) {
	if v.kind == kNumber || v.kind == kBool || (v.kind == kString && v.plain) {
		// v.raw is a slice of d.raw: its offset is the difference of their capacities
		off := cap(d.raw) - cap(v.raw)
		if off >= 0 && off+len(v.raw) <= len(d.text) {
			s := d.text[off : off+len(v.raw)]
			if v.kind == kString {
				s = s[1 : len(s)-1]
			}
			return s, nil
		}
	}
	return scalarText(v)
}

func isEmpty(v value) bool {
	return v.kind == kNull || (v.kind == kString && len(v.raw) == 2)
}

// scalarText returns a scalar's text: a string unquoted, a number or boolean
// as written, null as "".
func scalarText(v value) (string, error) {
	switch v.kind {
	case kString:
		return unquote(v.raw)
	case kNumber, kBool:
		return string(v.raw), nil
	case kNull:
		return "", nil
	}
	return "", fmt.Errorf("expected a scalar, got %s", v.kind)
}

var epoch = time.Unix(0, 0).UTC()

// convert turns a scanned value into the Go value for a column type. present
// is false for a field the record does not carry; path is the field's path.
func (d *recordDecoder) convert(t syncer.Type, v value, present bool, path string) (any, error) {
	scalarText := d.scalarText
	switch t {
	case syncer.String:
		if !present {
			return "", nil
		}
		return scalarText(v)
	case syncer.Decimal:
		if !present {
			return decimal.Decimal{}, nil
		}
		s, err := scalarText(v)
		if err != nil {
			return nil, err
		}
		return ParseMoney(s)
	case syncer.DateTime:
		if !present {
			return epoch, nil
		}
		s, err := scalarText(v)
		if err != nil {
			return nil, err
		}
		return ParseTime(s)
	case syncer.Bool:
		if !present {
			return uint8(0), nil
		}
		s, err := scalarText(v)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "yes":
			return uint8(1), nil
		case "false", "0", "no", "":
			return uint8(0), nil
		}
		return nil, fmt.Errorf("not a boolean: %q", s)
	case syncer.Int:
		if !present {
			return int64(0), nil
		}
		s, err := scalarText(v)
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return int64(0), nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer: %q", s)
		}
		return n, nil
	case syncer.Strings:
		out := []string{}
		if !present {
			return out, nil
		}
		switch v.kind {
		case kArray:
			err := elements(v.raw, func(e value) error {
				s, err := scalarText(e)
				if err != nil {
					return fmt.Errorf("array element: %w", err)
				}
				out = append(out, s)
				return nil
			})
			return out, err
		case kNull:
			return out, nil
		case kObject:
			return nil, errors.New("expected an array of strings, got an object")
		}
		s, err := scalarText(v)
		if err != nil {
			return nil, err
		}
		if s != "" {
			out = append(out, s)
		}
		return out, nil
	case syncer.JSON:
		if !present {
			return "[]", nil
		}
		switch v.kind {
		case kObject: // a single element sent as an object
			return string(appendCanonJSON(append(make([]byte, 0, len(v.raw)+2), '['), v, path)) + "]", nil
		case kNull:
			return "[]", nil
		case kString:
			if len(v.raw) == 2 {
				return "[]", nil
			}
			return string(v.raw), nil
		}
		return string(appendCanonJSON(make([]byte, 0, len(v.raw)), v, path)), nil
	}
	return nil, fmt.Errorf("unknown column type %d", t)
}

// nestedArrays are the array members documented inside JSON columns
// (docs/impact-api.md §7.4), by field path. The API may send a one-element array as
// the bare element, and an empty one as null or "".
var nestedArrays = map[string]bool{
	"Programs.Groups": true,
	"Contacts.Phones": true,
	"Contacts.Labels": true,
}

// appendCanonJSON appends the value of a JSON column in the documented shape,
// whatever the wire quirks: numbers become strings holding their literal text
// (the API documents every scalar but booleans as a string, and a consumer
// reading the column should not find 24125 in one row and "24125" in the
// next), and documented nested arrays sent as a single element become arrays.
// Everything else is kept as sent; the record's raw JSON keeps the original.
// v must be a complete, validated value; path is its field path.
func appendCanonJSON(dst []byte, v value, path string) []byte {
	switch v.kind {
	case kNumber:
		dst = append(dst, '"')
		dst = append(dst, v.raw...)
		return append(dst, '"')
	case kArray:
		dst = append(dst, '[')
		n := 0
		_ = elements(v.raw, func(e value) error {
			if n++; n > 1 {
				dst = append(dst, ',')
			}
			dst = appendCanonJSON(dst, e, path)
			return nil
		})
		return append(dst, ']')
	case kObject:
		dst = append(dst, '{')
		n := 0
		_ = members(v.raw, func(key string, m value) error {
			if n++; n > 1 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, key)
			dst = append(dst, ':')
			p := path + "." + key
			if !nestedArrays[p] || m.kind == kArray {
				dst = appendCanonJSON(dst, m, p)
				return nil
			}
			if isEmpty(m) {
				dst = append(dst, "[]"...)
				return nil
			}
			dst = append(dst, '[')
			dst = appendCanonJSON(dst, m, p)
			dst = append(dst, ']')
			return nil
		})
		return append(dst, '}')
	}
	return append(dst, v.raw...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// maxMoneyDigits is the integer digits Decimal(18, 8) holds.
const (
	moneyScale     = 8
	maxMoneyDigits = 18 - moneyScale
)

// ParseMoney parses a decimal amount exactly ("6.30", "-3.15", "1e2"); "" is
// zero. It refuses values Decimal(18, 8) cannot hold without rounding.
func ParseMoney(s string) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Decimal{}, nil
	}
	if d, ok := parseMoneyFast(s); ok {
		return d, nil
	}
	return parseMoneySlow(s)
}

// parseMoneyFast parses the common amount — an optional minus, at most 18
// digits with at most 8 after the point and at most 10 before it — into the
// same decimal (coefficient and exponent) as parseMoneySlow, without its
// big-number arithmetic. ok is false for anything else, valid or not.
func parseMoneyFast(s string) (d decimal.Decimal, ok bool) {
	i, neg := 0, false
	if s == "" {
		return d, false
	}
	if s[0] == '-' {
		i, neg = 1, true
	}
	var coef int64
	before, after := 0, 0 // digits before and after the point
	significant := 0      // digits before the point, leading zeros excluded
	point := false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if before+after == 18 {
				return d, false // might not fit an int64
			}
			coef = coef*10 + int64(c-'0')
			switch {
			case point:
				after++
			default:
				before++
				if significant > 0 || c != '0' {
					significant++
				}
			}
		case c == '.' && !point:
			point = true
		default:
			return d, false
		}
	}
	if before == 0 || (point && after == 0) || after > moneyScale || significant > maxMoneyDigits {
		return d, false
	}
	if neg {
		coef = -coef
	}
	return decimal.New(coef, -int32(after)), true
}

// parseMoneySlow is ParseMoney for every amount.
func parseMoneySlow(s string) (decimal.Decimal, error) {
	if !validNumber(s) {
		return decimal.Decimal{}, fmt.Errorf("not a decimal amount: %q", s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("not a decimal amount: %q", s)
	}
	if !d.Equal(d.Truncate(moneyScale)) {
		return decimal.Decimal{}, fmt.Errorf("amount %q has more than %d decimal places", s, moneyScale)
	}
	if d.Abs().GreaterThanOrEqual(decimal.New(1, maxMoneyDigits)) {
		return decimal.Decimal{}, fmt.Errorf("amount %q is too large", s)
	}
	return d, nil
}

// validNumber accepts a plain decimal: an optional sign, digits with at most
// one point, and an optional exponent ("6.30", "-3.15", "007.5", "1e2"). It
// refuses NaN, Inf, hex, spaces and empty parts.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	intDigits, fracDigits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		intDigits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			fracDigits++
		}
		if fracDigits == 0 {
			return false
		}
	}
	if intDigits+fracDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			expDigits++
		}
		if expDigits == 0 || expDigits > 3 {
			return false
		}
	}
	return i == len(s)
}

// ParseTime parses an impact.com datetime (ISO 8601 with a numeric offset or
// Z, optional fractional seconds) into UTC, truncated to the second; "" is
// the Unix epoch, ClickHouse's empty DateTime. A datetime without an offset is
// refused: guessing its zone would shift it silently.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return epoch, nil
	}
	if t, ok := parseTimeFast(s); ok {
		return t, nil
	}
	return parseTimeSlow(s)
}

// parseTimeFast parses the form impact.com sends, 2026-03-30T21:19:47-07:00
// (or …Z), with every field in range, into the same instant as
// parseTimeSlow without the general layout machinery. ok is false for
// anything else, valid or not.
func parseTimeFast(s string) (t time.Time, ok bool) {
	if len(s) != 20 && len(s) != 25 {
		return t, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return t, false
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return t, false
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return t, false
	}
	offset := 0
	switch {
	case len(s) == 20 && s[19] == 'Z':
	case len(s) == 25 && (s[19] == '+' || s[19] == '-') && s[22] == ':':
		oh, om := num(20, 2), num(23, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return t, false
		}
		offset = oh*3600 + om*60
		if s[19] == '-' {
			offset = -offset
		}
	default:
		return t, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Add(-time.Duration(offset) * time.Second)
	if t.Before(epoch) || t.Year() > 2105 {
		return time.Time{}, false // the slow path words the error
	}
	return t, true
}

// parseTimeSlow is ParseTime for every input but "".
func parseTimeSlow(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// offsets written without a colon: 2026-03-30T21:19:47-0700
		t2, err2 := time.Parse("2006-01-02T15:04:05.999999999Z0700", s)
		if err2 != nil {
			return time.Time{}, fmt.Errorf("not an ISO 8601 datetime with an offset: %q", s)
		}
		t = t2
	}
	t = t.UTC().Truncate(time.Second)
	if t.Before(epoch) || t.Year() > 2105 {
		return time.Time{}, fmt.Errorf("datetime %q is outside the range ClickHouse DateTime stores (1970–2105)", s)
	}
	return t, nil
}
