package summary_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/workers/summary"
)

// Regression tests of the records a summary picks, each on a hand-made
// graph (issue 10, "Selection bugs"). Contacts carry no names: a summary
// then calls them by their ref.

// sectionText is each section's bullets, one per line.
func sectionText(resp llm.Response) map[string]string {
	out := map[string]string{}
	for _, s := range resp.Answer.Sections {
		var b strings.Builder
		for _, x := range s.Bullets {
			b.WriteString(x.Text + "\n")
		}
		out[s.Key] = b.String()
	}
	return out
}

// bulletsOf is a section's bullets.
func bulletsOf(resp llm.Response, key string) []llm.Bullet {
	for _, s := range resp.Answer.Sections {
		if s.Key == key {
			return s.Bullets
		}
	}
	return nil
}

func bareAccount(related []store.GraphRecord, acts []store.GraphRecord) store.SummaryGraph {
	return store.SummaryGraph{
		Subject:    rec("accounts", "acc-1", 0, "", store.Record{"name": "acc-1 account", "industry": "Logistics"}),
		Related:    related,
		Activities: acts,
		Org:        map[string]any{},
	}
}

func deal(id, stage, typ, closeDate, amount string) store.GraphRecord {
	f := store.Record{"name": "deal " + id, "stage": stage, "deal_type": typ, "account": "acc-1"}
	if closeDate != "" {
		f["close_date"] = closeDate
	}
	if amount != "" {
		f["amount"] = n(amount)
	}
	return rec("deals", id, 1, "accounts/acc-1", f)
}

func contact(id, title string) store.GraphRecord {
	return rec("contacts", id, 1, "accounts/acc-1", store.Record{"title": title, "account": "acc-1"})
}

// Suggested Expansion lists every open expansion deal even when five
// other open deals close earlier: the filter runs before the cap.
func TestExpansionListsEveryOpenExpansionDeal(t *testing.T) {
	var related []store.GraphRecord
	for i := range 5 {
		related = append(related, deal(fmt.Sprintf("d-new-%d", i), "Proposal", "new", date(today.AddDate(0, 0, 10+i)), "1000.00"))
	}
	for i := range 4 {
		related = append(related, deal(fmt.Sprintf("d-exp-%d", i), "Proposal", "expansion", date(today.AddDate(0, 3, i)), "2000.00"))
	}
	_, resp := offlineAnswer(t, bareAccount(related, nil), "accounts", 0)
	text := sectionText(resp)[llm.ExpansionOpportunities]
	for i := range 4 {
		if !strings.Contains(text, fmt.Sprintf("Open expansion opportunity: deal d-exp-%d", i)) {
			t.Errorf("expansion deal d-exp-%d is missing from\n%s", i, text)
		}
	}
	if strings.Contains(text, "d-new-") {
		t.Errorf("a new-business deal is listed as expansion:\n%s", text)
	}
}

// Key Stakeholders ranks by whole-word seniority, then engagement, and
// always lists the authors of risk signals: a Product Owner is no
// executive, and the CEO who wrote the churn note comes first.
func TestStakeholdersBySeniorityEngagementAndRiskAuthors(t *testing.T) {
	var related []store.GraphRecord
	for i := range 8 {
		related = append(related, contact(fmt.Sprintf("c-po-%d", i), "Product Owner"))
	}
	related = append(related, contact("c-ceo", "CEO"), contact("c-eng", "Engineer"))
	for i := range 6 {
		related = append(related, contact(fmt.Sprintf("c-mgr-%d", i), "Engineering Manager"))
	}
	var acts []store.GraphRecord
	for i := range 31 {
		notes := "Weekly check-in."
		if i == 0 {
			notes = "We will churn at renewal unless the exports are fixed."
		}
		acts = append(acts, act(fmt.Sprintf("a-ceo-%d", i), daysAgo(float64(1+i)), 1, "accounts/acc-1",
			store.Record{"contact": "c-ceo", "notes": notes, "account": "acc-1"}))
	}
	acts = append(acts, act("a-eng", daysAgo(3), 1, "accounts/acc-1",
		store.Record{"contact": "c-eng", "notes": "The rollout is blocked by the SSO setup.", "account": "acc-1"}))
	for i := range 6 {
		acts = append(acts, act(fmt.Sprintf("a-mgr-%d", i), daysAgo(float64(2+i)), 1, "accounts/acc-1",
			store.Record{"contact": fmt.Sprintf("c-mgr-%d", i), "notes": "Status call.", "account": "acc-1"}))
	}
	_, resp := offlineAnswer(t, bareAccount(related, acts), "accounts", 0)
	bullets := bulletsOf(resp, llm.KeyStakeholders)
	if len(bullets) == 0 || !strings.HasPrefix(bullets[0].Text, "contacts/c-ceo — CEO") {
		t.Fatalf("the CEO is not listed first:\n%s", sectionText(resp)[llm.KeyStakeholders])
	}
	if !strings.Contains(bullets[0].Text, "31 activities") || !strings.Contains(bullets[0].Text, "raised a risk: “We will churn") {
		t.Errorf("the CEO's bullet lacks the engagement or the churn note: %q", bullets[0].Text)
	}
	if !strings.HasPrefix(bullets[1].Text, "contacts/c-mgr-0 — Engineering Manager") {
		t.Errorf("the most recently engaged manager is not second: %q", bullets[1].Text)
	}
	// Six managers outrank the engineer, who is listed all the same: the
	// blocker is theirs.
	text := sectionText(resp)[llm.KeyStakeholders]
	if !strings.Contains(text, "contacts/c-eng — Engineer; 1 activities, the newest dated "+date(daysAgo(3))+"; raised a risk") {
		t.Errorf("the engineer who raised the blocker is not listed:\n%s", text)
	}
	listed := 0
	for _, b := range bullets {
		if strings.Contains(b.Text, "— Product Owner") {
			listed++
		}
	}
	if listed > 4 {
		t.Errorf("%d Product Owners listed as stakeholders ahead of others:\n%s", listed, text)
	}
}

// A contact's activity count and latest date are the store's figure over
// every activity, not the activities a prompt holds: a CTO none of whose
// 26 activities fit still shows them.
func TestContactActivityCountsEveryActivity(t *testing.T) {
	g := bareAccount([]store.GraphRecord{contact("c-cto", "CTO")}, nil)
	g.Org["activities_by_contact"] = map[string]any{
		"contacts/c-cto": map[string]any{"activities": n("26"), "latest": date(daysAgo(5))},
	}
	g.ActivityTotal = 534
	req, resp := offlineAnswer(t, g, "accounts", 0)
	text := sectionText(resp)[llm.KeyStakeholders]
	if want := "contacts/c-cto — CTO; 26 activities, the newest dated " + date(daysAgo(5)); !strings.Contains(text, want) {
		t.Errorf("missing %q in\n%s", want, text)
	}
	if _, dup := req.Facts.Org["activities_by_contact"]; dup {
		t.Error("the per-contact figure is in the prompt twice: as org and as org.figures")
	}

	// Without the store's figure, every activity the graph loaded counts,
	// also those the budget leaves out of the prompt.
	var acts []store.GraphRecord
	for i := range 60 {
		acts = append(acts, act(fmt.Sprintf("a-%02d", i), daysAgo(float64(1+i)), 1, "accounts/acc-1",
			store.Record{"contact": "c-cto", "notes": strings.Repeat("Long notes of a weekly call. ", 20), "account": "acc-1"}))
	}
	g = bareAccount([]store.GraphRecord{contact("c-cto", "CTO")}, acts)
	req, resp = offlineAnswer(t, g, "accounts", 6000)
	if len(req.Facts.Activities) >= 60 {
		t.Fatalf("the budget let all %d activities in; the test needs fewer", len(req.Facts.Activities))
	}
	if text := sectionText(resp)[llm.KeyStakeholders]; !strings.Contains(text, "60 activities, the newest dated "+date(daysAgo(1))) {
		t.Errorf("the count is not over every loaded activity (%d in the prompt):\n%s", len(req.Facts.Activities), text)
	}
}

// Draft and incomplete deals count in no figure and are listed nowhere.
func TestDraftAndIncompleteDealsCountNowhere(t *testing.T) {
	draft := deal("d-draft", "Qualification", "new", "", "")
	draft.Fields["state"] = "draft"
	incomplete := deal("d-inc", "Proposal", "expansion", "", "")
	incomplete.Fields["state"] = "incomplete"
	g := bareAccount([]store.GraphRecord{draft, incomplete,
		deal("d-open", "Proposal", "new", date(today.AddDate(0, 1, 0)), "5000.00")}, nil)
	req, resp := offlineAnswer(t, g, "accounts", 0)
	figs := figures(t, req)
	if got := factText(figs[crm.FigOpenDeals]); got != "1" {
		t.Errorf("open deals = %s, want 1 (the active one)", got)
	}
	if got := factText(figs[crm.FigOpenExpansion]); got != "0" {
		t.Errorf("open expansion deals = %s, want 0", got)
	}
	js := renderJSON(t, req.Facts)
	if strings.Contains(js, "d-draft") || strings.Contains(js, "d-inc") {
		t.Error("the prompt lists a draft or incomplete deal")
	}

	// A draft activity counts in no total and cuts nothing.
	g.Activities = []store.GraphRecord{act("a-1", daysAgo(1), 1, "accounts/acc-1", nil),
		act("a-draft", daysAgo(2), 1, "accounts/acc-1", store.Record{"state": "draft"})}
	g.ActivityTotal = 2
	req, trunc, err := summary.BuildPrompt(g, "accounts", []llm.SectionSpec{{Key: llm.RelationalHealth, UsesActivities: true}}, 0, today)
	if err != nil {
		t.Fatal(err)
	}
	if got := figures(t, req)[crm.FigActivitiesTotal]; got != 1 || trunc.Sections[0].Cut || trunc.Sections[0].ActivitiesTotal != 1 {
		t.Errorf("activities total %v, truncation %+v; want 1 and nothing cut", got, trunc.Sections[0])
	}
	if strings.Contains(renderJSON(t, req.Facts), "a-draft") {
		t.Error("the prompt lists a draft or incomplete deal")
	}
	for key, text := range sectionText(resp) {
		if strings.Contains(text, "d-draft") || strings.Contains(text, "d-inc") {
			t.Errorf("%s names a draft or incomplete deal:\n%s", key, text)
		}
	}
}

// A closed deal gets a retrospective: no days to close, no pipeline share,
// no open risk with a mitigation. A converted lead states no conversion
// probability.
func TestClosedAndConvertedRecordsLookBack(t *testing.T) {
	g := store.SummaryGraph{
		Subject: rec("deals", "d-lost", 0, "", store.Record{"name": "deal d-lost", "stage": "Closed Lost", "amount": n("40000.00"),
			"close_date": date(today.AddDate(0, 0, -209)), "competitor": "competitor-1"}),
		Related: []store.GraphRecord{},
		Activities: []store.GraphRecord{act("a-1", daysAgo(220), 1, "deals/d-lost",
			store.Record{"notes": "Budget approval delayed again.", "deal": "d-lost"})},
		Org: map[string]any{"open_pipeline_value": n("1000000.00")},
	}
	req, resp := offlineAnswer(t, g, "deals", 0)
	figs := figures(t, req)
	for _, k := range []string{crm.FigDaysToClose, crm.FigPipelineShare} {
		if _, ok := figs[k]; ok {
			t.Errorf("a closed deal has the figure %s = %v", k, figs[k])
		}
	}
	all := strings.Join([]string{sectionText(resp)[llm.DealProgress], sectionText(resp)[llm.DealRisks],
		sectionText(resp)[llm.PipelineMetrics]}, "")
	for _, bad := range []string{"days to close", "mitigation", "% of it"} {
		if strings.Contains(all, bad) {
			t.Errorf("a closed deal's summary says %q:\n%s", bad, all)
		}
	}
	if !strings.Contains(all, "The deal is closed (Closed Lost") || !strings.Contains(all, "“Budget approval delayed again.”") {
		t.Errorf("no retrospective:\n%s", all)
	}

	lead := store.SummaryGraph{
		Subject: rec("leads", "lead-1", 0, "", store.Record{"company": "company-1", "lead_status": "Converted",
			"lead_source": "Referral", "converted": true}),
		Related: []store.GraphRecord{}, Activities: []store.GraphRecord{},
		Org: map[string]any{"lead_source_conversion_rate": n("0.25"), "lead_source_leads": n("40"), "lead_source_converted": n("10")},
	}
	_, resp = offlineAnswer(t, lead, "leads", 0)
	text := sectionText(resp)[llm.Qualification]
	if strings.Contains(text, "Conversion probability") || !strings.Contains(text, "The lead is converted") {
		t.Errorf("a converted lead's qualification:\n%s", text)
	}
}

// Objectives, tasks and close dates past their date are flagged overdue.
func TestOverdueObjectivesTasksAndCloseDates(t *testing.T) {
	objective := rec("objectives", "obj-1", 1, "accounts/acc-1", store.Record{"name": "Go live", "status": "In Progress",
		"due_date": date(today.AddDate(0, 0, -12)), "account": "acc-1"})
	future := rec("objectives", "obj-2", 1, "accounts/acc-1", store.Record{"name": "Expand usage", "status": "In Progress",
		"due_date": date(today.AddDate(0, 2, 0)), "account": "acc-1"})
	task := act("a-task", daysAgo(4), 1, "accounts/acc-1", store.Record{"kind": "task", "direction": "follow_up",
		"subject": "Send the QBR deck", "status": "Open", "account": "acc-1"})
	late := deal("d-late", "Negotiation", "renewal", date(today.AddDate(0, 0, -3)), "9000.00")
	req, resp := offlineAnswer(t, bareAccount([]store.GraphRecord{objective, future, late}, []store.GraphRecord{task}), "accounts", 0)
	figs := figures(t, req)
	if factText(figs[crm.FigOverdueObjectives]) != "1" || factText(figs[crm.FigPastCloseDeals]) != "1" {
		t.Errorf("overdue objectives %v, deals past close date %v; want 1 and 1", figs[crm.FigOverdueObjectives], figs[crm.FigPastCloseDeals])
	}
	text := sectionText(resp)[llm.ImmediateActions]
	for _, want := range []string{
		"Overdue objective: Go live (due " + date(today.AddDate(0, 0, -12)) + ", In Progress)",
		"Overdue task: Send the QBR deck",
		"Close date passed on an open deal: deal d-late",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	if strings.Contains(text, "Expand usage") {
		t.Errorf("an objective due later is called overdue:\n%s", text)
	}
	if next := sectionText(resp)[llm.StrategicNextSteps]; strings.Contains(next, "Go live") && strings.Contains(next, "is due") {
		t.Errorf("Strategic Next Steps calls the overdue objective due:\n%s", next)
	}
}

// Only the customer's own signals carry sentiment: a rep's follow-up, a
// subject line and a negated phrase do not.
func TestSentimentIsTheCustomers(t *testing.T) {
	acts := []store.GraphRecord{
		act("a-rep", daysAgo(1), 1, "accounts/acc-1", store.Record{"direction": "follow_up", "notes": "Thanks for the great session!"}),
		act("a-subj", daysAgo(2), 1, "accounts/acc-1", store.Record{"subject": "Renewal terms", "notes": "Sent the draft terms."}),
		act("a-neg", daysAgo(3), 1, "accounts/acc-1", store.Record{"notes": "We are not very happy with the exports."}),
	}
	_, resp := offlineAnswer(t, bareAccount(nil, acts), "accounts", 0)
	text := sectionText(resp)[llm.RelationalHealth]
	if !strings.Contains(text, "No notes of the customer's own signals mention positive relationship signals.") {
		t.Errorf("sentiment read from a follow-up, a subject or a negation:\n%s", text)
	}
	acts = append(acts, act("a-cust", daysAgo(4), 1, "accounts/acc-1", store.Record{"notes": "We plan to renew for two more years."}))
	_, resp = offlineAnswer(t, bareAccount(nil, acts), "accounts", 0)
	if text := sectionText(resp)[llm.RelationalHealth]; !strings.Contains(text, "“We plan to renew for two more years.”") {
		t.Errorf("the customer's own positive signal is not quoted:\n%s", text)
	}
}

// Ties are stated as ties, a preference needs a minimum sample, and a
// change under 15% is steady.
func TestTiesSamplesAndSteadyTrends(t *testing.T) {
	contactWith := func(acts []store.GraphRecord) store.SummaryGraph {
		return store.SummaryGraph{Subject: rec("contacts", "c-1", 0, "", store.Record{"title": "Engineer"}),
			Related: []store.GraphRecord{}, Activities: acts, Org: map[string]any{}}
	}
	var acts []store.GraphRecord
	for i, m := range []string{"call", "email", "visit", "call", "email", "visit"} {
		acts = append(acts, act(fmt.Sprintf("a-%d", i), daysAgo(float64(1+i)), 1, "contacts/c-1", store.Record{"medium": m, "contact": "c-1"}))
	}
	req, resp := offlineAnswer(t, contactWith(acts), "contacts", 0)
	if _, ok := figures(t, req)[crm.FigPreferredChannel]; ok {
		t.Errorf("a three-way tie has a preferred channel: %v", figures(t, req)[crm.FigPreferredChannel])
	}
	text := sectionText(resp)[llm.ContactPreferences]
	if !strings.Contains(text, "No single preferred channel: call, email, visit tie") {
		t.Errorf("the tie is not stated:\n%s", text)
	}

	_, resp = offlineAnswer(t, contactWith(acts[:3]), "contacts", 0)
	if text := sectionText(resp)[llm.ContactPreferences]; !strings.Contains(text, "Too few signals to call a preferred channel") {
		t.Errorf("three signals make a preference:\n%s", text)
	}

	var many []store.GraphRecord
	for i := range 31 {
		many = append(many, act(fmt.Sprintf("a-in-%02d", i), daysAgo(0.5+float64(i)*0.9), 1, "accounts/acc-1", nil))
	}
	for i := range 30 {
		many = append(many, act(fmt.Sprintf("a-prev-%02d", i), daysAgo(30.5+float64(i)*0.9), 1, "accounts/acc-1", nil))
	}
	req, _ = offlineAnswer(t, bareAccount(nil, many), "accounts", 0)
	figs := figures(t, req)
	if figs[crm.FigInWindow] != 31 || figs[crm.FigInPreviousWindow] != 30 || figs[crm.FigTrend] != crm.TrendSteady {
		t.Errorf("31 against 30 activities: %v against %v, trend %v; want steady",
			figs[crm.FigInWindow], figs[crm.FigInPreviousWindow], figs[crm.FigTrend])
	}
	req, resp = offlineAnswer(t, bareAccount(nil, many[:3]), "accounts", 0)
	if trend, ok := figures(t, req)[crm.FigTrend]; ok {
		t.Errorf("3 activities make a trend: %v", trend)
	}
	if text := sectionText(resp)[llm.AccountHighlights]; !strings.Contains(text, "(too few to call a trend)") {
		t.Errorf("no word on the missing trend:\n%s", text)
	}
}
