package syncer

import (
	"context"
	"errors"
	"time"
)

// AccessResult is what CheckAccess found for one entity's endpoint.
type AccessResult string

const (
	AccessGranted AccessResult = "granted"            // the endpoint answered
	AccessMissing AccessResult = "missing_permission" // 403: the token lacks the permission named
	AccessError   AccessResult = "error"              // another failure (network, 5xx, refused credentials)
	AccessSkipped AccessResult = "skipped"            // nothing to ask with (a brand without campaigns)
)

// EntityAccess is the check of one entity's endpoint.
type EntityAccess struct {
	Entity     Entity
	Result     AccessResult
	Permission string // for AccessMissing, as an admin sees it in impact.com
	Detail     string
}

// Access is the check of an account's endpoints.
type Access struct {
	// Refused is the error of the request impact.com refused the
	// credentials on (IsCredentialDead); the check stopped there.
	Refused  error
	Entities []EntityAccess
}

// OK reports whether the credentials were accepted and every entity granted.
func (a Access) OK() bool {
	if a.Refused != nil {
		return false
	}
	for _, e := range a.Entities {
		if e.Result != AccessGranted {
			return false
		}
	}
	return true
}

// CheckAccess asks each of the account's endpoints for at most one record,
// in the order of AllEntities: Actions and ActionUpdates over the last day of
// the API's clock (now's when the source has seen none), a brand's for the
// first campaign Campaigns returned. It writes nothing.
func CheckAccess(ctx context.Context, src Source, acct Account, now func() time.Time) Access {
	var res Access
	var campaign string
	for _, e := range AllEntities {
		if !e.AvailableTo(acct.Persona) {
			continue
		}
		ea := EntityAccess{Entity: e}
		q := Query{Entity: e}
		if e == Actions || e == ActionUpdates {
			t, ok := src.ServerNow()
			if !ok {
				t = now().UTC()
			}
			q.Filter, q.Window = ByUpdated, Window{Start: t.Add(-24 * time.Hour), End: t}
			if acct.Persona == Brand {
				if campaign == "" {
					ea.Result, ea.Detail = AccessSkipped, "no campaign to ask about"
					res.Entities = append(res.Entities, ea)
					continue
				}
				q.CampaignID = campaign
			}
		}
		err := firstRecord(ctx, src, q, func(r Record) {
			if e == Campaigns && campaign == "" {
				campaign = r.ID
			}
		})
		var forbidden *ForbiddenError
		switch {
		case err == nil:
			ea.Result = AccessGranted
		case errors.As(err, &forbidden):
			ea.Result, ea.Permission, ea.Detail = AccessMissing, forbidden.Permission, forbidden.Message
		case IsCredentialDead(err):
			ea.Result, ea.Detail = AccessError, err.Error()
			res.Refused = err
		default:
			ea.Result, ea.Detail = AccessError, err.Error()
		}
		res.Entities = append(res.Entities, ea)
		if res.Refused != nil {
			break // every other request would be refused too
		}
	}
	return res
}

// firstRecord reads the query's first record (or none) and stops: a record
// that does not decode still proves the endpoint answered.
func firstRecord(ctx context.Context, src Source, q Query, seen func(Record)) error {
	for r, err := range src.Records(ctx, q) {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil
		}
		if err != nil {
			return err
		}
		seen(r)
		return nil
	}
	return nil
}
