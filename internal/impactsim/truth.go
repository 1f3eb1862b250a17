package impactsim

import "time"

// Truth is a typed copy of what an account serves, as of the simulator clock.
// Money is a decimal string with exactly the digits served, datetimes are
// time.Time (zero when the wire value is ""), booleans served as "true" or
// "false" are bool. Persona-specific fields are empty on the other persona.
type Truth struct {
	SID     string
	Persona Persona
	Now     time.Time
	// Home is the partner account "home" (GET /Mediapartners/{SID}); zero for brands.
	Home               AccountHome
	CompanyInformation CompanyInformation
	// Campaigns (brand shape) or PartnerCampaigns (partner shape), by Id.
	Campaigns        []Campaign
	PartnerCampaigns []PartnerCampaign
	// MediaPartners is empty for partners.
	MediaPartners []MediaPartner
	// PromoCodes (brand shape) or PartnerPromoCodes (partner shape), by Id.
	PromoCodes        []PromoCode
	PartnerPromoCodes []PartnerPromoCode
	// Actions newest CreationDate first, ties by Id.
	Actions []Action
	// ActionUpdates newest UpdateDate first, ties by Id.
	ActionUpdates []ActionUpdate
}

// AccountHome is the partner root object.
type AccountHome struct {
	Id, Name, Status, Currency string
	DateActivated              time.Time
	ApiVersion                 string
}

// Address is CompanyInformation's address shape.
type Address struct {
	AddressLine1, AddressLine2, City, State, PostalCode, Country string
}

// Contact is a CompanyInformation contact.
type Contact struct {
	UserId, Name, Email, WorkPhoneNumber, WorkPhoneNumberCountry, CellPhoneNumber, CellPhoneNumberCountry string
}

// Industry is CompanyInformation.Industry.
type Industry struct{ IndustryId, IndustryName string }

// CompanyInformation is the bare object at /CompanyInformation.
type CompanyInformation struct {
	CompanyName                 string
	Industry                    Industry
	Website                     string
	PrimaryPhoneNumber          string
	PrimaryPhoneNumberCountry   string
	SecondaryPhoneNumber        string
	SecondaryPhoneNumberCountry string
	MinimumContactRating        string
	Timezone                    string
	Currency                    string
	RegisteredForIndirectTax    bool
	IndirectTaxNumber           string
	OrganizationType            string
	EinSsnForeignTaxId          string
	CorporateAddress            Address
	BillingAddress              Address
	FinancialContact            Contact
	TechnicalContact            Contact
	CommercialContact           Contact
	SecurityContact             Contact
	// Partner extras.
	PrimaryPromotionalMethod string
	PromotionalMethods       string // comma-separated
	Description              string
	LogoImage                string
	ContentAndInterests      string
	DateOfBirth              string
	Gender                   string
	Ethnicity                string
	ParentalStatus           string
	RelationshipStatus       string
	Education                string
	Pronouns                 string
	HouseholdIncome          string
	ShippingAddress          Address
	Uri                      string
}

// Categories is Campaign.Categories.
type Categories struct {
	PrimaryCategory         string
	PrimarySubCategories    []string
	AdditionalCategory      string
	AdditionalSubCategories []string
}

// RelatedLink is Campaign.Resources.AdditionalRelatedLinks[].
type RelatedLink struct{ LinkType, LinkDisplayName, LinkUrl string }

// Resources is Campaign.Resources.
type Resources struct {
	CompanyHomepage, ExampleLandingPage, InformationPage string
	AdditionalRelatedLinks                               []RelatedLink
}

// CompanyContact is Campaign.CompanyContacts[].
type CompanyContact struct{ FirstName, LastName, EmailAddress, PhoneNumber string }

// GatewayTrackingSettings is Campaign.GatewayTrackingSettings.
type GatewayTrackingSettings struct {
	DefaultLandingPage                     string
	MediaPartnerTrackingTemplate           string
	CampaignTrackingTemplate               string
	SSLSupport                             bool
	DeepLinking                            bool
	DeepLinkDomains                        string
	ThirdPartyGatewayUrl                   string
	ThirdPartyGatewayQueryStringParameters string
	UniqueClickWindowLength                string
	UniqueClickWindowType                  string
}

// DirectTrackingSettings is Campaign.DirectTrackingSettings.
type DirectTrackingSettings struct{ UnidentifiedName, SessionWindowLength string }

// Campaign is a brand program (GET /Advertisers/{SID}/Campaigns).
type Campaign struct {
	Id                        string
	Name                      string
	State                     string
	Type                      string
	Categories                Categories
	ShortDescription          string
	LongDescription           string
	ListInMarketplace         bool
	DisplayServicingAgency    bool
	Rating                    string
	SearchKeywords            string
	ShippingRegions           []string
	Resources                 Resources
	CompanyContacts           []CompanyContact
	GiftCardPayouts           bool
	TrademarkBidding          bool
	ThirdPartyImpressionPixel string
	MobileReadyAds            bool
	DisplayFutureAds          bool
	PromoCodeTracking         bool
	TrackingDomain            string
	SiteDefinition            string
	ImpressionTracking        bool
	ViewThroughCrediting      bool
	IdentityMatching          string
	HasStandDownPolicy        bool
	GatewayTrackingSettings   GatewayTrackingSettings
	DirectTrackingSettings    DirectTrackingSettings
	Uri                       string
}

// PartnerCampaign is a joined program (GET /Mediapartners/{SID}/Campaigns).
type PartnerCampaign struct {
	AdvertiserId        string
	AdvertiserName      string
	AdvertiserUrl       string
	CampaignId          string
	CampaignName        string
	CampaignUrl         string
	CampaignDescription string
	Type                string
	ShippingRegions     []string
	CampaignLogoUri     string
	PublicTermsUri      string
	ContractStatus      string
	ContractUri         string
	TrackingLink        string
	HasStandDownPolicy  bool
	AllowsDeeplinking   bool
	DeeplinkDomains     []string
	Uri                 string
}

// MPAddress is MediaPartner.Address.
type MPAddress struct{ Country, Address1, Address2, City, State, PostalCode string }

// Phone is a country + number pair.
type Phone struct{ Country, Number string }

// PromotionalMethod is MediaPartner.PromotionalMethods[] (IsPrimary is a JSON bool).
type PromotionalMethod struct {
	Type      string
	IsPrimary bool
}

// Property is MediaPartner.Properties[].
type Property struct {
	Id, Name, Type, Platform, Url string
	Doe, Dlu                      time.Time
}

// Group is a partner group.
type Group struct{ GroupId, GroupName string }

// Program is MediaPartner.Programs[].
type Program struct {
	Id, Name, ContractId, ContractName string
	JoinDate, ExpirationDate           time.Time
	Groups                             []Group
}

// ContactPhone is MediaPartner.Contacts[].Phones[].
type ContactPhone struct{ Country, Number, Type string }

// PartnerContact is MediaPartner.Contacts[] (IsPrimary is a JSON bool).
type PartnerContact struct {
	FirstName, LastName string
	Labels              []string
	Email               string
	Phones              []ContactPhone
	IsPrimary           bool
}

// LinkedAccount is MediaPartner.LinkedAccounts[].
type LinkedAccount struct {
	Id, Reason string
	Date       time.Time
}

// PartnerValues is MediaPartner.PartnerValues.
type PartnerValues struct{ Value1, Value2, Value3 string }

// MediaPartner is a brand's partner (list key "Partners").
type MediaPartner struct {
	Id                    string
	Name                  string
	Description           string
	Website               string
	State                 string
	Address               MPAddress
	Phone                 Phone
	Currency              string
	Timezone              string
	IndirectTax           Phone
	PartnerType           string
	PromotionalMethods    []PromotionalMethod
	PromotionalCountries  []string
	Properties            []Property
	PromotionalCategories []string
	Programs              []Program
	Contacts              []PartnerContact
	LinkedAccounts        []LinkedAccount
	PartnerValues         PartnerValues
	AccountManager        string
	DateCreated           time.Time
	DateLastUpdated       time.Time
	CreatedBy             string
	LastUpdatedBy         string
	Uri                   string
}

// DealProduct is PromoCode.DealProducts[].
type DealProduct struct {
	ProductName, ProductImageUrl                         string
	ProductBeforePriceAmount, ProductBeforePriceCurrency string
	ProductAfterPriceAmount, ProductAfterPriceCurrency   string
}

// PromoCode is a brand promo code.
type PromoCode struct {
	Id                               string
	Code                             string
	Type                             string
	CreditPolicy                     string
	CampaignId                       string
	CampaignName                     string
	AssignedPartnerId                string
	AssignedPartnerName              string
	CreatedDate                      time.Time
	StartDate                        time.Time
	EndDate                          time.Time
	State                            string
	DealId                           string
	DealName                         string
	DealDescription                  string
	DealState                        string
	DealType                         string
	DealScope                        string
	DealProducts                     []DealProduct
	DealCategories                   string
	DealStartDate                    time.Time
	DealEndDate                      time.Time
	DealDefaultPromoCode             string
	DealRestrictedMediaPartners      []string
	DealRestrictedMediaPartnerGroups []string
	DiscountType                     string
	DiscountAmount                   string
	DiscountCurrency                 string
	DiscountPercent                  string
	DiscountMaximumPercent           string
	DiscountPercentRangeStart        string
	DiscountPercentRangeEnd          string
	Gift                             string
	RebateAmount                     string
	RebateCurrency                   string
	MinimumPurchaseAmount            string
	MinimumPurchaseAmountCurrency    string
	MaximumSavingsAmount             string
	MaximumSavingsCurrency           string
	PurchaseLimitQuantity            string
	BogoBuyQuantity                  string
	BogoBuyName                      string
	BogoBuyScope                     string
	BogoBuyImageUrl                  string
	BogoGetQuantity                  string
	BogoGetName                      string
	BogoGetScope                     string
	BogoGetImageUrl                  string
	BogoGetDiscountType              string
	BogoGetDiscountAmount            string
	BogoGetDiscountCurrency          string
	BogoGetDiscountPercent           string
	SynchAdsPromoCodes               string
	Uri                              string
}

// Ref is the {Id,Name,Uri,LogoUri} shape in partner promo codes.
type Ref struct{ Id, Name, Uri, LogoUri string }

// DealRef is PartnerPromoCode.Deal.
type DealRef struct{ Id, Name, Uri string }

// PartnerPromoCode is a partner promo code.
type PartnerPromoCode struct {
	Id          string
	Code        string
	State       string
	Program     Ref
	Advertiser  Ref
	Deal        DealRef
	MatchMode   string
	CreditRule  string
	CreatedDate time.Time
	StartDate   time.Time
	EndDate     time.Time
	Uri         string
}

// Action is one action. Brand-only: MediaPartnerId, MediaPartnerName,
// ClientCost, CustomerId, CustomerStatus, CustomerPostCode, IpAddress,
// CallerId, Note. Partner-only: SubId1-3.
type Action struct {
	Id                string
	CampaignId        string
	CampaignName      string
	ActionTrackerId   string
	ActionTrackerName string
	EventCode         string
	MediaPartnerId    string
	MediaPartnerName  string
	State             string
	AdId              string
	ClientCost        string
	Payout            string
	DeltaPayout       string
	IntendedPayout    string
	Amount            string
	DeltaAmount       string
	IntendedAmount    string
	Currency          string
	ReferringDate     time.Time
	EventDate         time.Time
	CreationDate      time.Time
	LockingDate       time.Time
	ClearedDate       time.Time
	ReferringType     string
	ReferringDomain   string
	PromoCode         string
	Oid               string
	CustomerId        string
	CustomerStatus    string
	CustomerPostCode  string
	CustomerArea      string
	CustomerCity      string
	CustomerRegion    string
	CustomerCountry   string
	IpAddress         string
	SharedId          string
	CallerId          string
	Note              string
	SubId1            string
	SubId2            string
	SubId3            string
	Uri               string
	// LastUpdated is the hidden last-updated time StartDate/EndDate filter
	// on. It is not served.
	LastUpdated time.Time
}

// ActionUpdate is one change-feed record. Brand-only: MediaPartnerId,
// Disposition, DefaultPayoutRate. Partner-only: ReportingState,
// DefaultPayout, DefaultPayoutCurrency, SubId1-3, PaystubId.
type ActionUpdate struct {
	Id                            string
	ActionId                      string
	CampaignId                    string
	ActionTrackerId               string
	EventTypeId                   string
	EventTypeName                 string
	EventCode                     string
	MediaPartnerId                string
	State                         string
	StateDetail                   string
	StateDetailDescription        string
	AdId                          string
	Disposition                   string
	ReportingState                string
	DeltaPayout                   string
	DeltaAmount                   string
	Currency                      string
	Category                      string
	Sku                           string
	Quantity                      string
	CatalogName                   string
	CatalogCategory               string
	CatalogDescription            string
	CatalogManufacturer           string
	CatalogOriginalFormatCategory string
	CatalogSubCategory            string
	PayoutLevel                   string
	DefaultPayoutRate             string
	DefaultPayout                 string
	DefaultPayoutCurrency         string
	ContractId                    string
	UpdateDate                    time.Time
	LockingDate                   time.Time
	ClearingDate                  time.Time
	ActionDate                    time.Time
	Oid                           string
	CustomerId                    string
	CustomerStatus                string
	SharedId                      string
	SubId1                        string
	SubId2                        string
	SubId3                        string
	PaystubId                     string
	ActionUri                     string
	Uri                           string
}
