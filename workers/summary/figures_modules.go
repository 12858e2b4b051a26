package summary

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// Figures of each module's sections.

func accountFigures(f map[string]any, g store.SummaryGraph, today time.Time, ix activityIndex) {
	deals := byModule(g.Related, "deals")
	won := map[string]bool{}
	var wonSum, openSum float64
	var open, expansion int
	for _, d := range deals {
		amount, _ := llm.Number(d.Fields["amount"])
		switch {
		case stage(d) == crm.Won:
			won[d.ID] = true
			wonSum += amount
		case !stage(d).Closed():
			open++
			openSum += amount
			if lower(d.Fields["deal_type"]) == "expansion" {
				expansion++
			}
		}
	}
	f[crm.FigWonDeals] = len(won)
	f[crm.FigOpenDeals] = open
	f[crm.FigOpenDealValue] = money(openSum)
	f[crm.FigOpenExpansion] = expansion

	// Won revenue: the store's figure when it gives one (it sees every
	// deal), else the won deals of the graph.
	accountWon, haveAccount := llm.Number(g.Org[orgAccountWon])
	if haveAccount {
		f[crm.FigWonRevenue] = g.Org[orgAccountWon]
	} else if len(won) > 0 {
		accountWon, haveAccount = wonSum, true
		f[crm.FigWonRevenue] = money(wonSum)
	}
	if orgWonV, ok := llm.Number(g.Org[orgWon]); ok {
		f[crm.FigOrgWonRevenue] = g.Org[orgWon]
		if haveAccount && orgWonV > 0 {
			f[crm.FigWonShare] = percent(accountWon, orgWonV)
		}
	}

	if p := purchases(g.Related, won); len(p) > 0 {
		f[crm.FigPurchases] = p
	}

	byStatus := map[string]any{}
	progress := map[string]any{}
	for _, k := range byModule(g.Related, "kpis") {
		if s := text(k.Fields["status"]); s != "" {
			n, _ := byStatus[s].(int)
			byStatus[s] = n + 1
		}
		target, okT := llm.Number(k.Fields["target"])
		actual, okA := llm.Number(k.Fields["actual"])
		if okT && okA && target > 0 {
			progress[k.Module+"/"+k.ID] = percent(actual, target)
		}
	}
	if len(byStatus) > 0 {
		f[crm.FigKPIsByStatus] = byStatus
	}
	if len(progress) > 0 {
		f[crm.FigKPIPercent] = progress
	}

	var openCases, escalated int
	for _, c := range byModule(g.Related, "cases") {
		if !crm.CaseOpen(text(c.Fields["status"]), text(c.Fields["closed_at"])) {
			continue
		}
		openCases++
		if crm.CaseEscalated(text(c.Fields["status"]), c.Fields["escalated"] == true) {
			escalated++
		}
	}
	f[crm.FigOpenCases] = openCases
	f[crm.FigEscalatedCases] = escalated

	var active, red int
	for _, p := range byModule(g.Related, "projects") {
		if isDone(p) {
			continue
		}
		active++
		if lower(p.Fields["health"]) == "red" {
			red++
		}
	}
	f[crm.FigActiveProjects] = active
	f[crm.FigRedProjects] = red

	var openTasks, overdue int
	for _, t := range byModule(g.Related, "playbook_tasks") {
		if isDone(t) {
			continue
		}
		openTasks++
		if due, ok := when(t.Fields["due_date"]); ok && due.Before(startOfDay(today)) {
			overdue++
		}
	}
	f[crm.FigOpenTasks] = openTasks
	f[crm.FigOverdueTasks] = overdue

	overdueObjectives := 0
	for _, o := range byModule(g.Related, "objectives") {
		if due, ok := when(o.Fields["due_date"]); ok && !isDone(o) && due.Before(startOfDay(today)) {
			overdueObjectives++
		}
	}
	f[crm.FigOverdueObjectives] = overdueObjectives
	pastClose := 0
	for _, d := range deals {
		if c, ok := when(d.Fields["close_date"]); ok && !stage(d).Closed() && c.Before(startOfDay(today)) {
			pastClose++
		}
	}
	f[crm.FigPastCloseDeals] = pastClose
	if m := contactActivity(g, ix); len(m) > 0 {
		f[crm.FigContactActivity] = m
	}
}

// contactActivity is each contact's activity count and latest date: the
// store's figure, counted in SQL over every activity of the graph, or, for
// a graph without it, the activities the graph holds.
func contactActivity(g store.SummaryGraph, ix activityIndex) map[string]any {
	if m, ok := g.Org[orgContactActivity].(map[string]any); ok {
		return maps.Clone(m) // the prompt may prune it
	}
	type agg struct {
		n      int
		latest time.Time
	}
	by := map[string]*agg{}
	for i, a := range g.Activities {
		c := text(a.Fields["contact"])
		if c == "" {
			continue
		}
		x := by[c]
		if x == nil {
			x = &agg{}
			by[c] = x
		}
		x.n++
		if t := ix.at[i]; t.After(x.latest) {
			x.latest = t
		}
	}
	out := make(map[string]any, len(by))
	for c, x := range by {
		out[Ref("contacts", c)] = map[string]any{"activities": x.n, "latest": x.latest.Format(time.DateOnly)}
	}
	return out
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// purchases sums the line items of won deals by their product's family.
// Items whose product or family the graph does not hold are left out.
func purchases(related []store.GraphRecord, won map[string]bool) map[string]any {
	family := map[string]string{}
	for _, p := range byModule(related, "products") {
		if fam := text(p.Fields["family"]); fam != "" {
			family[p.ID] = fam
		}
	}
	sums := map[string]float64{}
	items := map[string]int{}
	for _, li := range byModule(related, "deal_line_items") {
		if !won[text(li.Fields["deal"])] {
			continue
		}
		fam, ok := family[text(li.Fields["product"])]
		if !ok {
			continue
		}
		total, ok := llm.Number(li.Fields["total"])
		if !ok {
			q, okQ := llm.Number(li.Fields["quantity"])
			p, okP := llm.Number(li.Fields["unit_price"])
			if !okQ || !okP {
				continue
			}
			total = q * p
		}
		sums[fam] += total
		items[fam]++
	}
	out := map[string]any{}
	for fam, s := range sums {
		out[fam] = map[string]any{"amount": money(s), "line_items": items[fam]}
	}
	return out
}

var weekdays = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func partOfDay(t time.Time) string {
	switch h := t.Hour(); {
	case h >= 6 && h < 12:
		return "morning"
	case h >= 12 && h < 18:
		return "afternoon"
	case h >= 18 && h < 22:
		return "evening"
	}
	return "night"
}

// signalFigures: through which medium and when the contact's own signals
// (direction "signal") come, over every activity the graph loaded; part of
// day and weekday in the org's time zone (UTC when it does not load).
func signalFigures(f map[string]any, g store.SummaryGraph, zone string, ix activityIndex) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
		f[crm.FigTimeZone] = "UTC"
	}
	channels, parts, days := map[string]int{}, map[string]int{}, map[string]int{}
	total := 0
	for i, a := range g.Activities {
		if ix.dir[i] != "signal" {
			continue
		}
		total++
		if m := text(a.Fields["medium"]); m != "" {
			channels[m]++
		}
		t := ix.at[i].In(loc)
		parts[partOfDay(t)]++
		days[weekdays[t.Weekday()]]++
	}
	f[crm.FigSignalsTotal] = total
	if total == 0 {
		return
	}
	f[crm.FigSignalsByChannel] = counts(channels)
	f[crm.FigSignalsByPart] = counts(parts)
	f[crm.FigSignalsByWeekday] = counts(days)
	if total < crm.MinPreferenceSample {
		return // too few signals to call anything preferred
	}
	if c, tied := top(channels); len(tied) > 1 {
		f[crm.FigSignalsTie] = strings.Join(tied, ", ")
	} else if c != "" {
		f[crm.FigPreferredChannel] = c
	}
	if p, tied := top(parts); len(tied) <= 1 {
		f[crm.FigPreferredPart] = p
	}
	if d, tied := top(days); len(tied) <= 1 {
		f[crm.FigPreferredWeekday] = d
	}
}

func counts(m map[string]int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// top is the key with the highest count and every key sharing that count,
// alphabetically; a tie is a tie, never broken by name.
func top(m map[string]int) (string, []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	best := ""
	for _, k := range keys {
		if best == "" || m[k] > m[best] {
			best = k
		}
	}
	var tied []string
	for _, k := range keys {
		if best != "" && m[k] == m[best] {
			tied = append(tied, k)
		}
	}
	return best, tied
}

// leadFigures: the lead source's historical conversion rate as the store
// computed it over the org's leads of that source. Nothing is estimated
// when the store gives no rate.
func leadFigures(f map[string]any, org map[string]any) {
	leads, okL := llm.Number(org[orgSourceLeads])
	converted, okC := llm.Number(org[orgSourceConverted])
	if okL && okC {
		f[crm.FigSourceLeads] = org[orgSourceLeads]
		f[crm.FigSourceConverted] = org[orgSourceConverted]
	}
	if rate, ok := llm.Number(org[orgSourceRate]); ok && rate >= 0 {
		if rate <= 1 {
			rate *= 100
		}
		f[crm.FigSourcePercent] = percent(rate, 100)
	} else if okL && okC && leads > 0 {
		f[crm.FigSourcePercent] = percent(converted, leads)
	}
}

func dealFigures(f map[string]any, g store.SummaryGraph, today time.Time) {
	day := startOfDay(today)
	var lastChange time.Time
	for _, h := range g.History {
		if h.Field == "stage" && h.ChangedAt.After(lastChange) {
			lastChange = h.ChangedAt
		}
	}
	if !lastChange.IsZero() {
		f[crm.FigDaysInStage] = int(day.Sub(startOfDay(lastChange)).Hours() / 24)
	}
	closed := stage(g.Subject).Closed()
	if c, ok := when(g.Subject.Fields["close_date"]); ok && !closed {
		// A closed deal has no days to close: its summary looks back.
		f[crm.FigDaysToClose] = int(startOfDay(c).Sub(day).Hours() / 24)
	}
	if pv, ok := llm.Number(g.Org[orgPipelineValue]); ok {
		f[crm.FigPipelineValue] = g.Org[orgPipelineValue]
		amount, okA := llm.Number(g.Subject.Fields["amount"])
		if okA && pv > 0 && !closed {
			f[crm.FigPipelineShare] = percent(amount, pv)
		}
	}
	if _, ok := llm.Number(g.Org[orgEngagementScore]); ok {
		f[crm.FigEngagementScore] = g.Org[orgEngagementScore]
	}
}
