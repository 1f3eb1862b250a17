package impactsim

import (
	"net/url"
	"strconv"
	"strings"
)

// MaxPageSize is the largest PageSize any list accepts.
const MaxPageSize = 20000

// paging is the requested page.
type paging struct{ page, size int }

// pageLimits are a list's PageSize default and allowed range.
type pageLimits struct{ def, min, max int }

// parsePaging reads Page and PageSize (400 on anything but a positive
// integer in range).
func parsePaging(q url.Values, lim pageLimits) (paging, *apiError) {
	p := paging{page: 1, size: lim.def}
	if v, ok := first(q, "Page"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("Page must be a positive integer", fieldError{"Page", "Not a valid page number"})
		}
		p.page = n
	}
	if v, ok := first(q, "PageSize"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("PageSize must be a positive integer", fieldError{"PageSize", "Not a numeric value"})
		}
		if n < lim.min || n > lim.max {
			msg := "PageSize must be between " + strconv.Itoa(lim.min) + " and " + strconv.Itoa(lim.max)
			return p, badRequest(msg, fieldError{"PageSize", msg})
		}
		p.size = n
	}
	return p, nil
}

func first(q url.Values, key string) (string, bool) {
	vs, ok := q[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// filterParams returns the raw "k=v" pieces of the query other than Page
// and PageSize, in the order given, as the page URIs carry them.
func filterParams(raw string) []string {
	var out []string
	for _, piece := range strings.Split(raw, "&") {
		if piece == "" {
			continue
		}
		k, _, _ := strings.Cut(piece, "=")
		if dk, err := url.QueryUnescape(k); err == nil && (dk == "Page" || dk == "PageSize") {
			continue
		}
		out = append(out, piece)
	}
	return out
}

func pageURI(path string, size, page int, filters []string) string {
	var b strings.Builder
	b.WriteString(path)
	b.WriteString("?PageSize=")
	b.WriteString(strconv.Itoa(size))
	b.WriteString("&Page=")
	b.WriteString(strconv.Itoa(page))
	for _, f := range filters {
		b.WriteByte('&')
		b.WriteString(f)
	}
	return b.String()
}

// itemName is the XML element of one record of a list key.
func itemName(key string) string {
	if strings.HasSuffix(key, "ies") {
		return key[:len(key)-3] + "y"
	}
	return strings.TrimSuffix(key, "s")
}

// list renders a paged list: the @ envelope and records [start, end) of a
// result of total records; item renders the k-th record of the result.
func (s *Server) list(rq *request, key string, total int, pg paging, item func(w *writer, name string, k int)) []byte {
	start := min((pg.page-1)*pg.size, total)
	end := min(start+pg.size, total)
	numPages := (total + pg.size - 1) / pg.size
	filters := filterParams(rq.rawQuery)
	uri := rq.path
	if len(filters) > 0 {
		uri += "?" + strings.Join(filters, "&")
	}
	next, prev := "", ""
	if pg.page < numPages {
		next = pageURI(rq.path, pg.size, pg.page+1, filters)
	}
	if pg.page > 1 {
		prev = pageURI(rq.path, pg.size, pg.page-1, filters)
	}
	shownTotal, shownPages := total, numPages
	switch rq.fault.Kind {
	case FaultNextBackwards:
		next = pageURI(rq.path, pg.size, max(pg.page-1, 1), filters)
	case FaultNextLoop:
		next = pageURI(rq.path, pg.size, pg.page, filters)
	case FaultTotalMismatch:
		shownTotal, shownPages = total+pg.size, numPages+1
		next = pageURI(rq.path, pg.size, pg.page+1, filters)
	case FaultUnknownListKey:
		key = "Records"
	}
	startS, endS := "0", "0"
	if end > start {
		startS, endS = strconv.Itoa(start), strconv.Itoa(end-1)
	}
	env := [...][2]string{
		{"page", strconv.Itoa(pg.page)},
		{"numpages", strconv.Itoa(shownPages)},
		{"pagesize", strconv.Itoa(pg.size)},
		{"total", strconv.Itoa(shownTotal)},
		{"start", startS},
		{"end", endS},
		{"uri", uri},
		{"firstpageuri", pageURI(rq.path, pg.size, 1, filters)},
		{"previouspageuri", prev},
		{"nextpageuri", next},
		{"lastpageuri", pageURI(rq.path, pg.size, max(numPages, 1), filters)},
	}
	w := rq.writer(512 + (end-start)*1400)
	name := itemName(key)
	if w.xml {
		w.b = append(w.b, xmlHeader...)
		w.openTag("ImpactRadiusResponse")
		w.b = append(w.b, '<')
		w.b = append(w.b, key...)
		for _, kv := range env {
			w.b = append(w.b, ' ')
			w.b = append(w.b, kv[0]...)
			w.b = append(w.b, '=', '"')
			w.b = appendXMLText(w.b, kv[1])
			w.b = append(w.b, '"')
		}
		w.b = append(w.b, '>')
		for k := start; k < end; k++ {
			item(w, name, k)
		}
		w.closeTag(key)
		w.closeTag("ImpactRadiusResponse")
		return w.b
	}
	w.open("")
	for k, kv := range env {
		if k < 6 && rq.quirks.EnvelopeNumbers {
			w.key("@" + kv[0])
			w.b = append(w.b, kv[1]...)
			w.b = append(w.b, ',')
			continue
		}
		w.str("@"+kv[0], kv[1])
	}
	if rq.quirks.SingleObjectLists && end-start == 1 {
		item(w, key, start)
	} else {
		w.openArr(key)
		for k := start; k < end; k++ {
			item(w, name, k)
		}
		w.closeArr(key)
	}
	w.close("")
	return w.b
}
