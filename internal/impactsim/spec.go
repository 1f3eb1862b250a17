package impactsim

import (
	"errors"
	"log/slog"
	"time"
)

// Persona is the kind of impact.com account: a brand (advertiser) served
// under /Advertisers, or a partner (media partner) under /Mediapartners.
type Persona string

const (
	Brand   Persona = "brand"
	Partner Persona = "partner"
)

// AccountSpec describes an account to generate. Zero counts stay zero, except
// that an account with actions always gets at least one campaign.
type AccountSpec struct {
	SID     string  `json:"sid"`
	Token   string  `json:"token"`
	Persona Persona `json:"persona"`
	Seed    int64   `json:"seed"`
	// Campaigns is the number of programs the brand owns, or the partner joined.
	Campaigns int `json:"campaigns"`
	// Actions is the total number of actions generated across campaigns.
	Actions int `json:"actions"`
	// MediaPartners is the number of partners of a brand (ignored for partners).
	MediaPartners int `json:"media_partners"`
	PromoCodes    int `json:"promo_codes"`
	// Location renders datetimes (DST-aware). Default America/Los_Angeles.
	Location *time.Location `json:"-"`
	// History is how far back from the clock's now EventDates are spread.
	// Default 120 days.
	History time.Duration `json:"-"`
}

// Defaults for AccountSpec and the simulator.
const (
	DefaultHistory   = 120 * 24 * time.Hour
	DefaultRateLimit = 100000
	// MaxActionsPerAccount keeps action ids at a fixed width.
	MaxActionsPerAccount = 6_000_000
)

// Errors returned by Server methods.
var (
	ErrUnknownAccount = errors.New("impactsim: unknown account")
	ErrDuplicate      = errors.New("impactsim: account already exists")
	ErrUnknownAction  = errors.New("impactsim: unknown action")
	ErrNotPending     = errors.New("impactsim: action is not PENDING")
	ErrBadSpec        = errors.New("impactsim: invalid account spec")
	ErrBadAmount      = errors.New("impactsim: invalid amount")
	ErrUnknownCamp    = errors.New("impactsim: unknown campaign")
)

// Options configure a Server.
type Options struct {
	// Now is the initial simulated time; zero means the wall clock, once.
	Now time.Time
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger
	// Latency delays every API request (not the /_sim/ admin endpoints) by
	// this much wall-clock time before it is served, honouring the request
	// context: a stand-in for the network distance to api.impact.com in
	// benchmarks. Zero means no delay. SetLatency changes it later.
	Latency time.Duration
}

// Quirks are per-account wire-format variations (docs/impact-api.md §7.0, §8).
// The zero value is the documented default shape.
type Quirks struct {
	// NumbersAsJSON renders numeric record fields (ids, money, counts) as
	// JSON numbers instead of strings. Empty values stay "".
	NumbersAsJSON bool
	// BoolsAsJSON renders "true"/"false" string fields as JSON booleans.
	BoolsAsJSON bool
	// EnvelopeNumbers renders @page, @numpages, @pagesize, @total, @start and
	// @end as JSON numbers.
	EnvelopeNumbers bool
	// SingleObjectLists renders a one-element record list, and one-element
	// nested arrays of objects, as a bare object instead of an array.
	SingleObjectLists bool
	// LegacyPartnersKey uses the legacy list key "MediaPartners" instead of
	// "Partners" on brand GET /MediaPartners.
	LegacyPartnersKey bool
	// ExtraFields adds unknown fields to every record:
	// "NewFieldFromV15":"x" and "NewObjectFromV16":{"Flag":"true"}.
	ExtraFields bool
	// UTCDates renders datetimes in UTC with milliseconds
	// ("2017-03-02T22:18:42.000Z", the old doc style) instead of the account
	// offset.
	UTCDates bool
	// CalendarLookback counts the 3-year look-back of the date filters in
	// calendar years (now less 3 years: 1,096 days when they hold a 29
	// February) instead of 3×365 days.
	CalendarLookback bool
}

// HeaderFamily chooses the rate-limit headers sent. Combine one family with
// the optional flags: HeadersBoth|HeadersLowerCase|HeadersResetEpoch.
type HeaderFamily int

const (
	// HeadersAuto sends the brand family on /Advertisers and the partner
	// family on /Mediapartners.
	HeadersAuto HeaderFamily = 0
	// HeadersBrand: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset.
	HeadersBrand HeaderFamily = 1
	// HeadersPartner: X-RateLimit-Limit-hour, X-RateLimit-Remaining-hour,
	// RateLimit-Reset, and Retry-After on 429.
	HeadersPartner HeaderFamily = 2
	// HeadersBoth sends both families (as seen live); Retry-After on 429.
	HeadersBoth HeaderFamily = HeadersBrand | HeadersPartner
	// HeadersLowerCase writes header names in lower case on the wire.
	HeadersLowerCase HeaderFamily = 1 << 4
	// HeadersResetEpoch sends the reset headers as Unix epoch seconds
	// instead of seconds from now. Retry-After stays in seconds.
	HeadersResetEpoch HeaderFamily = 1 << 5
)

// FaultKind is a kind of injected failure.
type FaultKind int

const (
	// FaultHTML500 answers 500 with an HTML body.
	FaultHTML500 FaultKind = iota + 1
	// FaultEmpty500 answers 500 with an empty body.
	FaultEmpty500
	// FaultStatus answers Fault.Status (502, 503, 504...) with an HTML body.
	FaultStatus
	// FaultTruncated answers 200 with the JSON body cut in the middle
	// (Content-Length matches the cut body).
	FaultTruncated
	// FaultSlow sleeps Fault.Delay (wall clock, honouring the request
	// context) and then serves the request normally.
	FaultSlow
	// Fault429 answers 429 with the error envelope; Retry-After is sent with
	// Fault.RetryAfter seconds when it is > 0, and omitted otherwise.
	Fault429
	// FaultReset announces the full Content-Length, writes half the body and
	// closes the connection (hijacked, RST).
	FaultReset
	// FaultNextBackwards makes @nextpageuri point to page 1.
	FaultNextBackwards
	// FaultNextLoop makes @nextpageuri point to the current page.
	FaultNextLoop
	// FaultTotalMismatch reports @total and @numpages larger than the real
	// result (so the next page, when followed, is empty).
	FaultTotalMismatch
	// FaultUnknownListKey puts the records under "Records" instead of the
	// resource's list key.
	FaultUnknownListKey
	// FaultBadDate renders the first record's first datetime field as
	// "not-a-date".
	FaultBadDate
	// FaultBadAmount renders the first record's first money field as "12,34".
	FaultBadAmount
)

// Fault is one injected failure, consumed by the next matching request(s).
type Fault struct {
	Kind FaultKind
	// Times is how many requests it applies to; 0 means 1.
	Times int
	// Match limits the fault to some requests: "" matches any request; a
	// resource name ("Actions", "PromoCodes", "CompanyInformation") matches
	// that resource (single-object GETs included); a value beginning with
	// "/" matches when it is a substring of the request path and query.
	Match string
	// Status for FaultStatus (default 503).
	Status int
	// Delay for FaultSlow.
	Delay time.Duration
	// RetryAfter seconds for Fault429 (0: no Retry-After header).
	RetryAfter int
}

// Stats counts the requests an account received.
type Stats struct {
	Requests     int            `json:"requests"`
	ByStatus     map[int]int    `json:"by_status"`
	ByResource   map[string]int `json:"by_resource"`
	RateLimited  int            `json:"rate_limited"`  // 429s sent by the bucket
	FaultsServed int            `json:"faults_served"` // requests that consumed a fault
}
