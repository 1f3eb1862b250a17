package extract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// errorEnvelope is impact.com's documented error body.
type errorEnvelope struct {
	Status  string `json:"Status"`
	Message string `json:"Message"`
	Errors  any    `json:"Errors"`
}

// checkResponse turns every non-2xx response into a typed error.
func checkResponse(e syncer.Entity, resp *http.Response, body []byte, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	endpoint := Resource(e)
	msg, details := envelopeMessage(body)
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized:
		return &syncer.UnauthorizedError{Endpoint: endpoint, Message: orStatus(msg, code)}
	case code == http.StatusForbidden:
		return &syncer.ForbiddenError{Endpoint: endpoint, Permission: e.Permission(), Message: orStatus(msg, code)}
	case code == http.StatusTooManyRequests:
		info := readLimitHeaders(resp.Header, now)
		at := info.retryAt
		if at.IsZero() {
			at = info.reset
		}
		return &syncer.RateLimitedError{Endpoint: endpoint, RetryAt: at}
	case code >= 500:
		return &syncer.TransientError{Endpoint: endpoint, Status: code, Err: fmt.Errorf("%s", orStatus(msg, code))}
	case code >= 400 && isTooManyPages(msg, details):
		// 400 expected; its status is undocumented (docs/impact-api.md §3.4), the
		// message asks to narrow the dates or raise the PageSize
		return &TooManyPagesError{Endpoint: endpoint, Message: msg}
	}
	inv := &syncer.InvalidError{Endpoint: endpoint, Status: resp.StatusCode, Message: orStatus(msg, resp.StatusCode), Errors: details}
	if isTooOld(msg, details) {
		return &syncer.TooOldError{Endpoint: endpoint, Message: msg, Err: inv}
	}
	return inv
}

func orStatus(msg string, code int) string {
	if msg != "" {
		return msg
	}
	return http.StatusText(code)
}

// envelopeMessage reads Message and Errors from an error body, tolerating
// empty, HTML or otherwise unexpected bodies.
func envelopeMessage(body []byte) (string, []string) {
	var env errorEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		s := strings.TrimSpace(string(body))
		if s == "" || strings.HasPrefix(s, "<") {
			return "", nil // an empty or HTML body says nothing useful
		}
		return snippet(body), nil
	}
	var details []string
	switch errs := env.Errors.(type) {
	case []any:
		for _, e := range errs {
			details = append(details, errorDetail(e))
		}
	case map[string]any:
		details = append(details, errorDetail(errs))
	}
	return env.Message, details
}

func errorDetail(e any) string {
	m, ok := e.(map[string]any)
	if !ok {
		return fmt.Sprint(e)
	}
	field, _ := m["Field"].(string)
	msg, _ := m["Message"].(string)
	if field == "" {
		return msg
	}
	return field + ": " + msg
}

// isTooOld recognises the date rule "StartDate cannot be more than 3 years in
// the past" (reference §4.2; its exact text is undocumented).
func isTooOld(msg string, details []string) bool {
	s := strings.ToLower(msg + " " + strings.Join(details, " "))
	return (strings.Contains(s, "3 years") || strings.Contains(s, "three years")) && strings.Contains(s, "past")
}

// isTooManyPages recognises the Actions rule "no more than 10 pages". Its
// exact text is undocumented; the docs say it asks to adjust the PageSize or
// the StartDate or EndDate.
func isTooManyPages(msg string, details []string) bool {
	s := strings.ToLower(msg + " " + strings.Join(details, " "))
	return strings.Contains(s, "10 pages") || strings.Contains(s, "ten pages") ||
		strings.Contains(s, "too many results") || strings.Contains(s, "too many records") ||
		(strings.Contains(s, "pagesize") && (strings.Contains(s, "startdate") || strings.Contains(s, "enddate")))
}
