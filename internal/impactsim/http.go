package impactsim

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// request is one parsed API request.
type request struct {
	r        *http.Request
	persona  Persona // from the path
	sid      string
	resource string // "", "CompanyInformation", "Campaigns", ...
	id       string // single-object GET
	path     string // the escaped path as given (".json" kept)
	rawQuery string
	json     bool
	now      time.Time
	a        *account
	quirks   Quirks
	fault    Fault // Kind 0: none; body faults still to apply
}

// response is what a handler produces before faults and headers.
type response struct {
	status      int
	body        []byte
	contentType string
}

// apiError is an error answered with the {"Status":"ERROR",...} envelope.
type apiError struct {
	status int
	msg    string
	fields []fieldError
}

type fieldError struct{ field, msg string }

func badRequest(msg string, fields ...fieldError) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: msg, fields: fields}
}

func notFound(msg string) *apiError { return &apiError{status: http.StatusNotFound, msg: msg} }

// parsePath splits /{Advertisers|Mediapartners}/{SID}[/{Resource}[/{Id}]],
// with an optional .json suffix on the last segment.
func parsePath(p string) (rq request, ok bool) {
	segs := strings.Split(p, "/")
	if len(segs) < 3 || len(segs) > 5 || segs[0] != "" {
		return rq, false
	}
	last := len(segs) - 1
	if s, found := strings.CutSuffix(segs[last], ".json"); found {
		segs[last] = s
		rq.json = true
	}
	for _, s := range segs[1:] {
		if s == "" {
			return rq, false
		}
	}
	switch {
	case strings.EqualFold(segs[1], "Advertisers"):
		rq.persona = Brand
	case strings.EqualFold(segs[1], "Mediapartners"):
		rq.persona = Partner
	default:
		return rq, false
	}
	rq.sid = segs[2]
	if len(segs) > 3 {
		rq.resource = segs[3]
	}
	if len(segs) > 4 {
		rq.id = segs[4]
	}
	return rq, true
}

func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "application/json") {
			return true
		}
	}
	return false
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if d := s.Latency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up; nothing to answer
		}
	}
	now := s.clock.Now()
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	rq, ok := parsePath(r.URL.EscapedPath())
	rq.r, rq.now, rq.path, rq.rawQuery = r, now, r.URL.EscapedPath(), r.URL.RawQuery
	rq.json = rq.json || wantsJSON(r)
	a := s.account(rq.sid)
	if !ok || a == nil {
		// No account to charge: default bucket headers, nothing counted.
		c := control{limit: DefaultRateLimit}
		c.rateHeaders(w.Header(), rq.persona, now, false)
		e := notFound("Resource not found")
		if ok {
			e = &apiError{status: http.StatusUnauthorized, msg: "No valid API key provided"}
		}
		s.finish(w, &rq, errorResponse(&rq, e))
		return
	}
	rq.a = a
	resp := s.admit(w.Header(), &rq)
	if resp == nil {
		resp = s.dispatch(&rq)
	}
	s.finish(w, &rq, resp)
}

// admit runs the control plane for a known account: auth, method, rate
// limit, deny list and pre-body faults. A non-nil response ends the request.
func (s *Server) admit(h http.Header, rq *request) *response {
	a := rq.a
	a.ctl.Lock()
	c := &a.control
	rq.quirks = c.quirks
	resource := rq.resource
	if resource == "" {
		resource = "Home"
	}
	c.stats.Requests++
	if c.stats.ByResource == nil {
		c.stats.ByResource, c.stats.ByStatus = map[string]int{}, map[int]int{}
	}
	c.stats.ByResource[resource]++
	var e *apiError
	switch {
	case !authenticate(rq.r, a, rq.persona, rq.now):
		c.rateHeaders(h, rq.persona, rq.now, false)
		e = &apiError{status: http.StatusUnauthorized, msg: "No valid API key provided"}
	case rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead:
		c.rateHeaders(h, rq.persona, rq.now, false)
		e = &apiError{status: http.StatusMethodNotAllowed, msg: "Method not allowed"}
	case !c.take(rq.now):
		c.stats.RateLimited++
		c.rateHeaders(h, rq.persona, rq.now, true)
		e = &apiError{status: http.StatusTooManyRequests, msg: "Too many requests: the hourly rate limit is exhausted"}
	case c.denied[rq.resource]:
		c.rateHeaders(h, rq.persona, rq.now, false)
		e = &apiError{status: http.StatusForbidden, msg: "Access Denied"}
	default:
		c.rateHeaders(h, rq.persona, rq.now, false)
		if f, ok := c.takeFault(resource, rq.r.URL.RequestURI()); ok {
			c.stats.FaultsServed++
			rq.fault = f
		}
	}
	a.ctl.Unlock()
	if e != nil {
		return errorResponse(rq, e)
	}
	return s.preFault(h, rq)
}

// preFault answers the faults that replace the response entirely.
func (s *Server) preFault(h http.Header, rq *request) *response {
	f := rq.fault
	switch f.Kind {
	case FaultHTML500:
		return htmlError(http.StatusInternalServerError)
	case FaultEmpty500:
		return &response{status: http.StatusInternalServerError}
	case FaultStatus:
		st := f.Status
		if st == 0 {
			st = http.StatusServiceUnavailable
		}
		return htmlError(st)
	case Fault429:
		h.Del("Retry-After")
		delete(h, "retry-after")
		if f.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		return errorResponse(rq, &apiError{status: http.StatusTooManyRequests, msg: "Too many requests"})
	case FaultSlow:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rq.r.Context().Done():
			return &response{status: 499} // client gone; nothing is written
		}
	}
	return nil
}

func htmlError(status int) *response {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	body := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return &response{status: status, body: []byte(body), contentType: "text/html"}
}

// dispatch routes to the resource handlers.
func (s *Server) dispatch(rq *request) *response {
	a := rq.a
	var (
		body []byte
		e    *apiError
	)
	a.mu.RLock()
	defer a.mu.RUnlock()
	switch rq.resource {
	case "":
		if a.persona != Partner {
			e = errResourceNotFound
			break
		}
		body = s.single(rq, "Home", a.writeHome)
	case "CompanyInformation":
		if rq.id != "" {
			e = errResourceNotFound
			break
		}
		body = s.single(rq, "CompanyInformation", a.writeCompany)
	case "Campaigns":
		body, e = s.campaigns(rq)
	case "MediaPartners":
		if a.persona != Brand {
			e = errResourceNotFound
			break
		}
		body, e = s.mediaPartners(rq)
	case "PromoCodes":
		body, e = s.promoCodes(rq)
	case "Actions":
		body, e = s.actions(rq)
	case "ActionUpdates":
		body, e = s.actionUpdates(rq)
	default:
		e = errResourceNotFound
	}
	if e != nil {
		return errorResponse(rq, e)
	}
	return &response{status: http.StatusOK, body: body, contentType: contentType(rq)}
}

func contentType(rq *request) string {
	if rq.json {
		return "application/json; charset=utf-8"
	}
	return "application/xml; charset=utf-8"
}

func (rq *request) writer(capacity int) *writer {
	var loc = time.UTC
	if rq.a != nil {
		loc = rq.a.loc
	}
	w := newWriter(make([]byte, 0, capacity), !rq.json, rq.quirks, loc)
	switch rq.fault.Kind {
	case FaultBadDate:
		w.corruptDate = true
	case FaultBadAmount:
		w.corruptMoney = true
	}
	return w
}

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// single renders one bare object (no envelope).
func (s *Server) single(rq *request, name string, fn func(w *writer, name string)) []byte {
	w := rq.writer(4096)
	if w.xml {
		w.b = append(w.b, xmlHeader...)
		w.openTag("ImpactRadiusResponse")
		fn(w, name)
		w.closeTag("ImpactRadiusResponse")
		return w.b
	}
	fn(w, "")
	return w.b
}

func errorResponse(rq *request, e *apiError) *response {
	w := rq.writer(256)
	if w.xml {
		w.b = append(w.b, xmlHeader...)
		w.openTag("ImpactRadiusResponse")
	} else {
		w.open("")
	}
	w.str("Status", "ERROR")
	w.str("Message", e.msg)
	if len(e.fields) > 0 {
		w.openArr("Errors")
		for _, f := range e.fields {
			w.open("Error")
			w.str("Field", f.field)
			w.str("Message", f.msg)
			w.close("Error")
		}
		w.closeArr("Errors")
	}
	if w.xml {
		w.closeTag("ImpactRadiusResponse")
	} else {
		w.close("")
	}
	return &response{status: e.status, body: w.b, contentType: contentType(rq)}
}

// finish applies body faults, writes the response and records its status.
func (s *Server) finish(w http.ResponseWriter, rq *request, resp *response) {
	if rq.a != nil {
		rq.a.ctl.Lock()
		rq.a.control.stats.ByStatus[resp.status]++
		rq.a.ctl.Unlock()
	}
	s.log.Debug("impactsim request", "method", rq.r.Method, "path", rq.path, "status", resp.status, "bytes", len(resp.body))
	if resp.status == 499 {
		return
	}
	h := w.Header()
	if resp.contentType != "" {
		h.Set("Content-Type", resp.contentType)
	}
	body := resp.body
	switch rq.fault.Kind {
	case FaultTruncated:
		if resp.status == http.StatusOK {
			body = body[:len(body)/2]
		}
	case FaultReset:
		if resp.status == http.StatusOK {
			resetMidBody(w, resp.status, body)
			return
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.status)
	if rq.r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// resetMidBody announces the full body, sends half of it and drops the
// connection (RST when the connection can be hijacked).
func resetMidBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	writeRawHead(buf, status, h)
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

func writeRawHead(buf *bufio.ReadWriter, status int, h http.Header) {
	_, _ = buf.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	for k, vs := range h {
		for _, v := range vs {
			_, _ = buf.WriteString(k + ": " + v + "\r\n")
		}
	}
	_, _ = buf.WriteString("\r\n")
}
