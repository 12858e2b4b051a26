package demo

import (
	"math"
	"slices"
	"time"
)

// personActivities is about how many signals and follow-ups the contacts
// and leads get together; CS activities come on top.
const personActivities = 19500

// kindOf is the activity kind each medium is recorded as.
var kindOf = map[string]string{
	"email": "email", "call": "call", "meeting": "meeting", "survey": "survey", "desk": "ticket",
	"facebook": "social", "twitter": "social", "backstage": "event", "webinar": "event",
	"visit": "visit", "portal": "ticket",
}

// Signals come through every medium; follow-ups through the ones a CRM
// user answers on. Repeats weight the draw.
var (
	signalMediums = []string{"email", "email", "email", "email", "email", "call", "call", "meeting",
		"survey", "desk", "desk", "desk", "facebook", "twitter", "backstage", "webinar", "webinar",
		"visit", "visit", "visit", "portal", "portal"}
	followUpMediums = []string{"email", "email", "email", "email", "email", "call", "call", "call",
		"meeting", "desk"}
	subjects = map[string][]string{
		"email":     {"Question about our invoice", "Renewal terms", "Feature request: bulk edit", "Re: onboarding plan", "Pricing for more seats"},
		"call":      {"Inbound call", "Call about integration", "Callback request", "Quarterly check-in call"},
		"meeting":   {"Business review", "Product demo", "Onboarding workshop", "Roadmap session"},
		"survey":    {"NPS survey", "Onboarding satisfaction survey", "Support CSAT survey"},
		"desk":      {"Ticket: export fails", "Ticket: SSO login loop", "Ticket: missing data after sync", "Ticket: slow dashboards"},
		"facebook":  {"Comment on product post", "Message via Facebook page"},
		"twitter":   {"Mention on Twitter", "Direct message on Twitter"},
		"backstage": {"Registered for user conference", "Attended conference session"},
		"webinar":   {"Attended webinar: forecasting", "Registered for webinar: AI insights"},
		"visit":     {"Visited pricing page", "Visited integrations docs", "Visited security page"},
		"portal":    {"Logged in to customer portal", "Downloaded invoice from portal", "Opened a request in portal"},
	}
	cues = []string{
		"They are interested in adding seats for the support team.",
		"The customer is considering a new region next year.",
		"They are unhappy with response time on recent tickets.",
		"Issue was escalated to management on their side.",
		"Sponsor left the company; churn risk if nobody picks this up.",
		// Competitors of the custom_competitors module, which VoC counts.
		"They are also evaluating " + competitors[1] + "; its price came up.",
		competitors[0] + " offered them a discount at renewal.",
	}
	plainNotes = []string{
		"Asked for an update on the open request.",
		"Shared feedback on the latest release.",
		"Wants to know how other customers use dashboards.",
		"Followed up on the proposal sent last week.",
		"Mentioned budget planning for next quarter.",
	}
	followUpNotes = []string{
		"Answered and shared the documentation link.",
		"Called back and walked through the setup.",
		"Sent the requested quote.",
		"Booked a session with the solutions team.",
		"Resolved and confirmed with the customer.",
	}
)

func (g *generator) genActivities() {
	var people []*person
	var weights []float64
	for _, a := range g.accounts {
		w := map[tier]float64{tierSparse: 0.7, tierNormal: 1, tierRich: 1.6}[a.tier]
		for _, p := range a.contacts {
			people = append(people, p)
			weights = append(weights, w)
		}
	}
	for _, p := range g.leads {
		people = append(people, p)
		weights = append(weights, 0.8)
	}
	var total float64
	for _, w := range weights {
		total += w
	}
	var rows []row
	for i, p := range people {
		if g.chance(0.03) { // some people were never heard from
			continue
		}
		mean := personActivities * weights[i] / total
		n := max(1, int(math.Round(mean*(0.4+1.2*g.r.Float64()))))
		rows = g.thread(rows, p, n)
	}
	rows = g.csActivities(rows)
	g.emit("activities", rows)
}

// thread writes one person's signals and follow-ups over the last 18
// months. Its end decides what orphan detection finds: most people's last
// signal was answered within hours; some last signalled weeks or months ago
// and nobody followed up; some signalled in the last two days and wait.
func (g *generator) thread(rows []row, p *person, n int) []row {
	const (
		answered = iota
		orphaned
		waiting
	)
	pattern := answered
	lastSignal := g.ago(0.5, 45)
	switch k := g.r.IntN(100); {
	case k < 18:
		pattern, lastSignal = orphaned, g.ago(20, 200)
	case k < 28:
		pattern, lastSignal = waiting, g.ago(0.05, 2)
	}
	start := g.ago(450, 545)
	exchanges := max(1, int(math.Round(float64(n)/1.8)))
	times := make([]time.Time, 0, exchanges)
	span := lastSignal.Sub(start)
	for range exchanges - 1 {
		times = append(times, start.Add(time.Duration(g.r.Int64N(int64(span)))).Truncate(time.Minute))
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	times = append(times, lastSignal)

	for i, t := range times {
		rows = append(rows, g.activity(p, "signal", t))
		if i == len(times)-1 {
			if pattern == answered {
				rows = append(rows, g.activity(p, "follow_up", t.Add(time.Duration(g.between(20, 240))*time.Minute)))
			}
			break
		}
		if g.chance(0.85) {
			delay := time.Duration(g.between(30, 480)) * time.Minute
			if g.chance(0.3) {
				delay = time.Duration(g.between(1, 12)) * 24 * time.Hour
			}
			// Nothing answers the last signal unless the pattern says so.
			if at := t.Add(delay); at.Before(lastSignal) {
				rows = append(rows, g.activity(p, "follow_up", at))
			}
		}
		if g.chance(0.1) { // an outreach nobody asked for
			if at := t.Add(time.Duration(g.between(2, 20)) * 24 * time.Hour); at.Before(lastSignal) {
				rows = append(rows, g.activity(p, "follow_up", at))
			}
		}
	}
	return rows
}

func (g *generator) activity(p *person, direction string, at time.Time) row {
	medium := g.pick(signalMediums)
	notes := g.pick(plainNotes)
	if direction == "follow_up" {
		medium = g.pick(followUpMediums)
		notes = g.pick(followUpNotes)
		if g.chance(0.03) {
			notes += " " + g.pick(cues)
		}
	} else if g.chance(0.1) {
		notes = g.pick(cues)
	}
	r := row{"external_id": g.id("act", 6), "kind": kindOf[medium], "medium": medium, "direction": direction,
		"occurred_at": ts(at), "subject": g.pick(subjects[medium]), "notes": notes}
	if direction == "follow_up" {
		r["user_id"] = p.owner
		if g.chance(0.2) {
			r["user_id"] = g.pick(g.users)
		}
	}
	// Seed 003: a call's or email's status is the outcome of a follow-up
	// (attended, delivered); a desk ticket has a status either way.
	switch {
	case medium == "call" && direction == "follow_up":
		r["status"] = []string{"Attended", "Attended", "Unattended"}[g.r.IntN(3)]
	case medium == "email" && direction == "follow_up":
		r["status"] = "Delivered"
		if g.chance(0.05) {
			r["status"] = "Bounced"
		}
	case medium == "desk":
		r["status"] = g.pick([]string{"Open", "Closed", "Closed", "On Hold", "Escalated"})
	case medium == "survey":
		r["questions_answered"] = g.between(1, 15)
	case medium == "visit":
		r["time_spent_seconds"] = g.between(15, 1800)
		r["pages_visited"] = g.between(1, 25)
	}
	if p.lead {
		r["lead"] = p.id
	} else {
		a := p.account
		r["contact"], r["account"] = p.id, a.id
		if len(a.deals) > 0 && g.chance(0.2) {
			r["deal"] = a.deals[g.r.IntN(len(a.deals))]
		}
		if medium == "desk" && len(a.cases) > 0 {
			r["case"] = a.cases[g.r.IntN(len(a.cases))]
		}
	}
	g.state(r, "subject", "notes")
	return r
}

// csActivities are the customer-success team's work on success plans:
// linked to the plan and its objectives, KPIs, challenges and playbook
// tasks, and to the account only, so they never answer a person's signal.
func (g *generator) csActivities(rows []row) []row {
	for _, a := range g.accounts {
		for _, p := range a.plans {
			n := g.between(2, 6)
			if a.tier == tierRich {
				n = g.between(4, 10)
			}
			for range n {
				medium := g.pick([]string{"meeting", "call", "email"})
				kpi := p.kpis[g.r.IntN(len(p.kpis))]
				r := row{"external_id": g.id("act", 6), "kind": "cs_activity", "medium": medium,
					"direction": "follow_up", "user_id": a.owner, "occurred_at": ts(g.ago(1, 300)),
					"subject": g.pick([]string{"Success plan review", "KPI check-in", "Playbook step", "Executive sponsor sync"}),
					"notes":   "Reviewed progress on the plan's objectives.", "account": a.id,
					"success_plan": p.id, "objective": kpi[1], "kpi": kpi[0]}
				if medium == "call" {
					r["status"] = "Attended"
				}
				if medium == "email" {
					r["status"] = "Delivered"
				}
				if g.chance(0.15) {
					r["notes"] = r["notes"].(string) + " " + g.pick(cues)
				}
				if len(p.tasks) > 0 && g.chance(0.4) {
					r["playbook_task"] = p.tasks[g.r.IntN(len(p.tasks))]
				}
				if g.chance(0.3) {
					r["business_challenge"] = p.challenges[g.r.IntN(len(p.challenges))]
				}
				rows = append(rows, r)
			}
		}
	}
	return rows
}
