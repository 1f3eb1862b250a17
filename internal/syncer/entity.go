package syncer

import (
	"fmt"
	"strings"
	"unicode"
)

// Entity is one kind of record synced from impact.com. Its value is also the
// name of its ClickHouse table.
type Entity string

const (
	CompanyInformation Entity = "company_information"
	Campaigns          Entity = "campaigns"
	MediaPartners      Entity = "media_partners"
	PromoCodes         Entity = "promo_codes"
	Actions            Entity = "actions"
	ActionUpdates      Entity = "action_updates"
)

// AllEntities lists every entity in the order a sync runs them: campaigns
// before the per-campaign action fan-out.
var AllEntities = []Entity{CompanyInformation, Campaigns, MediaPartners, PromoCodes, Actions, ActionUpdates}

// CatalogEntities are small and refreshed whole on every run.
var CatalogEntities = []Entity{CompanyInformation, Campaigns, MediaPartners, PromoCodes}

// ActivityEntities are the large, windowed, incrementally synced entities.
var ActivityEntities = []Entity{Actions, ActionUpdates}

// ParseEntities parses a comma-separated list such as "campaigns,actions".
// An empty string means every entity.
func ParseEntities(s string) ([]Entity, error) {
	if strings.TrimSpace(s) == "" {
		return append([]Entity(nil), AllEntities...), nil
	}
	var out []Entity
	seen := map[Entity]bool{}
	var bad []string
	for _, part := range strings.Split(s, ",") {
		e := Entity(strings.TrimSpace(part))
		if _, ok := Tables[e]; !ok {
			bad = append(bad, string(e))
			continue
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unknown entities %s (known: %s)", strings.Join(bad, ", "), entityNames())
	}
	return out, nil
}

func entityNames() string {
	names := make([]string, len(AllEntities))
	for i, e := range AllEntities {
		names[i] = string(e)
	}
	return strings.Join(names, ", ")
}

// AvailableTo reports whether the persona's API serves the entity.
func (e Entity) AvailableTo(p Persona) bool {
	return !(e == MediaPartners && p == Partner)
}

// Permission is the permission an impact.com admin grants to let a token read
// the entity, named as in Settings → Technical → API → Access Token.
func (e Entity) Permission() string {
	switch e {
	case CompanyInformation:
		return "Account → Retrieve company information"
	case Campaigns:
		return "Campaigns → Retrieve campaigns"
	case MediaPartners:
		return "Partners → Retrieve media partners"
	case PromoCodes:
		return "Promo Codes → Retrieve promo codes"
	case Actions, ActionUpdates:
		return "Actions → Retrieve actions"
	}
	return string(e)
}

// Type is what a column holds, and how an API value becomes it. (The load
// package maps each to its ClickHouse type.)
type Type int

const (
	String   Type = iota // text; "" stays ""
	Decimal              // money, exact to 8 decimal places, never a float; "" → 0
	DateTime             // an instant to the second, any offset converted to UTC; "" → the Unix epoch
	Bool                 // 0/1 from "true"/"false" or JSON booleans
	Int                  // a 64-bit integer from "3" or 3
	Strings              // a list of text; a single value becomes a one-element list
	JSON                 // the value's JSON text; a single object where an array is documented becomes [object]
)

// Column maps one documented API field to one typed ClickHouse column.
type Column struct {
	Name   string   // snake_case column name
	Fields []string // API field paths (dotted for nested objects); the first one present wins
	Type   Type
}

// Table describes an entity's typed columns, in the order rows carry them.
// The loader adds account_id, raw, version and load-time columns around them.
type Table struct {
	Entity  Entity
	Columns []Column
	// Key is the index in Columns of the record's identity within an account
	// (-1 for CompanyInformation, of which an account has exactly one).
	Key int
	// Partition is the index of an immutable DateTime column whose month
	// partitions the table, or -1 for an unpartitioned table.
	Partition int
}

// ColumnIndex returns the index of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// SnakeCase turns an API field path into a column name: "CampaignId" →
// "campaign_id", "SSLSupport" → "ssl_support", "Categories.PrimaryCategory" →
// "categories_primary_category", "SubId1" → "sub_id1".
func SnakeCase(path string) string {
	var b strings.Builder
	for i, part := range strings.Split(path, ".") {
		if i > 0 {
			b.WriteByte('_')
		}
		r := []rune(part)
		for j, c := range r {
			if unicode.IsUpper(c) && j > 0 {
				prev := r[j-1]
				nextLower := j+1 < len(r) && unicode.IsLower(r[j+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(c))
		}
	}
	return b.String()
}

// col declares a column named after its first field path.
func col(t Type, fields ...string) Column {
	return Column{Name: SnakeCase(fields[0]), Fields: fields, Type: t}
}

func strs(fields ...string) []Column {
	out := make([]Column, len(fields))
	for i, f := range fields {
		out[i] = col(String, f)
	}
	return out
}

func typed(t Type, fields ...string) []Column {
	out := make([]Column, len(fields))
	for i, f := range fields {
		out[i] = col(t, f)
	}
	return out
}

func join(parts ...[]Column) []Column {
	var out []Column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func prefixed(prefix string, t Type, fields ...string) []Column {
	out := make([]Column, len(fields))
	for i, f := range fields {
		out[i] = col(t, prefix+"."+f)
	}
	return out
}

func newTable(e Entity, key, partition string, cols []Column) *Table {
	t := &Table{Entity: e, Columns: cols, Key: -1, Partition: -1}
	if key != "" {
		if t.Key = t.ColumnIndex(key); t.Key < 0 {
			panic("syncer: key column " + key + " missing from " + string(e))
		}
	}
	if partition != "" {
		if t.Partition = t.ColumnIndex(partition); t.Partition < 0 {
			panic("syncer: partition column " + partition + " missing from " + string(e))
		}
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[c.Name] {
			panic("syncer: duplicate column " + c.Name + " in " + string(e))
		}
		seen[c.Name] = true
	}
	return t
}

var contactFields = []string{"UserId", "Name", "Email", "WorkPhoneNumber", "WorkPhoneNumberCountry", "CellPhoneNumber", "CellPhoneNumberCountry"}
var addressFields = []string{"AddressLine1", "AddressLine2", "City", "State", "PostalCode", "Country"}

// Tables holds every entity's column layout. Brand and partner shapes share one
// table per entity: a column a persona does not send stays empty.
var Tables = map[Entity]*Table{
	CompanyInformation: newTable(CompanyInformation, "", "", join(
		strs("CompanyName"),
		prefixed("Industry", String, "IndustryId", "IndustryName"),
		strs("Website", "PrimaryPhoneNumber", "PrimaryPhoneNumberCountry", "SecondaryPhoneNumber", "SecondaryPhoneNumberCountry"),
		typed(Int, "MinimumContactRating"),
		strs("Timezone", "Currency"),
		typed(Bool, "RegisteredForIndirectTax"),
		strs("IndirectTaxNumber", "OrganizationType", "EinSsnForeignTaxId"),
		prefixed("CorporateAddress", String, addressFields...),
		prefixed("BillingAddress", String, addressFields...),
		prefixed("FinancialContact", String, contactFields...),
		prefixed("TechnicalContact", String, contactFields...),
		prefixed("CommercialContact", String, contactFields...),
		prefixed("SecurityContact", String, contactFields...),
		// partner extras
		strs("PrimaryPromotionalMethod", "PromotionalMethods", "Description", "LogoImage"),
		typed(JSON, "ContentAndInterests"),
		strs("DateOfBirth", "Gender", "Ethnicity", "ParentalStatus", "RelationshipStatus", "Education", "Pronouns", "HouseholdIncome"),
		prefixed("ShippingAddress", String, addressFields...),
		strs("Uri"),
	)),
	Campaigns: newTable(Campaigns, "id", "", join(
		[]Column{{Name: "id", Fields: []string{"Id", "CampaignId"}, Type: String}},
		strs("Name", "State", "Type"),
		prefixed("Categories", String, "PrimaryCategory"),
		prefixed("Categories", Strings, "PrimarySubCategories"),
		prefixed("Categories", String, "AdditionalCategory"),
		prefixed("Categories", Strings, "AdditionalSubCategories"),
		strs("ShortDescription", "LongDescription", "SearchKeywords"),
		typed(Bool, "ListInMarketplace", "DisplayServicingAgency", "GiftCardPayouts", "TrademarkBidding",
			"MobileReadyAds", "DisplayFutureAds", "PromoCodeTracking", "ImpressionTracking",
			"ViewThroughCrediting", "HasStandDownPolicy"),
		typed(Int, "Rating"),
		typed(Strings, "ShippingRegions"),
		prefixed("Resources", String, "CompanyHomepage", "ExampleLandingPage", "InformationPage"),
		prefixed("Resources", JSON, "AdditionalRelatedLinks"),
		typed(JSON, "CompanyContacts"),
		strs("ThirdPartyImpressionPixel", "TrackingDomain", "SiteDefinition", "IdentityMatching"),
		prefixed("GatewayTrackingSettings", String, "DefaultLandingPage", "MediaPartnerTrackingTemplate", "CampaignTrackingTemplate"),
		prefixed("GatewayTrackingSettings", Bool, "SSLSupport", "DeepLinking"),
		prefixed("GatewayTrackingSettings", Strings, "DeepLinkDomains"),
		prefixed("GatewayTrackingSettings", String, "ThirdPartyGatewayUrl", "ThirdPartyGatewayQueryStringParameters",
			"UniqueClickWindowLength", "UniqueClickWindowType"),
		prefixed("DirectTrackingSettings", String, "UnidentifiedName", "SessionWindowLength"),
		// partner shape (joined programs)
		strs("AdvertiserId", "AdvertiserName", "AdvertiserUrl", "CampaignId", "CampaignName", "CampaignUrl",
			"CampaignDescription", "CampaignLogoUri", "PublicTermsUri", "ContractStatus", "ContractUri", "TrackingLink"),
		typed(Bool, "AllowsDeeplinking"),
		typed(Strings, "DeeplinkDomains"),
		strs("Uri"),
	)),
	MediaPartners: newTable(MediaPartners, "id", "", join(
		strs("Id", "Name", "Description", "Website", "State"),
		prefixed("Address", String, "Country", "Address1", "Address2", "City", "State", "PostalCode"),
		prefixed("Phone", String, "Country", "Number"),
		strs("Currency", "Timezone"),
		prefixed("IndirectTax", String, "Country", "Number"),
		strs("PartnerType"),
		typed(JSON, "PromotionalMethods"),
		typed(Strings, "PromotionalCountries", "PromotionalCategories"),
		typed(JSON, "Properties", "Programs", "Contacts", "LinkedAccounts"),
		prefixed("PartnerValues", String, "Value1", "Value2", "Value3"),
		strs("AccountManager", "CreatedBy", "LastUpdatedBy"),
		typed(DateTime, "DateCreated", "DateLastUpdated"),
		strs("Uri"),
	)),
	PromoCodes: newTable(PromoCodes, "id", "", join(
		strs("Id", "Code", "Type", "CreditPolicy", "CampaignId", "CampaignName", "AssignedPartnerId", "AssignedPartnerName"),
		typed(DateTime, "CreatedDate", "StartDate", "EndDate"),
		strs("State"),
		[]Column{
			{Name: "deal_id", Fields: []string{"DealId", "Deal.Id"}, Type: String},
			{Name: "deal_name", Fields: []string{"DealName", "Deal.Name"}, Type: String},
		},
		strs("DealDescription", "DealState", "DealType", "DealScope"),
		typed(JSON, "DealProducts"),
		typed(Strings, "DealCategories"),
		typed(DateTime, "DealStartDate", "DealEndDate"),
		strs("DealDefaultPromoCode"),
		typed(Strings, "DealRestrictedMediaPartners", "DealRestrictedMediaPartnerGroups"),
		strs("DiscountType"),
		typed(Decimal, "DiscountAmount"),
		strs("DiscountCurrency"),
		typed(Decimal, "DiscountPercent", "DiscountMaximumPercent", "DiscountPercentRangeStart", "DiscountPercentRangeEnd"),
		strs("Gift"),
		typed(Decimal, "RebateAmount"),
		strs("RebateCurrency"),
		typed(Decimal, "MinimumPurchaseAmount"),
		strs("MinimumPurchaseAmountCurrency"),
		typed(Decimal, "MaximumSavingsAmount"),
		strs("MaximumSavingsCurrency"),
		typed(Int, "PurchaseLimitQuantity", "BogoBuyQuantity"),
		strs("BogoBuyName", "BogoBuyScope", "BogoBuyImageUrl"),
		typed(Int, "BogoGetQuantity"),
		strs("BogoGetName", "BogoGetScope", "BogoGetImageUrl", "BogoGetDiscountType"),
		typed(Decimal, "BogoGetDiscountAmount"),
		strs("BogoGetDiscountCurrency"),
		typed(Decimal, "BogoGetDiscountPercent"),
		strs("SynchAdsPromoCodes"),
		// partner shape
		prefixed("Program", String, "Id", "Name", "Uri", "LogoUri"),
		prefixed("Advertiser", String, "Id", "Name", "Uri", "LogoUri"),
		prefixed("Deal", String, "Uri"),
		strs("MatchMode", "CreditRule", "Uri"),
	)),
	Actions: newTable(Actions, "id", "creation_date", join(
		strs("Id", "CampaignId", "CampaignName", "ActionTrackerId", "ActionTrackerName", "EventCode",
			"MediaPartnerId", "MediaPartnerName", "State", "AdId"),
		typed(Decimal, "ClientCost", "Payout", "DeltaPayout", "IntendedPayout", "Amount", "DeltaAmount", "IntendedAmount"),
		strs("Currency"),
		typed(DateTime, "ReferringDate", "EventDate", "CreationDate", "LockingDate", "ClearedDate"),
		strs("ReferringType", "ReferringDomain", "PromoCode", "Oid", "CustomerId", "CustomerStatus",
			"CustomerPostCode", "CustomerArea", "CustomerCity", "CustomerRegion", "CustomerCountry",
			"IpAddress", "SharedId", "CallerId", "Note", "SubId1", "SubId2", "SubId3", "Uri"),
	)),
	ActionUpdates: newTable(ActionUpdates, "id", "update_date", join(
		strs("Id", "ActionId", "CampaignId", "ActionTrackerId", "EventTypeId", "EventTypeName", "EventCode",
			"MediaPartnerId", "State", "StateDetail", "StateDetailDescription", "AdId", "Disposition", "ReportingState"),
		typed(Decimal, "DeltaPayout", "DeltaAmount"),
		strs("Currency", "Category", "Sku"),
		typed(Decimal, "Quantity"),
		strs("CatalogName", "CatalogCategory", "CatalogDescription", "CatalogManufacturer",
			"CatalogOriginalFormatCategory", "CatalogSubCategory", "PayoutLevel"),
		typed(Decimal, "DefaultPayoutRate", "DefaultPayout"),
		strs("DefaultPayoutCurrency", "ContractId"),
		typed(DateTime, "UpdateDate", "LockingDate", "ClearingDate", "ActionDate"),
		strs("Oid", "CustomerId", "CustomerStatus", "SharedId", "SubId1", "SubId2", "SubId3", "PaystubId",
			"ActionUri", "Uri"),
	)),
}
