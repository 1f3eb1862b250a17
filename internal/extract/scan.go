package extract

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner. It finds the spans of values inside a buffer without
// building maps or interfaces, which keeps decoding a 20,000-action page cheap,
// and it is strict about syntax so that a truncated body is an error, never a
// shorter page.

// kind is the JSON type of a scanned value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "object", "array"}[k]
}

// value is a scanned JSON value: its kind and its bytes in the buffer.
type value struct {
	kind kind
	// plain marks a string with no escapes and only ASCII bytes: its text is
	// raw without the quotes, with nothing to decode.
	plain bool
	raw   []byte // the value exactly as it appears, quotes included for strings
}

var errTruncated = errors.New("unexpected end of JSON input (truncated body?)")

type scanner struct {
	buf []byte
	pos int
}

func (s *scanner) syntax(msg string) error {
	if s.pos >= len(s.buf) {
		return errTruncated
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", s.pos, msg)
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// next scans the value at the current position.
func (s *scanner) next() (value, error) {
	s.ws()
	if s.pos >= len(s.buf) {
		return value{}, errTruncated
	}
	start := s.pos
	var k kind
	switch c := s.buf[s.pos]; {
	case c == '{':
		k = kObject
		if err := s.skipContainer('{', '}'); err != nil {
			return value{}, err
		}
	case c == '[':
		k = kArray
		if err := s.skipContainer('[', ']'); err != nil {
			return value{}, err
		}
	case c == '"':
		plain, err := s.skipString()
		if err != nil {
			return value{}, err
		}
		return value{kind: kString, plain: plain, raw: s.buf[start:s.pos]}, nil
	case c == 't':
		k = kBool
		if err := s.literal("true"); err != nil {
			return value{}, err
		}
	case c == 'f':
		k = kBool
		if err := s.literal("false"); err != nil {
			return value{}, err
		}
	case c == 'n':
		k = kNull
		if err := s.literal("null"); err != nil {
			return value{}, err
		}
	case c == '-' || (c >= '0' && c <= '9'):
		k = kNumber
		if err := s.skipNumber(); err != nil {
			return value{}, err
		}
	default:
		return value{}, s.syntax(fmt.Sprintf("unexpected character %q", c))
	}
	return value{kind: k, raw: s.buf[start:s.pos]}, nil
}

func (s *scanner) literal(lit string) error {
	if len(s.buf)-s.pos < len(lit) {
		if string(s.buf[s.pos:]) == lit[:len(s.buf)-s.pos] {
			s.pos = len(s.buf)
			return errTruncated
		}
		return s.syntax("invalid literal")
	}
	if string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return s.syntax("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) skipNumber() error {
	start := s.pos
	if s.buf[s.pos] == '-' {
		s.pos++
	}
	digits := func() int {
		n := 0
		for s.pos < len(s.buf) && s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.buf) && s.buf[s.pos] == '0' {
		s.pos++
	} else if digits() == 0 {
		return s.syntax("invalid number")
	}
	if s.pos < len(s.buf) && s.buf[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return s.syntax("invalid number")
		}
	}
	if s.pos < len(s.buf) && (s.buf[s.pos] == 'e' || s.buf[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.buf) && (s.buf[s.pos] == '+' || s.buf[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return s.syntax("invalid number")
		}
	}
	if s.pos == len(s.buf) && start == 0 {
		return nil // a bare number document
	}
	return nil
}

// plainByte marks the bytes a string can hold as they are: not the quote,
// not a backslash, not a control character and not outside ASCII.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString moves past a string starting at the opening quote. plain
// reports a string without escapes and with only ASCII bytes.
func (s *scanner) skipString() (plain bool, err error) {
	s.pos++ // opening quote
	plain = true
	buf := s.buf
	for s.pos < len(buf) {
		// the common case: a run of ordinary bytes
		i := s.pos
		for i < len(buf) && plainByte[buf[i]] {
			i++
		}
		s.pos = i
		if i >= len(buf) {
			break
		}
		c := buf[i]
		switch {
		case c == '"':
			s.pos++
			return plain, nil
		case c == '\\':
			plain = false
			s.pos++
			if s.pos >= len(buf) {
				return false, errTruncated
			}
			switch buf[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				if len(buf)-s.pos < 5 {
					s.pos = len(buf)
					return false, errTruncated
				}
				for _, h := range buf[s.pos+1 : s.pos+5] {
					if !isHex(h) {
						return false, s.syntax("invalid \\u escape")
					}
				}
				s.pos += 5
			default:
				return false, s.syntax("invalid escape")
			}
		case c < 0x20:
			return false, s.syntax("control character in string")
		default: // a byte outside ASCII
			plain = false
			s.pos++
		}
	}
	return false, errTruncated
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipContainer moves past an object or array, validating its structure.
func (s *scanner) skipContainer(open, closing byte) error {
	s.pos++ // open
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == closing {
		s.pos++
		return nil
	}
	for {
		if open == '{' {
			s.ws()
			if s.pos >= len(s.buf) {
				return errTruncated
			}
			if s.buf[s.pos] != '"' {
				return s.syntax("expected a string key")
			}
			if _, err := s.skipString(); err != nil {
				return err
			}
			s.ws()
			if s.pos >= len(s.buf) {
				return errTruncated
			}
			if s.buf[s.pos] != ':' {
				return s.syntax("expected ':'")
			}
			s.pos++
		}
		if _, err := s.next(); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case closing:
			s.pos++
			return nil
		default:
			return s.syntax("expected ',' or closing bracket")
		}
	}
}

// object scans the object at the current position, validating it as
// skipContainer does, and calls fn after each member's key and colon; fn
// must consume the member's value (with next, array or object). The key is
// unescaped and valid only during the call.
func (s *scanner) object(fn func(key []byte) error) error {
	s.ws()
	if s.pos >= len(s.buf) {
		return errTruncated
	}
	if s.buf[s.pos] != '{' {
		return s.syntax("expected an object")
	}
	s.pos++
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		if s.buf[s.pos] != '"' {
			return s.syntax("expected a string key")
		}
		start := s.pos
		plain, err := s.skipString()
		if err != nil {
			return err
		}
		key := s.buf[start+1 : s.pos-1]
		if !plain {
			k, err := unquote(s.buf[start:s.pos])
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		if s.buf[s.pos] != ':' {
			return s.syntax("expected ':'")
		}
		s.pos++
		if err := fn(key); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.syntax("expected ',' or closing bracket")
		}
	}
}

// array scans the array at the current position, validating it, and calls
// fn at each element; fn must consume the element.
func (s *scanner) array(fn func() error) error {
	s.ws()
	if s.pos >= len(s.buf) {
		return errTruncated
	}
	if s.buf[s.pos] != '[' {
		return s.syntax("expected an array")
	}
	s.pos++
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.syntax("expected ',' or closing bracket")
		}
	}
}

// members calls fn for each member of the object in raw (which must be a
// complete, already validated object). Keys are unescaped.
func members(raw []byte, fn func(key string, v value) error) error {
	return membersRaw(raw, func(key []byte, v value) error { return fn(string(key), v) })
}

// membersRaw is members with the key as bytes, valid only during the call:
// unescaped, and for a plain key (the usual case) a slice of raw, so that
// looking it up in a map costs no allocation.
func membersRaw(raw []byte, fn func(key []byte, v value) error) error {
	s := scanner{buf: raw}
	s.ws()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '{' {
		return s.syntax("expected an object")
	}
	s.pos++
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		return nil
	}
	for {
		s.ws()
		kv, err := s.next()
		if err != nil {
			return err
		}
		if kv.kind != kString {
			return s.syntax("expected a string key")
		}
		key := kv.raw[1 : len(kv.raw)-1]
		if !kv.plain {
			k, err := unquote(kv.raw)
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		s.ws()
		if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
			return s.syntax("expected ':'")
		}
		s.pos++
		v, err := s.next()
		if err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case '}':
			return nil
		default:
			return s.syntax("expected ',' or '}'")
		}
	}
}

// elements calls fn for each element of the array in raw.
func elements(raw []byte, fn func(v value) error) error {
	s := scanner{buf: raw}
	s.ws()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '[' {
		return s.syntax("expected an array")
	}
	s.pos++
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == ']' {
		return nil
	}
	for {
		v, err := s.next()
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.buf) {
			return errTruncated
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
		case ']':
			return nil
		default:
			return s.syntax("expected ',' or ']'")
		}
	}
}

// document validates that buf holds exactly one JSON value.
func document(buf []byte) (value, error) {
	s := scanner{buf: buf}
	v, err := s.next()
	if err != nil {
		return value{}, err
	}
	s.ws()
	if s.pos != len(s.buf) {
		return value{}, s.syntax("trailing data after the JSON value")
	}
	return v, nil
}

// unquote decodes a JSON string token (quotes included).
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errors.New("not a JSON string")
	}
	body := raw[1 : len(raw)-1]
	simple := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(body), nil
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError) // invalid UTF-8 → U+FFFD, as encoding/json does
			} else {
				out = append(out, body[i:i+size]...)
			}
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		i++
		switch body[i] {
		case '"', '\\', '/':
			out = append(out, body[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					r2 = hex4(body[i+3 : i+7])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		}
		i++
	}
	return string(out), nil
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}
