package extract

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// orgTypes are the schema.org types read as the company: Organization,
// LocalBusiness and their common subtypes.
var orgTypes = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`Organization Corporation LocalBusiness OnlineBusiness OnlineStore NGO
		Airline Consortium Cooperative EducationalOrganization FundingScheme GovernmentOrganization
		LibrarySystem MedicalOrganization NewsMediaOrganization PerformingGroup ResearchOrganization
		SportsOrganization WorkersUnion AnimalShelter ArchiveOrganization AutomotiveBusiness ChildCare
		Dentist DryCleaningOrLaundry EmergencyService EmploymentAgency EntertainmentBusiness
		FinancialService FoodEstablishment GovernmentOffice HealthAndBeautyBusiness
		HomeAndConstructionBusiness InternetCafe LegalService Library LodgingBusiness MedicalBusiness
		ProfessionalService RadioStation RealEstateAgent RecyclingCenter SelfStorage ShoppingCenter
		SportsActivityLocation Store TelevisionStation TouristInformationCenter TravelAgency
		AccountingService InsuranceAgency Restaurant Hotel Bakery CafeOrCoffeeShop Attorney Notary
		BankOrCreditUnion AutoDealer AutoRepair Electrician Plumber GeneralContractor HVACBusiness
		RoofingContractor ComputerStore ElectronicsStore ClothingStore HardwareStore`) {
		orgTypes[strings.ToLower(t)] = true
	}
}

// jsonLD reads the company out of one JSON-LD block: an object, an array
// of objects or a @graph. An invalid block gives nothing.
func jsonLD(u *url.URL, block []byte) []Finding {
	var v any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(block))), &v); err != nil {
		return nil
	}
	var out []Finding
	for _, n := range flattenLD(v, 0) {
		if !isOrg(n["@type"]) {
			continue
		}
		out = append(out, orgFindings(u, n)...)
		break // the first organisation is the site's own
	}
	return out
}

// flattenLD lists the objects of a JSON-LD value: array items, @graph
// items and the value itself.
func flattenLD(v any, depth int) []map[string]any {
	if depth > 4 {
		return nil
	}
	switch t := v.(type) {
	case []any:
		var out []map[string]any
		for _, x := range t {
			out = append(out, flattenLD(x, depth+1)...)
		}
		return out
	case map[string]any:
		out := []map[string]any{t}
		if g, ok := t["@graph"]; ok {
			out = append(out, flattenLD(g, depth+1)...)
		}
		return out
	}
	return nil
}

func isOrg(t any) bool {
	switch v := t.(type) {
	case string:
		v = strings.TrimPrefix(strings.TrimPrefix(v, "http://schema.org/"), "https://schema.org/")
		return orgTypes[strings.ToLower(v)]
	case []any:
		for _, x := range v {
			if isOrg(x) {
				return true
			}
		}
	}
	return false
}

// str is a JSON-LD value as text: a string, a number, the first of an
// array or an object's name or @value.
func str(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case []any:
		if len(t) > 0 {
			return str(t[0])
		}
	case map[string]any:
		for _, k := range []string{"name", "@value", "value"} {
			if s := str(t[k]); s != "" {
				return s
			}
		}
	}
	return ""
}

func orgFindings(u *url.URL, n map[string]any) []Finding {
	var out []Finding
	add := func(field string, value any, prop string) {
		if s, ok := value.(string); ok && s == "" {
			return
		}
		out = append(out, Finding{Field: field, Value: value, URL: u.String(), Source: SourceJSONLD,
			Confidence: Confidence[SourceJSONLD], Evidence: fmt.Sprintf("%v.%s", n["@type"], prop)})
	}
	add(Name, str(n["name"]), "name")
	add(LegalName, str(n["legalName"]), "legalName")
	add(Description, clip(str(n["description"]), 1000), "description")
	add(Industry, str(n["industry"]), "industry")
	add(Phone, str(n["telephone"]), "telephone")
	add(Email, strings.TrimPrefix(str(n["email"]), "mailto:"), "email")
	if y := yearOf(str(n["foundingDate"])); y > 0 {
		add(FoundedYear, y, "foundingDate")
	}
	if e, ok := employeesOf(n["numberOfEmployees"]); ok {
		add(Employees, e, "numberOfEmployees")
	}
	addr := n["address"]
	if a, ok := addr.([]any); ok && len(a) > 0 {
		addr = a[0]
	}
	if a, ok := addr.(map[string]any); ok {
		add(Street, str(a["streetAddress"]), "address.streetAddress")
		add(City, str(a["addressLocality"]), "address.addressLocality")
		add(Region, str(a["addressRegion"]), "address.addressRegion")
		add(Postcode, str(a["postalCode"]), "address.postalCode")
		add(Country, str(a["addressCountry"]), "address.addressCountry")
	}
	var same []string
	switch s := n["sameAs"].(type) {
	case string:
		same = []string{s}
	case []any:
		for _, x := range s {
			same = append(same, str(x))
		}
	}
	for _, link := range same {
		if field := socialField(link); field != "" {
			add(field, link, "sameAs")
		}
	}
	return out
}

// employeesOf reads numberOfEmployees: a number, a numeric string or a
// QuantitativeValue with value or minValue/maxValue (the upper bound is
// kept as the count's band is what segmentation reads).
func employeesOf(v any) (int, bool) {
	switch t := v.(type) {
	case float64:
		return int(t), t > 0
	case string:
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(t), ",", ""))
		return n, err == nil && n > 0
	case map[string]any:
		for _, k := range []string{"value", "maxValue", "minValue"} {
			if n, ok := employeesOf(t[k]); ok {
				return n, true
			}
		}
	}
	return 0, false
}

// yearOf is the year of a date such as 1998, 1998-04 or 1998-04-01.
func yearOf(s string) int {
	if len(s) < 4 {
		return 0
	}
	y, err := strconv.Atoi(s[:4])
	if err != nil || y < 1600 || y > 2100 {
		return 0
	}
	return y
}

// socialField is the profile field a URL belongs to, or "".
func socialField(link string) string {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || u.Path == "" || u.Path == "/" {
		return ""
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	switch {
	case host == "linkedin.com" || strings.HasSuffix(host, ".linkedin.com"):
		if strings.HasPrefix(u.Path, "/company/") || strings.HasPrefix(u.Path, "/school/") {
			return LinkedIn
		}
	case host == "twitter.com" || host == "x.com":
		if !strings.HasPrefix(u.Path, "/intent") && !strings.HasPrefix(u.Path, "/share") {
			return Twitter
		}
	case host == "facebook.com" || host == "m.facebook.com":
		if !strings.HasPrefix(u.Path, "/sharer") && !strings.HasPrefix(u.Path, "/tr") {
			return Facebook
		}
	}
	return ""
}

// clip cuts s to at most n bytes at a space.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if i := strings.LastIndexByte(s[:n], ' '); i > n/2 {
		return s[:i] + "…"
	}
	return s[:n]
}
