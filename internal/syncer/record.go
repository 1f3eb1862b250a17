package syncer

import (
	"fmt"
	"time"
)

// Record is one decoded impact.com record, ready to load.
//
// Values are aligned with the entity's Table.Columns and hold, by column type:
// String and JSON → string; Decimal → decimal.Decimal (github.com/shopspring/decimal);
// DateTime → time.Time in UTC (the Unix epoch for an empty value); Bool → uint8;
// Int → int64; Strings → []string (never nil).
type Record struct {
	ID     string // value of the key column ("" for company information)
	Values []any
	Raw    string // the record exactly as received
}

// Window is a closed time interval [Start, End], both ends inclusive as the
// impact.com date filters are.
type Window struct {
	Start, End time.Time
}

func (w Window) String() string {
	return w.Start.UTC().Format(time.RFC3339) + "/" + w.End.UTC().Format(time.RFC3339)
}

// Duration is End − Start.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }

// DateFilter selects which date an Actions or ActionUpdates query filters on.
type DateFilter string

const (
	// ByUpdated filters on the hidden last-updated date (StartDate/EndDate);
	// for ActionUpdates, on UpdateDate. Creation, modification and reversal
	// move it; approval at the locking date does not.
	ByUpdated DateFilter = "updated"
	// ByEvent filters on EventDate (ActionDateStart/ActionDateEnd).
	ByEvent DateFilter = "event"
	// ByLocking filters on LockingDate (LockingDateStart/LockingDateEnd).
	ByLocking DateFilter = "locking"
)

// Query names one list request sequence: an entity, and for Actions and
// ActionUpdates a campaign (required on brand accounts) and a date window.
type Query struct {
	Entity     Entity
	CampaignID string
	Filter     DateFilter
	Window     Window // zero for catalog entities
}

func (q Query) String() string {
	s := string(q.Entity)
	if q.CampaignID != "" {
		s += " campaign " + q.CampaignID
	}
	if !q.Window.Start.IsZero() {
		s += fmt.Sprintf(" %s %s", q.Filter, q.Window)
	}
	return s
}
