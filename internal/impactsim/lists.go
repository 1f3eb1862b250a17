package impactsim

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

var (
	catalogPaging        = pageLimits{def: 1000, min: 1, max: MaxPageSize}
	partnerCampPaging    = pageLimits{def: 100, min: 1, max: MaxPageSize}
	partnerPromoPaging   = pageLimits{def: 100, min: 50, max: 1000}
	errMalformedQuery    = badRequest("Malformed query string")
	errResourceNotFound  = notFound("Resource not found")
	errNoSuchRecordFound = notFound("Record not found")
)

// catalogQuery parses the query and paging of a non-Actions list.
func catalogQuery(rq *request, lim pageLimits) (url.Values, paging, *apiError) {
	q, err := url.ParseQuery(rq.rawQuery)
	if err != nil {
		return nil, paging{}, errMalformedQuery
	}
	pg, e := parsePaging(q, lim)
	return q, pg, e
}

// oneOf reports whether v passes a filter on key (absent filter: true);
// repeated and comma-separated values are alternatives.
func oneOf(q url.Values, key, v string) bool {
	vs, ok := q[key]
	if !ok {
		return true
	}
	for _, item := range vs {
		for _, x := range strings.Split(item, ",") {
			if strings.EqualFold(strings.TrimSpace(x), v) {
				return true
			}
		}
	}
	return false
}

// dateFilter parses an optional datetime filter.
func dateFilter(q url.Values, key string) (time.Time, bool, *apiError) {
	v, ok := first(q, key)
	if !ok {
		return time.Time{}, false, nil
	}
	t, valid := parseAPIDate(v)
	if !valid {
		return t, false, badRequest("Invalid date format for "+key+"; use YYYY-MM-DDTHH:MM:SSZ", fieldError{key, "Invalid date"})
	}
	return t, true, nil
}

func (s *Server) campaigns(rq *request) ([]byte, *apiError) {
	a := rq.a
	if rq.id != "" {
		k, ok := a.campaignByID(rq.id)
		if !ok {
			return nil, errNoSuchRecordFound
		}
		c := a.camps[k]
		if c.brand != nil {
			return s.single(rq, "Campaign", func(w *writer, name string) { writeCampaign(w, name, c.brand) }), nil
		}
		return s.single(rq, "Campaign", func(w *writer, name string) { writePartnerCampaign(w, name, c.partner) }), nil
	}
	lim := catalogPaging
	if a.persona == Partner {
		lim = partnerCampPaging
	}
	q, pg, e := catalogQuery(rq, lim)
	if e != nil {
		return nil, e
	}
	var sel []*campaign
	for _, c := range a.camps {
		switch {
		case c.brand != nil && oneOf(q, "State", c.brand.State) && (q.Get("Name") == "" || strings.EqualFold(q.Get("Name"), c.brand.Name)):
			sel = append(sel, c)
		case c.partner != nil && oneOf(q, "InsertionOrderStatus", c.partner.ContractStatus):
			sel = append(sel, c)
		}
	}
	return s.list(rq, "Campaigns", len(sel), pg, func(w *writer, name string, k int) {
		if c := sel[k]; c.brand != nil {
			writeCampaign(w, name, c.brand)
		} else {
			writePartnerCampaign(w, name, c.partner)
		}
	}), nil
}

func (s *Server) mediaPartners(rq *request) ([]byte, *apiError) {
	a := rq.a
	if rq.id != "" {
		k := slices.IndexFunc(a.partners, func(p MediaPartner) bool { return p.Id == rq.id })
		if k < 0 {
			return nil, errNoSuchRecordFound
		}
		return s.single(rq, "Partner", func(w *writer, name string) { writeMediaPartner(w, name, &a.partners[k]) }), nil
	}
	q, pg, e := catalogQuery(rq, catalogPaging)
	if e != nil {
		return nil, e
	}
	from, hasFrom, e := dateFilter(q, "startDate")
	if e != nil {
		return nil, e
	}
	to, hasTo, e := dateFilter(q, "endDate")
	if e != nil {
		return nil, e
	}
	var sel []*MediaPartner
	for k := range a.partners {
		p := &a.partners[k]
		inCampaign := q.Get("CampaignId") == "" || slices.ContainsFunc(p.Programs, func(pr Program) bool { return oneOf(q, "CampaignId", pr.Id) })
		if oneOf(q, "Id", p.Id) && oneOf(q, "State", p.State) && inCampaign &&
			(!hasFrom || !p.DateLastUpdated.Before(from)) && (!hasTo || !p.DateLastUpdated.After(to)) {
			sel = append(sel, p)
		}
	}
	key := "Partners"
	if rq.quirks.LegacyPartnersKey {
		key = "MediaPartners"
	}
	return s.list(rq, key, len(sel), pg, func(w *writer, name string, k int) { writeMediaPartner(w, name, sel[k]) }), nil
}

func (s *Server) promoCodes(rq *request) ([]byte, *apiError) {
	a := rq.a
	if a.persona == Partner {
		return s.partnerPromoCodes(rq)
	}
	if rq.id != "" {
		k := slices.IndexFunc(a.promos, func(p PromoCode) bool { return p.Id == rq.id })
		if k < 0 {
			return nil, errNoSuchRecordFound
		}
		return s.single(rq, "PromoCode", func(w *writer, name string) { writePromoCode(w, name, &a.promos[k]) }), nil
	}
	q, pg, e := catalogQuery(rq, catalogPaging)
	if e != nil {
		return nil, e
	}
	from, hasFrom, e := dateFilter(q, "StartDate")
	if e != nil {
		return nil, e
	}
	to, hasTo, e := dateFilter(q, "EndDate")
	if e != nil {
		return nil, e
	}
	var sel []*PromoCode
	for k := range a.promos {
		p := &a.promos[k]
		if oneOf(q, "CampaignId", p.CampaignId) && oneOf(q, "Code", p.Code) && oneOf(q, "State", p.State) &&
			(!hasFrom || !p.StartDate.Before(from)) && (!hasTo || (!p.EndDate.IsZero() && !p.EndDate.After(to))) {
			sel = append(sel, p)
		}
	}
	return s.list(rq, "PromoCodes", len(sel), pg, func(w *writer, name string, k int) { writePromoCode(w, name, sel[k]) }), nil
}

func (s *Server) partnerPromoCodes(rq *request) ([]byte, *apiError) {
	a := rq.a
	if rq.id != "" {
		k := slices.IndexFunc(a.ppromos, func(p PartnerPromoCode) bool { return p.Id == rq.id })
		if k < 0 {
			return nil, errNoSuchRecordFound
		}
		return s.single(rq, "PromoCode", func(w *writer, name string) { writePartnerPromoCode(w, name, &a.ppromos[k]) }), nil
	}
	q, pg, e := catalogQuery(rq, partnerPromoPaging)
	if e != nil {
		return nil, e
	}
	var sel []*PartnerPromoCode
	for k := range a.ppromos {
		p := &a.ppromos[k]
		if oneOf(q, "ProgramId", p.Program.Id) && oneOf(q, "AdvertiserId", p.Advertiser.Id) && oneOf(q, "State", p.State) &&
			oneOf(q, "MatchMode", p.MatchMode) && oneOf(q, "CreditRule", p.CreditRule) && oneOf(q, "DealId", p.Deal.Id) {
			sel = append(sel, p)
		}
	}
	return s.list(rq, "PromoCodes", len(sel), pg, func(w *writer, name string, k int) { writePartnerPromoCode(w, name, sel[k]) }), nil
}
