package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/crmq/crmq/store"
)

func TestABMMappingDefaultsBeforeAnyPut(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	r := e.do(t, "GET", "/v1/abm/mapping", e.keyA, "")
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	var got map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"lookups", "roles", "updated_at"}) {
		t.Fatalf("members %v", keys)
	}
	if string(got["updated_at"]) != "null" {
		t.Errorf("updated_at %s before any PUT, want null", got["updated_at"])
	}
	var lookups map[string]*string
	if err := json.Unmarshal(got["lookups"], &lookups); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"accounts_contacts": "contacts.account", "accounts_deals": "deals.account",
		"products_deals": "deal_line_items.product", "deals_contacts": "deals.contact"}
	for link, field := range want {
		if lookups[link] == nil || *lookups[link] != field {
			t.Errorf("lookups.%s = %v, want %q", link, lookups[link], field)
		}
	}
	if v, ok := lookups["accounts_products"]; !ok || v != nil {
		t.Errorf("accounts_products %v (present %v), want an explicit null", v, ok)
	}
	var roles map[string]store.RoleMapping
	if err := json.Unmarshal(got["roles"], &roles); err != nil {
		t.Fatal(err)
	}
	for _, role := range store.Roles() {
		if roles[role].Module != role || roles[role].Fields["name"].OrgField == "" && role != "contacts" {
			t.Errorf("role %s: %+v", role, roles[role])
		}
	}
	if f := roles["contacts"].Fields["title"]; f.OrgField != "title" || f.Type != "text" {
		t.Errorf("contacts.title %+v, want its column", f)
	}
}

// A client reads the mapping, changes it and puts it back; the answer is
// what a GET then reads, and putting it again changes nothing.
func TestABMMappingRoundTrip(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	var m store.ABMMapping
	if err := json.NewDecoder(e.do(t, "GET", "/v1/abm/mapping", e.keyA, "").Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	contacts := m.Roles["contacts"]
	contacts.Fields["title"] = store.FieldMapping{OrgField: "attributes.job_designation", Type: "text"}
	m.Roles["contacts"] = contacts
	accounts := m.Roles["accounts"]
	accounts.Fields["tier"] = store.FieldMapping{OrgField: "attributes.tier", Type: "text"}
	m.Roles["accounts"] = accounts
	body, _ := json.Marshal(m)

	r := e.do(t, "PUT", "/v1/abm/mapping", e.keyA, string(body))
	if r.StatusCode != 200 {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	put := decode[store.ABMMapping](t, r)
	got := decode[store.ABMMapping](t, e.do(t, "GET", "/v1/abm/mapping", e.keyA, ""))
	if put.UpdatedAt == nil || !got.UpdatedAt.Equal(*put.UpdatedAt) {
		t.Fatalf("updated_at: PUT %v, GET %v", put.UpdatedAt, got.UpdatedAt)
	}
	if f := got.Roles["contacts"].Fields["title"]; f.OrgField != "attributes.job_designation" {
		t.Errorf("contacts.title after the PUT: %+v", f)
	}
	if f := got.Roles["accounts"].Fields["tier"]; f.OrgField != "attributes.tier" || f.Type != "text" {
		t.Errorf("accounts.tier after the PUT: %+v", f)
	}
	again, _ := json.Marshal(got)
	same := decode[store.ABMMapping](t, e.do(t, "PUT", "/v1/abm/mapping", e.keyA, string(again)))
	if !same.UpdatedAt.Equal(*put.UpdatedAt) {
		t.Errorf("putting the mapping back moved updated_at from %v to %v", put.UpdatedAt, same.UpdatedAt)
	}
	other := decode[store.ABMMapping](t, e.do(t, "GET", "/v1/abm/mapping", e.keyB, ""))
	if other.UpdatedAt != nil || other.Roles["contacts"].Fields["title"].OrgField != "title" {
		t.Errorf("another org reads %+v", other)
	}
}

func TestABMMappingRefusesABadMappingNamingEachProblem(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	for _, tc := range []struct {
		what, body string
		paths      []string
	}{
		{"missing mandatory lookups of a custom accounts module", `{"roles": {"accounts": {"module": "custom_companies"}}}`,
			[]string{"lookups.accounts_contacts", "lookups.accounts_deals"}},
		{"a mandatory lookup set to null", `{"lookups": {"products_deals": null}}`, []string{"lookups.products_deals"}},
		{"a custom module where the seed has none", `{"roles": {"contacts": {"module": "custom_people"}, "deals": {"module": "custom_orders"}}}`,
			[]string{"roles.contacts.module", "roles.deals.module"}},
		{"an unknown module", `{"roles": {"products": {"module": "widgets"}}}`, []string{"roles.products.module"}},
		{"an unknown field", `{"roles": {"contacts": {"fields": {"seniority": {"org_field": "attributes.seniority"}, "title": {"org_field": "job_title"}}}}}`,
			[]string{"roles.contacts.fields.seniority", "roles.contacts.fields.title"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			p := wantProblem(t, e.do(t, "PUT", "/v1/abm/mapping", e.keyA, tc.body), 400, "validation")
			if got := slices.Sorted(maps.Keys(p.Errors)); !slices.Equal(got, tc.paths) {
				t.Errorf("errors %v, want %v", p.Errors, tc.paths)
			}
		})
	}
	wantProblem(t, e.do(t, "PUT", "/v1/abm/mapping", e.keyA, `{"roles": {}, "extra": 1}`), 400, "validation")
	if m := decode[store.ABMMapping](t, e.do(t, "GET", "/v1/abm/mapping", e.keyA, "")); m.UpdatedAt != nil {
		t.Errorf("a refused mapping was stored: %+v", m)
	}
}

// Setting the mapping is setup: a key with abm alone reads it and may not
// change it; a key with abm:setup alone changes it.
func TestABMMappingPutNeedsTheSetupScope(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	use := e.scopedKey(t, store.ScopeABM)
	if r := e.do(t, "GET", "/v1/abm/mapping", use, ""); r.StatusCode != 200 {
		t.Fatalf("GET with abm: %d", r.StatusCode)
	}
	p := wantProblem(t, e.do(t, "PUT", "/v1/abm/mapping", use, `{}`), http.StatusForbidden, "insufficient-scope")
	if p.Scope != store.ScopeABMSetup {
		t.Errorf("problem names scope %q, want abm:setup", p.Scope)
	}
	setup := e.scopedKey(t, store.ScopeABMSetup)
	if r := e.do(t, "PUT", "/v1/abm/mapping", setup, `{}`); r.StatusCode != 200 {
		t.Fatalf("PUT with abm:setup: %d", r.StatusCode)
	}
}
