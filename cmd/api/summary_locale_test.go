package main

import (
	"fmt"
	"testing"

	"github.com/crmq/crmq/store"
)

// An org's summary locale defaults to USD and UTC, is set field by field,
// and refuses a bad currency or time zone with a 400 naming the field.
func TestSummaryLocale(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	wantProblem(t, e.do(t, "GET", "/v1/admin/orgs/999999/summary-locale", testAdminKey, ""), 404, "not-found")
	path := fmt.Sprintf("/v1/admin/orgs/%d/summary-locale", e.orgA.ID)
	if got := decode[store.SummaryLocale](t, e.do(t, "GET", path, testAdminKey, "")); got != store.DefaultSummaryLocale {
		t.Fatalf("default locale %+v", got)
	}
	if got := decode[store.SummaryLocale](t, e.do(t, "PUT", path, testAdminKey, `{"currency":"EUR"}`)); got.Currency != "EUR" || got.TimeZone != "UTC" {
		t.Fatalf("after setting the currency: %+v", got)
	}
	for body, field := range map[string]string{
		`{"currency":"euro"}`:          "currency",
		`{"time_zone":"Mars/Olympus"}`: "time_zone",
		`{"time_zone":"Local"}`:        "time_zone",
	} {
		p := wantProblem(t, e.do(t, "PUT", path, testAdminKey, body), 400, "validation")
		if p.Errors[field] == "" {
			t.Errorf("%s: problem %+v does not name %s", body, p, field)
		}
	}
	wantProblem(t, e.do(t, "PUT", path, testAdminKey, `{"currency":"EUR","colour":"red"}`), 400, "validation")
	got := decode[store.SummaryLocale](t, e.do(t, "PUT", path, testAdminKey, `{"time_zone":"Europe/Berlin"}`))
	if got != (store.SummaryLocale{Currency: "EUR", TimeZone: "Europe/Berlin"}) {
		t.Fatalf("after setting the time zone: %+v", got)
	}
}
