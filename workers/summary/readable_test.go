package summary_test

import (
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// No bullet only says zero: an account with nothing open and nothing won
// states no "Won revenue", "Open cases: 0", "Active projects: 0" or "Open
// opportunities: 0".
func TestNoZeroOnlyBullets(t *testing.T) {
	lost := deal("d-lost", "Closed Lost", "new", date(today.AddDate(0, -2, 0)), "500.00")
	done := rec("projects", "p-1", 1, "accounts/acc-1", store.Record{"name": "Pilot", "status": "Completed", "health": "green"})
	g := bareAccount([]store.GraphRecord{lost, done}, nil)
	g.Org["account_won_revenue"], g.Org["org_won_revenue"] = n("0.00"), n("1000.00")
	_, resp := offlineAnswer(t, g, "accounts", 0)
	text := sectionText(resp)[llm.AccountHighlights]
	for _, zero := range []string{"Won revenue", "Open cases: 0", "Active projects: 0", "Open opportunities: 0"} {
		if strings.Contains(text, zero) {
			t.Errorf("a bullet only says zero (%q):\n%s", zero, text)
		}
	}
}

// A section that found nothing says so once and cites what it searched.
func TestEmptySectionsCiteWhatTheySearched(t *testing.T) {
	acts := []store.GraphRecord{act("a-1", daysAgo(2), 1, "accounts/acc-1", store.Record{"notes": "Routine call."})}
	cs := rec("cases", "case-1", 1, "accounts/acc-1", store.Record{"subject": "Password reset", "status": "Open", "account": "acc-1"})
	_, resp := offlineAnswer(t, bareAccount([]store.GraphRecord{cs}, acts), "accounts", 0)
	for _, key := range []string{llm.RisksAndBlockers, llm.RelationalHealth} {
		for _, b := range bulletsOf(resp, key) {
			if strings.HasPrefix(b.Text, "No ") && !(len(b.Sources) > 1 && b.Sources[0] == "accounts/acc-1") {
				t.Errorf("%s: %q cites %v, not the subject and what was searched", key, b.Text, b.Sources)
			}
		}
	}
	risks := bulletsOf(resp, llm.RisksAndBlockers)
	if len(risks) != 1 || !strings.Contains(strings.Join(risks[0].Sources, " "), "cases/case-1") {
		t.Errorf("Risks and Blockers: %+v; want one bullet citing the case it searched", risks)
	}
}

// An escalated case stands in its home section, Risks and Blockers, and
// in the derived ones (the verdict, the plan); Account Highlights counts
// it without naming it, Immediate Actions leaves it out.
func TestEscalatedCaseStandsInItsHomeSection(t *testing.T) {
	_, resp := offlineAnswer(t, accountGraph(), "accounts", 0)
	var in []string
	for key, text := range sectionText(resp) {
		if strings.Contains(text, "Sync with ERP stopped") {
			in = append(in, key)
		}
	}
	for _, key := range in {
		switch key {
		case llm.RisksAndBlockers, llm.ExecutiveSummary, llm.StrategicNextSteps:
		default:
			t.Errorf("the escalated case is named in %s too:\n%s", key, sectionText(resp)[key])
		}
	}
	if !strings.Contains(sectionText(resp)[llm.AccountHighlights], "Open cases: 2, escalated: 1") {
		t.Errorf("Account Highlights does not count it:\n%s", sectionText(resp)[llm.AccountHighlights])
	}
}
