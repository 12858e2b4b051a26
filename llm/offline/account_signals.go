package offline

import (
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// The sections read from cue phrases and the records that carry risk.

func (v *view) relationalHealth() []llm.Bullet {
	var out []llm.Bullet
	if level, ok := v.fig(crm.FigEngagement); ok {
		text := "Engagement level: " + level
		if in, ok := v.fig(crm.FigInWindow); ok {
			days, _ := v.fig(crm.FigWindowDays)
			prev, _ := v.fig(crm.FigInPreviousWindow)
			trend, _ := v.fig(crm.FigTrend)
			text += " — " + in + " activities in the last " + days + " days against " + prev +
				" in the " + days + " days before (" + trendWord(trend) + ")"
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
		if !ok || !v.rank(c).Executive() {
			continue
		}
		out = append(out, v.cite("Executive engagement: "+name(c)+" ("+f(c, "title")+"), latest activity "+
			activityLine(a)+".", c.Ref, a.Ref))
	}
	quotes := v.quoteBullets(false, cuePositive)
	out = append(out, quotes...)
	if len(quotes) == 0 {
		out = append(out, v.cite("No notes of the customer's own signals mention positive relationship signals.",
			v.searched(false)...))
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
		return append(out, v.cite("No activity notes, cases or KPI comments mention risks.", v.searched(true)...))
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
	for _, d := range v.openDeals(expansionDeal) {
		out = append(out, v.cite("Open expansion opportunity: "+v.dealLabels([]llm.Record{d})[0]+".", d.Ref))
	}
	if none {
		out = append(out, uncited("No activity notes, cases or KPI comments mention expansion signals."))
	}
	return out
}

// searched are the refs a search for cues read: the subject, then the
// activities (the customer's own signals only, for sentiment), cases and
// KPIs; a bullet saying the search found nothing cites them (the first
// maxSources).
func (v *view) searched(all bool) []string {
	refs := []string{v.subject.Ref}
	for _, a := range v.activities {
		if all || f(a, "direction") == "signal" {
			refs = append(refs, a.Ref)
		}
	}
	if all {
		refs = append(append(refs, refsOf(v.records("cases"))...), refsOf(v.records("kpis"))...)
	}
	return refs
}
