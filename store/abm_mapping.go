package store

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/store/criteria"
)

// ABM module & field mapping (seed 004). Four roles, the seed's modules 1
// to 4: accounts (the master module), contacts, products and deals. Each
// is played by a module of the org; the role's system fields are the
// typed columns of the built-in module of the role's name. Five links
// join the roles through lookup fields.
const (
	RoleAccounts = "accounts"
	RoleContacts = "contacts"
	RoleProducts = "products"
	RoleDeals    = "deals"
)

// Roles lists the roles in the seed's order (modules 1, 2, 3, 4).
func Roles() []string { return []string{RoleAccounts, RoleContacts, RoleProducts, RoleDeals} }

// customRoles are the roles a custom module may play. The seed says so of
// module 1 ("any custom module where you are maintaining your customer
// accounts") and module 3 ("any custom module where you store information
// of your offerings"); contacts and deals stay the built-in modules,
// because activities (the engagement signals), cases and deal line items
// reach them by typed lookups that a custom module does not have.
var customRoles = map[string]bool{RoleAccounts: true, RoleProducts: true}

// The links between roles (seed 004, "Mapping lookup fields").
const (
	LinkAccountsContacts = "accounts_contacts"
	LinkAccountsDeals    = "accounts_deals"
	LinkProductsDeals    = "products_deals"
	LinkDealsContacts    = "deals_contacts"
	LinkAccountsProducts = "accounts_products"
)

// lineItems holds the products-deals link of built-in modules: a deal's
// line items name its products (multi-select: many products per deal,
// many deals per product).
const lineItems = "deal_line_items"

// holder is a module that may hold a link's lookup: a role (its module)
// or the deal line items, and the role the lookup points at.
type holder struct{ name, target string }

type link struct {
	name      string
	roles     [2]string
	mandatory bool
	// holders in the order the default lookup is chosen from.
	holders []holder
}

// links: accounts-products is the one optional link; the seed makes
// modules 1, 2 and 4 link to each other and products link to deals.
var links = []link{
	{LinkAccountsContacts, [2]string{RoleAccounts, RoleContacts}, true, []holder{{RoleContacts, RoleAccounts}}},
	{LinkAccountsDeals, [2]string{RoleAccounts, RoleDeals}, true, []holder{{RoleDeals, RoleAccounts}}},
	{LinkProductsDeals, [2]string{RoleProducts, RoleDeals}, true, []holder{{lineItems, RoleProducts}, {RoleDeals, RoleProducts}}},
	{LinkDealsContacts, [2]string{RoleDeals, RoleContacts}, true, []holder{{RoleDeals, RoleContacts}}},
	{LinkAccountsProducts, [2]string{RoleAccounts, RoleProducts}, false, []holder{{RoleAccounts, RoleProducts}, {RoleProducts, RoleAccounts}}},
}

// Links lists the link names.
func Links() []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.name
	}
	return out
}

// ABMMapping is an org's mapping, in the shape the API reads and writes.
// As input, a role left out (or its module left empty) is the built-in
// module of its name, a system field left out of a built-in module maps
// to its column, and a link left out gets the lookup chosen for it when
// there is one; a link given as null has none. UpdatedAt is output only.
type ABMMapping struct {
	Roles   map[string]RoleMapping `json:"roles"`
	Lookups map[string]*string     `json:"lookups"`
	// UpdatedAt is when the mapping was last changed; nil while the org has
	// never saved one (the defaults apply).
	UpdatedAt *time.Time `json:"updated_at"`
}

// RoleMapping is the module that plays a role and its fields, by system
// field name.
type RoleMapping struct {
	Module string                  `json:"module"`
	Fields map[string]FieldMapping `json:"fields"`
}

// FieldMapping says where a system field's value comes from: a column of
// the module (the field's own name) or attributes.<key>, and as what type.
type FieldMapping struct {
	OrgField string        `json:"org_field"`
	Type     criteria.Type `json:"type"`
}

// ErrInvalidMapping matches (errors.Is) every MappingErrors.
var ErrInvalidMapping = errors.New("invalid ABM mapping")

// MappingErrors says what is wrong with a mapping, by path
// ("roles.accounts.module", "roles.contacts.fields.title",
// "lookups.accounts_contacts").
type MappingErrors map[string]string

func (e MappingErrors) Error() string { return fieldErrors("invalid ABM mapping", e) }

// Is makes MappingErrors match ErrInvalidMapping.
func (e MappingErrors) Is(target error) bool { return target == ErrInvalidMapping }

const attributesPrefix = "attributes."

var (
	// attributeKeyRE is the form of an attribute key a mapping may name. It
	// is strict because the key is written into SQL as a string literal
	// (see attributeSQL): no quote, backslash or any other character that
	// could end or escape the literal can pass it.
	attributeKeyRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	// customFieldRE names a custom field of the mapping (a criteria field).
	customFieldRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// reservedFields are names a custom field may not take: the catalog's own
// fields and the record's identity.
var reservedFields = []string{"id", "external_id", "state", "attributes", "created_at", "updated_at"}

// criteriaType is the criteria type of a column type.
func criteriaType(t FieldType) (criteria.Type, bool) {
	switch t {
	case TypeText:
		return criteria.Text, true
	case TypeInt, TypeNumeric:
		return criteria.Number, true
	case TypeDate, TypeTimestamp:
		return criteria.Date, true
	}
	return "", false
}

// systemFields are a role's system fields: the typed columns of the
// built-in module of its name.
func systemFields(role string) map[string]criteria.Type {
	out := map[string]criteria.Type{}
	for _, f := range builtinByName[role].Fields {
		if t, ok := criteriaType(f.Type); ok {
			out[f.Name] = t
		}
	}
	return out
}

// columns are the typed columns of a module a system field can be read
// from: every field of a built-in module, the name of a custom one.
func columns(module string) map[string]criteria.Type {
	if IsBuiltinModule(module) {
		return systemFields(module)
	}
	return map[string]criteria.Type{"name": criteria.Text}
}

// DefaultABMMapping is the mapping of an org that has saved none: every
// role played by the built-in module of its name, every lookup chosen.
func DefaultABMMapping() ABMMapping {
	m, err := ResolveABMMapping(ABMMapping{})
	if err != nil {
		panic(err) // the rules above refuse their own defaults; TestDefaultMapping names it
	}
	return m
}

// ResolveABMMapping checks a mapping and fills in its defaults; a
// MappingErrors names every problem at once.
func ResolveABMMapping(in ABMMapping) (ABMMapping, error) {
	errs := MappingErrors{}
	out := ABMMapping{Roles: map[string]RoleMapping{}, Lookups: map[string]*string{}}
	for name := range in.Roles {
		if !slices.Contains(Roles(), name) {
			errs["roles."+name] = "unknown role; the roles are " + strings.Join(Roles(), ", ")
		}
	}
	bad := map[string]bool{} // roles whose module is wrong: their links cannot be judged
	for _, role := range Roles() {
		rm, ok := resolveRole(role, in.Roles[role], errs)
		if !ok {
			bad[role] = true
			continue
		}
		out.Roles[role] = rm
	}
	for name := range in.Lookups {
		if !slices.Contains(Links(), name) {
			errs["lookups."+name] = "unknown link; the links are " + strings.Join(Links(), ", ")
		}
	}
	for _, l := range links {
		if bad[l.roles[0]] || bad[l.roles[1]] {
			continue
		}
		v, given := in.Lookups[l.name]
		field, msg := resolveLookup(l, out, v, given)
		if msg != "" {
			errs["lookups."+l.name] = msg
			continue
		}
		out.Lookups[l.name] = field
	}
	if len(errs) > 0 {
		return ABMMapping{}, errs
	}
	return out, nil
}

// resolveRole checks the module playing role and its fields, adding
// problems to errs; ok is false when the module itself is wrong.
func resolveRole(role string, in RoleMapping, errs MappingErrors) (RoleMapping, bool) {
	module := in.Module
	if module == "" {
		module = role
	}
	at := "roles." + role
	switch {
	case module == role:
	case customModuleRE.MatchString(module) && customRoles[role]:
	case customModuleRE.MatchString(module):
		errs[at+".module"] = fmt.Sprintf("the %s role is played by the built-in %s module only; a custom module may play accounts or products", role, role)
		return RoleMapping{}, false
	case IsBuiltinModule(module) && customRoles[role]:
		errs[at+".module"] = fmt.Sprintf("module %q cannot play the %s role: it takes the built-in %s module or a custom module (custom_<name>)", module, role, role)
		return RoleMapping{}, false
	case IsBuiltinModule(module):
		errs[at+".module"] = fmt.Sprintf("module %q cannot play the %s role: it takes the built-in %s module only", module, role, role)
		return RoleMapping{}, false
	default:
		errs[at+".module"] = fmt.Sprintf("unknown module %q: built-in modules are %s; custom modules are named custom_<name>",
			module, strings.Join(BuiltinModules(), ", "))
		return RoleMapping{}, false
	}

	system, cols := systemFields(role), columns(module)
	fields := map[string]FieldMapping{}
	for name, t := range cols {
		if st, ok := system[name]; ok && st == t {
			fields[name] = FieldMapping{OrgField: name, Type: t}
		}
	}
	reserved := slices.Clone(reservedFields)
	for _, l := range builtinByName[role].Lookups {
		reserved = append(reserved, l.Key)
	}
	for _, name := range slices.Sorted(maps.Keys(in.Fields)) {
		fm, path := in.Fields[name], at+".fields."+name
		t, isSystem := system[name]
		switch {
		case isSystem && fm.Type != "" && fm.Type != t:
			errs[path] = fmt.Sprintf("system field %s.%s is of type %s, not %q", role, name, t, fm.Type)
			continue
		case isSystem:
		case slices.Contains(reserved, name) || !customFieldRE.MatchString(name):
			errs[path] = fmt.Sprintf("unknown system field of %s; a custom field is named 1 to 63 of a-z, 0-9 and _ (starting with a letter) and not %s",
				role, strings.Join(reserved, ", "))
			continue
		case fm.Type == "":
			errs[path] = fmt.Sprintf("unknown system field of %s (%s); a custom field needs a type: text, number or date",
				role, strings.Join(slices.Sorted(maps.Keys(system)), ", "))
			continue
		case fm.Type != criteria.Text && fm.Type != criteria.Number && fm.Type != criteria.Date:
			errs[path] = fmt.Sprintf("unknown type %q: text, number or date", fm.Type)
			continue
		default:
			t = fm.Type
		}
		if msg := checkOrgField(module, name, fm.OrgField, isSystem); msg != "" {
			errs[path] = msg
			continue
		}
		fields[name] = FieldMapping{OrgField: fm.OrgField, Type: t}
	}
	return RoleMapping{Module: module, Fields: fields}, true
}

// checkOrgField says what is wrong with the org field a field is read
// from, or "" when nothing is. A column maps only to the system field of
// its own name; anything else comes from an attribute.
func checkOrgField(module, name, orgField string, isSystem bool) string {
	if key, ok := strings.CutPrefix(orgField, attributesPrefix); ok {
		if !attributeKeyRE.MatchString(key) {
			return fmt.Sprintf("attribute key %q: 1 to 64 of A-Z, a-z, 0-9 and _", key)
		}
		return ""
	}
	if orgField == "" {
		return "org_field is required: a column of the module or attributes.<key>"
	}
	if _, ok := columns(module)[orgField]; ok && isSystem && orgField == name {
		return ""
	}
	return fmt.Sprintf("unknown org field %q: the field is read from the column %q of module %s when it has one, or from attributes.<key>",
		orgField, name, module)
}

// holderModule is the module that holds a lookup.
func holderModule(m ABMMapping, h holder) string {
	if h.name == lineItems {
		return lineItems
	}
	return m.Roles[h.name].Module
}

// lookupOptions lists the typed lookups that can join a link's roles, in
// the order the default is chosen, and the attribute forms it also takes.
func lookupOptions(l link, m ABMMapping) (typed, attrs []string) {
	for _, h := range l.holders {
		attrs = append(attrs, h.name+"."+attributesPrefix+"<key>")
		hm := holderModule(m, h)
		if !IsBuiltinModule(hm) {
			continue
		}
		target := m.Roles[h.target].Module
		for _, lk := range builtinByName[hm].Lookups {
			if lk.Target == target {
				typed = append(typed, h.name+"."+lk.Key)
			}
		}
	}
	return typed, attrs
}

// resolveLookup checks the lookup given for a link (v; given false when
// the link was left out) and returns the lookup field, nil for none, or
// why it cannot be taken.
func resolveLookup(l link, m ABMMapping, v *string, given bool) (*string, string) {
	typed, attrs := lookupOptions(l, m)
	choices := strings.Join(append(slices.Clone(typed), attrs...), ", ")
	between := fmt.Sprintf("%s (%s) and %s (%s)", l.roles[0], m.Roles[l.roles[0]].Module, l.roles[1], m.Roles[l.roles[1]].Module)
	switch {
	case !given && len(typed) > 0:
		return &typed[0], ""
	case !given && l.mandatory:
		return nil, fmt.Sprintf("missing: the link between %s is mandatory and no typed lookup joins them; name the attribute holding the related record's external id, one of %s",
			between, choices)
	case v == nil && l.mandatory:
		return nil, fmt.Sprintf("missing: the link between %s is mandatory, it cannot be null; one of %s", between, choices)
	case v == nil:
		return nil, ""
	}
	holderName, rest, _ := strings.Cut(*v, ".")
	if key, ok := strings.CutPrefix(rest, attributesPrefix); ok && slices.ContainsFunc(l.holders, func(h holder) bool { return h.name == holderName }) {
		if !attributeKeyRE.MatchString(key) {
			return nil, fmt.Sprintf("attribute key %q: 1 to 64 of A-Z, a-z, 0-9 and _", key)
		}
		return v, ""
	}
	if slices.Contains(typed, *v) {
		return v, ""
	}
	return nil, fmt.Sprintf("unknown lookup field %q for the link between %s; one of %s", *v, between, choices)
}
