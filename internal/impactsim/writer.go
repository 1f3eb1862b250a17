package impactsim

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// writer appends a JSON or XML document to b. Every value is written with a
// name: the JSON key, or the XML element name. Inside a JSON array the name is
// ignored (it is the XML item element name).
type writer struct {
	b     []byte
	xml   bool
	q     Quirks
	tz    tzFormatter
	inArr []bool // JSON: is the innermost container an array
	// corruptDate/corruptMoney make the next datetime/money value malformed
	// (FaultBadDate, FaultBadAmount).
	corruptDate, corruptMoney bool
}

func newWriter(buf []byte, xml bool, q Quirks, loc *time.Location) *writer {
	w := &writer{b: buf, xml: xml, q: q}
	w.tz.loc = loc
	w.tz.utcMillis = q.UTCDates
	return w
}

func (w *writer) key(name string) {
	if n := len(w.inArr); n > 0 && w.inArr[n-1] {
		return
	}
	w.b = appendJSONString(w.b, name)
	w.b = append(w.b, ':')
}

func (w *writer) openTag(name string) {
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

func (w *writer) closeTag(name string) {
	w.b = append(w.b, '<', '/')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

// open starts an object; name "" is the document root in JSON.
func (w *writer) open(name string) {
	if w.xml {
		w.openTag(name)
		return
	}
	if name != "" || len(w.inArr) > 0 {
		w.key(name)
	}
	w.b = append(w.b, '{')
	w.inArr = append(w.inArr, false)
}

func (w *writer) close(name string) {
	if w.xml {
		w.closeTag(name)
		return
	}
	w.end('}')
}

func (w *writer) openArr(name string) {
	if w.xml {
		w.openTag(name)
		return
	}
	w.key(name)
	w.b = append(w.b, '[')
	w.inArr = append(w.inArr, true)
}

func (w *writer) closeArr(name string) {
	if w.xml {
		w.closeTag(name)
		return
	}
	w.end(']')
}

// end closes the innermost JSON container, replacing a trailing comma.
func (w *writer) end(c byte) {
	w.inArr = w.inArr[:len(w.inArr)-1]
	if n := len(w.b); w.b[n-1] == ',' {
		w.b[n-1] = c
	} else {
		w.b = append(w.b, c)
	}
	if len(w.inArr) > 0 {
		w.b = append(w.b, ',')
	}
}

// str writes a string value.
func (w *writer) str(name, v string) {
	if w.xml {
		w.openTag(name)
		w.b = appendXMLText(w.b, v)
		w.closeTag(name)
		return
	}
	w.key(name)
	w.b = appendJSONString(w.b, v)
	w.b = append(w.b, ',')
}

// strFn writes a string value given as bytes appended by fn.
func (w *writer) strFn(name string, fn func([]byte) []byte) {
	if w.xml {
		w.openTag(name)
		w.b = fn(w.b) // generated values never need XML escaping
		w.closeTag(name)
		return
	}
	w.key(name)
	w.b = append(w.b, '"')
	w.b = fn(w.b) // generated values never need JSON escaping
	w.b = append(w.b, '"', ',')
}

// num writes a numeric value: a JSON string unless Quirks.NumbersAsJSON.
func (w *writer) num(name, v string) {
	if w.xml || !w.q.NumbersAsJSON || !isJSONNumber(v) {
		w.str(name, v)
		return
	}
	w.key(name)
	w.b = append(w.b, v...)
	w.b = append(w.b, ',')
}

// numFn writes a numeric value appended by fn (never empty, always a number).
func (w *writer) numFn(name string, fn func([]byte) []byte) {
	if w.xml || !w.q.NumbersAsJSON {
		w.strFn(name, fn)
		return
	}
	w.key(name)
	w.b = fn(w.b)
	w.b = append(w.b, ',')
}

func (w *writer) int(name string, v int64) {
	w.numFn(name, func(b []byte) []byte { return strconv.AppendInt(b, v, 10) })
}

// money writes v (1/10000 units) with 2 decimals, or 4 when pay4 and the
// value needs them.
func (w *writer) money(name string, v int64, pay4 bool) {
	if w.corruptMoney {
		w.corruptMoney = false
		w.str(name, "12,34")
		return
	}
	w.numFn(name, func(b []byte) []byte { return appendMoney(b, v, pay4) })
}

// boolS writes a boolean the classic way ("true"/"false" strings) unless
// Quirks.BoolsAsJSON.
func (w *writer) boolS(name string, v bool) {
	if w.xml || !w.q.BoolsAsJSON {
		w.str(name, strconv.FormatBool(v))
		return
	}
	w.boolJ(name, v)
}

// boolJ writes a real JSON boolean (newer JSON-native objects).
func (w *writer) boolJ(name string, v bool) {
	if w.xml {
		w.str(name, strconv.FormatBool(v))
		return
	}
	w.key(name)
	w.b = strconv.AppendBool(w.b, v)
	w.b = append(w.b, ',')
}

// unix writes a datetime from Unix seconds; 0 is "".
func (w *writer) unix(name string, sec int64) {
	if sec == 0 {
		w.str(name, "")
		return
	}
	if w.corruptDate {
		w.corruptDate = false
		w.str(name, "not-a-date")
		return
	}
	w.strFn(name, func(b []byte) []byte { return w.tz.append(b, sec) })
}

// time writes a datetime; the zero time is "".
func (w *writer) time(name string, t time.Time) {
	if t.IsZero() {
		w.str(name, "")
		return
	}
	w.unix(name, t.Unix())
}

// strs writes an array of strings (XML items named item).
func (w *writer) strs(name, item string, vs []string) {
	w.openArr(name)
	for _, v := range vs {
		w.str(item, v)
	}
	w.closeArr(name)
}

// objects writes a nested array of objects through fn, which must open and
// close one object under the name it is given. With
// Quirks.SingleObjectLists a one-element array becomes that object.
func objects[T any](w *writer, name, item string, xs []T, fn func(w *writer, name string, x T)) {
	if w.q.SingleObjectLists && !w.xml && len(xs) == 1 {
		fn(w, name, xs[0])
		return
	}
	w.openArr(name)
	for _, x := range xs {
		fn(w, item, x)
	}
	w.closeArr(name)
}

// extras writes the unknown fields of Quirks.ExtraFields.
func (w *writer) extras() {
	if !w.q.ExtraFields {
		return
	}
	w.str("NewFieldFromV15", "x")
	w.open("NewObjectFromV16")
	w.str("Flag", "true")
	w.close("NewObjectFromV16")
}

func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return false
		}
	}
	if digits == 0 || s[len(s)-1] == '.' {
		return false
	}
	// No leading zeros except "0" or "0.x".
	j := 0
	if s[0] == '-' {
		j = 1
	}
	return !(s[j] == '0' && len(s) > j+1 && s[j+1] != '.')
}

// appendMoney formats v (1/10000 units) with 2 decimals, or 4 decimals when
// pay4 is set and v is not a whole number of cents.
func appendMoney(b []byte, v int64, pay4 bool) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/10000, 10)
	frac := v % 10000
	b = append(b, '.')
	if pay4 && frac%100 != 0 {
		return append(b, byte('0'+frac/1000), byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	cents := frac / 100
	return append(b, byte('0'+cents/10), byte('0'+cents%10))
}

func formatMoney(v int64, pay4 bool) string { return string(appendMoney(nil, v, pay4)) }

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendXMLText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\'':
			b = append(b, "&apos;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// tzFormatter renders Unix seconds as RFC 3339 in one location, caching the
// zone spans it has seen so that formatting needs no time.Time per value.
type tzFormatter struct {
	loc       *time.Location
	utcMillis bool
	spans     [4]zoneSpan
	n, next   int
}

type zoneSpan struct {
	start, end int64 // [start, end)
	off        int64 // seconds east of UTC
}

func (f *tzFormatter) offset(sec int64) int64 {
	if f.loc == nil || f.utcMillis {
		return 0
	}
	for i := 0; i < f.n; i++ {
		if s := f.spans[i]; sec >= s.start && sec < s.end {
			return s.off
		}
	}
	t := time.Unix(sec, 0).In(f.loc)
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	s := zoneSpan{start: -1 << 62, end: 1 << 62, off: int64(off)}
	if !start.IsZero() {
		s.start = start.Unix()
	}
	if !end.IsZero() {
		s.end = end.Unix()
	}
	f.spans[f.next] = s
	f.next = (f.next + 1) % len(f.spans)
	if f.n < len(f.spans) {
		f.n++
	}
	return s.off
}

func (f *tzFormatter) append(b []byte, sec int64) []byte {
	off := f.offset(sec)
	local := sec + off
	days := floorDiv(local, 86400)
	rem := local - days*86400
	y, m, d := civilFromDays(days)
	b = append4(b, int(y))
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, int(rem/3600))
	b = append(b, ':')
	b = append2(b, int(rem/60%60))
	b = append(b, ':')
	b = append2(b, int(rem%60))
	if f.utcMillis {
		return append(b, ".000Z"...)
	}
	if off < 0 {
		b = append(b, '-')
		off = -off
	} else {
		b = append(b, '+')
	}
	b = append2(b, int(off/3600))
	b = append(b, ':')
	return append2(b, int(off/60%60))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10%10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
