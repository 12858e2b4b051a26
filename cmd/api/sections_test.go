package main

import (
	"fmt"
	"testing"

	"github.com/crmq/crmq/llm"
)

func TestSummarySectionsOfAnOrgThatDoesNotExistAre404(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	wantProblem(t, e.do(t, "GET", "/v1/admin/orgs/999999/summary-sections", testAdminKey, ""), 404, "not-found")
	wantProblem(t, e.do(t, "PUT", "/v1/admin/orgs/999999/summary-sections", testAdminKey, `{"sections":{}}`), 404, "not-found")
	path := fmt.Sprintf("/v1/admin/orgs/%d/summary-sections", e.orgA.ID)
	if r := e.do(t, "GET", path, testAdminKey, ""); r.StatusCode != 200 {
		t.Fatalf("an org that exists: %d", r.StatusCode)
	}
}

func TestNullSectionVisibilityIsRefused(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	key := llm.ExpansionOpportunities
	path := fmt.Sprintf("/v1/admin/orgs/%d/summary-sections", e.orgA.ID)
	p := wantProblem(t, e.do(t, "PUT", path, testAdminKey, `{"sections":{"`+key+`":null}}`), 400, "validation")
	if p.Errors["sections."+key] == "" {
		t.Fatalf("problem %+v does not name sections.%s", p, key)
	}
	got := decode[sectionSettings](t, e.do(t, "GET", path, testAdminKey, ""))
	if _, stored := got.Sections[key]; stored {
		t.Fatalf("a refused null was stored: %v", got.Sections)
	}
	got = decode[sectionSettings](t, e.do(t, "PUT", path, testAdminKey, `{"sections":{"`+key+`":false}}`))
	if v, ok := got.Sections[key]; !ok || v {
		t.Fatalf("false was not stored: %v", got.Sections)
	}
}
