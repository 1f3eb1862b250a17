package impactsim

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// authenticate reports whether r carries valid credentials for account a
// (reached under pathPersona). It is the one place credentials are checked:
// HTTP Basic SID:Token, or an "Authorization: Bearer" access token registered
// with AddBearerToken. Callers hold a.ctl.
func authenticate(r *http.Request, a *account, pathPersona Persona, now time.Time) bool {
	if a.persona != pathPersona {
		return false // a brand SID on /Mediapartners or the reverse
	}
	c := &a.control
	if user, pass, ok := r.BasicAuth(); ok {
		return user == a.sid && !c.disabled &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(c.token)) == 1
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && tok != "" {
		exp, known := c.bearer[tok]
		return known && now.Before(exp)
	}
	return false
}
