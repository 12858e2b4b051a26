package offline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
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
		out = append(out, v.cite("Annual revenue: "+v.money(x)+".", ref))
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
	if byStatus := v.figCounts(crm.FigKPIsByStatus, kpiStatusOrder); byStatus != "" {
		out = append(out, v.cite("Objective KPIs by status: "+byStatus+".", append(refsOf(v.records("kpis")), v.subject.Ref)...))
	}
	if n, ok := v.fig(crm.FigOpenCases); ok && n != "0" {
		text := "Open cases: " + n
		if e, ok := v.fig(crm.FigEscalatedCases); ok {
			text += ", escalated: " + e
		}
		// The escalated ones are counted here and named in Risks and
		// Blockers, their home; the others are named here.
		cases := v.openCases()
		var calm []llm.Record
		for _, c := range cases {
			if !caseEscalated(c) {
				calm = append(calm, c)
			}
		}
		if len(calm) > 0 {
			text += " — " + joinList(caseLabels(calm))
		}
		out = append(out, v.cite(text+".", append([]string{ref}, refsOf(cases)...)...))
	}
	if n, ok := v.fig(crm.FigActiveProjects); ok && n != "0" {
		text := "Active projects: " + n
		if r, ok := v.fig(crm.FigRedProjects); ok {
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
	if n, ok := v.fig(crm.FigOpenDeals); ok && n != "0" {
		text := "Open opportunities: " + n
		if val, ok := v.fig(crm.FigOpenDealValue); ok {
			text += " worth " + v.money(val)
		}
		if e, ok := v.fig(crm.FigOpenExpansion); ok {
			text += "; open expansion opportunities: " + e
		}
		deals := v.openDeals(nil)
		if len(deals) > 0 {
			text += " — " + joinList(v.dealLabels(deals))
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
	won, ok := v.fig(crm.FigWonRevenue)
	if n, _ := v.figNum(crm.FigWonRevenue); !ok || n == 0 {
		return llm.Bullet{}, false // no bullet only to say zero
	}
	text := "Won revenue: " + v.money(won)
	if share, ok := v.fig(crm.FigWonShare); ok {
		text += ", " + share + "% of the organisation's won revenue"
		if all, ok := v.fig(crm.FigOrgWonRevenue); ok {
			text += " (" + v.money(all) + ")"
		}
	}
	if n, ok := v.fig(crm.FigWonDeals); ok && n != "0" {
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
	m := v.figMap(crm.FigPurchases)
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
		parts = append(parts, fam+": "+v.money(str(e["amount"]))+" (line items: "+str(e["line_items"])+")")
	}
	// The won deals' line items and their products.
	won := map[string]bool{}
	for _, d := range v.records("deals") {
		if dealWon(d) {
			won[strings.TrimPrefix(d.Ref, "deals/")] = true
		}
	}
	// The won deals (the line items and products feed only the figure and
	// may not be in the facts).
	refs := []string{v.subject.Ref}
	for _, d := range v.records("deals") {
		if dealWon(d) {
			refs = append(refs, d.Ref)
		}
	}
	for _, li := range v.records("deal_line_items") {
		if won[f(li, "deal")] {
			refs = append(refs, "deals/"+f(li, "deal"), li.Ref, "products/"+f(li, "product"))
		}
	}
	return v.cite("Purchases by product family (won deals): "+joinList(parts)+".", refs...), true
}

// activityBullet states the activity trend and engagement level.
func (v *view) activityBullet() (llm.Bullet, bool) {
	total, ok := v.fig(crm.FigActivitiesTotal)
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
	if in, ok := v.fig(crm.FigInWindow); ok {
		days, _ := v.fig(crm.FigWindowDays)
		prev, _ := v.fig(crm.FigInPreviousWindow)
		trend, _ := v.fig(crm.FigTrend)
		level, _ := v.fig(crm.FigEngagement)
		text := "Activity trend: " + in + " activities in the last " + days + " days against " + prev +
			" in the " + days + " days before (" + trendWord(trend) + "); engagement level: " + level
		if last, ok := v.fig(crm.FigLastActivity); ok {
			text += "; latest on " + last
		}
		return v.cite(text+".", refs...), true
	}
	text := "Activities: " + total + " in total"
	if last, ok := v.fig(crm.FigLastActivity); ok {
		text += "; latest on " + last
	}
	if level, ok := v.fig(crm.FigEngagement); ok {
		text += "; engagement level: " + level
	}
	return v.cite(text+".", refs...), true
}

// trendWord is the trend figure, or what its absence means: too few
// activities in the two windows to call one (crm.Trend).
func trendWord(trend string) string {
	if trend == "" {
		return "too few to call a trend"
	}
	return trend
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

// openDeals: the first maxListed open deals of keep (nil keeps all), by
// close date. The filter runs before the cap, so a kind of deal is never
// crowded out by earlier deals of other kinds.
func (v *view) openDeals(keep func(llm.Record) bool) []llm.Record {
	var ds []llm.Record
	for _, d := range v.records("deals") {
		if !dealClosed(d) && d.Ref != v.subject.Ref && (keep == nil || keep(d)) {
			ds = append(ds, d)
		}
	}
	slices.SortStableFunc(ds, func(a, b llm.Record) int { return cmp.Compare(day(a, "close_date"), day(b, "close_date")) })
	if len(ds) > maxListed {
		ds = ds[:maxListed]
	}
	return ds
}

func expansionDeal(d llm.Record) bool { return lf(d, "deal_type") == "expansion" }

func (v *view) dealLabels(ds []llm.Record) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = name(d) + parens(f(d, "stage"), v.money(f(d, "amount")), prefixed("closes ", day(d, "close_date")))
	}
	return out
}

// maxStakeholders bounds the contacts Key Stakeholders lists beside the
// authors of risk signals, who are always listed.
const maxStakeholders = 6

// contactActivity is a contact's activity count and latest date over every
// activity of the record (org.figures.activities_by_contact).
func (v *view) contactActivity(c llm.Record) (n float64, latest string) {
	e, _ := v.figMap(crm.FigContactActivity)[c.Ref].(map[string]any)
	n, _ = llm.Number(e["activities"])
	return n, str(e["latest"])
}

// riskAuthors maps each contact who wrote a risk signal (a customer signal
// whose notes or subject carry a risk cue) to the newest such activity.
func (v *view) riskAuthors() map[string]llm.Record {
	out := map[string]llm.Record{}
	for _, m := range v.signals(cueRisk) {
		for _, ref := range m.refs {
			a := v.byRef[ref]
			if a.Module != "activities" || f(a, "direction") != "signal" || f(a, "contact") == "" {
				continue
			}
			c := "contacts/" + f(a, "contact")
			if _, seen := out[c]; !seen {
				out[c] = a
			}
		}
	}
	return out
}

// keyStakeholders ranks contacts by seniority (whole-word title rules),
// then by engagement (activity count and latest date over every activity),
// lists the first maxStakeholders and always the authors of risk signals.
func (v *view) keyStakeholders() []llm.Bullet {
	var out []llm.Bullet
	contacts := slices.Clone(v.records("contacts"))
	slices.SortStableFunc(contacts, func(a, b llm.Record) int {
		if c := cmp.Compare(v.rank(b), v.rank(a)); c != 0 {
			return c
		}
		na, la := v.contactActivity(a)
		nb, lb := v.contactActivity(b)
		if c := cmp.Compare(nb, na); c != 0 {
			return c
		}
		return cmp.Compare(lb, la)
	})
	authors := v.riskAuthors()
	latest := v.latestActivityByContact()
	var rest []llm.Record
	for _, c := range contacts {
		risk, isAuthor := authors[c.Ref]
		if len(out) >= maxStakeholders && !isAuthor {
			rest = append(rest, c)
			continue
		}
		text := name(c)
		if title := f(c, "title"); title != "" {
			text += " — " + title
		} else {
			text += " — no title recorded"
		}
		if e := f(c, "email"); e != "" {
			text += " (" + e + ")"
		}
		refs := []string{c.Ref}
		if n, last := v.contactActivity(c); n > 0 {
			text += "; " + str(v.figMap(crm.FigContactActivity)[c.Ref].(map[string]any)["activities"]) +
				" activities, the newest dated " + last
			if a, ok := latest[strings.TrimPrefix(c.Ref, "contacts/")]; ok {
				refs = append(refs, a.Ref)
			}
		} else {
			text += "; no activity recorded"
		}
		if isAuthor {
			text += "; raised a risk: “" + clip(riskQuote(risk), 120) + "” (" + day(risk, "occurred_at") + ")"
			refs = append(refs, risk.Ref)
		}
		out = append(out, v.cite(text+".", refs...))
	}
	if len(rest) > 0 {
		names := make([]string, 0, maxListed)
		for i, c := range rest {
			if i == maxListed {
				break
			}
			names = append(names, name(c))
		}
		out = append(out, v.cite("Other contacts, less senior or less engaged: "+strings.Join(names, ", ")+".", refsOf(rest)...))
	}
	if b, ok := v.ownersBullet(); ok {
		out = append(out, b)
	}
	if len(out) == 0 {
		out = append(out, v.cite("No contacts or internal owners are recorded for this account.", v.subject.Ref))
	}
	return out
}

// riskQuote is the sentence of the activity that carries its risk cue.
func riskQuote(a llm.Record) string {
	for _, text := range []string{f(a, "notes"), f(a, "subject")} {
		if i, p, ok := cues.find(cueRisk, text); ok {
			return quote(text, i, len(p.text))
		}
	}
	return f(a, "subject")
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
