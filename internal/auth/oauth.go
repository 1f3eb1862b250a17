package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// impact.com's OAuth 2.0 endpoints (authorization-server metadata at
// https://app.impact.com/.well-known/oauth-authorization-server).
const (
	ImpactAuthorizeURL = "https://app.impact.com/oauth2/authorize"
	ImpactTokenURL     = "https://app.impact.com/oauth2/token"
)

// ScopeOfflineAccess must be requested, or impact.com issues no refresh token.
const ScopeOfflineAccess = "offline_access"

// tokenEndpoint names the token endpoint in errors.
const tokenEndpoint = "POST /oauth2/token"

// OAuthConfig is the application's registration with impact.com. The client
// secret is used only here, on the server, and sent only to TokenURL.
type OAuthConfig struct {
	AuthorizeURL string // default ImpactAuthorizeURL
	TokenURL     string // default ImpactTokenURL
	ClientID     string
	ClientSecret syncer.Secret
	RedirectURL  string   // a registered redirect URI, where the callback handler listens
	Scopes       []string // must include offline_access
}

// WithDefaults fills in impact.com's endpoints where they are empty.
func (c OAuthConfig) WithDefaults() OAuthConfig {
	if c.AuthorizeURL == "" {
		c.AuthorizeURL = ImpactAuthorizeURL
	}
	if c.TokenURL == "" {
		c.TokenURL = ImpactTokenURL
	}
	return c
}

// Validate reports every problem at once. URLs must be https, except on a
// loopback host (local testing).
func (c OAuthConfig) Validate() error {
	var errs []error
	for _, u := range []struct{ name, v string }{
		{"authorize URL", c.AuthorizeURL}, {"token URL", c.TokenURL}, {"redirect URL", c.RedirectURL},
	} {
		if err := checkURL(u.v); err != nil {
			errs = append(errs, fmt.Errorf("OAuth %s: %w", u.name, err))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("OAuth client id is empty"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("OAuth client secret is empty"))
	}
	offline := false
	for _, s := range c.Scopes {
		if s == ScopeOfflineAccess {
			offline = true
		}
		if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
			errs = append(errs, fmt.Errorf("OAuth scope %q: scopes may not be empty or contain spaces", s))
		}
	}
	if !offline {
		errs = append(errs, fmt.Errorf("OAuth scopes %q must include %s, or impact.com issues no refresh token and every connection ends when the first access token expires",
			c.Scopes, ScopeOfflineAccess))
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", scrub(s))
	}
	if u.User != nil {
		return fmt.Errorf("%q may not carry credentials", scrub(s))
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q must use https (plain http is accepted only for localhost)", scrub(s))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrub drops the user info, query and fragment of a URL for an error message.
func scrub(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func (c OAuthConfig) oauth2() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret.Reveal(),
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.AuthorizeURL,
			TokenURL:  c.TokenURL,
			AuthStyle: oauth2.AuthStyleInParams, // client_secret_post, as the guide shows
		},
		RedirectURL: c.RedirectURL,
		Scopes:      c.Scopes,
	}
}

// TokenError is an error response of impact.com's token endpoint (RFC 6749
// §5.2) that retrying cannot fix: a refused code or refresh token
// (invalid_grant) or a refused client (invalid_client, a wrong client secret).
type TokenError struct {
	Status      int
	Code        string // RFC 6749 "error", e.g. invalid_grant
	Description string // "error_description", cut short and cleaned
}

func (e *TokenError) Error() string {
	s := fmt.Sprintf("impact.com token endpoint refused the request (HTTP %d %s)", e.Status, e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// InvalidGrant reports whether err carries an invalid_grant answer.
func InvalidGrant(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Code == "invalid_grant"
}

// classify turns an error of a golang.org/x/oauth2 token call into a
// *TokenError (permanent), a *syncer.TransientError (5xx, 429, network,
// unreadable answer) or the context's error. It never keeps the response
// body, which is not ours to log.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := clean(re.ErrorCode, 64)
		desc := clean(re.ErrorDescription, 300)
		if status >= 500 || status == http.StatusTooManyRequests || code == "temporarily_unavailable" || code == "server_error" ||
			(code == "" && status < 400) {
			msg := "unexpected answer"
			if code != "" {
				msg = code
				if desc != "" {
					msg += ": " + desc
				}
			}
			return &syncer.TransientError{Endpoint: tokenEndpoint, Status: status, Err: errors.New(msg)}
		}
		if code == "" {
			code = "(no error code)"
		}
		return &TokenError{Status: status, Code: code, Description: desc}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &syncer.TransientError{Endpoint: tokenEndpoint, Err: &url.Error{Op: ue.Op, URL: scrub(ue.URL), Err: ue.Err}}
	}
	// A 2xx answer that did not parse or lacked an access token.
	return &syncer.TransientError{Endpoint: tokenEndpoint, Status: http.StatusOK, Err: errors.New(clean(err.Error(), 200))}
}

// clean keeps text from a remote party printable and short.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return strings.TrimSpace(s)
}

// withClient hands hc to golang.org/x/oauth2 for its token requests.
func withClient(ctx context.Context, hc *http.Client) context.Context {
	if hc == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}
