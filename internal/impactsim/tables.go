package impactsim

// Fixed vocabularies the generator draws from. Read-only.

var brandWords1 = []string{"Northwind", "Bluepeak", "Cedar", "Harbor", "Summit", "Maple", "Ironwood", "Lumen", "Silverline", "Redstone", "Brightwater", "Oakridge", "Evergreen", "Copperfield", "Westbrook", "Clearview"}
var brandWords2 = []string{"Outdoor", "Home", "Apparel", "Beauty", "Electronics", "Pets", "Kitchen", "Travel", "Fitness", "Books", "Garden", "Toys", "Coffee", "Footwear", "Optics", "Audio"}

var categoryTable = []struct{ cat, sub string }{
	{"Sports, Outdoor & Fitness", "Camping & Hiking"},
	{"Home & Garden", "Furniture"},
	{"Clothing & Apparel", "Women's Apparel"},
	{"Health & Beauty", "Skin Care"},
	{"Computers & Electronics", "Audio"},
	{"Pets", "Pet Supplies"},
	{"Food & Drink", "Coffee & Tea"},
	{"Travel", "Hotels"},
}

var partnerWords1 = []string{"Trailhead", "Cash", "Deal", "Savvy", "Thrifty", "Budget", "Smart", "Coupon", "Review", "Daily", "Gear", "Style", "Family", "Urban", "Frugal", "Happy"}
var partnerWords2 = []string{"Deals Blog", "Backly", "Hunters", "Shopper", "Saver", "Picks", "Finds", "Guide", "Network", "Rewards", "Journal", "Hub", "Insider", "Weekly", "Lab", "Corner"}

var firstNames = []string{"Dana", "Lee", "Ari", "Sam", "Jordan", "Alex", "Morgan", "Casey", "Robin", "Taylor", "Jamie", "Avery", "Riley", "Quinn", "Parker", "Drew"}
var lastNames = []string{"Reyes", "Park", "Stone", "Okafor", "Nguyen", "Smith", "Garcia", "Kowalski", "Haddad", "Ibrahim", "Larsen", "Moreau", "Tanaka", "Silva", "Brennan", "Fischer"}

type custLocation struct{ post, area, city, region, country string }

var custLocations = []custLocation{
	{"98109", "206", "Seattle", "Washington", "US"},
	{"97205", "503", "Portland", "Oregon", "US"},
	{"94103", "415", "San Francisco", "California", "US"},
	{"90012", "213", "Los Angeles", "California", "US"},
	{"83702", "208", "Boise", "Idaho", "US"},
	{"80202", "303", "Denver", "Colorado", "US"},
	{"73301", "512", "Austin", "Texas", "US"},
	{"60601", "312", "Chicago", "Illinois", "US"},
	{"10001", "212", "New York", "New York", "US"},
	{"02108", "617", "Boston", "Massachusetts", "US"},
	{"33101", "305", "Miami", "Florida", "US"},
	{"30303", "404", "Atlanta", "Georgia", "US"},
	{"", "", "Toronto", "Ontario", "CA"},
	{"", "", "Vancouver", "British Columbia", "CA"},
	{"", "", "London", "England", "GB"},
	{"", "", "", "", "US"},
}

var refTypes = []string{"CLICK_COOKIE", "CLICK_FINGERPRINT", "PROMOCODE", "IMPRESSION_COOKIE", "CALL", "REPORTED_PARTNER_ID"}

const (
	refClickCookie = iota
	refClickFingerprint
	refPromoCode
	refImpression
	refCall
	refReported
)

var subID2s = []string{"sidebar", "header", "newsletter", "", "footer", "email"}

var trackerNames = []string{"Online Sale", "Lead", "App Install", "Subscription"}

var partnerStates = []string{"ACTIVE", "ACTIVE", "ACTIVE", "ACTIVE", "PENDING", "EXPIRED", "SUSPENDED", "DEACTIVATED"}

var promoMethods = []string{"CONTENT", "COUPON", "LOYALTY", "EMAIL", "SOCIAL", "SEARCH"}

var promoWords = []string{"SPRING", "SUMMER", "FALL", "WINTER", "WELCOME", "SAVE", "FREESHIP", "VIP", "FLASH", "HOLIDAY"}

var industries = []struct{ id, name string }{
	{"5941", "Sporting Goods Stores"},
	{"5712", "Furniture Stores"},
	{"5651", "Family Clothing Stores"},
	{"5977", "Cosmetic Stores"},
	{"5732", "Electronics Stores"},
	{"5995", "Pet Shops"},
}
