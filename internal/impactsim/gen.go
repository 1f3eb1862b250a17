package impactsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // America/Los_Angeles and friends without system tzdata
)

const day = 24 * 3600

// newRand returns the deterministic generator for seed and stream.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream*0x9e3779b97f4a7c15+1))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func validateSpec(spec *AccountSpec) error {
	var bad []string
	if !validSID(spec.SID) {
		bad = append(bad, "SID must be 1-64 characters from A-Z a-z 0-9 . _ -")
	}
	if spec.Token == "" {
		bad = append(bad, "Token must be non-empty")
	}
	if spec.Persona != Brand && spec.Persona != Partner {
		bad = append(bad, fmt.Sprintf("Persona %q is neither brand nor partner", spec.Persona))
	}
	if spec.Campaigns < 0 || spec.Actions < 0 || spec.MediaPartners < 0 || spec.PromoCodes < 0 {
		bad = append(bad, "counts must not be negative")
	}
	if spec.Actions > MaxActionsPerAccount {
		bad = append(bad, fmt.Sprintf("Actions must be at most %d", MaxActionsPerAccount))
	}
	if spec.PromoCodes > 60000 || spec.Campaigns > 60000 {
		bad = append(bad, "PromoCodes and Campaigns must be at most 60000")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrBadSpec, strings.Join(bad, "; "))
	}
	if spec.Location == nil {
		loc, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSpec, err)
		}
		spec.Location = loc
	}
	if spec.History <= 0 {
		spec.History = DefaultHistory
	}
	if spec.Actions > 0 && spec.Campaigns == 0 {
		spec.Campaigns = 1
	}
	return nil
}

func validSID(sid string) bool {
	if sid == "" || len(sid) > 64 || strings.HasSuffix(sid, ".json") {
		return false
	}
	for _, c := range sid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// generate builds an account from spec as of now. spec must be validated.
func generate(spec AccountSpec, now time.Time) *account {
	a := &account{
		sid:      spec.SID,
		seed:     spec.Seed,
		persona:  spec.Persona,
		loc:      spec.Location,
		rng:      newRand(spec.Seed, 99),
		currency: "USD",
		touched:  map[uint32]*touch{},
	}
	if spec.Persona == Brand {
		a.root = "/Advertisers/" + spec.SID
	} else {
		a.root = "/Mediapartners/" + spec.SID
	}
	a.control = control{token: spec.Token, limit: DefaultRateLimit, bearer: map[string]time.Time{}, denied: map[string]bool{}}
	nowU := now.Unix()

	r := newRand(spec.Seed, 1)
	a.genCompany(r, now)
	r = newRand(spec.Seed, 2)
	for k := 0; k < spec.Campaigns; k++ {
		a.addCampaign(r, now)
	}
	if spec.Persona == Brand {
		a.genPartners(newRand(spec.Seed, 3), spec.MediaPartners, now, spec.History)
	}
	a.genPromos(newRand(spec.Seed, 4), spec.PromoCodes, now)
	a.genActions(newRand(spec.Seed, 5), spec.Actions, nowU, int64(spec.History/time.Second))
	return a
}

func (a *account) inLoc(sec int64) time.Time { return time.Unix(sec, 0).In(a.loc) }

func localMidnight(t time.Time, addDays int) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d+addDays, 0, 0, 0, 0, t.Location())
}

func slug(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func timezoneLabel(loc *time.Location) string {
	if loc.String() == "America/Los_Angeles" {
		return "(GMT -08:00) Pacific Time (US & Canada); Tijuana"
	}
	_, off := time.Date(2026, 1, 15, 12, 0, 0, 0, loc).Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("(GMT %c%02d:%02d) %s", sign, off/3600, off/60%60, loc.String())
}

func (a *account) genCompany(r *rand.Rand, now time.Time) {
	w1, w2 := pick(r, brandWords1), pick(r, brandWords2)
	if a.persona == Partner {
		w1, w2 = pick(r, partnerWords1), pick(r, partnerWords2)
	}
	name := w1 + " " + w2
	domain := slug(name) + ".example"
	a.selfDomain = domain
	ind := pick(r, industries)
	loc := pick(r, custLocations[:12])
	addr := Address{AddressLine1: strconv.Itoa(100+r.IntN(9000)) + " Harbor Ave", AddressLine2: "Suite " + strconv.Itoa(100+r.IntN(800)), City: loc.city, State: strings.ToUpper(loc.region), PostalCode: loc.post, Country: loc.country}
	phone := loc.area + "555" + fmt.Sprintf("%04d", r.IntN(10000))
	contact := func() Contact {
		fn, ln := pick(r, firstNames), pick(r, lastNames)
		return Contact{UserId: strconv.Itoa(4400000 + r.IntN(99999)), Name: fn + " " + ln, Email: strings.ToLower(fn) + "@" + domain, WorkPhoneNumber: phone, WorkPhoneNumberCountry: "US"}
	}
	fin := contact()
	c := CompanyInformation{
		CompanyName:               name + " Inc.",
		Industry:                  Industry{IndustryId: ind.id, IndustryName: ind.name},
		Website:                   "https://www." + domain,
		PrimaryPhoneNumber:        phone,
		PrimaryPhoneNumberCountry: "US",
		MinimumContactRating:      strconv.Itoa(1 + r.IntN(5)),
		Timezone:                  timezoneLabel(a.loc),
		Currency:                  a.currency,
		RegisteredForIndirectTax:  r.IntN(4) == 0,
		OrganizationType:          pick(r, []string{"CORP", "LLC", "COMPANY", "SOLE_IND", "PARTNERS"}),
		EinSsnForeignTaxId:        fmt.Sprintf("%02d-%07d", 10+r.IntN(89), r.IntN(10000000)),
		CorporateAddress:          addr,
		BillingAddress:            addr,
		FinancialContact:          fin,
		TechnicalContact:          contact(),
		CommercialContact:         fin,
		Uri:                       a.root + "/CompanyInformation",
	}
	if c.RegisteredForIndirectTax {
		c.IndirectTaxNumber = fmt.Sprintf("TX%08d", r.IntN(100000000))
	}
	if a.persona == Partner {
		pm := pick(r, promoMethods)
		c.PrimaryPromotionalMethod = pm
		c.PromotionalMethods = pm + "," + pick(r, promoMethods)
		c.Description = "Hand-picked " + strings.ToLower(w2) + " for savvy shoppers."
		c.LogoImage = "https://cdn." + domain + "/logo.png"
		c.ContentAndInterests = pick(r, categoryTable).cat
		c.ShippingAddress = addr
	}
	a.company = c
	a.home = AccountHome{
		Id:            strconv.Itoa(1000000 + r.IntN(8000000)),
		Name:          c.CompanyName,
		Status:        "ACTIVE",
		Currency:      a.currency,
		DateActivated: now.AddDate(-2-r.IntN(5), -r.IntN(12), -r.IntN(28)).In(a.loc),
		ApiVersion:    "16",
	}
	if a.persona == Brand {
		a.home = AccountHome{}
	}
}

// addCampaign appends a campaign with an id above every existing one.
func (a *account) addCampaign(r *rand.Rand, now time.Time) *campaign {
	var id int64 = 10000 + int64(r.IntN(20000))
	if n := len(a.camps); n > 0 {
		id = a.camps[n-1].id + 1 + int64(r.IntN(50))
	}
	w1, w2 := pick(r, brandWords1), pick(r, brandWords2)
	name := w1 + " " + w2
	domain := slug(name) + ".example"
	cat := pick(r, categoryTable)
	c := &campaign{
		id:         id,
		idStr:      strconv.FormatInt(id, 10),
		name:       name,
		oidPrefix:  strings.ToUpper(w1[:1] + w2[:1]),
		contractID: "S-" + strconv.Itoa(1000000+r.IntN(9000000)),
		rate:       3 + r.IntN(10),
		category:   cat.cat,
		skuPrefix:  strings.ToUpper(w1[:2] + "-" + w2[:3]),
	}
	c.prefix = c.idStr + "." + strconv.Itoa(1000+r.IntN(9000)) + "."
	c.trackers[0] = tracker{id: strconv.Itoa(50000 + r.IntN(40000)), name: trackerNames[0]}
	if r.IntN(3) == 0 {
		c.trackers[1] = tracker{id: strconv.Itoa(50000 + r.IntN(40000)), name: pick(r, trackerNames[1:])}
	}
	regions := []string{"US"}
	if r.IntN(2) == 0 {
		regions = append(regions, "CANADA")
	}
	standDown := r.IntN(4) == 0
	if a.persona == Brand {
		fn, ln := pick(r, firstNames), pick(r, lastNames)
		c.brand = &Campaign{
			Id:    c.idStr,
			Name:  name,
			State: pick(r, []string{"ACTIVE", "ACTIVE", "ACTIVE", "ACTIVE", "DEACTIVATED", "SETUP_COMPLETE"}),
			Type:  "Performance",
			Categories: Categories{
				PrimaryCategory:         cat.cat,
				PrimarySubCategories:    []string{cat.sub},
				AdditionalSubCategories: []string{},
			},
			ShortDescription:  "The best of " + strings.ToLower(w2) + " from " + w1 + ".",
			LongDescription:   w1 + " sells " + strings.ToLower(w2) + " products online and ships across North America.",
			ListInMarketplace: r.IntN(3) != 0,
			Rating:            strconv.Itoa(1 + r.IntN(5)),
			SearchKeywords:    strings.ToLower(w2) + ", " + strings.ToLower(w1),
			ShippingRegions:   regions,
			Resources: Resources{
				CompanyHomepage:        "https://www." + domain,
				AdditionalRelatedLinks: []RelatedLink{},
			},
			CompanyContacts:    []CompanyContact{{FirstName: fn, LastName: ln, EmailAddress: "partners@" + domain, PhoneNumber: "+1 206 555 0" + strconv.Itoa(100+r.IntN(900))}},
			MobileReadyAds:     true,
			PromoCodeTracking:  r.IntN(2) == 0,
			TrackingDomain:     slug(w1) + ".pxf.example",
			IdentityMatching:   "NONE",
			HasStandDownPolicy: standDown,
			GatewayTrackingSettings: GatewayTrackingSettings{
				DefaultLandingPage:      "https://www." + domain + "/",
				SSLSupport:              true,
				DeepLinking:             true,
				DeepLinkDomains:         domain,
				UniqueClickWindowLength: "24h",
				UniqueClickWindowType:   "ROLLING",
			},
			DirectTrackingSettings: DirectTrackingSettings{SessionWindowLength: "30"},
			Uri:                    a.root + "/Campaigns/" + c.idStr,
		}
		if r.IntN(3) == 0 {
			c.brand.Resources.AdditionalRelatedLinks = []RelatedLink{{LinkType: "FAQ", LinkDisplayName: "Partner FAQ", LinkUrl: "https://www." + domain + "/partners/faq"}}
		}
	} else {
		adv := strconv.Itoa(600000 + r.IntN(300000))
		c.advID = adv
		status := "Active"
		if r.IntN(8) == 0 {
			status = "Expired"
		}
		base := a.root + "/Campaigns/" + c.idStr
		c.partner = &PartnerCampaign{
			AdvertiserId:        adv,
			AdvertiserName:      name + " Inc.",
			AdvertiserUrl:       "https://www." + domain,
			CampaignId:          c.idStr,
			CampaignName:        name,
			CampaignUrl:         "https://www." + domain,
			CampaignDescription: "The best of " + strings.ToLower(w2) + " from " + w1 + ".",
			Type:                "Performance",
			ShippingRegions:     regions,
			CampaignLogoUri:     base + "/Logo",
			PublicTermsUri:      base + "/PublicTerms",
			ContractStatus:      status,
			ContractUri:         base + "/Contracts/" + status + "?summary=false",
			HasStandDownPolicy:  standDown,
			AllowsDeeplinking:   r.IntN(4) != 0,
			DeeplinkDomains:     []string{domain},
			Uri:                 base,
		}
		if status == "Active" {
			c.partner.TrackingLink = "https://" + slug(w1) + ".pxf.example/c/" + a.home.Id + "/" + strconv.Itoa(1000000+r.IntN(900000)) + "/" + c.idStr
		}
	}
	a.camps = append(a.camps, c)
	return c
}

func (a *account) genPartners(r *rand.Rand, n int, now time.Time, history time.Duration) {
	id := 2000000 + r.IntN(500000)
	histS := int64(history / time.Second)
	for k := 0; k < n; k++ {
		id += 1 + r.IntN(5000)
		name := pick(r, partnerWords1) + " " + pick(r, partnerWords2)
		if k >= len(partnerWords1)*len(partnerWords2)/4 {
			name += " " + strconv.Itoa(k)
		}
		domain := slug(name) + ".example"
		idStr := strconv.Itoa(id)
		loc := pick(r, custLocations[:12])
		created := now.Add(-time.Duration(365*day+r.Int64N(4*365*day)) * time.Second).In(a.loc)
		updated := a.inLoc(now.Unix() - r.Int64N(histS+1))
		fn, ln := pick(r, firstNames), pick(r, lastNames)
		phone := loc.area + "555" + fmt.Sprintf("%04d", r.IntN(10000))
		m1 := pick(r, promoMethods)
		methods := []PromotionalMethod{{Type: m1, IsPrimary: true}}
		if m2 := pick(r, promoMethods); m2 != m1 {
			methods = append(methods, PromotionalMethod{Type: m2})
		}
		mp := MediaPartner{
			Id:                    idStr,
			Name:                  name,
			Description:           "Deal roundups and reviews.",
			Website:               "https://" + domain,
			State:                 pick(r, partnerStates),
			Address:               MPAddress{Country: loc.country, Address1: strconv.Itoa(10+r.IntN(990)) + " Pine St", City: loc.city, State: loc.region, PostalCode: loc.post},
			Phone:                 Phone{Country: "US", Number: phone},
			Currency:              "USD",
			Timezone:              pick(r, []string{"America/Los_Angeles", "America/New_York", "America/Chicago", "America/Boise"}),
			PartnerType:           pick(r, []string{"MARKETPLACE", "DIRECT"}),
			PromotionalMethods:    methods,
			PromotionalCountries:  []string{"US"},
			Properties:            []Property{{Id: strconv.Itoa(80000 + r.IntN(20000)), Name: domain, Type: "WEBSITE", Url: "https://" + domain, Doe: created, Dlu: updated}},
			PromotionalCategories: []string{pick(r, categoryTable).cat},
			Contacts: []PartnerContact{{
				FirstName: fn, LastName: ln, Labels: []string{"Primary"}, Email: strings.ToLower(fn) + "@" + domain,
				Phones: []ContactPhone{{Country: "US", Number: phone, Type: "WORK"}}, IsPrimary: true,
			}},
			LinkedAccounts:  []LinkedAccount{},
			DateCreated:     created,
			DateLastUpdated: updated,
			Uri:             a.root + "/MediaPartners/" + idStr,
		}
		if r.IntN(5) == 0 {
			mp.PartnerValues.Value1 = "tier-" + strconv.Itoa(1+r.IntN(3))
		}
		mp.Programs = []Program{}
		for j, c := range a.camps {
			if j == k%len(a.camps) || r.IntN(4) == 0 {
				join := created.Add(time.Duration(r.Int64N(300*day)) * time.Second)
				mp.Programs = append(mp.Programs, Program{Id: c.idStr, Name: c.name, ContractId: c.contractID, ContractName: "Public Terms", JoinDate: join, Groups: []Group{{GroupId: strconv.Itoa(7000 + r.IntN(999)), GroupName: pick(r, []string{"Content", "Coupon", "Loyalty"})}}})
			}
			if len(mp.Programs) >= 5 {
				break
			}
		}
		a.partners = append(a.partners, mp)
		a.mprefs = append(a.mprefs, partnerRef{id: idStr, name: name, domain: domain})
	}
	// DateCreated order, as the API sorts them; ties by Id.
	slices.SortStableFunc(a.partners, func(x, y MediaPartner) int { return x.DateCreated.Compare(y.DateCreated) })
}

func (a *account) genPromos(r *rand.Rand, n int, now time.Time) {
	if len(a.camps) == 0 {
		return
	}
	id := 9000000 + r.IntN(500000)
	for k := 0; k < n; k++ {
		id += 1 + r.IntN(300)
		ci := r.IntN(len(a.camps))
		c := a.camps[ci]
		code := pick(r, promoWords) + strconv.Itoa(5+5*r.IntN(8))
		if k >= 40 {
			code += strconv.Itoa(k)
		}
		idStr := strconv.Itoa(id)
		created := now.Add(-time.Duration(r.Int64N(200*day)) * time.Second).In(a.loc)
		start := localMidnight(created, r.IntN(10))
		var end time.Time
		if r.IntN(2) == 0 {
			end = localMidnight(start, 14+r.IntN(120))
		}
		a.pcodes = append(a.pcodes, promoRef{code: code, campaign: ci})
		matchMode := "LI"
		if r.IntN(10) == 0 {
			matchMode = "RE"
		}
		credit := pick(r, []string{"ALWAYS", "INVOLVED", "WINNER"})
		if a.persona == Partner {
			state := "ACTIVE"
			switch {
			case start.After(now):
				state = "FUTUREDATE"
			case !end.IsZero() && end.Before(now):
				state = "EXPIRED"
			}
			p := PartnerPromoCode{
				Id: idStr, Code: code, State: state,
				Program:    Ref{Id: c.idStr, Name: c.name, Uri: a.root + "/Campaigns/" + c.idStr, LogoUri: a.root + "/Campaigns/" + c.idStr + "/Logo"},
				Advertiser: Ref{Id: c.advID, Name: c.name + " Inc.", Uri: a.root + "/Advertisers/" + c.advID, LogoUri: a.root + "/Advertisers/" + c.advID + "/Logo"},
				MatchMode:  matchMode, CreditRule: credit,
				CreatedDate: created, StartDate: start, EndDate: end,
				Uri: a.root + "/PromoCodes/" + idStr,
			}
			if r.IntN(3) == 0 {
				dealID := strconv.Itoa(400000 + r.IntN(99999))
				p.Deal = DealRef{Id: dealID, Name: code + " deal", Uri: a.root + "/Deals/" + dealID}
			}
			a.ppromos = append(a.ppromos, p)
			continue
		}
		state := "ACTIVE"
		if !end.IsZero() && end.Before(now) {
			state = "INACTIVE"
		}
		p := PromoCode{
			Id: idStr, Code: code, Type: matchMode, CreditPolicy: credit,
			CampaignId: c.idStr, CampaignName: c.name,
			CreatedDate: created, StartDate: start, EndDate: end, State: state,
			DealProducts:                     []DealProduct{},
			DealRestrictedMediaPartners:      []string{},
			DealRestrictedMediaPartnerGroups: []string{},
			Uri:                              a.root + "/PromoCodes/" + idStr,
		}
		if len(a.mprefs) > 0 && r.IntN(5) < 3 {
			mp := pick(r, a.mprefs)
			p.AssignedPartnerId, p.AssignedPartnerName = mp.id, mp.name
		}
		if r.IntN(3) == 0 {
			pct := 5 + 5*r.IntN(6)
			p.DealId = strconv.Itoa(400000 + r.IntN(99999))
			p.DealName = strconv.Itoa(pct) + "% off sitewide"
			p.DealDescription = "Save " + strconv.Itoa(pct) + "% on everything."
			p.DealState = "ACTIVE"
			p.DealType = "GENERAL_SALE"
			p.DealScope = "ENTIRE_STORE"
			p.DealStartDate, p.DealEndDate = start, end
			p.DealDefaultPromoCode = code
			p.DiscountType = "PERCENT"
			p.DiscountPercent = strconv.Itoa(pct)
			p.MinimumPurchaseAmount = strconv.Itoa(25+25*r.IntN(4)) + ".00"
			p.MinimumPurchaseAmountCurrency = "USD"
			p.SynchAdsPromoCodes = "false"
			if r.IntN(2) == 0 {
				p.DealProducts = []DealProduct{{ProductName: c.name + " bundle", ProductImageUrl: "https://cdn.example/p/" + p.DealId + ".jpg", ProductBeforePriceAmount: "120.00", ProductBeforePriceCurrency: "USD", ProductAfterPriceAmount: "99.00", ProductAfterPriceCurrency: "USD"}}
			}
		}
		a.promos = append(a.promos, p)
	}
}

// genActions creates n actions with CreationDate spread over (now-hist, now].
func (a *account) genActions(r *rand.Rand, n int, now, hist int64) {
	if n == 0 {
		return
	}
	created := make([]int64, n)
	for i := range created {
		created[i] = now - r.Int64N(hist)
	}
	slices.Sort(created)
	promosBy := a.promosByCampaign()
	a.acts = make([]action, 0, n)
	for _, cr := range created {
		a.acts = append(a.acts, a.newAction(r, a.pickCampaign(r), cr, promosBy))
	}
	// Creation order is serial order, so the index is the reverse.
	a.order = make([]uint32, n)
	for k := range a.order {
		a.order[k] = uint32(n - 1 - k)
	}
	// Within one CreationDate second the reversed index is Id-descending;
	// sort those short runs by Id.
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && a.acts[a.order[hi]].creation == a.acts[a.order[lo]].creation {
			hi++
		}
		if hi-lo > 1 {
			run := a.order[lo:hi]
			slices.SortFunc(run, func(i, j uint32) int {
				if a.idLess(i, j) {
					return -1
				}
				return 1
			})
		}
		lo = hi
	}
	// Some actions were modified or reversed before now.
	for i := range a.acts {
		x := &a.acts[i]
		limit := min(x.locking, now) - x.creation
		if limit <= 1 {
			continue
		}
		switch p := r.IntN(100); {
		case p < 3:
			at := x.creation + 1 + r.Int64N(limit-1)
			a.reverse(uint32(i), at)
		case p < 5:
			at := x.creation + 1 + r.Int64N(limit-1)
			amt := int64(x.amount) * int64(50+r.IntN(50)) / 100 / 100 * 100
			pay := int64(x.payout) * amt / max(int64(x.amount), 1) / 100 * 100
			a.modify(uint32(i), at, amt, pay)
		}
	}
}

func (a *account) promosByCampaign() [][]uint16 {
	by := make([][]uint16, len(a.camps))
	for k, p := range a.pcodes {
		by[p.campaign] = append(by[p.campaign], uint16(k+1))
	}
	return by
}

// pickCampaign skews volume so the first campaigns are the biggest.
func (a *account) pickCampaign(r *rand.Rand) int {
	u := r.Float64()
	return min(int(u*u*float64(len(a.camps))), len(a.camps)-1)
}

func (a *account) newAction(r *rand.Rand, ci int, creation int64, promosBy [][]uint16) action {
	c := a.camps[ci]
	x := action{
		creation: creation,
		eventLag: uint32(5 + r.IntN(600)),
		referLag: uint32(30 + r.IntN(7200)),
		campaign: uint16(ci),
		customer: r.Uint32(),
		cloc:     uint16(r.IntN(len(custLocations))),
		ad:       uint32(1400000 + (int(c.id)*37)%500000 + r.IntN(40)),
	}
	event := a.inLoc(creation - int64(x.eventLag))
	lockDays := 30 + r.IntN(31)
	if r.IntN(33) == 0 {
		lockDays = 730 // open-ended locking
	}
	lock := localMidnight(event, lockDays)
	x.locking = lock.Unix()
	x.cleared = localMidnight(lock, 5+r.IntN(26)).Unix()
	cents := int64(500 + r.IntN(20000))
	if r.IntN(10) == 0 {
		cents *= 4
	}
	x.amount = int32(cents * 100)
	if r.IntN(20) == 0 {
		bp := int64(c.rate*100 + r.IntN(100)) // basis points: 4-decimal payout
		x.payout = int32(int64(x.amount) * bp / 10000)
	} else {
		x.payout = int32((cents*int64(c.rate) + 50) / 100 * 100)
	}
	x.clientCost = int32((int64(x.payout)*118/100 + 50) / 100 * 100)
	if c.trackers[1].id != "" && r.IntN(5) == 0 {
		x.flags |= flagTracker2
	}
	if r.IntN(5) < 3 {
		x.flags |= flagNewCustomer
	}
	if len(a.mprefs) > 0 {
		x.partner = uint32(1 + r.IntN(len(a.mprefs)))
	}
	switch p := r.IntN(100); {
	case p < 10 && len(promosBy[ci]) > 0:
		x.refType = refPromoCode
		x.promo = pick(r, promosBy[ci])
	case p < 70:
		x.refType = refClickCookie
	case p < 85:
		x.refType = refClickFingerprint
	case p < 93:
		x.refType = refImpression
	case p < 97:
		x.refType = refCall
	default:
		x.refType = refReported
	}
	return x
}

// appendActions adds n actions created at now to campaign ci (-1: random).
func (a *account) appendActions(n, ci int, now int64) []string {
	promosBy := a.promosByCampaign()
	ids := make([]string, 0, n)
	for k := 0; k < n; k++ {
		c := ci
		if c < 0 {
			c = a.pickCampaign(a.rng)
		}
		a.acts = append(a.acts, a.newAction(a.rng, c, now, promosBy))
		i := uint32(len(a.acts) - 1)
		a.insertOrder(i)
		ids = append(ids, string(a.appendID(nil, i)))
	}
	return ids
}
