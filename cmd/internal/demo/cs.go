package demo

import (
	"time"

	"github.com/crmq/crmq/store"
)

var (
	caseSubjects = []string{"Login fails after SSO change", "Report export times out", "Invoice shows wrong tax",
		"Sync with ERP stopped", "Dashboard widgets missing", "API rate limit errors", "Data import duplicates",
		"Mobile app crashes on start", "Permission set not applied", "Slow search results"}
	objectiveNames = []string{"Increase adoption across teams", "Reduce time to resolution", "Launch in a new region",
		"Consolidate reporting", "Automate onboarding", "Improve forecast accuracy"}
	kpiNames = [][2]string{{"Weekly active users", "users"}, {"Median resolution time", "hours"},
		{"Dashboards in use", "dashboards"}, {"Forecast accuracy", "%"}, {"Onboarded teams", "teams"},
		{"Open escalations", "cases"}}
	challengeNames = []string{"Legacy data spread over spreadsheets", "Low engagement outside sales",
		"Slow approvals", "No single view of the customer", "Manual month-end reporting"}
	playbookNames = []string{"Onboarding", "Renewal readiness", "Risk mitigation", "Expansion discovery"}
	taskNames     = []string{"Kick-off call", "Configure SSO", "Import historical data", "Train admins",
		"Executive business review", "Health check", "Renewal proposal", "Collect references"}
)

func (g *generator) genCases() {
	var rows []row
	for _, a := range g.accounts {
		n := map[tier][2]int{tierSparse: {0, 1}, tierNormal: {0, 3}, tierRich: {3, 8}}[a.tier]
		if a.tier == tierEmpty {
			continue
		}
		for range g.between(n[0], n[1]) {
			id := g.id("case", 5)
			a.cases = append(a.cases, id)
			opened := g.ago(1, 500)
			r := row{"external_id": id, "account": a.id, "contact": a.contacts[g.r.IntN(len(a.contacts))].id,
				"subject": g.pick(caseSubjects), "priority": g.pick([]string{"Low", "Medium", "High", "Urgent"}),
				"opened_at": ts(opened), "escalated": g.chance(0.15)}
			if g.chance(0.7) && opened.Before(g.day.Add(-48*time.Hour)) {
				r["status"] = "Closed"
				r["closed_at"] = ts(opened.Add(time.Duration(g.between(2, 240)) * time.Hour))
			} else {
				r["status"] = g.pick([]string{"Open", "Open", "On Hold"})
			}
			g.state(r, "priority")
			rows = append(rows, r)
		}
	}
	g.emit("cases", rows)
}

// genSuccess writes success plans with their objectives, KPIs and business
// challenges, and playbooks with their tasks.
func (g *generator) genSuccess() {
	var plans, objectives, kpis, challenges, playbooks, tasks []row
	statuses := store.KPIStatuses()
	for _, a := range g.accounts {
		var accountTasks []string
		nPlaybooks := 0
		switch {
		case a.tier == tierRich:
			nPlaybooks = g.between(1, 2)
		case a.tier == tierNormal && g.chance(0.25):
			nPlaybooks = 1
		}
		for range nPlaybooks {
			pb := g.id("pb", 4)
			playbooks = append(playbooks, row{"external_id": pb, "account": a.id, "name": g.pick(playbookNames),
				"status": g.pick([]string{"Active", "Active", "Completed"})})
			for range g.between(2, 5) {
				task := g.id("pbt", 5)
				accountTasks = append(accountTasks, task)
				r := row{"external_id": task, "playbook": pb, "name": g.pick(taskNames),
					"status":   g.pick([]string{"Not Started", "In Progress", "Done"}),
					"due_date": date(g.day.Add(time.Duration(g.between(-90, 90)) * 24 * time.Hour)), "owner": a.owner}
				g.state(r, "due_date")
				tasks = append(tasks, r)
			}
		}

		nPlans := 0
		switch {
		case a.tier == tierRich:
			nPlans = g.between(1, 2)
		case a.tier == tierNormal && g.chance(0.5), a.tier == tierSparse && g.chance(0.15):
			nPlans = 1
		}
		for range nPlans {
			p := &plan{id: g.id("sp", 4), tasks: accountTasks}
			a.plans = append(a.plans, p)
			startAt := g.ago(60, 400)
			plans = append(plans, row{"external_id": p.id, "account": a.id, "name": a.name + " success plan",
				"status":     g.pick([]string{"Active", "Active", "At Risk", "Completed"}),
				"start_date": date(startAt), "end_date": date(startAt.Add(365 * 24 * time.Hour))})
			for range g.between(1, 3) {
				obj := g.id("obj", 4)
				objectives = append(objectives, row{"external_id": obj, "account": a.id, "success_plan": p.id,
					"name": g.pick(objectiveNames), "status": g.pick([]string{"Open", "In Progress", "Achieved"}),
					"description": "Agreed with the customer at the last business review.",
					"due_date":    date(g.day.Add(time.Duration(g.between(-30, 180)) * 24 * time.Hour))})
				for range g.between(1, 3) {
					k := g.id("kpi", 4)
					p.kpis = append(p.kpis, [2]string{k, obj})
					status := statuses[g.r.IntN(len(statuses))]
					if n := g.seq["kpi"]; n <= len(statuses) { // the first five show every status
						status = statuses[n-1]
					}
					name := kpiNames[g.r.IntN(len(kpiNames))]
					target := float64(g.between(10, 500))
					actual := target * map[string]float64{"Not Started": 0, "On Track": 0.8, "Off Track": 0.4,
						"Blocked": 0.2, "Completed": 1.05}[status] * (0.9 + 0.2*g.r.Float64())
					r := row{"external_id": k, "objective": obj, "account": a.id, "name": name[0], "status": status,
						"target": money(target), "actual": money(actual), "unit": name[1],
						"comment": kpiComment(status)}
					g.state(r, "target", "actual")
					kpis = append(kpis, r)
				}
			}
			for range g.between(1, 2) {
				bc := g.id("bc", 4)
				p.challenges = append(p.challenges, bc)
				challenges = append(challenges, row{"external_id": bc, "account": a.id, "success_plan": p.id,
					"name": g.pick(challengeNames), "description": "Raised by the customer's sponsor.",
					"status": g.pick([]string{"Open", "Mitigated", "Resolved"})})
			}
		}
	}
	g.emit("success_plans", plans)
	g.emit("objectives", objectives)
	g.emit("kpis", kpis)
	g.emit("business_challenges", challenges)
	g.emit("playbooks", playbooks)
	g.emit("playbook_tasks", tasks)
}

func kpiComment(status string) string {
	return map[string]string{
		"Not Started": "Measurement starts next quarter.",
		"On Track":    "Trending to target.",
		"Off Track":   "Behind plan; adoption stalled in two teams.",
		"Blocked":     "Blocked on the customer's data migration.",
		"Completed":   "Target reached and confirmed by the sponsor.",
	}[status]
}

func (g *generator) genProjects() {
	var rows []row
	for _, a := range g.accounts {
		n := 0
		switch {
		case a.tier == tierRich:
			n = g.between(1, 2)
		case a.tier == tierNormal && g.chance(0.3):
			n = 1
		}
		for range n {
			r := row{"external_id": g.id("prj", 4), "account": a.id,
				"name":   g.pick([]string{"Implementation", "Data migration", "Regional rollout", "Integration build"}),
				"status": g.pick([]string{"Planned", "In Progress", "In Progress", "Done"}),
				"health": []string{"green", "green", "amber", "red"}[g.r.IntN(4)]}
			g.state(r, "health")
			rows = append(rows, r)
		}
	}
	g.emit("projects", rows)
}
