package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// AccountTokens keeps OAuth refresh tokens in a syncer.AccountStore, sealed by
// a Keyring: it is the RefreshStore for a Manager and, through Connected, the
// OnConnected of a Callback.
//
// The sealed plaintext of an OAuth account is a small JSON record,
// {"v":1,"refresh_token":"…","saved_at":"…"}, so the time the token was last
// used travels encrypted with it. (A Basic account's sealed plaintext is its
// Auth Token, as is.)
type AccountTokens struct {
	store syncer.AccountStore
	kr    *Keyring
	now   func() time.Time
}

var _ RefreshStore = (*AccountTokens)(nil)

// NewAccountTokens returns an AccountTokens; now defaults to time.Now.
func NewAccountTokens(store syncer.AccountStore, kr *Keyring, now func() time.Time) *AccountTokens {
	if now == nil {
		now = time.Now
	}
	return &AccountTokens{store: store, kr: kr, now: now}
}

type oauthRecord struct {
	V            int       `json:"v"`
	RefreshToken string    `json:"refresh_token"`
	SavedAt      time.Time `json:"saved_at"`
}

func (s *AccountTokens) seal(accountID string, rt syncer.Secret, at time.Time) (syncer.SealedSecret, error) {
	b, err := json.Marshal(oauthRecord{V: 1, RefreshToken: rt.Reveal(), SavedAt: at.UTC()})
	if err != nil {
		return syncer.SealedSecret{}, err
	}
	defer clear(b)
	return s.kr.Seal(accountID, syncer.Secret(b))
}

// LoadRefreshToken implements RefreshStore.
func (s *AccountTokens) LoadRefreshToken(ctx context.Context, accountID string) (syncer.Secret, time.Time, error) {
	a, err := s.store.Account(ctx, accountID)
	if err != nil {
		return "", time.Time{}, err
	}
	if a.AuthKind != syncer.AuthOAuth {
		return "", time.Time{}, fmt.Errorf("account %s authenticates with %q, not OAuth", accountID, a.AuthKind)
	}
	sealed, err := s.store.Secret(ctx, accountID)
	if err != nil {
		return "", time.Time{}, err
	}
	if sealed.KeyID == "" && len(sealed.Ciphertext) == 0 {
		return "", time.Time{}, nil
	}
	pt, err := s.kr.Open(accountID, sealed)
	if err != nil {
		return "", time.Time{}, err
	}
	var rec oauthRecord
	if err := json.Unmarshal([]byte(pt.Reveal()), &rec); err != nil || rec.V != 1 {
		return "", time.Time{}, fmt.Errorf("account %s: the stored secret is not an OAuth refresh-token record (version 1)", accountID)
	}
	return syncer.Secret(rec.RefreshToken), rec.SavedAt, nil
}

// SaveRefreshToken implements RefreshStore. Saving a non-empty token also
// returns an account marked needs_reconnect to active: a freshly rotated
// token proves the connection works.
func (s *AccountTokens) SaveRefreshToken(ctx context.Context, accountID string, rt syncer.Secret) error {
	sealed, err := s.seal(accountID, rt, s.now())
	if err != nil {
		return err
	}
	if err := s.store.SetSecret(ctx, accountID, sealed); err != nil {
		return err
	}
	if rt == "" {
		return nil
	}
	a, err := s.store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if a.Status == syncer.StatusNeedsReconnect {
		return s.store.SetStatus(ctx, accountID, syncer.StatusActive, "", a.MissingPermissions)
	}
	return nil
}

// MarkNeedsReconnect implements RefreshStore. It keeps the account's list of
// missing permissions.
func (s *AccountTokens) MarkNeedsReconnect(ctx context.Context, accountID, reason string) error {
	a, err := s.store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	return s.store.SetStatus(ctx, accountID, syncer.StatusNeedsReconnect, reason, a.MissingPermissions)
}

// Connected is an OnConnected: it creates the account, or updates an
// existing one of the same persona and SID, as an active OAuth account
// holding the sealed refresh token. After it, call Manager.Forget for the
// account in a process that has a Manager.
func (s *AccountTokens) Connected(ctx context.Context, p Pending, rt syncer.Secret) error {
	if rt == "" {
		return fmt.Errorf("account %s: no refresh token to store", p.AccountID)
	}
	now := s.now().UTC()
	a, err := s.store.Account(ctx, p.AccountID)
	switch {
	case errors.Is(err, syncer.ErrNotFound):
		a = syncer.Account{ID: p.AccountID, Persona: p.Persona, SID: p.SID, CreatedAt: now}
	case err != nil:
		return err
	case a.SID != p.SID || a.Persona != p.Persona:
		return fmt.Errorf("account %s is registered as %s %s, but the authorization was started for %s %s; delete the account or use another id",
			p.AccountID, a.Persona, a.SID, p.Persona, p.SID)
	}
	a.AuthKind = syncer.AuthOAuth
	a.Status, a.StatusReason, a.StatusAt, a.UpdatedAt = syncer.StatusActive, "", now, now
	sealed, err := s.seal(p.AccountID, rt, now)
	if err != nil {
		return err
	}
	return s.store.PutAccount(ctx, a, sealed)
}
