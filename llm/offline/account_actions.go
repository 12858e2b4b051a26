package offline

import (
	"cmp"
	"slices"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// What to do now and next, and the two sections derived from the others.

// overdueTasks and openTasks: playbook tasks not done, by due date.
func (v *view) playbookTasks() (overdue, open []llm.Record) {
	today := v.today.Format("2006-01-02")
	for _, t := range v.records("playbook_tasks") {
		if done(t) {
			continue
		}
		if d := day(t, "due_date"); d != "" && d < today {
			overdue = append(overdue, t)
		} else {
			open = append(open, t)
		}
	}
	byDue := func(a, b llm.Record) int { return cmp.Compare(day(a, "due_date"), day(b, "due_date")) }
	slices.SortStableFunc(overdue, byDue)
	slices.SortStableFunc(open, byDue)
	return overdue, open
}

func taskLabel(t llm.Record) string {
	return name(t) + parens(prefixed("due ", day(t, "due_date")), prefixed("owner ", f(t, "owner")), f(t, "status"))
}

func (v *view) immediateActions() []llm.Bullet {
	out := v.accountAttention()
	overdue, open := v.playbookTasks()
	for i, t := range overdue {
		if i == maxListed {
			break
		}
		out = append(out, v.cite("Overdue playbook task: "+taskLabel(t)+".", t.Ref))
	}
	for i, t := range open {
		if i == 3 {
			break
		}
		out = append(out, v.cite("Open playbook task: "+taskLabel(t)+".", t.Ref))
	}
	today := v.today.Format(time.DateOnly)
	for _, o := range v.records("objectives") {
		if d := day(o, "due_date"); d != "" && d < today && !done(o) && len(out) < maxBullets-4 {
			out = append(out, v.cite("Overdue objective: "+name(o)+parens("due "+d, f(o, "status"))+".", o.Ref))
		}
	}
	for _, a := range v.activities {
		if lf(a, "kind") == "task" && !done(a) && len(out) < maxBullets-4 {
			verb := "Open task: "
			if d := day(a, "occurred_at"); d != "" && d < today {
				verb = "Overdue task: "
			}
			out = append(out, v.cite(verb+f(a, "subject")+parens(day(a, "occurred_at"), f(a, "status"))+".", a.Ref))
		}
	}
	for _, d := range v.openDeals(func(d llm.Record) bool { c := day(d, "close_date"); return c != "" && c < today }) {
		if len(out) < maxBullets-3 {
			out = append(out, v.cite("Close date passed on an open deal: "+v.dealLabels([]llm.Record{d})[0]+
				" — confirm a new close date or close it.", d.Ref))
		}
	}
	// Escalated cases have their home in Risks and Blockers.
	listed := 0
	for _, c := range v.openCases() {
		if !caseEscalated(c) && listed < 3 {
			listed++
			out = append(out, v.cite("Open case: "+caseLabels([]llm.Record{c})[0]+".", c.Ref))
		}
	}
	for _, d := range v.openDeals(nil) {
		if ns := f(d, "next_step"); ns != "" && len(out) < maxBullets {
			out = append(out, v.cite("Next step on "+name(d)+parens(f(d, "stage"), prefixed("closes ", day(d, "close_date")))+
				": "+ns+".", d.Ref))
		}
	}
	if len(out) == 0 {
		out = append(out, v.cite("No overdue or open tasks, open cases or deal next steps are recorded.", v.subject.Ref))
	}
	return out
}

// executiveSummary is built from the visible feeding sections only.
func (v *view) executiveSummary(feeds map[string]bool) []llm.Bullet {
	var out []llm.Bullet
	if b, ok := v.healthBullet(); ok {
		out = append(out, b)
	}
	s := v.subject
	if feeds[llm.AccountHighlights] {
		text := name(s) + parens(f(s, "industry"), f(s, "city"))
		if won, ok := v.fig(crm.FigWonRevenue); ok {
			text += ": won revenue " + v.money(won)
			if share, ok := v.fig(crm.FigWonShare); ok {
				text += ", " + share + "% of the organisation's won revenue"
			}
		}
		if n, ok := v.fig(crm.FigOpenDeals); ok {
			text += "; open opportunities: " + n
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	if feeds[llm.KPIProgress] {
		if byStatus := v.figCounts(crm.FigKPIsByStatus, kpiStatusOrder); byStatus != "" {
			out = append(out, v.cite("Objective KPIs: "+byStatus+".", append(refsOf(v.records("kpis")), s.Ref)...))
		}
	}
	if feeds[llm.RelationalHealth] {
		if level, ok := v.fig(crm.FigEngagement); ok {
			text := "Engagement: " + level
			if trend, ok := v.fig(crm.FigTrend); ok {
				in, _ := v.fig(crm.FigInWindow)
				days, _ := v.fig(crm.FigWindowDays)
				text += ", " + trend + " — " + in + " activities in the last " + days + " days"
			}
			refs := []string{s.Ref}
			if len(v.activities) > 0 {
				refs = append(refs, v.activities[0].Ref)
			}
			out = append(out, v.cite(text+".", refs...))
		}
		if m := v.signals(cuePositive); len(m) > 0 {
			out = append(out, v.cite("Latest positive signal: “"+m[0].quote+"” ("+m[0].where+").", m[0].refs...))
		}
	}
	if feeds[llm.RisksAndBlockers] && v.figAny(crm.FigHealth) == nil {
		var parts []string
		if n, ok := v.fig(crm.FigEscalatedCases); ok && n != "0" {
			parts = append(parts, "escalated cases: "+n)
		}
		if n, ok := v.fig(crm.FigRedProjects); ok && n != "0" {
			parts = append(parts, "red projects: "+n)
		}
		byStatus := v.figMap(crm.FigKPIsByStatus)
		for _, st := range []string{"Off Track", "Blocked"} {
			if n := str(byStatus[st]); n != "" {
				parts = append(parts, "KPIs "+st+": "+n)
			}
		}
		if len(parts) > 0 {
			out = append(out, v.cite("Main challenges: "+joinList(parts)+".", v.riskRefs()...))
		}
		if m := v.signals(cueRisk); len(m) > 0 {
			out = append(out, v.cite("Latest risk signal: “"+m[0].quote+"” ("+m[0].where+").", m[0].refs...))
		}
	}
	if feeds[llm.StrategicValue] {
		var parts []string
		var refs []string
		for i, k := range v.achievingKPIs() {
			if i == 2 {
				break
			}
			parts = append(parts, v.kpiText(k))
			refs = append(refs, k.Ref)
		}
		if len(parts) > 0 {
			out = append(out, v.cite("Achievements: "+joinList(parts)+".", refs...))
		}
	}
	if len(out) == 0 {
		out = append(out, v.cite("No highlights, KPIs, engagement, risks or achievements are recorded to summarise.", s.Ref))
	}
	return out
}

func (v *view) riskRefs() []string {
	var refs []string
	for _, c := range v.openCases() {
		if caseEscalated(c) {
			refs = append(refs, c.Ref)
		}
	}
	for _, p := range v.records("projects") {
		if !done(p) && lf(p, "health") == "red" {
			refs = append(refs, p.Ref)
		}
	}
	for _, k := range v.records("kpis") {
		if s := lf(k, "status"); s == "off track" || s == "blocked" {
			refs = append(refs, k.Ref)
		}
	}
	if len(refs) == 0 {
		refs = append(refs, v.subject.Ref)
	}
	return refs
}

// strategicNextSteps is built from the visible feeding sections only.
func (v *view) strategicNextSteps(feeds map[string]bool) []llm.Bullet {
	var out []llm.Bullet
	if feeds[llm.RisksAndBlockers] {
		var parts []string
		for _, c := range v.openCases() {
			if caseEscalated(c) {
				parts = append(parts, "escalated case “"+name(c)+"”")
			}
		}
		for _, k := range v.records("kpis") {
			if s := lf(k, "status"); s == "off track" || s == "blocked" {
				parts = append(parts, "KPI "+name(k)+" ("+f(k, "status")+")")
			}
		}
		for _, p := range v.records("projects") {
			if !done(p) && lf(p, "health") == "red" {
				parts = append(parts, "project "+name(p)+" (red)")
			}
		}
		if len(parts) > 0 {
			out = append(out, v.cite("Resolve the risks: "+joinList(parts)+".", v.riskRefs()...))
		}
		if m := v.signals(cueRisk); len(m) > 0 && m[0].mitigation != "" {
			out = append(out, v.cite("On “"+m[0].quote+"”: "+m[0].mitigation+".", m[0].refs...))
		}
	}
	if feeds[llm.ExpansionOpportunities] {
		if m := v.signals(cueExpansion); len(m) > 0 {
			out = append(out, v.cite("Qualify the expansion signal “"+m[0].quote+"” into an opportunity.", m[0].refs...))
		}
		for _, d := range v.openDeals(expansionDeal) {
			out = append(out, v.cite("Carry the expansion opportunity "+v.dealLabels([]llm.Record{d})[0]+" to close.", d.Ref))
		}
	}
	if feeds[llm.KPIProgress] {
		var parts []string
		var refs []string
		for _, k := range v.achievingKPIs() {
			if lf(k, "status") == "on track" {
				parts = append(parts, v.kpiText(k))
				refs = append(refs, k.Ref)
			}
		}
		if len(parts) > 0 {
			out = append(out, v.cite("Carry the On Track KPIs to target: "+joinList(parts)+".", refs...))
		}
		for _, o := range v.records("objectives") {
			if d := day(o, "due_date"); !done(o) && d >= v.today.Format(time.DateOnly) {
				out = append(out, v.cite("Objective "+name(o)+parens(f(o, "status"))+" is due "+d+".", o.Ref))
			}
		}
	}
	if feeds[llm.ImmediateActions] {
		if overdue, _ := v.playbookTasks(); len(overdue) > 0 {
			labels := make([]string, 0, maxListed)
			for i, t := range overdue {
				if i == maxListed {
					break
				}
				labels = append(labels, name(t)+parens(prefixed("due ", day(t, "due_date"))))
			}
			out = append(out, v.cite("Clear the overdue playbook tasks first: "+joinList(labels)+".", refsOf(overdue)...))
		}
	}
	if len(out) == 0 {
		out = append(out, v.cite("Nothing in the risks, expansion signals, KPIs or open actions calls for a next step.", v.subject.Ref))
	}
	return out
}
