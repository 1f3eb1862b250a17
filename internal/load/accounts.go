package load

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var _ syncer.AccountStore = (*AccountStore)(nil)

// AccountStore keeps accounts in the accounts table. Every change inserts a
// full new row with a higher version; readers use FINAL and skip rows with
// deleted = 1. Two concurrent read-modify-write updates of one account (say
// SetStatus and SetSecret at the same moment) can lose one of them: the
// sync loop serialises work per account with a lease.
type AccountStore struct {
	db *DB
}

// NewAccountStore returns an AccountStore on db.
func NewAccountStore(db *DB) *AccountStore { return &AccountStore{db: db} }

// accountRow is one row of the accounts table.
type accountRow struct {
	syncer.Account
	Secret  syncer.SealedSecret
	Deleted bool
	Version uint64
}

const accountColumns = "id, persona, sid, auth_kind, status, status_reason, status_at, missing_permissions, secret_key_id, secret_ciphertext, created_at, updated_at, deleted, version"

var accountInsertColumns = []string{"id", "persona", "sid", "auth_kind", "status", "status_reason", "status_at",
	"missing_permissions", "secret_key_id", "secret_ciphertext", "created_at", "updated_at", "deleted", "version"}

// PutAccount creates or replaces the account and its secret. CreatedAt is
// kept from an existing account (or set to now when zero); UpdatedAt is now.
func (s *AccountStore) PutAccount(ctx context.Context, a syncer.Account, secret syncer.SealedSecret) error {
	if a.ID == "" {
		return fmt.Errorf("put account: empty id")
	}
	cur, found, err := s.read(ctx, a.ID)
	if err != nil {
		return err
	}
	now := s.db.now()
	if found && !cur.Deleted && a.CreatedAt.IsZero() {
		a.CreatedAt = cur.CreatedAt
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.StatusAt.IsZero() {
		a.StatusAt = now
	}
	a.UpdatedAt = now
	return s.write(ctx, accountRow{Account: a, Secret: secret, Version: s.db.versions.After(cur.Version)})
}

// Account returns the account, or ErrNotFound.
func (s *AccountStore) Account(ctx context.Context, id string) (syncer.Account, error) {
	r, err := s.live(ctx, id)
	return r.Account, err
}

// Accounts returns every account that is not deleted, ordered by id.
func (s *AccountStore) Accounts(ctx context.Context) ([]syncer.Account, error) {
	rows, err := s.query(ctx, "SELECT "+accountColumns+" FROM accounts FINAL")
	if err != nil {
		return nil, err
	}
	var out []syncer.Account
	for _, r := range rows {
		if !r.Deleted {
			out = append(out, r.Account)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Secret returns the account's sealed secret, or ErrNotFound.
func (s *AccountStore) Secret(ctx context.Context, id string) (syncer.SealedSecret, error) {
	r, err := s.live(ctx, id)
	return r.Secret, err
}

// SetSecret replaces the sealed secret only.
func (s *AccountStore) SetSecret(ctx context.Context, id string, secret syncer.SealedSecret) error {
	r, err := s.live(ctx, id)
	if err != nil {
		return err
	}
	r.Secret = secret
	r.UpdatedAt = s.db.now()
	r.Version = s.db.versions.After(r.Version)
	return s.write(ctx, r)
}

// SetStatus records the status, its reason and the permissions the token
// lacks; StatusAt becomes now.
func (s *AccountStore) SetStatus(ctx context.Context, id string, status syncer.Status, reason string, missing []string) error {
	r, err := s.live(ctx, id)
	if err != nil {
		return err
	}
	now := s.db.now()
	r.Status, r.StatusReason, r.MissingPermissions, r.StatusAt, r.UpdatedAt = status, reason, missing, now, now
	r.Version = s.db.versions.After(r.Version)
	return s.write(ctx, r)
}

// DeleteAccount writes a tombstone (deleted = 1, secret cleared). Older rows
// holding the secret disappear from disk when ClickHouse merges the table's
// parts; readers never see them again.
func (s *AccountStore) DeleteAccount(ctx context.Context, id string) error {
	r, err := s.live(ctx, id)
	if err != nil {
		return err
	}
	r.Deleted = true
	r.Secret = syncer.SealedSecret{}
	r.UpdatedAt = s.db.now()
	r.Version = s.db.versions.After(r.Version)
	return s.write(ctx, r)
}

func (s *AccountStore) live(ctx context.Context, id string) (accountRow, error) {
	r, found, err := s.read(ctx, id)
	if err != nil {
		return accountRow{}, err
	}
	if !found || r.Deleted {
		return accountRow{}, fmt.Errorf("account %q: %w", id, syncer.ErrNotFound)
	}
	return r, nil
}

// read returns the current row, deleted or not.
func (s *AccountStore) read(ctx context.Context, id string) (accountRow, bool, error) {
	rows, err := s.query(ctx, "SELECT "+accountColumns+" FROM accounts FINAL WHERE id = ?", id)
	if err != nil || len(rows) == 0 {
		return accountRow{}, false, err
	}
	return rows[0], true, nil
}

func (s *AccountStore) query(ctx context.Context, q string, args ...any) ([]accountRow, error) {
	rows, err := s.db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", describeTable(err, "accounts"))
	}
	defer rows.Close()
	var out []accountRow
	for rows.Next() {
		var (
			r                                 accountRow
			persona, authKind, status, cipher string
			statusAt, createdAt, updatedAt    time.Time
			deleted                           uint8
		)
		err := rows.Scan(&r.ID, &persona, &r.SID, &authKind, &status, &r.StatusReason, &statusAt,
			&r.MissingPermissions, &r.Secret.KeyID, &cipher, &createdAt, &updatedAt, &deleted, &r.Version)
		if err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
		r.Persona, r.AuthKind, r.Status = syncer.Persona(persona), syncer.AuthKind(authKind), syncer.Status(status)
		r.StatusAt, r.CreatedAt, r.UpdatedAt = fromDateTime(statusAt), fromDateTime(createdAt), fromDateTime(updatedAt)
		r.Deleted = deleted == 1
		if len(r.MissingPermissions) == 0 {
			r.MissingPermissions = nil
		}
		if cipher != "" {
			if r.Secret.Ciphertext, err = base64.StdEncoding.DecodeString(cipher); err != nil {
				return nil, fmt.Errorf("account %q: secret_ciphertext is not base64: %w", r.ID, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	return out, nil
}

func (s *AccountStore) write(ctx context.Context, r accountRow) error {
	missing := r.MissingPermissions
	if missing == nil {
		missing = []string{}
	}
	var deleted uint8
	if r.Deleted {
		deleted = 1
	}
	row := []any{r.ID, string(r.Persona), r.SID, string(r.AuthKind), string(r.Status), r.StatusReason,
		toDateTime(r.StatusAt), missing, r.Secret.KeyID, base64.StdEncoding.EncodeToString(r.Secret.Ciphertext),
		toDateTime(r.CreatedAt), toDateTime(r.UpdatedAt), deleted, r.Version}
	if err := s.db.insertRows(ctx, defaultRetry, "accounts", accountInsertColumns, [][]any{row}); err != nil {
		return fmt.Errorf("account %q: %w", r.ID, err)
	}
	return nil
}
