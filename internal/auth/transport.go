package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// SecretReader reads an account's sealed secret (load.AccountStore does);
// it returns syncer.ErrNotFound (wrapped) for an unknown account.
type SecretReader interface {
	Secret(ctx context.Context, id string) (syncer.SealedSecret, error)
}

// OAuthTransports authenticates an OAuth account's requests with a bearer
// token that it refreshes (and rotates) as needed.
type OAuthTransports interface {
	Transport(accountID string, base http.RoundTripper) http.RoundTripper
}

// Transports turns an account's stored credential into an authenticated
// HTTP transport: Basic with the Auth Token opened from the store, or an
// OAuth bearer.
type Transports struct {
	Keyring *Keyring        // nil when SYNCER_ENCRYPTION_KEY is unset
	Secrets SecretReader    // the sealed Auth Tokens
	OAuth   OAuthTransports // nil when OAuth is not configured
	Base    http.RoundTripper
}

// ErrNoKeyring says account secrets cannot be opened without a key.
var ErrNoKeyring = errors.New("SYNCER_ENCRYPTION_KEY is not set: it is needed to store or read account secrets (generate one with: openssl rand -base64 32)")

// For returns the account's authenticated transport. A Basic account whose
// token is empty wraps syncer.ErrNeedsReconnect.
func (t *Transports) For(ctx context.Context, acct syncer.Account) (http.RoundTripper, error) {
	switch acct.AuthKind {
	case syncer.AuthOAuth:
		if t.OAuth == nil {
			return nil, errors.New("account uses OAuth but IMPACT_OAUTH_CLIENT_ID is not configured")
		}
		return t.OAuth.Transport(acct.ID, t.Base), nil
	default:
		if t.Keyring == nil {
			return nil, ErrNoKeyring
		}
		sealed, err := t.Secrets.Secret(ctx, acct.ID)
		if err != nil {
			return nil, err
		}
		token, err := t.Keyring.Open(acct.ID, sealed)
		if err != nil {
			return nil, fmt.Errorf("opening the stored Auth Token: %w", err)
		}
		if token == "" {
			return nil, fmt.Errorf("%w: no Auth Token stored", syncer.ErrNeedsReconnect)
		}
		return &BasicTransport{SID: acct.SID, Token: token, Base: t.Base}, nil
	}
}
