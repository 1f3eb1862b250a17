package auth

import (
	"errors"
	"net/http"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// BasicTransport authenticates every request with HTTP Basic: the Account
// SID as user name and the Auth Token as password. It clones the request and
// never changes the caller's.
type BasicTransport struct {
	SID   string
	Token syncer.Secret
	// Base sends the request; nil means http.DefaultTransport.
	Base http.RoundTripper
}

var _ http.RoundTripper = (*BasicTransport)(nil)

// RoundTrip implements http.RoundTripper.
func (t *BasicTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.SID == "" || t.Token == "" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("basic auth: the Account SID or Auth Token is empty")
	}
	r := req.Clone(req.Context())
	r.SetBasicAuth(t.SID, t.Token.Reveal())
	return base(t.Base).RoundTrip(r)
}

func base(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}
