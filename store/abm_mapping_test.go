package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// mappingOf decodes a mapping as the API does.
func mappingOf(t *testing.T, js string) store.ABMMapping {
	t.Helper()
	var m store.ABMMapping
	dec := json.NewDecoder(bytes.NewReader([]byte(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("mapping %s: %v", js, err)
	}
	return m
}

func strp(s string) *string { return &s }

func TestTheDefaultMappingIsTheBuiltInModulesWithTheirForeignKeys(t *testing.T) {
	m := store.DefaultABMMapping()
	for _, role := range store.Roles() {
		mod, err := store.ModuleByName(role)
		if err != nil {
			t.Fatal(err)
		}
		rm := m.Roles[role]
		if rm.Module != role || len(rm.Fields) != len(mod.Fields) {
			t.Errorf("%s: module %q with %d fields, want the built-in module with its %d columns", role, rm.Module, len(rm.Fields), len(mod.Fields))
		}
		for _, f := range mod.Fields {
			if got := rm.Fields[f.Name]; got.OrgField != f.Name || got.Type == "" {
				t.Errorf("%s.%s maps to %+v, want its own column", role, f.Name, got)
			}
		}
	}
	if got := m.Roles["accounts"].Fields["employees"].Type; got != criteria.Number {
		t.Errorf("accounts.employees is %q, want number", got)
	}
	want := map[string]*string{
		store.LinkAccountsContacts: strp("contacts.account"),
		store.LinkAccountsDeals:    strp("deals.account"),
		store.LinkProductsDeals:    strp("deal_line_items.product"),
		store.LinkDealsContacts:    strp("deals.contact"),
		store.LinkAccountsProducts: nil,
	}
	if !reflect.DeepEqual(m.Lookups, want) {
		t.Errorf("lookups %v, want %v", show(m.Lookups), show(want))
	}
	if m.UpdatedAt != nil {
		t.Errorf("defaults carry updated_at %v", m.UpdatedAt)
	}
}

func show(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = "null"
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// Each rule of the mapping refuses what it should, naming the path of
// every problem; what it admits resolves.
func TestMappingRules(t *testing.T) {
	customAccountLinks := `"lookups": {"accounts_contacts": "contacts.attributes.company_ref", "accounts_deals": "deals.attributes.company_ref"}`
	for _, tc := range []struct {
		what, in string
		bad      []string // the paths named; none for a mapping that resolves
	}{
		{"a custom module may not play contacts", `{"roles": {"contacts": {"module": "custom_people"}}}`, []string{"roles.contacts.module"}},
		{"a custom module may not play deals", `{"roles": {"deals": {"module": "custom_orders"}}}`, []string{"roles.deals.module"}},
		{"another built-in module may not play accounts", `{"roles": {"accounts": {"module": "leads"}}}`, []string{"roles.accounts.module"}},
		{"an unknown module is refused", `{"roles": {"products": {"module": "widgets"}}}`, []string{"roles.products.module"}},
		{"an unknown role is refused", `{"roles": {"leads": {"module": "leads"}}}`, []string{"roles.leads"}},
		{"a custom accounts module without lookups misses both mandatory account links",
			`{"roles": {"accounts": {"module": "custom_companies"}}}`, []string{"lookups.accounts_contacts", "lookups.accounts_deals"}},
		{"a custom products module without lookups misses products-deals",
			`{"roles": {"products": {"module": "custom_offerings"}}}`, []string{"lookups.products_deals"}},
		{"a mandatory link may not be null", `{"lookups": {"deals_contacts": null}}`, []string{"lookups.deals_contacts"}},
		{"a typed lookup into the custom module does not exist",
			`{"roles": {"accounts": {"module": "custom_companies"}}, "lookups": {"accounts_contacts": "contacts.account", "accounts_deals": "deals.account"}}`,
			[]string{"lookups.accounts_contacts", "lookups.accounts_deals"}},
		{"a lookup the holder module lacks is unknown", `{"lookups": {"accounts_contacts": "contacts.owner"}}`, []string{"lookups.accounts_contacts"}},
		{"a lookup held by a module the link does not allow is unknown", `{"lookups": {"accounts_contacts": "accounts.attributes.contact_ref"}}`, []string{"lookups.accounts_contacts"}},
		{"an unknown link is refused", `{"lookups": {"contacts_products": "contacts.attributes.p"}}`, []string{"lookups.contacts_products"}},
		{"an org field that is no column nor attribute is unknown", `{"roles": {"contacts": {"fields": {"title": {"org_field": "job_title"}}}}}`, []string{"roles.contacts.fields.title"}},
		{"a column maps only to the system field of its name", `{"roles": {"contacts": {"fields": {"title": {"org_field": "email"}}}}}`, []string{"roles.contacts.fields.title"}},
		{"a field that is no system field needs a type", `{"roles": {"contacts": {"fields": {"seniority": {"org_field": "attributes.seniority"}}}}}`, []string{"roles.contacts.fields.seniority"}},
		{"a custom field may not take a catalog name", `{"roles": {"accounts": {"fields": {"state": {"org_field": "attributes.st", "type": "text"}}}}}`, []string{"roles.accounts.fields.state"}},
		{"a system field keeps its type", `{"roles": {"accounts": {"fields": {"employees": {"org_field": "attributes.headcount", "type": "text"}}}}}`, []string{"roles.accounts.fields.employees"}},
		{"a custom field's type is text, number or date", `{"roles": {"accounts": {"fields": {"tier": {"org_field": "attributes.tier", "type": "bool"}}}}}`, []string{"roles.accounts.fields.tier"}},
		{"an attribute key that could leave a SQL literal is refused", `{"roles": {"accounts": {"fields": {"industry": {"org_field": "attributes.x'--"}}}}}`, []string{"roles.accounts.fields.industry"}},
		{"a custom module's fields other than name come from attributes", `{"roles": {"accounts": {"module": "custom_companies", "fields": {"industry": {"org_field": "industry"}}}}, ` + customAccountLinks + `}`, []string{"roles.accounts.fields.industry"}},
		{"every problem is named at once",
			`{"roles": {"contacts": {"module": "custom_people"}, "products": {"module": "custom_offerings"}, "accounts": {"fields": {"city": {"org_field": "town"}}}}, "lookups": {"accounts_deals": null}}`,
			[]string{"lookups.accounts_deals", "lookups.products_deals", "roles.accounts.fields.city", "roles.contacts.module"}},

		{"a custom attribute maps to contacts.title", `{"roles": {"contacts": {"fields": {"title": {"org_field": "attributes.job_designation"}}}}}`, nil},
		{"a custom accounts module links by attributes", `{"roles": {"accounts": {"module": "custom_companies", "fields": {"industry": {"org_field": "attributes.sector"}}}}, ` + customAccountLinks + `}`, nil},
		{"a custom products module links through line item attributes, and to accounts",
			`{"roles": {"products": {"module": "custom_offerings"}}, "lookups": {"products_deals": "deal_line_items.attributes.offering_ref", "accounts_products": "accounts.attributes.offering_refs"}}`, nil},
		{"products-deals may be a multi-select attribute of the deal", `{"lookups": {"products_deals": "deals.attributes.product_refs"}}`, nil},
		{"the optional link may be null", `{"lookups": {"accounts_products": null}}`, nil},
		{"a custom field with a type", `{"roles": {"accounts": {"fields": {"tier": {"org_field": "attributes.tier", "type": "text"}}}}}`, nil},
	} {
		t.Run(tc.what, func(t *testing.T) {
			got, err := store.ResolveABMMapping(mappingOf(t, tc.in))
			var me store.MappingErrors
			if tc.bad == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(got.Roles) != 4 || len(got.Lookups) != 5 {
					t.Fatalf("resolved to %+v, want every role and link", got)
				}
				return
			}
			if !errors.Is(err, store.ErrInvalidMapping) || !errors.As(err, &me) {
				t.Fatalf("want MappingErrors, got %v", err)
			}
			if paths := slices.Sorted(maps.Keys(me)); !slices.Equal(paths, tc.bad) {
				t.Fatalf("paths %v, want %v (%v)", paths, tc.bad, err)
			}
		})
	}
}

func TestAnAttributeMappedToContactsTitleIsReadFromTheAttribute(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	m, err := db.SetABMMapping(ctx, org, mappingOf(t, `{"roles": {"contacts": {"fields": {"title": {"org_field": "attributes.job_designation"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Roles["contacts"].Fields["title"]; got != (store.FieldMapping{OrgField: "attributes.job_designation", Type: criteria.Text}) {
		t.Fatalf("contacts.title maps to %+v", got)
	}
	load(t, db, org, "contacts", `{"external_id": "c1", "title": "column title", "attributes": {"job_designation": "Head of Procurement"}}`)
	fields, err := m.RoleFields("contacts", "c")
	if err != nil {
		t.Fatal(err)
	}
	var title string
	if err := db.GetContext(ctx, &title, `SELECT `+fields["title"].SQL+` FROM contacts c WHERE c.org_id = $1 AND c.external_id = 'c1'`, org); err != nil {
		t.Fatal(err)
	}
	if title != "Head of Procurement" {
		t.Fatalf("contacts.title reads %q, want the attribute", title)
	}
}

// What PUT stores is what GET reads; putting it again changes nothing,
// updated_at included; another mapping replaces it.
func TestSetABMMappingRoundTripsAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	in := mappingOf(t, `{
		"roles": {"accounts": {"module": "custom_companies", "fields": {"industry": {"org_field": "attributes.sector"}, "tier": {"org_field": "attributes.tier", "type": "text"}}},
		          "contacts": {"fields": {"title": {"org_field": "attributes.job_designation"}}}},
		"lookups": {"accounts_contacts": "contacts.attributes.company_ref", "accounts_deals": "deals.attributes.company_ref", "accounts_products": "products.attributes.company_refs"}}`)
	set, err := db.SetABMMapping(ctx, org, in)
	if err != nil {
		t.Fatal(err)
	}
	if set.UpdatedAt == nil {
		t.Fatal("a saved mapping has no updated_at")
	}
	got, err := db.ABMMapping(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Roles, set.Roles) || !reflect.DeepEqual(got.Lookups, set.Lookups) || !got.UpdatedAt.Equal(*set.UpdatedAt) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, set)
	}
	if f := got.Roles["accounts"].Fields; f["name"].OrgField != "name" || f["tier"].Type != criteria.Text || len(f) != 3 {
		t.Fatalf("custom accounts fields %+v, want name, industry and tier", f)
	}
	if o, err := db.ABMMapping(ctx, other); err != nil || o.UpdatedAt != nil || o.Roles["accounts"].Module != "accounts" {
		t.Fatalf("another org's mapping changed: %+v, %v", o, err)
	}

	time.Sleep(10 * time.Millisecond)
	again, err := db.SetABMMapping(ctx, org, got) // GET's answer, put back
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpdatedAt.Equal(*set.UpdatedAt) {
		t.Fatalf("putting the same mapping moved updated_at from %v to %v", set.UpdatedAt, again.UpdatedAt)
	}

	back, err := db.SetABMMapping(ctx, org, store.ABMMapping{})
	if err != nil {
		t.Fatal(err)
	}
	def := store.DefaultABMMapping()
	if !reflect.DeepEqual(back.Roles, def.Roles) || !reflect.DeepEqual(back.Lookups, def.Lookups) || !back.UpdatedAt.After(*set.UpdatedAt) {
		t.Fatalf("back to the defaults: %+v", back)
	}
	var rows int
	if err := db.GetContext(ctx, &rows, `SELECT (SELECT count(*) FROM field_mappings WHERE org_id = $1) + (SELECT count(*) FROM lookup_mappings WHERE org_id = $1 AND field LIKE '%attributes%')`, org); err != nil || rows != 0 {
		t.Fatalf("%d attribute rows left after the defaults replaced the mapping (%v)", rows, err)
	}
}

func TestSavingTheDefaultsMarksTheMappingSaved(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	m, err := db.SetABMMapping(ctx, org, store.DefaultABMMapping())
	if err != nil || m.UpdatedAt == nil {
		t.Fatalf("saving the defaults: %+v, %v; want updated_at set", m, err)
	}
}

func TestAnInvalidMappingStoresNothing(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.SetABMMapping(ctx, org, mappingOf(t, `{"roles": {"accounts": {"module": "custom_companies"}}}`)); !errors.Is(err, store.ErrInvalidMapping) {
		t.Fatalf("want ErrInvalidMapping, got %v", err)
	}
	if m, err := db.ABMMapping(ctx, org); err != nil || m.UpdatedAt != nil {
		t.Fatalf("mapping after a refused one: %+v, %v", m, err)
	}
	if _, err := db.SetABMMapping(ctx, 99999999, store.ABMMapping{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an org that does not exist: %v", err)
	}
}

// Concurrent PUTs of different mappings are serialised: each succeeds and
// the org ends with one of them whole.
func TestConcurrentMappingWritesAreSerialised(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	const n = 12
	errs := make(chan error, n)
	for i := range n {
		in := mappingOf(t, `{"roles": {"accounts": {"fields": {"tier": {"org_field": "attributes.tier`+string(rune('a'+i))+`", "type": "text"}}}}}`)
		go func() {
			_, err := db.SetABMMapping(ctx, org, in)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	m, err := db.ABMMapping(ctx, org)
	if err != nil || len(m.Roles) != 4 || m.Roles["accounts"].Fields["tier"].OrgField == "" {
		t.Fatalf("after concurrent writes: %+v, %v", m, err)
	}
}
