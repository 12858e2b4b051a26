package summary_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

// today is the clock of every fixture: a Monday morning.
var today = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

func daysAgo(d float64) time.Time { return today.Add(-time.Duration(d * 24 * float64(time.Hour))) }

// ts renders a time as the store does.
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func date(t time.Time) string { return t.Format(time.DateOnly) }

func n(s string) json.Number { return json.Number(s) }

func rec(module, id string, level int, parent string, fields store.Record) store.GraphRecord {
	f := store.Record{"id": id, "state": "active", "created_at": ts(daysAgo(400)), "updated_at": ts(daysAgo(3))}
	for k, v := range fields {
		f[k] = v
	}
	return store.GraphRecord{Module: module, ID: id, Level: level, Parent: parent, Fields: f, UpdatedAt: daysAgo(3)}
}

func act(id string, at time.Time, level int, parent string, fields store.Record) store.GraphRecord {
	f := store.Record{"occurred_at": ts(at), "kind": "note", "medium": "email", "direction": "signal"}
	for k, v := range fields {
		f[k] = v
	}
	r := rec("activities", id, level, parent, f)
	r.UpdatedAt = at
	return r
}

func strp(s string) *string { return &s }

// accountGraph is a realistic account: contacts with and without titles,
// won, lost and open deals with line items and products, cases, a success
// plan with objectives and KPIs of all five statuses (and one On Track KPI
// without progress), a business challenge, a playbook with tasks, projects
// and activities carrying expansion, risk and positive cues.
func accountGraph() store.SummaryGraph {
	acc := "accounts/acc-1"
	g := store.SummaryGraph{
		Subject: rec("accounts", "acc-1", 0, "", store.Record{"name": "Northwind Traders", "industry": "Logistics",
			"employees": n("1200"), "annual_revenue": n("48000000.00"), "product_family": "Analytics",
			"website": "https://northwind.example", "city": "Leeds", "country": "United Kingdom", "owner": "Dana Whitfield"}),
		Org: map[string]any{"account_won_revenue": n("52000.00"), "org_won_revenue": n("1040000.00")},
		Related: []store.GraphRecord{
			rec("contacts", "c-1", 1, acc, store.Record{"first_name": "Priya", "last_name": "Raman", "title": "VP Operations",
				"email": "priya@northwind.example", "account": "acc-1", "owner": "Dana Whitfield"}),
			rec("contacts", "c-2", 1, acc, store.Record{"first_name": "Tom", "last_name": "Becker", "title": "IT Manager",
				"email": "tom@northwind.example", "account": "acc-1"}),
			rec("contacts", "c-3", 1, acc, store.Record{"first_name": "Lena", "last_name": "Ortiz", "account": "acc-1"}),
			rec("deals", "d-1", 1, acc, store.Record{"name": "Northwind - expansion 2025", "stage": "Negotiation",
				"deal_type": "expansion", "amount": n("36000.00"), "probability": n("75"), "close_date": date(today.AddDate(0, 1, 13)),
				"next_step": "Pricing call", "competitor": "Globex", "owner": "Sam Okafor", "account": "acc-1", "contact": "c-1"}),
			rec("deals", "d-2", 1, acc, store.Record{"name": "Northwind - new 2024", "stage": "Closed Won", "deal_type": "new",
				"amount": n("52000.00"), "probability": n("100"), "close_date": "2024-11-20", "owner": "Sam Okafor", "account": "acc-1"}),
			rec("deals", "d-3", 1, acc, store.Record{"name": "Northwind - renewal 2024", "stage": "Closed Lost", "deal_type": "renewal",
				"amount": n("18000.00"), "probability": n("0"), "close_date": "2024-09-02", "account": "acc-1"}),
			rec("deal_line_items", "dli-1", 2, "deals/d-2", store.Record{"deal": "d-2", "product": "p-1", "quantity": n("10.0000"),
				"unit_price": n("3000.00"), "total": n("30000.00")}),
			rec("deal_line_items", "dli-2", 2, "deals/d-2", store.Record{"deal": "d-2", "product": "p-2", "quantity": n("4.0000"),
				"unit_price": n("5500.00"), "total": n("22000.00")}),
			rec("products", "p-1", 3, "deal_line_items/dli-1", store.Record{"name": "Insight Cloud", "family": "Analytics", "unit_price": n("3000.00")}),
			rec("products", "p-2", 3, "deal_line_items/dli-2", store.Record{"name": "Route Planner", "family": "Logistics Suite", "unit_price": n("5500.00")}),
			rec("cases", "case-1", 1, acc, store.Record{"subject": "Sync with ERP stopped", "status": "Open", "priority": "High",
				"escalated": true, "opened_at": ts(daysAgo(6)), "account": "acc-1", "contact": "c-2"}),
			rec("cases", "case-2", 1, acc, store.Record{"subject": "Invoice shows wrong tax", "status": "Closed", "priority": "Low",
				"escalated": false, "opened_at": ts(daysAgo(80)), "closed_at": ts(daysAgo(78)), "account": "acc-1"}),
			rec("cases", "case-3", 1, acc, store.Record{"subject": "Dashboard widgets missing", "status": "On Hold", "priority": "Medium",
				"escalated": false, "opened_at": ts(daysAgo(20)), "account": "acc-1"}),
			rec("success_plans", "sp-1", 1, acc, store.Record{"name": "Northwind success plan", "status": "Active",
				"start_date": "2024-10-01", "end_date": "2025-10-01", "account": "acc-1"}),
			rec("objectives", "obj-1", 1, acc, store.Record{"name": "Increase adoption across teams", "status": "In Progress",
				"due_date": "2025-09-30", "account": "acc-1", "success_plan": "sp-1"}),
			rec("objectives", "obj-2", 1, acc, store.Record{"name": "Automate onboarding", "status": "Achieved",
				"due_date": "2025-03-31", "account": "acc-1", "success_plan": "sp-1"}),
			kpi("k-1", "Weekly active users", "On Track", "500.00", "420.00", "users", "Trending to target.", "obj-1"),
			kpi("k-2", "Forecast accuracy", "Completed", "90.00", "95.00", "%", "Target reached and confirmed by the sponsor.", "obj-2"),
			kpi("k-3", "Dashboards in use", "Off Track", "40.00", "16.00", "dashboards", "Behind plan; adoption stalled in two teams.", "obj-1"),
			kpi("k-4", "Onboarded teams", "Not Started", "10.00", "0.00", "teams", "Measurement starts next quarter.", "obj-1"),
			kpi("k-5", "Median resolution time", "Blocked", "24.00", "5.00", "hours", "Blocked on the customer's data migration.", "obj-1"),
			kpi("k-6", "Open escalations", "On Track", "10.00", "0.00", "cases", "Nothing recorded yet.", "obj-1"),
			rec("business_challenges", "bc-1", 1, acc, store.Record{"name": "Legacy data spread over spreadsheets", "status": "Open",
				"description": "Raised by the customer's sponsor.", "account": "acc-1", "success_plan": "sp-1"}),
			rec("playbooks", "pb-1", 1, acc, store.Record{"name": "Onboarding", "status": "Active", "account": "acc-1"}),
			rec("playbook_tasks", "pbt-1", 2, "playbooks/pb-1", store.Record{"name": "Train admins", "status": "In Progress",
				"due_date": date(daysAgo(10)), "owner": "Dana Whitfield", "playbook": "pb-1"}),
			rec("playbook_tasks", "pbt-2", 2, "playbooks/pb-1", store.Record{"name": "Health check", "status": "Not Started",
				"due_date": date(today.AddDate(0, 0, 7)), "owner": "Dana Whitfield", "playbook": "pb-1"}),
			rec("playbook_tasks", "pbt-3", 2, "playbooks/pb-1", store.Record{"name": "Kick-off call", "status": "Done",
				"due_date": "2024-10-15", "owner": "Dana Whitfield", "playbook": "pb-1"}),
			rec("projects", "prj-1", 1, acc, store.Record{"name": "Data migration", "status": "In Progress", "health": "red", "account": "acc-1"}),
			rec("projects", "prj-2", 1, acc, store.Record{"name": "Implementation", "status": "Done", "health": "green", "account": "acc-1"}),
		},
		Activities: []store.GraphRecord{
			act("a-1", daysAgo(1), 1, acc, store.Record{"medium": "meeting", "kind": "meeting", "direction": "follow_up",
				"subject": "Business review", "notes": "Thanks for the great workshop, the team is happy with the rollout.",
				"contact": "c-1", "account": "acc-1", "user_id": "Dana Whitfield"}),
			act("a-2", daysAgo(4), 1, acc, store.Record{"subject": "Pricing for more seats",
				"notes": "They are interested in adding seats for the support team.", "contact": "c-1", "account": "acc-1"}),
			act("a-3", daysAgo(6), 1, acc, store.Record{"medium": "desk", "kind": "ticket", "subject": "Ticket: missing data after sync",
				"notes": "Issue was escalated to management on their side.", "contact": "c-2", "account": "acc-1", "case": "case-1", "status": "Escalated"}),
			act("a-4", daysAgo(9), 2, "success_plans/sp-1", store.Record{"medium": "call", "kind": "cs_activity", "direction": "follow_up",
				"subject": "KPI check-in", "notes": "Reviewed progress on the plan's objectives.", "account": "acc-1", "success_plan": "sp-1",
				"kpi": "k-1", "status": "Attended", "user_id": "Dana Whitfield"}),
			act("a-5", daysAgo(12), 1, acc, store.Record{"medium": "call", "kind": "call", "subject": "Quarterly check-in call",
				"notes": "Mentioned budget planning for next quarter.", "contact": "c-2", "account": "acc-1"}),
			act("a-6", daysAgo(15), 1, acc, store.Record{"kind": "task", "direction": "follow_up", "subject": "Send renewal options",
				"status": "Open", "contact": "c-1", "account": "acc-1", "user_id": "Sam Okafor"}),
			act("a-7", daysAgo(33), 1, acc, store.Record{"subject": "Re: onboarding plan", "notes": "The customer is considering a new region next year.",
				"contact": "c-3", "account": "acc-1"}),
			act("a-8", daysAgo(41), 1, acc, store.Record{"medium": "visit", "kind": "visit", "subject": "Visited pricing page",
				"time_spent_seconds": n("340"), "pages_visited": n("6"), "contact": "c-3", "account": "acc-1"}),
			act("a-9", daysAgo(75), 1, acc, store.Record{"subject": "Question about our invoice", "notes": "Asked for an update on the open request.",
				"contact": "c-2", "account": "acc-1"}),
		},
		DataAsOf: daysAgo(1),
		DataHash: "hash-acc-1",
	}
	g.ActivityTotal = len(g.Activities)
	return g
}

func kpi(id, name, status, target, actual, unit, comment, objective string) store.GraphRecord {
	return rec("kpis", id, 1, "accounts/acc-1", store.Record{"name": name, "status": status, "target": n(target),
		"actual": n(actual), "unit": unit, "comment": comment, "objective": objective, "account": "acc-1"})
}

func contactGraph() store.SummaryGraph {
	c := "contacts/c-1"
	g := store.SummaryGraph{
		Subject: rec("contacts", "c-1", 0, "", store.Record{"first_name": "Priya", "last_name": "Raman", "title": "VP Operations",
			"email": "priya@northwind.example", "phone": "+44-20-5550-0101", "lifecycle_stage": "Customer", "account": "acc-1",
			"owner": "Dana Whitfield"}),
		Related: []store.GraphRecord{
			rec("accounts", "acc-1", 1, c, store.Record{"name": "Northwind Traders", "industry": "Logistics"}),
			rec("deals", "d-1", 1, c, store.Record{"name": "Northwind - expansion 2025", "stage": "Negotiation",
				"amount": n("36000.00"), "contact": "c-1", "account": "acc-1"}),
			rec("deals", "d-2", 1, c, store.Record{"name": "Northwind - new 2024", "stage": "Closed Won",
				"amount": n("52000.00"), "contact": "c-1", "account": "acc-1"}),
		},
		History: []store.FieldChange{
			{Field: "lifecycle_stage", NewValue: strp("Lead"), ChangedAt: daysAgo(300)},
			{Field: "lifecycle_stage", OldValue: strp("Lead"), NewValue: strp("Customer"), ChangedAt: daysAgo(200)},
		},
		DataAsOf: daysAgo(1), DataHash: "hash-c-1",
	}
	// Tuesday and Thursday mornings by email, a call on a Friday afternoon.
	at := []time.Time{
		time.Date(2025, 5, 27, 8, 15, 0, 0, time.UTC), time.Date(2025, 5, 22, 10, 5, 0, 0, time.UTC),
		time.Date(2025, 5, 20, 9, 40, 0, 0, time.UTC), time.Date(2025, 5, 16, 14, 20, 0, 0, time.UTC),
		time.Date(2025, 5, 13, 7, 55, 0, 0, time.UTC),
	}
	mediums := []string{"email", "email", "email", "call", "email"}
	notes := []string{"Asked about the renewal terms.", "Shared feedback on the latest release.",
		"Wants to know how other customers use dashboards.", "Callback request about the integration.", "Thank you for the quick fix."}
	for i := range at {
		g.Activities = append(g.Activities, act(fmt.Sprintf("ca-%d", i+1), at[i], 1, c, store.Record{"medium": mediums[i],
			"kind": mediums[i], "subject": "Signal " + mediums[i], "notes": notes[i], "contact": "c-1"}))
		g.Activities = append(g.Activities, act(fmt.Sprintf("cf-%d", i+1), at[i].Add(3*time.Hour), 1, c, store.Record{
			"medium": "email", "direction": "follow_up", "subject": "Re: your request", "status": "Delivered",
			"notes": "Answered and shared the documentation link.", "contact": "c-1", "user_id": "Dana Whitfield"}))
	}
	slices.SortFunc(g.Activities, func(a, b store.GraphRecord) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	g.ActivityTotal = len(g.Activities)
	return g
}

func leadGraph() store.SummaryGraph {
	l := "leads/l-1"
	g := store.SummaryGraph{
		Subject: rec("leads", "l-1", 0, "", store.Record{"first_name": "Marco", "last_name": "Bianchi", "company": "Bianchi Freight",
			"email": "marco@bianchifreight.example", "phone": "+39-02-5550-0199", "lead_source": "Referral",
			"lead_status": "Contacted", "potential_value": n("125000.00"), "converted": false, "owner": "Sam Okafor"}),
		Org: map[string]any{"lead_source_conversion_rate": 0.235, "lead_source_leads": 200, "lead_source_converted": 47},
		History: []store.FieldChange{
			{Field: "lead_status", NewValue: strp("New"), ChangedAt: daysAgo(40)},
			{Field: "lead_status", OldValue: strp("New"), NewValue: strp("Contacted"), ChangedAt: daysAgo(25)},
		},
		Activities: []store.GraphRecord{
			act("la-1", daysAgo(2), 1, l, store.Record{"medium": "webinar", "kind": "event", "subject": "Attended webinar: forecasting", "lead": "l-1"}),
			act("la-2", daysAgo(5), 1, l, store.Record{"medium": "email", "direction": "follow_up", "subject": "Sent the requested quote",
				"status": "Delivered", "notes": "Sent the requested quote.", "lead": "l-1", "user_id": "Sam Okafor"}),
			act("la-3", daysAgo(8), 1, l, store.Record{"medium": "visit", "kind": "visit", "subject": "Visited pricing page", "lead": "l-1"}),
		},
		DataAsOf: daysAgo(2), DataHash: "hash-l-1",
	}
	g.ActivityTotal = len(g.Activities)
	return g
}

func dealGraph() store.SummaryGraph {
	d := "deals/d-1"
	g := store.SummaryGraph{
		Subject: rec("deals", "d-1", 0, "", store.Record{"name": "Northwind - expansion 2025", "stage": "Negotiation",
			"deal_type": "expansion", "amount": n("36000.00"), "probability": n("75"), "close_date": "2025-07-15",
			"next_step": "Pricing call", "competitor": "Globex", "owner": "Sam Okafor", "account": "acc-1", "contact": "c-1"}),
		Org: map[string]any{"open_pipeline_value": n("1250000.00"), "engagement_30d": n("14")},
		Related: []store.GraphRecord{
			rec("accounts", "acc-1", 1, d, store.Record{"name": "Northwind Traders"}),
			rec("contacts", "c-1", 1, d, store.Record{"first_name": "Priya", "last_name": "Raman", "title": "VP Operations"}),
			rec("contacts", "c-2", 1, d, store.Record{"first_name": "Tom", "last_name": "Becker", "title": "IT Manager"}),
			rec("deal_line_items", "dli-9", 1, d, store.Record{"deal": "d-1", "product": "p-1", "quantity": n("12.0000"), "total": n("36000.00")}),
		},
		History: []store.FieldChange{
			{Field: "stage", NewValue: strp("Qualification"), ChangedAt: time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)},
			{Field: "stage", OldValue: strp("Qualification"), NewValue: strp("Needs Analysis"), ChangedAt: time.Date(2025, 3, 20, 10, 0, 0, 0, time.UTC)},
			{Field: "stage", OldValue: strp("Needs Analysis"), NewValue: strp("Proposal"), ChangedAt: time.Date(2025, 4, 14, 10, 0, 0, 0, time.UTC)},
			{Field: "stage", OldValue: strp("Proposal"), NewValue: strp("Negotiation"), ChangedAt: time.Date(2025, 5, 19, 10, 0, 0, 0, time.UTC)},
		},
		Activities: []store.GraphRecord{
			act("da-1", daysAgo(3), 1, d, store.Record{"medium": "call", "kind": "call", "subject": "Pricing call prep",
				"notes": "Budget approval delayed to next quarter; they are also evaluating Globex.", "deal": "d-1", "contact": "c-1"}),
			act("da-2", daysAgo(11), 1, d, store.Record{"medium": "meeting", "kind": "meeting", "direction": "follow_up",
				"subject": "Product demo", "notes": "Great demo, the team was pleased.", "deal": "d-1", "contact": "c-2"}),
		},
		DataAsOf: daysAgo(3), DataHash: "hash-d-1",
	}
	g.ActivityTotal = len(g.Activities)
	return g
}

func customGraph() store.SummaryGraph {
	return store.SummaryGraph{
		Subject: rec("custom_competitors", "cmp-1", 0, "", store.Record{"name": "Globex",
			"attributes": map[string]any{"threat": "high", "website": "https://globex.example", "founded": n("1998")}}),
		DataAsOf: daysAgo(30), DataHash: "hash-cmp-1",
	}
}

// Pools of the randomized graphs.
var (
	firstNames = []string{"Ada", "Bruno", "Chloe", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Ines", "Jonas"}
	lastNames  = []string{"Alvarez", "Brandt", "Chen", "Dubois", "Eriksen", "Fischer", "Gallo", "Haddad", "Ivanova", "Jensen"}
	companies  = []string{"Acme Mills", "Blue Harbor", "Cobalt Works", "Delta Farms", "Evergreen Labs", "Fjord Air"}
	noteTexts  = []string{
		"They are interested in adding seats for the support team.", "The customer is considering a new region next year.",
		"They are unhappy with response time on recent tickets.", "Issue was escalated to management on their side.",
		"Sponsor left the company; churn risk if nobody picks this up.", "Thanks, the onboarding went great.",
		"Asked for an update on the open request.", "Shared feedback on the latest release.", "Renewal is due in Q4 2025.",
		"Sent 3 options for the 2025 rollout with 12.5% discount.", "",
	}
	subjectsPool = []string{"Renewal terms", "Pricing for more seats", "Business review", "Inbound call", "Ticket: slow dashboards",
		"Upgrade request", "KPI check-in", "Executive sponsor sync"}
	mediumsPool = []string{"email", "call", "meeting", "survey", "desk", "visit", "webinar", "portal"}
	caseStatus  = []string{"Open", "Closed", "On Hold", "Escalated", "Resolved"}
	stages      = []string{"Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won", "Closed Lost"}
	taskStatus  = []string{"Not Started", "In Progress", "Done"}
	health      = []string{"green", "amber", "red"}
	sources     = []string{"Referral", "Web", "Trade Show", "Partner", "Cold Call"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func money(r *rand.Rand, lo, hi int) json.Number {
	return json.Number(fmt.Sprintf("%d.%02d", lo+r.IntN(hi-lo), r.IntN(100)))
}

// randomGraph builds a graph of module from r: any mix of related records
// and activities, with values drawn from the pools above.
func randomGraph(r *rand.Rand, module string) store.SummaryGraph {
	id := fmt.Sprintf("x-%d", r.IntN(1000))
	subj := summary.Ref(module, id)
	person := func() store.Record {
		return store.Record{"first_name": pick(r, firstNames), "last_name": pick(r, lastNames)}
	}
	var fields store.Record
	switch module {
	case "accounts":
		fields = store.Record{"name": pick(r, companies), "industry": pick(r, []string{"Retail", "Energy", "Media"}),
			"employees": json.Number(fmt.Sprint(r.IntN(5000))), "annual_revenue": money(r, 100000, 90000000),
			"product_family": pick(r, []string{"Analytics", "Core", "Edge"}), "city": pick(r, []string{"Oslo", "Lyon", "Porto"}),
			"owner": pick(r, firstNames)}
	case "contacts":
		fields = person()
		fields["title"] = pick(r, []string{"Chief Executive Officer", "Head of Finance", "Account Manager", "Analyst", ""})
		fields["email"] = fmt.Sprintf("p%d@example.com", r.IntN(100))
	case "leads":
		fields = person()
		fields["company"] = pick(r, companies)
		fields["lead_source"] = pick(r, sources)
		fields["lead_status"] = pick(r, []string{"New", "Contacted", "Qualified"})
		fields["potential_value"] = money(r, 1000, 300000)
	case "deals":
		fields = store.Record{"name": pick(r, companies) + " deal", "stage": pick(r, stages), "amount": money(r, 1000, 200000),
			"probability": json.Number(fmt.Sprint(r.IntN(101))), "close_date": date(today.AddDate(0, 0, r.IntN(200)-100)),
			"next_step": pick(r, []string{"Send proposal", "Security review", ""}), "competitor": pick(r, []string{"Globex", "Initech", ""})}
	default:
		fields = store.Record{"name": pick(r, companies), "attributes": map[string]any{"tier": pick(r, []string{"gold", "silver"}),
			"score": json.Number(fmt.Sprint(r.IntN(100)))}}
	}
	g := store.SummaryGraph{Subject: rec(module, id, 0, "", fields), Org: map[string]any{}, DataHash: "h", DataAsOf: today}
	for i := range r.IntN(12) {
		c := person()
		c["title"] = pick(r, []string{"VP Sales", "Director of IT", "Office Manager", "Engineer", ""})
		g.Related = append(g.Related, rec("contacts", fmt.Sprintf("rc-%d", i), 1, subj, c))
	}
	for i := range r.IntN(10) {
		g.Related = append(g.Related, rec("deals", fmt.Sprintf("rd-%d", i), 1, subj, store.Record{"name": pick(r, companies) + " renewal",
			"stage": pick(r, stages), "amount": money(r, 500, 100000), "deal_type": pick(r, []string{"new", "expansion", "renewal"}),
			"close_date": date(today.AddDate(0, 0, r.IntN(300)-150)), "next_step": pick(r, []string{"Demo for finance", ""}),
			"owner": pick(r, lastNames), "contact": "rc-0"}))
	}
	if module == "accounts" {
		for i := range r.IntN(8) {
			g.Related = append(g.Related, rec("cases", fmt.Sprintf("rcs-%d", i), 1, subj, store.Record{"subject": pick(r, subjectsPool),
				"status": pick(r, caseStatus), "priority": pick(r, []string{"Low", "High", "Urgent"}), "escalated": r.IntN(3) == 0}))
		}
		for i := range r.IntN(10) {
			g.Related = append(g.Related, rec("kpis", fmt.Sprintf("rk-%d", i), 1, subj, store.Record{"name": pick(r, subjectsPool),
				"status": pick(r, store.KPIStatuses()), "target": money(r, 0, 500), "actual": money(r, 0, 600),
				"unit": pick(r, []string{"users", "%", "hours"}), "comment": pick(r, noteTexts)}))
		}
		for i := range r.IntN(6) {
			g.Related = append(g.Related, rec("playbook_tasks", fmt.Sprintf("rt-%d", i), 2, "playbooks/pb", store.Record{
				"name": pick(r, subjectsPool), "status": pick(r, taskStatus), "due_date": date(today.AddDate(0, 0, r.IntN(60)-30)),
				"owner": pick(r, firstNames)}))
		}
		for i := range r.IntN(4) {
			g.Related = append(g.Related, rec("projects", fmt.Sprintf("rp-%d", i), 1, subj, store.Record{"name": pick(r, subjectsPool),
				"status": pick(r, []string{"In Progress", "Done"}), "health": pick(r, health)}))
		}
		g.Org["account_won_revenue"] = money(r, 1000, 90000)
		g.Org["org_won_revenue"] = money(r, 100000, 900000)
	}
	if module == "leads" {
		g.Org["lead_source_conversion_rate"] = float64(r.IntN(1000)) / 1000
	}
	if module == "deals" {
		g.Org["open_pipeline_value"] = money(r, 200000, 900000)
		for i := range r.IntN(5) {
			g.History = append(g.History, store.FieldChange{Field: "stage", NewValue: strp(stages[i]), ChangedAt: daysAgo(float64(100 - 20*i))})
		}
	}
	nActs := r.IntN(60)
	for i := range nActs {
		dir := pick(r, []string{"signal", "follow_up"})
		g.Activities = append(g.Activities, act(fmt.Sprintf("ra-%d", i), daysAgo(float64(i)*1.7+r.Float64()), 1, subj, store.Record{
			"medium": pick(r, mediumsPool), "direction": dir, "subject": pick(r, subjectsPool), "notes": pick(r, noteTexts),
			"contact": "rc-0", "status": pick(r, []string{"", "Open", "Delivered"}), "kind": pick(r, []string{"note", "task", "call"})}))
	}
	g.ActivityTotal = nActs + r.IntN(3)*r.IntN(5000)
	return g
}

// bigAccountGraph is an account with total activities of which the graph
// holds the newest store.ActivityCap, and many associated records.
func bigAccountGraph(total int) store.SummaryGraph {
	g := accountGraph()
	g.Activities = nil
	r := rand.New(rand.NewPCG(7, 7))
	for i := range min(total, store.ActivityCap) {
		g.Activities = append(g.Activities, act(fmt.Sprintf("big-%05d", i), today.Add(-time.Duration(i)*37*time.Minute), 2,
			"success_plans/sp-1", store.Record{"medium": pick(r, mediumsPool), "kind": "cs_activity", "direction": "follow_up",
				"subject": pick(r, subjectsPool), "notes": pick(r, noteTexts), "account": "acc-1", "success_plan": "sp-1"}))
	}
	for i := range 300 {
		g.Related = append(g.Related, rec("contacts", fmt.Sprintf("bc-%03d", i), 1, "accounts/acc-1", store.Record{
			"first_name": pick(r, firstNames), "last_name": pick(r, lastNames), "title": pick(r, []string{"VP Sales", "Engineer", ""}),
			"account": "acc-1"}))
	}
	g.ActivityTotal = total
	return g
}
