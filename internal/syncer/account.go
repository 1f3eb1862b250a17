// Package syncer holds the domain types every part of impact-syncer speaks in:
// accounts, entities and their columns, records, windows and run results, plus
// the small interfaces the sync loop consumes. The adapters (extract for
// impact.com, load for ClickHouse, auth for credentials) depend on this package
// and never on each other; only cmd/syncer wires them together.
package syncer

import (
	"fmt"
	"time"
)

// Persona is the kind of impact.com account: a brand (advertiser) or a partner
// (media partner / publisher). It decides the API root and the record shapes.
type Persona string

const (
	Brand   Persona = "brand"
	Partner Persona = "partner"
)

// ParsePersona accepts "brand" or "partner".
func ParsePersona(s string) (Persona, error) {
	switch Persona(s) {
	case Brand, Partner:
		return Persona(s), nil
	}
	return "", fmt.Errorf("persona %q: want brand or partner", s)
}

// AuthKind says how an account authenticates.
type AuthKind string

const (
	AuthBasic AuthKind = "basic" // Account SID + Auth Token (HTTP Basic)
	AuthOAuth AuthKind = "oauth" // OAuth 2.0 refresh token
)

// Status is an account's sync status.
type Status string

const (
	StatusActive         Status = "active"
	StatusNeedsReconnect Status = "needs_reconnect"
	StatusDisabled       Status = "disabled"
)

// Account is one registered impact.com account. The secret it authenticates
// with never travels in this struct: it stays encrypted in the store and is
// opened only by the auth package.
type Account struct {
	ID                 string // our id for the account, first in every sorting key
	Persona            Persona
	SID                string // impact.com Account SID
	AuthKind           AuthKind
	Status             Status
	StatusReason       string
	StatusAt           time.Time
	MissingPermissions []string // permissions the token lacks, as an admin sees them in impact.com
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Active reports whether the account should be synced.
func (a Account) Active() bool { return a.Status == StatusActive || a.Status == "" }
