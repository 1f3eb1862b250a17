package extract

import (
	"fmt"
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
// page.
func parsePage(body []byte, keys []string) (page, error) {
	var p page
	root, err := document(body)
	if err != nil {
		return p, err
	}
	if root.kind != kObject {
		return p, fmt.Errorf("expected a JSON object, got %s", root.kind)
	}
	var list value
	listFound := false
	var others []string
	err = members(root.raw, func(key string, v value) error {
		if strings.HasPrefix(key, "@") {
			return p.envelope(key, v)
		}
		for _, k := range keys {
			if key == k && !listFound {
				list, listFound = v, true
				return nil
			}
		}
		others = append(others, key)
		return nil
	})
	if err != nil {
		return p, err
	}
	if !listFound {
		if p.total > 0 || len(others) > 0 {
			sort.Strings(others)
			return p, &listKeyError{want: keys, found: others, total: p.total}
		}
		return p, nil // an empty result without a list key
	}
	switch list.kind {
	case kArray:
		err = elements(list.raw, func(v value) error {
			if v.kind != kObject {
				return fmt.Errorf("list element is %s, not an object", v.kind)
			}
			p.records = append(p.records, v)
			return nil
		})
	case kObject: // a single record sent as an object instead of a one-element array
		p.records = []value{list}
	case kNull:
	default:
		err = fmt.Errorf("list %q is %s, not an array", keys[0], list.kind)
	}
	return p, err
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
