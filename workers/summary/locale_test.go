package summary_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// Amounts carry the org's currency and thousands separators; contact
// timings are read in the org's time zone.
func TestLocaleCurrencyAndTimeZone(t *testing.T) {
	g := bareAccount([]store.GraphRecord{deal("d-1", "Proposal", "new", date(today.AddDate(0, 1, 0)), "130745.76")}, nil)
	_, resp := offlineAnswer(t, g, "accounts", 0)
	if text := sectionText(resp)[llm.AccountHighlights]; !strings.Contains(text, "Open opportunities: 1 worth USD 130,745.76") {
		t.Errorf("the default currency is not USD with separators:\n%s", text)
	}
	g.Locale = store.SummaryLocale{Currency: "EUR", TimeZone: "UTC"}
	_, resp = offlineAnswer(t, g, "accounts", 0)
	if text := sectionText(resp)[llm.AccountHighlights]; !strings.Contains(text, "Open opportunities: 1 worth EUR 130,745.76") {
		t.Errorf("the org's currency is not used:\n%s", text)
	}

	// Six signals at 01:00 UTC on Tuesdays: night on Tuesday in UTC,
	// evening on Monday in New York (UTC-4 in June).
	var acts []store.GraphRecord
	for i := range 6 {
		at := time.Date(2025, 5, 27, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -7*i)
		acts = append(acts, act(fmt.Sprintf("a-%d", i), at, 1, "contacts/c-1", store.Record{"contact": "c-1"}))
	}
	c := store.SummaryGraph{Subject: rec("contacts", "c-1", 0, "", store.Record{"title": "Engineer"}),
		Related: []store.GraphRecord{}, Activities: acts, Org: map[string]any{}}
	req, resp := offlineAnswer(t, c, "contacts", 0)
	if figs := figures(t, req); figs[crm.FigPreferredPart] != "night" || figs[crm.FigPreferredWeekday] != "Tuesday" {
		t.Errorf("in UTC: %v on %v, want night on Tuesday", figs[crm.FigPreferredPart], figs[crm.FigPreferredWeekday])
	}
	c.Locale = store.SummaryLocale{Currency: "USD", TimeZone: "America/New_York"}
	req, resp = offlineAnswer(t, c, "contacts", 0)
	if figs := figures(t, req); figs[crm.FigPreferredPart] != "evening" || figs[crm.FigPreferredWeekday] != "Monday" {
		t.Errorf("in New York: %v on %v, want evening on Monday", figs[crm.FigPreferredPart], figs[crm.FigPreferredWeekday])
	}
	if text := sectionText(resp)[llm.ContactPreferences]; !strings.Contains(text, "Signals come mostly in the evening (evening 6, America/New_York)") {
		t.Errorf("the time zone is not named:\n%s", text)
	}
}
