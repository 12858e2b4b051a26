package offline

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// Bounds that keep an answer short: bullets per section, sources per
// bullet (the records a bullet names first), items listed in one bullet.
const (
	maxBullets = 10
	maxSources = 10
	maxListed  = 5
	maxQuotes  = 5
)

// view indexes the facts once for the section composers.
type view struct {
	subject    llm.Record
	related    []llm.Record
	activities []llm.Record // newest first, as the facts hold them
	byRef      map[string]llm.Record
	byModule   map[string][]llm.Record
	figs       map[string]any
	today      time.Time
	cueCache   map[string][]match
	ranks      map[string]crm.Seniority // title levels by title
	// reads records the figures read, when not nil (the test that each
	// section reads only the figures its definition names).
	reads map[string]bool
}

func newView(f *llm.Facts) *view {
	v := &view{subject: f.Subject, related: f.Related, activities: f.Activities, today: f.Today.UTC(),
		byRef: map[string]llm.Record{}, byModule: map[string][]llm.Record{}, cueCache: map[string][]match{},
		ranks: map[string]crm.Seniority{}}
	v.byRef[f.Subject.Ref] = f.Subject
	for _, r := range f.Related {
		v.byRef[r.Ref] = r
		v.byModule[r.Module] = append(v.byModule[r.Module], r)
	}
	for _, r := range f.Activities {
		v.byRef[r.Ref] = r
	}
	if figs, ok := f.Org[crm.Figures].(map[string]any); ok {
		v.figs = figs
	}
	return v
}

// Field values are copied as the facts hold them: json.Number keeps its
// digits, floats print without exponent, timestamps are cut to their date.

func str(v any) string {
	if b, ok := v.(bool); ok {
		if b {
			return "yes"
		}
		return "no"
	}
	return strings.TrimSpace(llm.Text(v))
}

// f is a field of r as text.
func f(r llm.Record, key string) string { return str(r.Fields[key]) }

func lf(r llm.Record, key string) string { return strings.ToLower(f(r, key)) }

// day is the date part of a date or timestamp field, as written.
func day(r llm.Record, key string) string { return dateOf(f(r, key)) }

func dateOf(s string) string {
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
		return s[:10]
	}
	return ""
}

func parseDay(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, dateOf(s))
	return t, err == nil
}

// name is how a record is called: name, first and last name, subject.
func name(r llm.Record) string {
	if n := f(r, "name"); n != "" {
		return n
	}
	if n := strings.TrimSpace(f(r, "first_name") + " " + f(r, "last_name")); n != "" {
		return n
	}
	if n := f(r, "subject"); n != "" {
		return n
	}
	return r.Ref
}

// Status rules: store/crm's, as the figures (workers/summary) and the
// store's SQL apply them.
func dealClosed(r llm.Record) bool { return crm.Stage(f(r, "stage")).Closed() }
func dealWon(r llm.Record) bool    { return crm.Stage(f(r, "stage")) == crm.Won }
func done(r llm.Record) bool       { return crm.Done(f(r, "status")) }
func caseOpen(r llm.Record) bool   { return crm.CaseOpen(f(r, "status"), f(r, "closed_at")) }
func caseEscalated(r llm.Record) bool {
	return crm.CaseEscalated(f(r, "status"), r.Fields["escalated"] == true)
}

// kpiAchieving is seed 001's rule for key achievements: On Track or
// Completed, with real progress (actual and target above zero). Off Track,
// Not Started and Blocked never qualify.
func kpiAchieving(k llm.Record) bool {
	s := lf(k, "status")
	if s != "on track" && s != "completed" {
		return false
	}
	actual, okA := llm.Number(k.Fields["actual"])
	target, okT := llm.Number(k.Fields["target"])
	return okA && okT && actual > 0 && target > 0
}

func (v *view) records(module string) []llm.Record { return v.byModule[module] }

// rank is the seniority of a contact's title (crm.TitleSeniority, whole
// words), computed once per title.
func (v *view) rank(r llm.Record) crm.Seniority {
	t := f(r, "title")
	n, ok := v.ranks[t]
	if !ok {
		n = crm.TitleSeniority(t)
		v.ranks[t] = n
	}
	return n
}

// cite makes a bullet with the refs given, deduplicated, the first
// maxSources kept, refs the facts do not hold left out.
func (v *view) cite(text string, refs ...string) llm.Bullet {
	out := make([]string, 0, min(len(refs), maxSources))
	seen := map[string]bool{}
	for _, r := range refs {
		if len(out) == maxSources {
			break
		}
		if _, ok := v.byRef[r]; ok && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return llm.Bullet{Text: sentence(text), Sources: out}
}

// uncited is a finding of a search that rests on no single record.
func uncited(text string) llm.Bullet { return llm.Bullet{Text: sentence(text), Sources: []string{}} }

func refsOf(rs []llm.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Ref
	}
	return out
}

// Figures (org.figures) are computed by workers/summary; absent ones are
// simply not stated.

// figAny is the figure key as the facts hold it; every figure read goes
// through it.
func (v *view) figAny(key string) any {
	if v.reads != nil {
		v.reads[key] = true
	}
	return v.figs[key]
}

func (v *view) fig(key string) (string, bool) {
	x, ok := v.figs[key]
	v.figAny(key)
	if !ok {
		return "", false
	}
	s := str(x)
	return s, s != ""
}

func (v *view) figNum(key string) (float64, bool) {
	x, ok := v.figs[key]
	v.figAny(key)
	if !ok {
		return 0, false
	}
	return llm.Number(x)
}

func (v *view) figMap(key string) map[string]any {
	m, _ := v.figAny(key).(map[string]any)
	return m
}

// figCounts renders a map of counts as "a 3, b 2" in the order given,
// then the remaining keys by count and name.
func (v *view) figCounts(key string, order []string) string {
	m := v.figMap(key)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		na, _ := llm.Number(m[a])
		nb, _ := llm.Number(m[b])
		if c := cmp.Compare(nb, na); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+str(m[k]))
	}
	return strings.Join(parts, ", ")
}

// activityLine names an activity in a bullet: "2025-05-27, email signal",
// "2025-06-01, meeting follow-up".
func activityLine(a llm.Record) string {
	kind := f(a, "medium")
	if kind == "" {
		kind = f(a, "kind")
	}
	switch dir := f(a, "direction"); dir {
	case "follow_up":
		kind = joinNonEmpty(" ", kind, "follow-up")
	default:
		kind = joinNonEmpty(" ", kind, dir)
	}
	return joinNonEmpty(", ", day(a, "occurred_at"), kind)
}

// sentence ends text with one full stop unless it already ends a sentence
// (a quote or value that ends in one keeps it, and no stop is doubled).
func sentence(text string) string {
	t := strings.TrimRight(text, " ")
	for _, doubled := range []string{".”.", "!”.", "?”.", "…”.", "..", "…."} {
		if strings.HasSuffix(t, doubled) {
			return strings.TrimSuffix(t, ".")
		}
	}
	for _, end := range []string{".", "!", "?", "…", ".”", "!”", "?”", "…”"} {
		if strings.HasSuffix(t, end) {
			return t
		}
	}
	return t + "."
}

// clip cuts s to at most n bytes at a space, marking the cut.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	if k := strings.LastIndexByte(s[:n], ' '); k > 0 {
		return s[:k] + "…"
	}
	if k := strings.IndexByte(s, ' '); k > 0 {
		return s[:k] + "…"
	}
	return s
}

func joinList(items []string) string { return strings.Join(items, "; ") }

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

// money writes an amount as the facts hold it with the org's currency
// (org.figures.currency, USD when absent) and thousands separators:
// "130745.76" is "USD 130,745.76". The digits are those of the facts;
// anything that is not a plain number is returned as it is.
func (v *view) money(s string) string {
	if s == "" {
		return ""
	}
	sign, digits := "", s
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return s
	}
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	cur, ok := v.fig(crm.FigCurrency)
	if !ok {
		cur = "USD"
	}
	return cur + " " + sign + b.String()
}
