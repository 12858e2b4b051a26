package offline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
)

// The ten account sections (seed 001), Account Highlights with seed 000's
// account items.

var kpiStatusOrder = []string{"Completed", "On Track", "Off Track", "Blocked", "Not Started"}

func (v *view) accountHighlights() []llm.Bullet {
	s, ref := v.subject, v.subject.Ref
	var out []llm.Bullet
	var firmo []string
	if x := f(s, "industry"); x != "" {
		firmo = append(firmo, "industry: "+x)
	}
	if x := f(s, "employees"); x != "" {
		firmo = append(firmo, "employees: "+x)
	}
	if loc := joinNonEmpty(", ", f(s, "city"), f(s, "country")); loc != "" {
		firmo = append(firmo, "location: "+loc)
	}
	if len(firmo) > 0 {
		out = append(out, v.cite(name(s)+" — "+joinList(firmo)+".", ref))
	}
	if x := f(s, "annual_revenue"); x != "" {
		out = append(out, v.cite("Annual revenue: "+x+".", ref))
	}
	if x := f(s, "product_family"); x != "" {
		out = append(out, v.cite("Product family: "+x+".", ref))
	}
	if b, ok := v.wonRevenueBullet(); ok {
		out = append(out, b)
	}
	if b, ok := v.purchasesBullet(); ok {
		out = append(out, b)
	}
	if byStatus := v.figCounts("kpis_by_status", kpiStatusOrder); byStatus != "" {
		out = append(out, v.cite("Objective KPIs by status: "+byStatus+".", append(refsOf(v.records("kpis")), v.subject.Ref)...))
	}
	if n, ok := v.fig("open_cases"); ok {
		text := "Open cases: " + n
		if e, ok := v.fig("escalated_cases"); ok {
			text += ", escalated: " + e
		}
		cases := v.openCases()
		if len(cases) > 0 {
			text += " — " + joinList(caseLabels(cases))
		}
		out = append(out, v.cite(text+".", append([]string{ref}, refsOf(cases)...)...))
	}
	if n, ok := v.fig("active_projects"); ok && (n != "0" || len(v.records("projects")) > 0) {
		text := "Active projects: " + n
		if r, ok := v.fig("red_projects"); ok {
			text += ", red: " + r
		}
		var listed []llm.Record
		var labels []string
		for _, p := range v.records("projects") {
			if !done(p) && len(listed) < maxListed {
				listed = append(listed, p)
				labels = append(labels, name(p)+parens(f(p, "status"), f(p, "health")))
			}
		}
		if len(labels) > 0 {
			text += " — " + joinList(labels)
		}
		out = append(out, v.cite(text+".", append([]string{ref}, refsOf(listed)...)...))
	}
	if n, ok := v.fig("open_deals"); ok {
		text := "Open opportunities: " + n
		if val, ok := v.fig("open_deal_value"); ok && n != "0" {
			text += " worth " + val
		}
		if e, ok := v.fig("open_expansion_deals"); ok {
			text += "; open expansion opportunities: " + e
		}
		deals := v.openDeals()
		if len(deals) > 0 {
			text += " — " + joinList(dealLabels(deals))
		}
		out = append(out, v.cite(text+".", append([]string{ref}, refsOf(deals)...)...))
	}
	if b, ok := v.activityBullet(); ok {
		out = append(out, b)
	}
	return out
}

// wonRevenueBullet: the account's won revenue and its share of the org's.
func (v *view) wonRevenueBullet() (llm.Bullet, bool) {
	won, ok := v.fig("won_revenue")
	if !ok {
		return llm.Bullet{}, false
	}
	text := "Won revenue: " + won
	if share, ok := v.fig("won_revenue_share_percent"); ok {
		text += ", " + share + "% of the organisation's won revenue"
		if all, ok := v.fig("org_won_revenue"); ok {
			text += " (" + all + ")"
		}
	}
	if n, ok := v.fig("won_deals"); ok && n != "0" {
		text += "; won deals: " + n
	}
	var refs []string
	refs = append(refs, v.subject.Ref)
	for _, d := range v.records("deals") {
		if dealWon(d) {
			refs = append(refs, d.Ref)
		}
	}
	return v.cite(text+".", refs...), true
}

func (v *view) purchasesBullet() (llm.Bullet, bool) {
	m := v.figMap("purchases_by_product_family")
	if len(m) == 0 {
		return llm.Bullet{}, false
	}
	fams := make([]string, 0, len(m))
	for fam := range m {
		fams = append(fams, fam)
	}
	slices.Sort(fams)
	parts := make([]string, 0, len(fams))
	for _, fam := range fams {
		e, _ := m[fam].(map[string]any)
		parts = append(parts, fam+": "+str(e["amount"])+" (line items: "+str(e["line_items"])+")")
	}
	// The won deals' line items and their products.
	won := map[string]bool{}
	for _, d := range v.records("deals") {
		if dealWon(d) {
			won[strings.TrimPrefix(d.Ref, "deals/")] = true
		}
	}
	var refs []string
	for _, li := range v.records("deal_line_items") {
		if won[f(li, "deal")] {
			refs = append(refs, "deals/"+f(li, "deal"), li.Ref, "products/"+f(li, "product"))
		}
	}
	return v.cite("Purchases by product family (won deals): "+joinList(parts)+".", refs...), true
}

// activityBullet states the activity trend and engagement level.
func (v *view) activityBullet() (llm.Bullet, bool) {
	total, ok := v.fig("activities_total")
	if !ok {
		return llm.Bullet{}, false
	}
	refs := []string{v.subject.Ref}
	for i, a := range v.activities {
		if i == 3 {
			break
		}
		refs = append(refs, a.Ref)
	}
	if in, ok := v.fig("activities_in_window"); ok {
		days, _ := v.fig("activity_window_days")
		prev, _ := v.fig("activities_in_previous_window")
		trend, _ := v.fig("activity_trend")
		level, _ := v.fig("engagement_level")
		text := "Activity trend: " + in + " activities in the last " + days + " days against " + prev +
			" in the " + days + " days before (" + trend + "); engagement level: " + level
		if last, ok := v.fig("last_activity_date"); ok {
			text += "; latest on " + last
		}
		return v.cite(text+".", refs...), true
	}
	text := "Activities: " + total + " in total"
	if last, ok := v.fig("last_activity_date"); ok {
		text += "; latest on " + last
	}
	if level, ok := v.fig("engagement_level"); ok {
		text += "; engagement level: " + level
	}
	return v.cite(text+".", refs...), true
}

func (v *view) openCases() []llm.Record {
	var cs []llm.Record
	for _, c := range v.records("cases") {
		if caseOpen(c) {
			cs = append(cs, c)
		}
	}
	slices.SortStableFunc(cs, func(a, b llm.Record) int { return cmp.Compare(btoi(caseEscalated(b)), btoi(caseEscalated(a))) })
	if len(cs) > maxListed {
		cs = cs[:maxListed]
	}
	return cs
}

func caseLabels(cs []llm.Record) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		esc := ""
		if caseEscalated(c) {
			esc = "escalated"
		}
		out[i] = "“" + name(c) + "”" + parens(f(c, "status"), f(c, "priority"), esc)
	}
	return out
}

func (v *view) openDeals() []llm.Record {
	var ds []llm.Record
	for _, d := range v.records("deals") {
		if !dealClosed(d) && d.Ref != v.subject.Ref {
			ds = append(ds, d)
		}
	}
	slices.SortStableFunc(ds, func(a, b llm.Record) int { return cmp.Compare(day(a, "close_date"), day(b, "close_date")) })
	if len(ds) > maxListed {
		ds = ds[:maxListed]
	}
	return ds
}

func dealLabels(ds []llm.Record) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = name(d) + parens(f(d, "stage"), f(d, "amount"), prefixed("closes ", day(d, "close_date")))
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// parens is " (a, b)" of the non-empty parts, or "".
func parens(parts ...string) string {
	if s := joinNonEmpty(", ", parts...); s != "" {
		return " (" + s + ")"
	}
	return ""
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func (v *view) keyStakeholders() []llm.Bullet {
	var out []llm.Bullet
	contacts := slices.Clone(v.records("contacts"))
	slices.SortStableFunc(contacts, func(a, b llm.Record) int {
		return cmp.Compare(v.rank(b), v.rank(a))
	})
	latest := v.latestActivityByContact()
	var untitled []llm.Record
	for _, c := range contacts {
		title := f(c, "title")
		if title == "" {
			untitled = append(untitled, c)
			continue
		}
		if len(out) == maxBullets-2 {
			continue
		}
		text := name(c) + " — " + title
		if e := f(c, "email"); e != "" {
			text += " (" + e + ")"
		}
		refs := []string{c.Ref}
		if a, ok := latest[strings.TrimPrefix(c.Ref, "contacts/")]; ok {
			text += "; latest activity: " + activityLine(a)
			refs = append(refs, a.Ref)
		}
		out = append(out, v.cite(text+".", refs...))
	}
	if len(untitled) > 0 {
		names := make([]string, 0, maxListed)
		for i, c := range untitled {
			if i == maxListed {
				break
			}
			names = append(names, name(c))
		}
		out = append(out, v.cite("Other contacts, without a title: "+strings.Join(names, ", ")+".", refsOf(untitled)...))
	}
	if b, ok := v.ownersBullet(); ok {
		out = append(out, b)
	}
	if len(out) == 0 {
		out = append(out, v.cite("No contacts or internal owners are recorded for this account.", v.subject.Ref))
	}
	return out
}

// latestActivityByContact: each contact's newest activity in the facts.
func (v *view) latestActivityByContact() map[string]llm.Record {
	m := map[string]llm.Record{}
	for _, a := range v.activities {
		if c := f(a, "contact"); c != "" {
			if _, seen := m[c]; !seen {
				m[c] = a
			}
		}
	}
	return m
}

// ownersBullet lists the internal owners and what each owns.
func (v *view) ownersBullet() (llm.Bullet, bool) {
	type owned struct {
		roles []string
		refs  []string
	}
	owners := map[string]*owned{}
	var order []string
	add := func(r llm.Record, role string) {
		o := f(r, "owner")
		if o == "" {
			return
		}
		if owners[o] == nil {
			owners[o] = &owned{}
			order = append(order, o)
		}
		if !contains(owners[o].roles, role) {
			owners[o].roles = append(owners[o].roles, role)
		}
		owners[o].refs = append(owners[o].refs, r.Ref)
	}
	add(v.subject, strings.TrimSuffix(v.subject.Module, "s"))
	for _, mod := range []string{"deals", "playbook_tasks", "contacts", "leads"} {
		for _, r := range v.records(mod) {
			add(r, strings.ReplaceAll(mod, "_", " "))
		}
	}
	if len(order) == 0 {
		return llm.Bullet{}, false
	}
	slices.Sort(order)
	parts := make([]string, 0, len(order))
	var refs []string
	for _, o := range order {
		parts = append(parts, o+" ("+strings.Join(owners[o].roles, ", ")+")")
		refs = append(refs, owners[o].refs[0])
	}
	return v.cite("Internal owners: "+joinList(parts)+".", refs...), true
}

// achievingKPIs: the KPIs that qualify, Completed first, then by percent.
func (v *view) achievingKPIs() []llm.Record {
	var ks []llm.Record
	for _, k := range v.records("kpis") {
		if kpiAchieving(k) {
			ks = append(ks, k)
		}
	}
	pct := v.figMap("kpi_progress_percent")
	slices.SortStableFunc(ks, func(a, b llm.Record) int {
		if c := cmp.Compare(btoi(lf(b, "status") == "completed"), btoi(lf(a, "status") == "completed")); c != 0 {
			return c
		}
		pa, okA := num(pct[a.Ref])
		pb, okB := num(pct[b.Ref])
		if !okA {
			pa = -1
		}
		if !okB {
			pb = -1
		}
		return cmp.Compare(pb, pa)
	})
	return ks
}

// kpiText: "Forecast accuracy: 95.00/90.00 % (106% of target), Completed".
func (v *view) kpiText(k llm.Record) string {
	text := name(k) + ": " + f(k, "actual") + "/" + f(k, "target")
	if u := f(k, "unit"); u != "" {
		text += " " + u
	}
	if p := str(v.figMap("kpi_progress_percent")[k.Ref]); p != "" {
		text += " (" + p + "% of target)"
	}
	return text + ", " + f(k, "status")
}

func (v *view) kpiProgress() []llm.Bullet {
	var out []llm.Bullet
	for _, k := range v.achievingKPIs() {
		text := v.kpiText(k)
		refs := []string{k.Ref}
		if obj, ok := v.lookup(k, "objective", "objectives"); ok {
			text += " (objective: " + name(obj) + ")"
			refs = append(refs, obj.Ref)
		}
		if c := f(k, "comment"); c != "" {
			text += " — " + clip(c, 160)
		}
		out = append(out, v.cite(text, refs...))
	}
	if len(out) > 0 {
		return out
	}
	if kpis := v.records("kpis"); len(kpis) > 0 {
		return []llm.Bullet{v.cite("No objective KPI is On Track or Completed with recorded progress.",
			append([]string{v.subject.Ref}, refsOf(kpis)...)...)}
	}
	return []llm.Bullet{v.cite("No objective KPIs are recorded for this record.", v.subject.Ref)}
}

func (v *view) relationalHealth() []llm.Bullet {
	var out []llm.Bullet
	if level, ok := v.fig("engagement_level"); ok {
		text := "Engagement level: " + level
		if in, ok := v.fig("activities_in_window"); ok {
			days, _ := v.fig("activity_window_days")
			prev, _ := v.fig("activities_in_previous_window")
			trend, _ := v.fig("activity_trend")
			text += " — " + in + " activities in the last " + days + " days against " + prev +
				" in the " + days + " days before (" + trend + ")"
		}
		refs := []string{v.subject.Ref}
		for i, a := range v.activities {
			if i == 3 {
				break
			}
			refs = append(refs, a.Ref)
		}
		out = append(out, v.cite(text+".", refs...))
	}
	// Executive engagement: senior contacts with activities in the facts.
	latest := v.latestActivityByContact()
	for _, c := range v.records("contacts") {
		a, ok := latest[strings.TrimPrefix(c.Ref, "contacts/")]
		if !ok || v.rank(c) < 2 {
			continue
		}
		out = append(out, v.cite("Executive engagement: "+name(c)+" ("+f(c, "title")+"), latest activity "+
			activityLine(a)+".", c.Ref, a.Ref))
	}
	quotes := v.quoteBullets(false, cuePositive)
	out = append(out, quotes...)
	if len(quotes) == 0 {
		out = append(out, uncited("No activity notes, cases or KPI comments mention positive relationship signals."))
	}
	return out
}

// riskRecords are the structural risks: escalated open cases, KPIs Off
// Track or Blocked, red projects, success plans at risk, open business
// challenges.
func (v *view) riskRecords() []llm.Bullet {
	var out []llm.Bullet
	for _, c := range v.openCases() {
		if caseEscalated(c) {
			out = append(out, v.cite("Escalated case: "+caseLabels([]llm.Record{c})[0]+".", c.Ref))
		}
	}
	var kpiLabels []string
	var kpiRefs []string
	for _, k := range v.records("kpis") {
		if s := lf(k, "status"); s == "off track" || s == "blocked" {
			kpiLabels = append(kpiLabels, name(k)+parens(f(k, "actual")+"/"+f(k, "target")+" "+f(k, "unit"), f(k, "status")))
			kpiRefs = append(kpiRefs, k.Ref)
		}
	}
	if len(kpiLabels) > 0 {
		out = append(out, v.cite("KPIs at risk: "+joinList(kpiLabels)+".", kpiRefs...))
	}
	for _, p := range v.records("projects") {
		if !done(p) && lf(p, "health") == "red" {
			out = append(out, v.cite("Project in red health: "+name(p)+parens(f(p, "status"))+".", p.Ref))
		}
	}
	for _, p := range v.records("success_plans") {
		if strings.Contains(lf(p, "status"), "risk") {
			out = append(out, v.cite("Success plan "+name(p)+parens(f(p, "status"))+".", p.Ref))
		}
	}
	for _, bc := range v.records("business_challenges") {
		if !done(bc) && lf(bc, "status") != "mitigated" {
			out = append(out, v.cite("Business challenge: "+name(bc)+parens(f(bc, "status"))+".", bc.Ref))
		}
	}
	return out
}

func (v *view) risksAndBlockers() []llm.Bullet {
	out := v.riskRecords()
	quotes := v.quoteBullets(true, cueRisk)
	if len(quotes) == 0 {
		return append(out, uncited("No activity notes, cases or KPI comments mention risks."))
	}
	// Keep room for the quotes: they are what a reader cannot see elsewhere.
	if room := maxBullets - len(quotes); len(out) > room {
		out = out[:room]
	}
	return append(out, quotes...)
}

func (v *view) expansion() []llm.Bullet {
	out := v.quoteBullets(false, cueExpansion)
	none := len(out) == 0
	for _, d := range v.openDeals() {
		if lf(d, "deal_type") == "expansion" {
			out = append(out, v.cite("Open expansion opportunity: "+dealLabels([]llm.Record{d})[0]+".", d.Ref))
		}
	}
	if none {
		out = append(out, uncited("No activity notes, cases or KPI comments mention expansion signals."))
	}
	return out
}

func (v *view) strategicValue() []llm.Bullet {
	var out []llm.Bullet
	for i, k := range v.achievingKPIs() {
		if i == maxListed {
			break
		}
		out = append(out, v.cite("KPI "+v.kpiText(k)+".", k.Ref))
	}
	for _, o := range v.records("objectives") {
		if done(o) {
			out = append(out, v.cite("Objective achieved: "+name(o)+parens(f(o, "status"))+".", o.Ref))
		}
	}
	for _, p := range v.records("success_plans") {
		if done(p) {
			out = append(out, v.cite("Success plan completed: "+name(p)+parens(f(p, "status"))+".", p.Ref))
		}
	}
	for _, p := range v.records("projects") {
		if done(p) {
			out = append(out, v.cite("Project delivered: "+name(p)+parens(f(p, "status"), f(p, "health"))+".", p.Ref))
		}
	}
	var won []llm.Record
	for _, d := range v.records("deals") {
		if dealWon(d) {
			won = append(won, d)
		}
	}
	slices.SortStableFunc(won, func(a, b llm.Record) int { return cmp.Compare(day(b, "close_date"), day(a, "close_date")) })
	for i, d := range won {
		if i == 3 {
			break
		}
		out = append(out, v.cite("Won deal: "+name(d)+parens(f(d, "amount"), prefixed("closed ", day(d, "close_date")))+".", d.Ref))
	}
	if len(out) == 0 {
		out = append(out, v.cite("No KPI On Track or Completed with recorded progress, achieved objective, completed "+
			"project or won deal is recorded.", append([]string{v.subject.Ref}, refsOf(v.records("kpis"))...)...))
	}
	return out
}

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
	var out []llm.Bullet
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
	for _, a := range v.activities {
		if lf(a, "kind") == "task" && !done(a) && len(out) < maxBullets-4 {
			out = append(out, v.cite("Open task: "+f(a, "subject")+parens(day(a, "occurred_at"), f(a, "status"))+".", a.Ref))
		}
	}
	for i, c := range v.openCases() {
		if i == 3 {
			break
		}
		verb := "Open case: "
		if caseEscalated(c) {
			verb = "Escalated case to resolve: "
		}
		out = append(out, v.cite(verb+caseLabels([]llm.Record{c})[0]+".", c.Ref))
	}
	for _, d := range v.openDeals() {
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
	s := v.subject
	if feeds[llm.AccountHighlights] {
		text := name(s) + parens(f(s, "industry"), f(s, "city"))
		if won, ok := v.fig("won_revenue"); ok {
			text += ": won revenue " + won
			if share, ok := v.fig("won_revenue_share_percent"); ok {
				text += ", " + share + "% of the organisation's won revenue"
			}
		}
		if n, ok := v.fig("open_deals"); ok {
			text += "; open opportunities: " + n
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	if feeds[llm.KPIProgress] {
		if byStatus := v.figCounts("kpis_by_status", kpiStatusOrder); byStatus != "" {
			out = append(out, v.cite("Objective KPIs: "+byStatus+".", append(refsOf(v.records("kpis")), s.Ref)...))
		}
	}
	if feeds[llm.RelationalHealth] {
		if level, ok := v.fig("engagement_level"); ok {
			text := "Engagement: " + level
			if trend, ok := v.fig("activity_trend"); ok {
				in, _ := v.fig("activities_in_window")
				days, _ := v.fig("activity_window_days")
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
	if feeds[llm.RisksAndBlockers] {
		var parts []string
		if n, ok := v.fig("escalated_cases"); ok && n != "0" {
			parts = append(parts, "escalated cases: "+n)
		}
		if n, ok := v.fig("red_projects"); ok && n != "0" {
			parts = append(parts, "red projects: "+n)
		}
		byStatus := v.figMap("kpis_by_status")
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
		for _, d := range v.openDeals() {
			if lf(d, "deal_type") == "expansion" {
				out = append(out, v.cite("Carry the expansion opportunity "+dealLabels([]llm.Record{d})[0]+" to close.", d.Ref))
			}
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
			if !done(o) && day(o, "due_date") != "" {
				out = append(out, v.cite("Objective "+name(o)+parens(f(o, "status"))+" is due "+day(o, "due_date")+".", o.Ref))
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
