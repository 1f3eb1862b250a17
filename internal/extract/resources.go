package extract

import (
	"fmt"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Resource is the entity's path segment below the account root
// (/Advertisers/{SID} or /Mediapartners/{SID}; docs/impact-api.md §1.2). It
// also names the endpoint in errors (the Endpoint of the typed errors) and in
// the rate limiter's groups; callers outside this package (metrics, checks)
// ask here rather than the domain.
func Resource(e syncer.Entity) string {
	switch e {
	case syncer.CompanyInformation:
		return "CompanyInformation"
	case syncer.Campaigns:
		return "Campaigns"
	case syncer.MediaPartners:
		return "MediaPartners"
	case syncer.PromoCodes:
		return "PromoCodes"
	case syncer.Actions:
		return "Actions"
	case syncer.ActionUpdates:
		return "ActionUpdates"
	}
	return string(e)
}

// listKeys are the JSON keys a list response may hold the entity's records
// under, preferred first (docs/impact-api.md §1.2, §8.4). CompanyInformation
// has none: it is a bare object.
func listKeys(e syncer.Entity) []string {
	switch e {
	case syncer.CompanyInformation:
		return nil
	case syncer.MediaPartners:
		return []string{"Partners", "MediaPartners"}
	}
	return []string{Resource(e)}
}

// TooManyPagesError is the Actions rule that one query may not span more than
// ten pages (docs/impact-api.md §3.4). The client splits the window itself;
// the error reaches the caller only when the smallest window still holds too
// many pages.
type TooManyPagesError struct {
	Endpoint string
	Message  string
}

func (e *TooManyPagesError) Error() string {
	return fmt.Sprintf("impact.com %s: result exceeds 10 pages: %s", e.Endpoint, e.Message)
}
