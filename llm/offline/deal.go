package offline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// The deal sections (seed 000): progress, risks with mitigations, pipeline.

func (v *view) dealOverview() []llm.Bullet {
	s := v.subject
	text := name(s)
	refs := []string{s.Ref}
	if a, ok := v.lookup(s, "account", "accounts"); ok {
		text += " — account " + name(a)
		refs = append(refs, a.Ref)
	}
	var parts []string
	for _, k := range []string{"deal_type", "amount", "close_date", "owner"} {
		if x := f(s, k); x != "" {
			switch k {
			case "close_date":
				x = dateOf(x)
			case "amount":
				x = v.money(x)
			}
			parts = append(parts, strings.ReplaceAll(k, "_", " ")+": "+x)
		}
	}
	if len(parts) > 0 {
		text += "; " + joinList(parts)
	}
	return []llm.Bullet{v.cite(text+".", refs...)}
}

func (v *view) dealProgress() []llm.Bullet {
	s := v.subject
	var out []llm.Bullet
	if st := f(s, "stage"); st != "" {
		text := "Stage: " + st
		if p := f(s, "probability"); p != "" {
			text += ", probability " + p + "%"
		}
		if a := f(s, "amount"); a != "" {
			text += "; value: " + v.money(a)
		}
		if d, ok := v.fig(crm.FigDaysInStage); ok {
			text += "; days in this stage: " + d
		}
		if c := day(s, "close_date"); c != "" {
			text += "; close date: " + c
			if d, ok := v.fig(crm.FigDaysToClose); ok {
				text += " (days to close: " + d + ")"
			}
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	if ms := v.milestones("stage"); len(ms) > 0 {
		out = append(out, v.cite("Milestones: "+strings.Join(ms, ", ")+".", s.Ref))
	}
	if b, ok := v.decisionMakers(); ok {
		out = append(out, b)
	}
	if ns := f(s, "next_step"); ns != "" {
		out = append(out, v.cite("Next step: "+ns+".", s.Ref))
	} else if !dealClosed(s) {
		out = append(out, v.cite("No next step is recorded.", s.Ref))
	}
	return out
}

// decisionMakers: related contacts with titles, senior ones first.
func (v *view) decisionMakers() (llm.Bullet, bool) {
	var cs []llm.Record
	for _, c := range v.records("contacts") {
		if f(c, "title") != "" {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return llm.Bullet{}, false
	}
	slices.SortStableFunc(cs, func(a, b llm.Record) int {
		return cmp.Compare(v.rank(b), v.rank(a))
	})
	if len(cs) > maxListed {
		cs = cs[:maxListed]
	}
	labels := make([]string, len(cs))
	for i, c := range cs {
		labels[i] = name(c) + " (" + f(c, "title") + ")"
	}
	return v.cite("Key decision makers: "+joinList(labels)+".", refsOf(cs)...), true
}

func (v *view) dealRisks() []llm.Bullet {
	s := v.subject
	if dealClosed(s) {
		return v.closedDealLookBack()
	}
	var out []llm.Bullet
	if c := f(s, "competitor"); c != "" {
		out = append(out, v.cite("Competitor: "+c+" — mitigation: position against it with a comparison and references.", s.Ref))
	}
	if d, ok := v.figNum(crm.FigDaysToClose); ok && d < 0 && !dealClosed(s) {
		days, _ := v.fig(crm.FigDaysToClose)
		out = append(out, v.cite("The close date "+day(s, "close_date")+" has passed while the deal is open (days to close: "+
			days+") — mitigation: confirm a new close date with the buyer.", s.Ref))
	}
	if in, ok := v.fig(crm.FigInWindow); ok && in == "0" && !dealClosed(s) && v.figAny(crm.FigStalled) != true {
		days, _ := v.fig(crm.FigWindowDays)
		out = append(out, v.cite("No activity in the last "+days+" days — mitigation: re-engage the key decision makers.", s.Ref))
	}
	quotes := v.quoteBullets(true, cueRisk, cueCompetitor)
	if len(quotes) == 0 {
		out = append(out, v.cite("No activity notes of this deal mention risks or competitors.",
			append([]string{s.Ref}, refsOf(v.activities)...)...))
	}
	return append(out, quotes...)
}

// closedDealLookBack is the Risks section of a closed deal: a retrospective.
// No risk is open and no mitigation applies; what was noted before the
// close is quoted as history.
func (v *view) closedDealLookBack() []llm.Bullet {
	s := v.subject
	text := "The deal is closed (" + f(s, "stage") + prefixed(", close date ", day(s, "close_date")) +
		"): no risk is open; what follows looks back"
	out := []llm.Bullet{v.cite(text+".", s.Ref)}
	if c := f(s, "competitor"); c != "" {
		out = append(out, v.cite("Competitor recorded on the deal: "+c+".", s.Ref))
	}
	quotes := v.quoteBullets(false, cueRisk, cueCompetitor)
	if len(quotes) == 0 {
		return append(out, v.cite("No activity notes of this deal mention risks or competitors.",
			append([]string{s.Ref}, refsOf(v.activities)...)...))
	}
	return append(out, quotes...)
}

func (v *view) pipelineMetrics() []llm.Bullet {
	s := v.subject
	var out []llm.Bullet
	if dealClosed(s) {
		out = append(out, v.cite("The deal is closed ("+f(s, "stage")+"), so it is no part of the open pipeline.", s.Ref))
	} else if pv, ok := v.fig(crm.FigPipelineValue); ok {
		text := "Cumulative open pipeline value: " + v.money(pv)
		if share, ok := v.fig(crm.FigPipelineShare); ok {
			text += "; this deal is " + share + "% of it"
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	if a := f(s, "amount"); a != "" {
		text := "Deal value: " + v.money(a)
		if p := f(s, "probability"); p != "" {
			text += " at probability " + p + "%"
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	if e, ok := v.fig(crm.FigEngagementScore); ok {
		out = append(out, v.cite("Engagement score: "+e+".", s.Ref))
	}
	if b, ok := v.activityBullet(); ok {
		out = append(out, b)
	}
	return out
}
