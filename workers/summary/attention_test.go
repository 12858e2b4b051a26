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

// What needs attention, each fact on a hand-made graph (issue 10, "What
// needs attention, first").

func contactSubject(acts ...store.GraphRecord) store.SummaryGraph {
	return store.SummaryGraph{Subject: rec("contacts", "con-1", 0, "", store.Record{"title": "Engineer", "lifecycle_stage": "Customer"}),
		Related: []store.GraphRecord{}, Activities: acts, Org: map[string]any{}}
}

// A customer signal with no later follow-up is unanswered, with how long
// it has waited, and comes first in the Overview; a later follow-up
// answers it.
func TestUnansweredSignalsAndTheirWait(t *testing.T) {
	follow := act("a-follow", daysAgo(130), 1, "contacts/con-1", store.Record{"direction": "follow_up", "subject": "Welcome pack", "contact": "con-1"})
	renewal := act("a-renewal", daysAgo(120), 1, "contacts/con-1", store.Record{"subject": "Renewal question", "contact": "con-1"})
	req, resp := offlineAnswer(t, contactSubject(follow, renewal), "contacts", 0)
	figs := figures(t, req)
	oldest, _ := figs[crm.FigOldestUnanswered].(map[string]any)
	if figs[crm.FigUnanswered] != 1 || oldest["ref"] != "activities/a-renewal" || oldest["waiting_days"] != 120 {
		t.Errorf("unanswered %v, oldest %v; want 1, activities/a-renewal waiting 120 days", figs[crm.FigUnanswered], oldest)
	}
	first := bulletsOf(resp, llm.Overview)[0]
	want := "Unanswered: 1 customer signal with no follow-up; the oldest, on " + date(daysAgo(120)) + ", has waited 120 days (“Renewal question”)"
	if !strings.HasPrefix(first.Text, want) || first.Sources[0] != "activities/a-renewal" {
		t.Errorf("the Overview opens with %q citing %v; want %q citing the signal", first.Text, first.Sources, want)
	}

	answered := act("a-answer", daysAgo(119), 1, "contacts/con-1", store.Record{"direction": "follow_up", "subject": "Re: renewal", "contact": "con-1"})
	req, resp = offlineAnswer(t, contactSubject(follow, renewal, answered), "contacts", 0)
	if figs := figures(t, req); figs[crm.FigUnanswered] != 0 || figs[crm.FigOldestUnanswered] != nil {
		t.Errorf("an answered signal counts as unanswered: %v, %v", figs[crm.FigUnanswered], figs[crm.FigOldestUnanswered])
	}
	if text := sectionText(resp)[llm.Overview]; strings.Contains(text, "Unanswered") {
		t.Errorf("an answered signal is called unanswered:\n%s", text)
	}
}

// An account's threads are its contacts: one contact's follow-up does not
// answer another's signal.
func TestUnansweredSignalsPerContactOfAnAccount(t *testing.T) {
	acts := []store.GraphRecord{
		act("a-sig", daysAgo(20), 1, "accounts/acc-1", store.Record{"contact": "c-1", "subject": "Renewal terms?"}),
		act("a-other", daysAgo(2), 1, "accounts/acc-1", store.Record{"contact": "c-2", "direction": "follow_up"}),
	}
	g := bareAccount([]store.GraphRecord{contact("c-1", "CFO"), contact("c-2", "Engineer")}, acts)
	req, resp := offlineAnswer(t, g, "accounts", 0)
	if figs := figures(t, req); figs[crm.FigUnanswered] != 1 {
		t.Errorf("unanswered = %v, want 1: the other contact's follow-up answers nothing of c-1", figs[crm.FigUnanswered])
	}
	if first := bulletsOf(resp, llm.ImmediateActions)[0]; !strings.HasPrefix(first.Text, "Unanswered: 1 customer signal") {
		t.Errorf("Immediate Actions opens with %q", first.Text)
	}
}

// Days since the last touch, and the time in the current status: a lead
// Contacted for months with no activity says so first.
func TestDaysSinceTouchAndTimeInStatus(t *testing.T) {
	contacted := daysAgo(145)
	lead := store.SummaryGraph{
		Subject: rec("leads", "lead-1", 0, "", store.Record{"company": "company-1", "lead_status": "Contacted", "lead_source": "Web"}),
		Related: []store.GraphRecord{}, Activities: []store.GraphRecord{},
		History: []store.FieldChange{
			{Field: "lead_status", NewValue: strp("New"), ChangedAt: daysAgo(160)},
			{Field: "lead_status", OldValue: strp("New"), NewValue: strp("Contacted"), ChangedAt: contacted},
		},
		Org: map[string]any{},
	}
	req, resp := offlineAnswer(t, lead, "leads", 0)
	status, _ := figures(t, req)[crm.FigStatusSince].(map[string]any)
	if status["value"] != "Contacted" || status["since"] != date(contacted) || status["days"] != 145 {
		t.Errorf("current status = %v; want Contacted since %s, 145 days", status, date(contacted))
	}
	first := bulletsOf(resp, llm.Overview)[0].Text
	if want := "Contacted since " + date(contacted) + ": 145 days in this status, with no activity recorded."; first != want {
		t.Errorf("the Overview opens with %q, want %q", first, want)
	}

	lead.Activities = []store.GraphRecord{act("a-1", daysAgo(40.2), 1, "leads/lead-1", store.Record{"direction": "follow_up", "lead": "lead-1"})}
	req, resp = offlineAnswer(t, lead, "leads", 0)
	if d := figures(t, req)[crm.FigDaysSinceTouch]; d != 40 {
		t.Errorf("days since last touch = %v, want 40 (calendar days)", d)
	}
	if first := bulletsOf(resp, llm.Overview)[0].Text; !strings.HasSuffix(first, "145 days in this status; last touch 40 days ago.") {
		t.Errorf("the Overview opens with %q", first)
	}
}

// Open pipeline on one contact, or on no executive, is single-threaded; a
// Director among several contacts is not.
func TestSingleThreading(t *testing.T) {
	open := deal("d-1", "Proposal", "new", date(today.AddDate(0, 2, 0)), "130745.76")
	for _, tt := range []struct {
		name     string
		contacts []store.GraphRecord
		want     string
	}{
		{"one Engineering Manager", []store.GraphRecord{contact("c-1", "Engineering Manager")},
			"Single-threaded: open pipeline of USD 130,745.76 rests on one contact (contacts/c-1 — Engineering Manager)"},
		{"three contacts, none senior", []store.GraphRecord{contact("c-1", "Engineer"), contact("c-2", "Product Owner"), contact("c-3", "Analyst")},
			"Single-threaded: open pipeline of USD 130,745.76 rests on no executive among 3 contacts"},
		{"a Director and an engineer", []store.GraphRecord{contact("c-1", "Engineer"), contact("c-2", "Director of IT")}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, resp := offlineAnswer(t, bareAccount(append(tt.contacts, open), nil), "accounts", 0)
			text := sectionText(resp)[llm.ImmediateActions]
			if tt.want == "" {
				if strings.Contains(text, "Single-threaded") || figures(t, req)[crm.FigSingleThreaded] != nil {
					t.Errorf("called single-threaded:\n%s", text)
				}
				return
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("missing %q in\n%s", tt.want, text)
			}
		})
	}
	// No open pipeline, no single-threading.
	req, _ := offlineAnswer(t, bareAccount([]store.GraphRecord{contact("c-1", "Engineer")}, nil), "accounts", 0)
	if figures(t, req)[crm.FigSingleThreaded] != nil {
		t.Error("an account without open deals is single-threaded")
	}
}

// An open deal older than the window with no activity in it is stalled;
// one touched last week is not. A deal long in its stage with no recent
// activity is stalled too.
func TestStalledDeals(t *testing.T) {
	quiet := deal("d-quiet", "Proposal", "new", date(today.AddDate(0, 1, 0)), "1000.00")
	quiet.Fields["created_at"] = ts(daysAgo(90))
	busy := deal("d-busy", "Proposal", "new", date(today.AddDate(0, 1, 0)), "2000.00")
	busy.Fields["created_at"] = ts(daysAgo(90))
	fresh := deal("d-fresh", "Proposal", "new", date(today.AddDate(0, 1, 0)), "3000.00")
	fresh.Fields["created_at"] = ts(daysAgo(5))
	acts := []store.GraphRecord{act("a-1", daysAgo(6), 2, "deals/d-busy", store.Record{"deal": "d-busy", "direction": "follow_up"})}
	req, resp := offlineAnswer(t, bareAccount([]store.GraphRecord{quiet, busy, fresh}, acts), "accounts", 0)
	if got := fmt.Sprint(figures(t, req)[crm.FigStalledDeals]); got != "[deals/d-quiet]" {
		t.Errorf("stalled deals = %s, want [deals/d-quiet]", got)
	}
	if text := sectionText(resp)[llm.ImmediateActions]; !strings.Contains(text, "Stalled: 1 open deal with no activity in the last 30 days — deal d-quiet") {
		t.Errorf("the stalled deal is not stated:\n%s", text)
	}

	g := store.SummaryGraph{
		Subject: rec("deals", "d-1", 0, "", store.Record{"name": "deal d-1", "stage": "Proposal", "amount": n("5000.00")}),
		Related: []store.GraphRecord{}, Activities: []store.GraphRecord{},
		History: []store.FieldChange{{Field: "stage", NewValue: strp("Proposal"), ChangedAt: daysAgo(45)}},
		Org:     map[string]any{},
	}
	_, resp = offlineAnswer(t, g, "deals", 0)
	if text := sectionText(resp)[llm.Overview]; !strings.Contains(text, "Stalled: no activity in the last 30 days; days in this stage: 45") {
		t.Errorf("the stalled deal is not stated:\n%s", text)
	}
	g.History[0].ChangedAt = daysAgo(10)
	req, _ = offlineAnswer(t, g, "deals", 0)
	if figures(t, req)[crm.FigStalled] != nil {
		t.Error("a deal ten days in its stage is stalled")
	}
}

// The Executive Summary opens with the verdict and its reasons in three or
// four sentences: at risk, watch or healthy.
func TestHealthVerdict(t *testing.T) {
	escalated := rec("cases", "case-1", 1, "accounts/acc-1", store.Record{"subject": "Exports fail", "status": "Open",
		"escalated": true, "account": "acc-1"})
	signal := act("a-sig", daysAgo(20), 1, "accounts/acc-1", store.Record{"subject": "Renewal terms?"})
	task := rec("playbook_tasks", "t-1", 2, "playbooks/pb-1", store.Record{"name": "Kick-off", "status": "Open",
		"due_date": date(today.AddDate(0, 0, -3))})
	recent := act("a-recent", daysAgo(1), 1, "accounts/acc-1", store.Record{"direction": "follow_up"})
	sentences := func(s string) int { return strings.Count(s, ". ") + 1 }
	for _, tt := range []struct {
		name    string
		related []store.GraphRecord
		acts    []store.GraphRecord
		verdict string
		want    []string
	}{
		{"an escalated case and a signal waiting 20 days", []store.GraphRecord{escalated}, []store.GraphRecord{signal}, crm.HealthAtRisk,
			[]string{"Health: at risk.", "It has escalated cases: 1, among them “Exports fail”.",
				"A customer signal from " + date(daysAgo(20)) + " has waited 20 days for a follow-up."}},
		{"an overdue playbook task", []store.GraphRecord{task}, []store.GraphRecord{recent}, crm.HealthWatch,
			[]string{"Health: watch.", "Overdue playbook tasks: 1."}},
		{"nothing wrong", nil, []store.GraphRecord{recent}, crm.HealthHealthy,
			[]string{"Health: healthy.", "No escalated case, red project, unanswered customer signal, overdue item or stalled deal is recorded."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, resp := offlineAnswer(t, bareAccount(tt.related, tt.acts), "accounts", 0)
			if got := figures(t, req)[crm.FigHealth]; got != tt.verdict {
				t.Errorf("verdict %v, want %s (reasons %v)", got, tt.verdict, figures(t, req)[crm.FigHealthReasons])
			}
			first := bulletsOf(resp, llm.ExecutiveSummary)[0]
			for _, w := range tt.want {
				if !strings.Contains(first.Text, w) {
					t.Errorf("the Executive Summary opens with %q; missing %q", first.Text, w)
				}
			}
			if n := sentences(first.Text); n < 3 || n > 4 {
				t.Errorf("%d sentences, want 3 or 4: %q", n, first.Text)
			}
		})
	}
}

// The thresholds are days: the verdict changes at 14 days of waiting.
func TestUnansweredWaitThreshold(t *testing.T) {
	for wait, want := range map[float64]string{13: crm.HealthWatch, 14: crm.HealthAtRisk} {
		a := act("a-sig", today.Add(-time.Duration(wait)*24*time.Hour), 1, "accounts/acc-1", nil)
		req, _ := offlineAnswer(t, bareAccount(nil, []store.GraphRecord{a}), "accounts", 0)
		if got := figures(t, req)[crm.FigHealth]; got != want {
			t.Errorf("a signal waiting %v days: %v, want %s", wait, got, want)
		}
	}
}
