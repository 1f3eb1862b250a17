package extract

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// page is one list response: the string-typed "@" envelope and the spans of
// its records.
type page struct {
	num, numPages, total  int
	hasNumPages, hasTotal bool
	next                  string
	records               []value
}

// parsePage scans a list response body. keys are the list keys the entity's
// records may sit under, preferred first. The whole body is validated before
// any record is handed out, so a truncated body is an error and never a short
// page. It reads the body in one pass: the records' spans are taken while
// the body is validated, not by scanning the list again.
func parsePage(body []byte, keys []string) (page, error) {
	var p page
	s := scanner{buf: body}
	s.ws()
	if s.pos >= len(body) || body[s.pos] != '{' {
		root, err := document(body)
		if err != nil {
			return p, err
		}
		return p, fmt.Errorf("expected a JSON object, got %s", root.kind)
	}
	var (
		listFound bool
		listKind  kind
		others    []string
		semantic  error // the first error in the content; syntax errors take precedence
	)
	note := func(err error) {
		if semantic == nil {
			semantic = err
		}
	}
	err := s.object(func(key []byte) error {
		if len(key) > 0 && key[0] == '@' {
			v, err := s.next()
			if err != nil {
				return err
			}
			if err := p.envelope(string(key), v); err != nil {
				note(err)
			}
			return nil
		}
		if !listFound && slices.Contains(keys, string(key)) {
			listFound = true
			s.ws()
			if s.pos < len(s.buf) && s.buf[s.pos] == '[' {
				listKind = kArray
				return s.array(func() error {
					v, err := s.next()
					if err != nil {
						return err
					}
					if v.kind != kObject {
						note(fmt.Errorf("list element is %s, not an object", v.kind))
					} else if semantic == nil {
						p.records = append(p.records, v)
					}
					return nil
				})
			}
			v, err := s.next()
			if err != nil {
				return err
			}
			listKind = v.kind
			if v.kind == kObject { // a single record sent as an object instead of a one-element array
				p.records = []value{v}
			}
			return nil
		}
		if _, err := s.next(); err != nil {
			return err
		}
		others = append(others, string(key))
		return nil
	})
	if err != nil {
		return page{}, err
	}
	s.ws()
	if s.pos != len(s.buf) {
		return page{}, s.syntax("trailing data after the JSON value")
	}
	if semantic != nil {
		return p, semantic
	}
	if !listFound {
		if p.total > 0 || len(others) > 0 {
			sort.Strings(others)
			return p, &listKeyError{want: keys, found: others, total: p.total}
		}
		return p, nil // an empty result without a list key
	}
	switch listKind {
	case kArray, kObject, kNull:
		return p, nil
	}
	return p, fmt.Errorf("list %q is %s, not an array", keys[0], listKind)
}

func (p *page) envelope(key string, v value) error {
	text, err := scalarText(v)
	if err != nil {
		return fmt.Errorf("envelope %s: %w", key, err)
	}
	num := func() (int, bool, error) {
		text = strings.TrimSpace(text)
		if text == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(text)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("envelope %s: not a count: %q", key, text)
		}
		return n, true, nil
	}
	switch strings.ToLower(key) {
	case "@page":
		p.num, _, err = num()
	case "@numpages":
		p.numPages, p.hasNumPages, err = num()
	case "@total":
		p.total, p.hasTotal, err = num()
	case "@nextpageuri":
		p.next = strings.TrimSpace(text)
	}
	return err
}

// listKeyError is a list response without its records' key: the API renamed
// it (as MediaPartners → Partners once did) and reading it as empty would
// sync nothing, silently.
type listKeyError struct {
	want  []string
	found []string
	total int
}

func (e *listKeyError) Error() string {
	return fmt.Sprintf("response has no %q list (found keys %v, @total %d): the API's list key changed; refusing to read it as empty",
		strings.Join(e.want, `" or "`), e.found, e.total)
}
