// Package impactsim is an in-process simulator of the impact.com REST API
// (brand "Advertisers" and partner "Mediapartners" roots), built from
// docs/impact-api.md (§9 "What the simulator implements").
//
// It is an http.Handler: mount it with httptest.NewServer(s.Handler()) in
// tests, or run cmd/impactsim. Accounts are generated deterministically from a
// seed; the simulator has its own Clock, and everything time-dependent (action
// states, ClearedDate, the Date header, rate-limit windows, bearer expiry, the
// date-window rules) reads that clock, never the wall clock. Truth returns
// typed copies of what the simulator serves, for field-by-field comparison.
//
// Where docs/impact-api.md marks a behaviour [open] the simulator is strict.
// The choices made here:
//
//   - A SID used under the other persona's root (a brand SID on
//     /Mediapartners) gets 401, like any other credential mismatch.
//   - DisableToken makes the (legacy) token answer 401. DenyEndpoint gives 403
//     {"Status":"ERROR","Message":"Access Denied"} for one resource.
//   - The 2,000 PageSize minimum applies to ActionUpdates as well as Actions,
//     as does the 10-page ceiling.
//   - The 45-day span and 3-year look-back apply to every date pair
//     (StartDate/EndDate, ActionDateStart/End, LockingDateStart/End), and
//     every pair must be complete. Dates must be YYYY-MM-DDTHH:MM:SS followed
//     by Z or ±hh:mm; anything else (date only, no zone, fractions) is 400.
//   - Query parameter names are case-sensitive (MediaPartners uses lower-case
//     startDate/endDate, as docs/impact-api.md §7.4 says).
//   - A page past the last one is 200 with an empty record array.
//   - ActionUpdates are ordered by UpdateDate, newest first; Actions by
//     CreationDate, newest first; ties by Id ascending.
//   - Automatic approval at LockingDate neither bumps the hidden lastUpdated
//     nor creates an ActionUpdate; ModifyAction and ReverseAction do both.
//   - With no rate limit set, every account has a generous hourly bucket of
//     DefaultRateLimit requests; the headers are always sent. There is one
//     bucket per SID (the partner API's per-group limits, e.g. 500/h on
//     /Actions, are not modelled separately; set a lower limit instead).
//   - An unknown but numeric CampaignId matches nothing (200, empty list).
//   - A brand account generated without media partners serves actions with
//     empty MediaPartnerId/MediaPartnerName.
//   - IR-Version / IrVersion are accepted and ignored: the shapes served are
//     brand v14 and partner v16 (Quirks.LegacyPartnersKey gives the old key).
//   - Only GET (and HEAD) exist; writes answer 405. Reports, Jobs, Ads,
//     ActionInquiries and Action Items are not simulated (404).
package impactsim
