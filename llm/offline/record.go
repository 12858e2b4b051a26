package offline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// The sections of contacts, leads and every other module (seed 000); the
// overview dispatches by module.

func (v *view) overview() []llm.Bullet {
	s := v.subject
	switch s.Module {
	case "contacts":
		return append(v.attention(), v.contactOverview()...)
	case "leads":
		return append(v.attention(), v.leadOverview()...)
	case "deals":
		return append(v.attention(), v.dealOverview()...)
	case "accounts":
		return v.accountHighlights()
	}
	return v.recordOverview()
}

// lookup is the related record a lookup field of r names, if the facts
// hold it.
func (v *view) lookup(r llm.Record, key, module string) (llm.Record, bool) {
	id := f(r, key)
	if id == "" {
		return llm.Record{}, false
	}
	rec, ok := v.byRef[module+"/"+id]
	return rec, ok
}

func (v *view) contactDetails(s llm.Record) (llm.Bullet, bool) {
	var parts []string
	if e := f(s, "email"); e != "" {
		parts = append(parts, "email: "+e)
	}
	if p := f(s, "phone"); p != "" {
		parts = append(parts, "phone: "+p)
	}
	if o := f(s, "owner"); o != "" {
		parts = append(parts, "owner: "+o)
	}
	if len(parts) == 0 {
		return llm.Bullet{}, false
	}
	return v.cite("Contact details — "+joinList(parts)+".", s.Ref), true
}

func (v *view) contactOverview() []llm.Bullet {
	s := v.subject
	text := name(s)
	if t := f(s, "title"); t != "" {
		text += " — " + t
	}
	refs := []string{s.Ref}
	if a, ok := v.lookup(s, "account", "accounts"); ok {
		text += " at " + name(a)
		refs = append(refs, a.Ref)
	}
	if st := f(s, "lifecycle_stage"); st != "" {
		text += "; lifecycle stage: " + st
	}
	out := []llm.Bullet{v.cite(text+".", refs...)}
	if b, ok := v.contactDetails(s); ok {
		out = append(out, b)
	}
	return out
}

func (v *view) decisionPower() []llm.Bullet {
	s := v.subject
	var out []llm.Bullet
	title := f(s, "title")
	switch rank := v.rank(s); {
	case title == "":
		out = append(out, v.cite("No title is recorded, so decision-making power cannot be judged from the data.", s.Ref))
	case rank.Executive():
		out = append(out, v.cite("Title "+title+": a senior title, likely a decision-maker.", s.Ref))
	case rank == crm.Manager:
		out = append(out, v.cite("Title "+title+": a management title, likely an influencer rather than the final decision-maker.", s.Ref))
	default:
		out = append(out, v.cite("Title "+title+": neither a senior nor a management title, so decision-making power is likely limited.", s.Ref))
	}
	id := strings.TrimPrefix(s.Ref, "contacts/")
	var deals []llm.Record
	for _, d := range v.records("deals") {
		if f(d, "contact") == id {
			deals = append(deals, d)
		}
	}
	slices.SortStableFunc(deals, func(a, b llm.Record) int { return cmp.Compare(btoi(dealClosed(a)), btoi(dealClosed(b))) })
	for i, d := range deals {
		if i == maxListed {
			break
		}
		out = append(out, v.cite("Contact on deal "+name(d)+parens(f(d, "stage"), v.money(f(d, "amount")), prefixed("closes ", day(d, "close_date")))+".", d.Ref, s.Ref))
	}
	if st := f(s, "lifecycle_stage"); st != "" {
		out = append(out, v.cite("Lifecycle stage: "+st+".", s.Ref))
	}
	return out
}

func (v *view) recentInteractions() []llm.Bullet {
	var out []llm.Bullet
	if total, ok := v.fig(crm.FigActivitiesTotal); ok {
		text := "Activities: " + total + " in total"
		if last, ok := v.fig(crm.FigLastActivity); ok {
			text += "; latest on " + last
		}
		refs := []string{v.subject.Ref}
		if len(v.activities) > 0 {
			refs = append(refs, v.activities[0].Ref)
		}
		out = append(out, v.cite(text+".", refs...))
	}
	for i, a := range v.activities {
		if i == maxListed {
			break
		}
		text := activityLine(a)
		if subj := f(a, "subject"); subj != "" {
			text += ": " + subj
		}
		if st := f(a, "status"); st != "" {
			text += parens(st)
		}
		if n := f(a, "notes"); n != "" {
			text += " — “" + clip(n, 160) + "”"
		}
		out = append(out, v.cite(text+".", a.Ref))
	}
	if len(v.activities) == 0 {
		out = append(out, v.cite("No activities of this record are in the data.", v.subject.Ref))
	}
	return out
}

var partOrder = []string{"morning", "afternoon", "evening", "night"}

func (v *view) preferences() []llm.Bullet {
	s := v.subject
	total, ok := v.fig(crm.FigSignalsTotal)
	if !ok || total == "0" {
		return []llm.Bullet{v.cite("No signals from this contact are recorded, so no preferred channel or timing can be read.", s.Ref)}
	}
	refs := []string{s.Ref}
	for _, a := range v.activities {
		if f(a, "direction") == "signal" && len(refs) < 4 {
			refs = append(refs, a.Ref)
		}
	}
	var out []llm.Bullet
	byChannel := "signals by channel: " + v.figCounts(crm.FigSignalsByChannel, nil) + "; signals: " + total
	if ch, ok := v.fig(crm.FigPreferredChannel); ok {
		out = append(out, v.cite("Preferred channel: "+ch+" ("+byChannel+").", refs...))
	} else if tie, ok := v.fig(crm.FigSignalsTie); ok {
		out = append(out, v.cite("No single preferred channel: "+tie+" tie ("+byChannel+").", refs...))
	} else {
		out = append(out, v.cite("Too few signals to call a preferred channel or time ("+byChannel+").", refs...))
	}
	if part, ok := v.fig(crm.FigPreferredPart); ok {
		zone, ok := v.fig(crm.FigTimeZone)
		if !ok {
			zone = "UTC"
		}
		text := "Signals come mostly in the " + part + " (" + v.figCounts(crm.FigSignalsByPart, partOrder) + ", " + zone + ")"
		if wd, ok := v.fig(crm.FigPreferredWeekday); ok {
			text += ", most often on " + wd + " (" + v.figCounts(crm.FigSignalsByWeekday, nil) + ")"
		}
		out = append(out, v.cite(text+".", refs...))
	}
	if e := f(s, "email"); e != "" {
		out = append(out, v.cite("Email on record: "+e+".", s.Ref))
	}
	return out
}

func (v *view) leadOverview() []llm.Bullet {
	s := v.subject
	text := name(s)
	if c := f(s, "company"); c != "" {
		text += " — " + c
	}
	var parts []string
	if st := f(s, "lead_status"); st != "" {
		parts = append(parts, "status: "+st)
	}
	if c := f(s, "converted"); c != "" {
		parts = append(parts, "converted: "+c)
	}
	if len(parts) > 0 {
		text += "; " + joinList(parts)
	}
	out := []llm.Bullet{v.cite(text+".", s.Ref)}
	if b, ok := v.contactDetails(s); ok {
		out = append(out, b)
	}
	return out
}

// milestones of the tracked picklist field from subject.fields.field_history.
func (v *view) milestones(field string) []string {
	h, _ := v.subject.Fields["field_history"].([]any)
	var out []string
	for _, e := range h {
		m, _ := e.(map[string]any)
		if m == nil || str(m["field"]) != field {
			continue
		}
		if nv := str(m["new_value"]); nv != "" {
			out = append(out, nv+prefixed(" on ", dateOf(str(m["changed_at"]))))
		}
	}
	return out
}

func (v *view) qualification() []llm.Bullet {
	s := v.subject
	var out []llm.Bullet
	if pv := f(s, "potential_value"); pv != "" {
		out = append(out, v.cite("Potential value: "+v.money(pv)+".", s.Ref))
	}
	if st := f(s, "lead_status"); st != "" {
		text := "Lead status: " + st
		if ms := v.milestones("lead_status"); len(ms) > 0 {
			text += "; history: " + strings.Join(ms, ", ")
		}
		out = append(out, v.cite(text+".", s.Ref))
	}
	src := f(s, "lead_source")
	if src == "" {
		return append(out, v.cite("No lead source is recorded, so its conversion rate and the lead's conversion probability are unknown.", s.Ref))
	}
	out = append(out, v.cite("Origin (lead source): "+src+".", s.Ref))
	pct, ok := v.fig(crm.FigSourcePercent)
	if !ok {
		return append(out, v.cite("No historical conversion rate is recorded for the source "+src+
			", so no conversion probability is given.", s.Ref))
	}
	text := src + " leads convert at " + pct + "% in this organisation"
	if n, ok := v.fig(crm.FigSourceLeads); ok {
		c, _ := v.fig(crm.FigSourceConverted)
		text += " (" + c + " of " + n + ")"
	}
	out = append(out, v.cite(text+".", s.Ref))
	if s.Fields["converted"] == true {
		// A converted lead looks back: it has no probability left to state.
		return append(out, v.cite("The lead is converted, so no conversion probability applies.", s.Ref))
	}
	out = append(out, v.cite("Conversion probability: "+pct+"%, the historical rate of its source.", s.Ref))
	return out
}

// recordOverview is the general overview of any other module: its fields,
// related records and newest activities.
func (v *view) recordOverview() []llm.Bullet {
	s := v.subject
	var out []llm.Bullet
	keys := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		switch k {
		case "name", "attributes", "field_history", "state", "updated_at":
			continue
		}
		if str(s.Fields[k]) != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	attrs, _ := s.Fields["attributes"].(map[string]any)
	attrKeys := make([]string, 0, len(attrs))
	for k := range attrs {
		if str(attrs[k]) != "" {
			attrKeys = append(attrKeys, k)
		}
	}
	slices.Sort(attrKeys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, strings.ReplaceAll(k, "_", " ")+": "+str(s.Fields[k]))
	}
	for _, k := range attrKeys {
		parts = append(parts, strings.ReplaceAll(k, "_", " ")+": "+str(attrs[k]))
	}
	if len(parts) > 12 {
		parts = parts[:12]
	}
	text := name(s)
	if len(parts) > 0 {
		text += " — " + joinList(parts)
	}
	out = append(out, v.cite(text+".", s.Ref))
	if len(v.related) > 0 {
		rs := v.related
		if len(rs) > maxListed {
			rs = rs[:maxListed]
		}
		labels := make([]string, len(rs))
		for i, r := range rs {
			labels[i] = r.Module + " " + name(r)
		}
		out = append(out, v.cite("Related: "+joinList(labels)+".", refsOf(rs)...))
	}
	for i, a := range v.activities {
		if i == 3 {
			break
		}
		text := activityLine(a)
		if subj := f(a, "subject"); subj != "" {
			text += ": " + subj
		}
		out = append(out, v.cite(text+".", a.Ref))
	}
	return out
}
