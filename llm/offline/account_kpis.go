package offline

import (
	"cmp"
	"slices"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// Objective KPIs and the achievements they feed (seed 001, "Key
// Achievements").

// achievingKPIs: the KPIs that qualify, Completed first, then by percent.
func (v *view) achievingKPIs() []llm.Record {
	var ks []llm.Record
	for _, k := range v.records("kpis") {
		if kpiAchieving(k) {
			ks = append(ks, k)
		}
	}
	pct := v.figMap(crm.FigKPIPercent)
	slices.SortStableFunc(ks, func(a, b llm.Record) int {
		if c := cmp.Compare(btoi(lf(b, "status") == "completed"), btoi(lf(a, "status") == "completed")); c != 0 {
			return c
		}
		pa, okA := llm.Number(pct[a.Ref])
		pb, okB := llm.Number(pct[b.Ref])
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
	if p := str(v.figMap(crm.FigKPIPercent)[k.Ref]); p != "" {
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
		out = append(out, v.cite("Won deal: "+name(d)+parens(v.money(f(d, "amount")), prefixed("closed ", day(d, "close_date")))+".", d.Ref))
	}
	if len(out) == 0 {
		out = append(out, v.cite("No KPI On Track or Completed with recorded progress, achieved objective, completed "+
			"project or won deal is recorded.", append([]string{v.subject.Ref}, refsOf(v.records("kpis"))...)...))
	}
	return out
}
