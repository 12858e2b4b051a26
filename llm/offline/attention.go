package offline

import (
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// What needs attention (figures of workers/summary/attention.go), stated
// first in its home section, and the account's health verdict that opens
// the Executive Summary.

// unansweredBullet: customer signals nobody followed up, and how long the
// oldest has waited.
func (v *view) unansweredBullet() (llm.Bullet, bool) {
	n, ok := v.fig(crm.FigUnanswered)
	o := v.figMap(crm.FigOldestUnanswered)
	if !ok || n == "0" || o == nil {
		return llm.Bullet{}, false
	}
	text := "Unanswered: " + n + " customer signal" + plural(n) + " with no follow-up; the oldest, on " + str(o["date"]) +
		", has waited " + str(o["waiting_days"]) + " days"
	refs := []string{str(o["ref"]), v.subject.Ref}
	if a, ok := v.byRef[str(o["ref"])]; ok {
		if subj := f(a, "subject"); subj != "" {
			text += " (“" + clip(subj, 80) + "”)"
		}
		if c := f(a, "contact"); c != "" {
			refs = append(refs, "contacts/"+c)
		}
	}
	return v.cite(text+" — follow up now.", refs...), true
}

// touchBullet: days since the newest activity.
func (v *view) touchBullet() (llm.Bullet, bool) {
	d, ok := v.fig(crm.FigDaysSinceTouch)
	last, okL := v.fig(crm.FigLastActivity)
	if !ok || !okL {
		return llm.Bullet{}, false
	}
	refs := []string{v.subject.Ref}
	if len(v.activities) > 0 {
		refs = append(refs, v.activities[0].Ref)
	}
	return v.cite("Last touch: "+d+" days ago (on "+last+").", refs...), true
}

// statusBullet: how long the record has sat in its current status or stage.
func (v *view) statusBullet() (llm.Bullet, bool) {
	m := v.figMap(crm.FigStatusSince)
	if m == nil {
		return llm.Bullet{}, false
	}
	what := map[string]string{"lead_status": "status", "stage": "stage", "lifecycle_stage": "lifecycle stage"}[str(m["field"])]
	text := str(m["value"]) + " since " + str(m["since"]) + ": " + str(m["days"]) + " days in this " + what
	if d, ok := v.fig(crm.FigDaysSinceTouch); ok && str(m["days"]) != "0" {
		text += "; last touch " + d + " days ago"
	} else if !ok {
		text += ", with no activity recorded"
	}
	return v.cite(text+".", v.subject.Ref), true
}

// singleThreadBullet: open pipeline resting on one contact or no executive.
func (v *view) singleThreadBullet() (llm.Bullet, bool) {
	why, ok := v.fig(crm.FigSingleThreaded)
	if !ok {
		return llm.Bullet{}, false
	}
	value, _ := v.fig(crm.FigOpenDealValue)
	text := "Single-threaded: open pipeline of " + v.money(value) + " rests on " + why
	contacts := v.records("contacts")
	if why == "no executive" {
		n, _ := v.fig(crm.FigContacts)
		text += " among " + n + " contacts"
	} else if len(contacts) == 1 {
		text += parens(name(contacts[0]) + prefixed(" — ", f(contacts[0], "title")))
	}
	text += " — engage a sponsor at Director level or above"
	refs := append([]string{v.subject.Ref}, refsOf(contacts)...)
	return v.cite(text+".", append(refs, refsOf(v.openDeals(nil))...)...), true
}

// stalledBullet: open deals with no activity in the window.
func (v *view) stalledBullet() (llm.Bullet, bool) {
	refs := v.stalledRefs()
	if len(refs) == 0 {
		return llm.Bullet{}, false
	}
	days, _ := v.fig(crm.FigWindowDays)
	var labels []string
	for _, r := range refs {
		if d, ok := v.byRef[r]; ok && len(labels) < maxListed {
			labels = append(labels, v.dealLabels([]llm.Record{d})[0])
		}
	}
	n := itoa(len(refs))
	text := "Stalled: " + n + " open deal" + plural(n) + " with no activity in the last " + days + " days"
	if len(labels) > 0 {
		text += " — " + joinList(labels)
	}
	return v.cite(text+".", append(refs, v.subject.Ref)...), true
}

func (v *view) stalledRefs() []string {
	var refs []string
	for _, r := range asList(v.figAny(crm.FigStalledDeals)) {
		refs = append(refs, str(r))
	}
	return refs
}

func asList(x any) []any {
	switch l := x.(type) {
	case []any:
		return l
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return nil
}

func plural(n string) string {
	if n == "1" {
		return ""
	}
	return "s"
}

func itoa(n int) string { return llm.Text(n) }

// attention is what needs attention on a contact, lead or deal, first in
// its Overview: unanswered signals, the time in the current status or
// stage (with the last touch), or the last touch alone.
func (v *view) attention() []llm.Bullet {
	var out []llm.Bullet
	if b, ok := v.unansweredBullet(); ok {
		out = append(out, b)
	}
	// A closed deal or a converted lead looks back: its time in the last
	// status needs no attention.
	if b, ok := v.statusBullet(); ok && !dealClosed(v.subject) && v.subject.Fields["converted"] != true {
		out = append(out, b)
	} else if b, ok := v.touchBullet(); ok {
		out = append(out, b)
	}
	if v.subject.Module == "deals" && v.figAny(crm.FigStalled) == true {
		days, _ := v.fig(crm.FigWindowDays)
		inStage, _ := v.fig(crm.FigDaysInStage)
		out = append(out, v.cite("Stalled: no activity in the last "+days+" days; days in this stage: "+inStage+
			" — agree a next step with the buyer.", v.subject.Ref))
	}
	return out
}

// accountAttention opens Immediate Actions: unanswered signals, the last
// touch when it is a month or more ago, single-threading, stalled deals.
func (v *view) accountAttention() []llm.Bullet {
	var out []llm.Bullet
	if b, ok := v.unansweredBullet(); ok {
		out = append(out, b)
	}
	if d, ok := v.figNum(crm.FigDaysSinceTouch); ok && d >= 30 {
		if b, ok := v.touchBullet(); ok {
			out = append(out, b)
		}
	}
	if b, ok := v.singleThreadBullet(); ok {
		out = append(out, b)
	}
	if b, ok := v.stalledBullet(); ok {
		out = append(out, b)
	}
	return out
}

// healthBullet is the verdict and its reasons in three or four sentences
// of prose, each reason a figure (org.figures.health_reasons).
func (v *view) healthBullet() (llm.Bullet, bool) {
	verdict, ok := v.fig(crm.FigHealth)
	if !ok {
		return llm.Bullet{}, false
	}
	sentences := []string{"Health: " + verdict + "."}
	refs := []string{v.subject.Ref}
	for _, r := range asList(v.figAny(crm.FigHealthReasons)) {
		s, rs := v.reason(str(r))
		if s != "" {
			sentences = append(sentences, s)
			refs = append(refs, rs...)
		}
	}
	switch {
	case len(sentences) == 1:
		sentences = append(sentences, "No escalated case, red project, unanswered customer signal, overdue item or stalled deal is recorded.")
		if level, ok := v.fig(crm.FigEngagement); ok {
			sentences = append(sentences, "Engagement level: "+level+".")
		} else {
			sentences = append(sentences, "Keep the cadence of contact.")
		}
	case len(sentences) < 4:
		sentences = append(sentences, "Act on these first; the sections below give the detail.")
	}
	return v.cite(strings.Join(sentences, " "), refs...), true
}

// reason is the sentence of one reason of the verdict and what it cites.
func (v *view) reason(key string) (string, []string) {
	switch key {
	case crm.FigEscalatedCases:
		n, _ := v.fig(key)
		var refs, names []string
		for _, c := range v.openCases() {
			if caseEscalated(c) {
				refs = append(refs, c.Ref)
				names = append(names, "“"+name(c)+"”")
			}
		}
		s := "It has escalated cases: " + n
		if len(names) > 0 {
			s += ", among them " + strings.Join(names[:min(2, len(names))], " and ")
		}
		return s + ".", refs
	case crm.FigOldestUnanswered:
		o := v.figMap(key)
		return "A customer signal from " + str(o["date"]) + " has waited " + str(o["waiting_days"]) + " days for a follow-up.",
			[]string{str(o["ref"])}
	case crm.FigRedProjects:
		n, _ := v.fig(key)
		var refs []string
		for _, p := range v.records("projects") {
			if !done(p) && lf(p, "health") == "red" {
				refs = append(refs, p.Ref)
			}
		}
		return "It has red projects: " + n + ".", refs
	case crm.FigDaysSinceTouch:
		d, _ := v.fig(key)
		var refs []string
		if len(v.activities) > 0 {
			refs = append(refs, v.activities[0].Ref)
		}
		return "The last touch was " + d + " days ago.", refs
	case crm.FigSingleThreaded:
		why, _ := v.fig(key)
		value, _ := v.fig(crm.FigOpenDealValue)
		return "Its open pipeline of " + v.money(value) + " rests on " + why + ".", refsOf(v.records("contacts"))
	case crm.FigKPIsByStatus:
		byStatus := v.figMap(key)
		var parts []string
		for _, st := range []string{"Off Track", "Blocked"} {
			if n := str(byStatus[st]); n != "" && n != "0" {
				parts = append(parts, "KPIs "+st+": "+n)
			}
		}
		return "Objectives lag (" + strings.Join(parts, ", ") + ").", v.riskRefs()
	case crm.FigPastCloseDeals:
		n, _ := v.fig(key)
		today := v.today.Format("2006-01-02")
		return "Open deals past their close date: " + n + ".", refsOf(v.openDeals(func(d llm.Record) bool {
			c := day(d, "close_date")
			return c != "" && c < today
		}))
	case crm.FigOverdueObjectives:
		n, _ := v.fig(key)
		return "Overdue objectives: " + n + ".", refsOf(v.records("objectives"))
	case crm.FigOverdueTasks:
		n, _ := v.fig(key)
		overdue, _ := v.playbookTasks()
		return "Overdue playbook tasks: " + n + ".", refsOf(overdue)
	case crm.FigStalledDeals:
		days, _ := v.fig(crm.FigWindowDays)
		n := itoa(len(v.stalledRefs()))
		return "Stalled: " + n + " open deal" + plural(n) + " with no activity in the last " + days + " days.", v.stalledRefs()
	case crm.FigTrend:
		in, _ := v.fig(crm.FigInWindow)
		prev, _ := v.fig(crm.FigInPreviousWindow)
		days, _ := v.fig(crm.FigWindowDays)
		return "Activity is down: " + in + " activities in the last " + days + " days against " + prev + " in the " + days +
			" days before (falling).", nil
	}
	return "", nil
}
