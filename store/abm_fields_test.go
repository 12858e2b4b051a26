package store_test

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// readField evaluates a catalog expression against one row of from (a
// table aliased a, restricted by where) and returns it as text.
func readField(t *testing.T, db *store.DB, f store.AccountField, from, where string, args ...any) sql.NullString {
	t.Helper()
	var v sql.NullString
	if err := db.GetContext(context.Background(), &v, `SELECT (`+f.SQL+`)::text FROM `+from+` a WHERE `+where, args...); err != nil {
		t.Fatalf("evaluate %s: %v", f.SQL, err)
	}
	return v
}

func TestTheCatalogOfADefaultOrgIsTheAccountColumns(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	fields, err := db.AccountFields(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]criteria.Type{
		"name": criteria.Text, "industry": criteria.Text, "employees": criteria.Number, "annual_revenue": criteria.Number,
		"product_family": criteria.Text, "website": criteria.Text, "city": criteria.Text, "country": criteria.Text,
		"owner": criteria.Text, "state": criteria.Text, "created_at": criteria.Date, "updated_at": criteria.Date,
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("fields %v, want %v", got, slices.Sorted(maps.Keys(want)))
	}
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "Acme", "industry": "Healthcare", "employees": 1200,
		"annual_revenue": 2500000.5, "product_family": "CRM", "website": "acme.example", "city": "Lyon", "country": "France",
		"owner": "ann", "state": "draft"}`)
	values := map[string]string{
		"name": "Acme", "industry": "Healthcare", "employees": "1200", "annual_revenue": "2500000.50", "product_family": "CRM",
		"website": "acme.example", "city": "Lyon", "country": "France", "owner": "ann", "state": "draft",
	}
	for name, f := range fields {
		if f.Type != want[name] {
			t.Errorf("%s is %q, want %q", name, f.Type, want[name])
		}
		got := readField(t, db, f, "accounts", "a.org_id = $1 AND a.external_id = 'acc1'", org)
		if v, ok := values[name]; ok && got.String != v {
			t.Errorf("%s (%s) reads %q, want %q", name, f.SQL, got.String, v)
		}
		if !got.Valid {
			t.Errorf("%s (%s) reads NULL", name, f.SQL)
		}
	}
}

func TestTheCatalogReadsMappedAttributes(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.SetABMMapping(ctx, org, mappingOf(t, `{"roles": {"accounts": {"fields": {
		"industry": {"org_field": "attributes.sector"},
		"employees": {"org_field": "attributes.headcount"},
		"tier": {"org_field": "attributes.tier", "type": "text"},
		"renewal_on": {"org_field": "attributes.renewal_date", "type": "date"}}}}}`)); err != nil {
		t.Fatal(err)
	}
	fields, err := db.AccountFields(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if f := fields["tier"]; f.Type != criteria.Text || f.SQL != `(a.attributes->>'tier')` {
		t.Errorf("tier: %+v", f)
	}
	if fields["employees"].Type != criteria.Number || fields["renewal_on"].Type != criteria.Date || fields["industry"].Type != criteria.Text {
		t.Errorf("types: %+v", fields)
	}
	load(t, db, org, "accounts",
		`{"external_id": "good", "industry": "column value", "employees": 5, "attributes": {"sector": "Healthcare", "headcount": 1200, "tier": "gold", "renewal_date": "2025-03-01T09:00:00Z"}}`,
		`{"external_id": "strings", "attributes": {"headcount": "-1.5e3", "renewal_date": "2024-02-29"}}`,
		`{"external_id": "bad", "employees": 5, "attributes": {"headcount": "many", "tier": {"nested": true}, "renewal_date": "2023-02-30"}}`,
		`{"external_id": "none"}`)
	for _, tc := range []struct {
		id, field, want string // want "NULL" for SQL NULL
	}{
		{"good", "industry", "Healthcare"},
		{"good", "employees", "1200"},
		{"good", "tier", "gold"},
		{"good", "renewal_on", "2025-03-01"},
		{"strings", "employees", "-1500"},
		{"strings", "renewal_on", "2024-02-29"},
		{"bad", "employees", "NULL"},
		{"bad", "renewal_on", "NULL"},
		{"bad", "tier", `{"nested": true}`},
		{"none", "tier", "NULL"},
		{"none", "employees", "NULL"},
	} {
		got := readField(t, db, fields[tc.field], "accounts", "a.org_id = $1 AND a.external_id = $2", org, tc.id)
		s := got.String
		if !got.Valid {
			s = "NULL"
		}
		if s != tc.want {
			t.Errorf("%s of %s reads %q, want %q (%s)", tc.field, tc.id, s, tc.want, fields[tc.field].SQL)
		}
	}
	// A comparison as a compiled criteria would make: the cast reads as a number.
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM accounts a WHERE a.org_id = $1 AND `+fields["employees"].SQL+` > $2`, org, 1000); err != nil || n != 1 {
		t.Errorf("accounts with more than 1000 employees: %d (%v), want 1", n, err)
	}
}

func TestTheCatalogAnswersForACustomAccountsModule(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.SetABMMapping(ctx, org, mappingOf(t, `{
		"roles": {"accounts": {"module": "custom_companies", "fields": {"employees": {"org_field": "attributes.size"}}}},
		"lookups": {"accounts_contacts": "contacts.attributes.company", "accounts_deals": "deals.attributes.company"}}`)); err != nil {
		t.Fatal(err)
	}
	fields, err := db.AccountFields(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, []string{"created_at", "employees", "name", "state", "updated_at"}) {
		t.Fatalf("fields %v", got)
	}
	load(t, db, org, "custom_companies", `{"external_id": "co1", "name": "Globex", "size": 40}`)
	where := "a.org_id = $1 AND a.module = 'custom_companies' AND a.external_id = 'co1'"
	for name, want := range map[string]string{"name": "Globex", "employees": "40", "state": "active"} {
		if got := readField(t, db, fields[name], "records", where, org); got.String != want {
			t.Errorf("%s reads %q, want %q", name, got.String, want)
		}
	}
}

// A key that could leave its SQL literal never reaches SQL, even when it
// got into the table some other way than SetABMMapping.
func TestTheCatalogRefusesAStoredKeyItCannotEmbed(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.SetABMMapping(ctx, org, mappingOf(t, `{"roles": {"accounts": {"fields": {"tier": {"org_field": "attributes.tier", "type": "text"}}}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE field_mappings SET org_field = $2 WHERE org_id = $1`, org, `attributes.x') OR true --`); err != nil {
		t.Fatal(err)
	}
	fields, err := db.AccountFields(ctx, org)
	if err == nil || fields != nil || !strings.Contains(err.Error(), "attribute key") {
		t.Fatalf("fields %v, err %v; want an error naming the attribute key", fields, err)
	}
}

// The catalog's date fields are UTC days, as the criteria language
// compares them, whatever the session's time zone: an account created at
// 23:30 UTC on June 30 was created on "2026-06-30" even for a session in
// UTC+14, where that instant is already July 1.
func TestCatalogDatesCompileAsUTCDays(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (org_id, external_id, name, created_at) VALUES ($1, 'late', 'Late', '2026-06-30T23:30:00Z')`, org); err != nil {
		t.Fatal(err)
	}
	fields, err := db.AccountFields(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	types, cols := map[string]criteria.Type{}, map[string]string{}
	for name, f := range fields {
		types[name], cols[name] = f.Type, f.SQL
	}
	checked, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{
		{Field: "created_at", Op: criteria.Equals, Value: []byte(`"2026-06-30"`)}}}, types)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{org}
	where, err := store.CompileCriteria(checked, cols, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), &args)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET TIME ZONE 'Pacific/Kiritimati'`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM accounts a WHERE a.org_id = $1 AND `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("created_at equals 2026-06-30 matched %d accounts in a UTC+14 session, want 1 (SQL %s)", n, where)
	}
}
