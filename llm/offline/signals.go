package offline

import (
	"strings"

	"github.com/crmq/crmq/llm"
)

// match is one quoted signal: the sentence, where it was found and every
// record that says the same words.
type match struct {
	quote      string
	where      string // "2025-05-20, email signal", "case, Open", "KPI comment on Forecast accuracy, Completed"
	refs       []string
	moreDates  []string // dates of later records repeating the quote
	mitigation string
}

// signals finds the phrases of kind in activity notes and subjects (newest
// first), case subjects and KPI comments; the same sentence found again
// joins the first match.
func (v *view) signals(kind string) []match {
	if m, ok := v.cueCache[kind]; ok {
		return m
	}
	var out []match
	index := map[string]int{}
	add := func(r llm.Record, text, where, date string) bool {
		i, p, ok := cues.find(kind, text)
		if !ok {
			return false
		}
		q := quote(text, i, len(p.text))
		key := strings.ToLower(q)
		if j, seen := index[key]; seen {
			m := &out[j]
			if !contains(m.refs, r.Ref) {
				m.refs = append(m.refs, r.Ref)
				if date != "" && len(m.moreDates) < 3 {
					m.moreDates = append(m.moreDates, date)
				}
			}
			return true
		}
		index[key] = len(out)
		out = append(out, match{quote: q, where: where, refs: []string{r.Ref}, mitigation: p.mitigation})
		return true
	}
	// One quote per activity: its notes, else its subject. Sentiment
	// (positive cues) is the customer's: only the notes of the customer's
	// own signals carry it, never a rep's follow-up, a subject line alone,
	// a case subject or an internal KPI comment.
	for _, a := range v.activities {
		where, date := activityLine(a), day(a, "occurred_at")
		if kind == cuePositive {
			if f(a, "direction") == "signal" {
				add(a, f(a, "notes"), where, date)
			}
			continue
		}
		if !add(a, f(a, "notes"), where, date) {
			add(a, f(a, "subject"), where, date)
		}
	}
	if kind == cuePositive {
		v.cueCache[kind] = out
		return out
	}
	for _, c := range v.records("cases") {
		where := joinNonEmpty(", ", "case", f(c, "status"))
		add(c, f(c, "subject"), where, day(c, "opened_at"))
	}
	for _, k := range v.records("kpis") {
		where := joinNonEmpty(", ", "KPI comment on "+name(k), f(k, "status"))
		add(k, f(k, "comment"), where, "")
	}
	v.cueCache[kind] = out
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteBullet quotes a match and cites every record that says it.
func (v *view) quoteBullet(m match, withMitigation bool) llm.Bullet {
	var b strings.Builder
	b.WriteString("“" + m.quote + "” (" + m.where)
	if len(m.moreDates) > 0 {
		b.WriteString("; also on " + strings.Join(m.moreDates, ", "))
	}
	b.WriteString(")")
	if withMitigation && m.mitigation != "" {
		b.WriteString(" — mitigation: " + m.mitigation)
	}
	return v.cite(b.String(), m.refs...)
}

// quoteBullets quotes the matches of the kinds given, at most maxQuotes;
// a sentence found by several kinds is quoted once with every mitigation.
func (v *view) quoteBullets(withMitigation bool, kinds ...string) []llm.Bullet {
	var all []match
	index := map[string]int{}
	for _, kind := range kinds {
		for _, m := range v.signals(kind) {
			key := strings.ToLower(m.quote)
			if j, ok := index[key]; ok {
				if m.mitigation != "" && !strings.Contains(all[j].mitigation, m.mitigation) {
					all[j].mitigation = joinNonEmpty("; ", all[j].mitigation, m.mitigation)
				}
				continue
			}
			index[key] = len(all)
			all = append(all, m)
		}
	}
	var out []llm.Bullet
	for i, m := range all {
		if i == maxQuotes {
			break
		}
		out = append(out, v.quoteBullet(m, withMitigation))
	}
	return out
}
