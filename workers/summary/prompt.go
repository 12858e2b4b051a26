package summary

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// Errors of BuildPrompt.
var (
	// ErrBudgetTooSmall: the instructions and the subject record alone do
	// not fit the token budget, even with every related record left out.
	ErrBudgetTooSmall = errors.New("summary: token budget too small for the subject record")
	ErrNothingAsked   = errors.New("summary: no section asked for")
)

// DefaultBudgetTokens bounds a prompt (system + user, llm.EstimateTokens)
// when the caller gives no budget. An account with a few hundred associated
// records and a few hundred activities fits; tens of thousands never do.
const DefaultBudgetTokens = 32000

// NoActivitiesNote is the Truncation note of a section none of whose
// activities fit (seed 001, "CS Activity Data").
const NoActivitiesNote = "no activities were included in this section"

// Truncation records what the token budget left out of the prompt, as
// seed 001 asks: per section that reads activities, how many were
// included and from which date; and the associated records dropped when
// the record and its associated records alone overflow the budget.
type Truncation struct {
	Sections []SectionCut `json:"sections"`
	Related  *RelatedCut  `json:"related,omitempty"`
}

// SectionCut is one section's activities. Cut is true when any activity
// was left out, by the budget or by the graph's store.ActivityCap;
// IncludedFrom is then the date of the oldest activity included, or Note
// says none was.
type SectionCut struct {
	Section            string `json:"section"`
	Cut                bool   `json:"cut"`
	ActivitiesIncluded int    `json:"activities_included"`
	ActivitiesTotal    int    `json:"activities_total"`
	IncludedFrom       string `json:"included_from,omitempty"` // YYYY-MM-DD, UTC
	Note               string `json:"note,omitempty"`
}

// RelatedCut counts associated records left out, deepest levels first.
type RelatedCut struct {
	Included int          `json:"included"`
	Total    int          `json:"total"`
	LeftOut  []LevelCount `json:"left_out"`
	Note     string       `json:"note"`
}

// LevelCount is how many records of one level were left out.
type LevelCount struct {
	Level int `json:"level"`
	Count int `json:"count"`
}

const systemPrompt = `You write CRM record summaries. Rules:
1. Use only the facts in the prompt. Never invent names, numbers, dates or statuses; copy them as written.
2. Every bullet cites in "sources" the ref of every record it rests on (refs look like "contacts/c-42"). A bullet that states an org-wide figure cites the subject's ref.
3. Use the figures under org.figures instead of your own arithmetic; they are computed over every record, including activities the prompt leaves out.
4. The activities may be only the newest ones (org.figures.activities_total counts them all): never claim a complete history.
5. When a section has no supporting facts, answer it with one bullet saying so and empty sources.
6. One statement per bullet, at most eight bullets per section. Dates are UTC; today is facts.today.
7. Parts of the day: morning 06-12, afternoon 12-18, evening 18-22, night 22-06, in org.figures.time_zone.
8. Amounts are in org.figures.currency: write them with the currency code and thousands separators (USD 130,745.76).
9. State first what needs attention; say each fact once, in the section it belongs to.`

// Ref is how a record is cited: "module/external_id".
func Ref(module, id string) string { return module + "/" + id }

// BuildPrompt turns a graph into a request for the asked sections within
// budgetTokens (system + user, llm.EstimateTokens). The subject and its
// associated records go in first; if they alone overflow, associated
// records of the deepest levels are left out first. Then activities,
// newest first, until the budget is full. Truncation says what was cut.
func BuildPrompt(g store.SummaryGraph, module string, asked []llm.SectionSpec, budgetTokens int, today time.Time) (llm.Request, Truncation, error) {
	if len(asked) == 0 {
		return llm.Request{}, Truncation{}, ErrNothingAsked
	}
	if g.Subject.ID == "" || (g.Subject.Module != "" && g.Subject.Module != module) {
		return llm.Request{}, Truncation{}, fmt.Errorf("summary: graph of %q is not a %s record", Ref(g.Subject.Module, g.Subject.ID), module)
	}
	if budgetTokens <= 0 {
		budgetTokens = DefaultBudgetTokens
	}
	today = today.UTC()
	g = withoutDrafts(g)
	subjectRef := Ref(module, g.Subject.ID)
	asked = derivedLast(asked)
	task := taskText(module, subjectRef, asked)
	// (len+3)/4 <= B holds exactly when len <= 4B.
	maxBytes := 4*(budgetTokens-llm.EstimateTokens(systemPrompt)) - len(task)

	facts := llm.Facts{Subject: subjectRecord(g, module), Related: []llm.Record{}, Activities: []llm.Record{}, Today: today}
	seen := map[string]bool{subjectRef: true}
	// An account's line items and products only feed its purchase
	// figures; once those are computed they would say it twice.
	covered := module == "accounts"
	for _, r := range g.Related {
		if covered && (r.Module == "deal_line_items" || r.Module == "products") {
			continue
		}
		if rec := record(r); !seen[rec.Ref] {
			seen[rec.Ref] = true
			facts.Related = append(facts.Related, rec)
		}
	}
	ix := indexActivities(g.Activities) // each activity's time and direction, read once
	sorted, times := newestFirst(g.Activities, ix.at)
	figs := figures(g, module, today, ix)
	facts.Org = make(map[string]any, len(g.Org)+1)
	for k, v := range g.Org {
		if !restated[k] { // given once, as a figure
			facts.Org[k] = v
		}
	}
	facts.Org[crm.Figures] = figs

	// Each part of the facts is rendered once; the prompt's JSON is put
	// together from the parts (factsJSON), byte for byte what rendering
	// the whole would give.
	var trunc Truncation
	fj, err := newFactsJSON(facts)
	if err != nil {
		return llm.Request{}, Truncation{}, err
	}
	base := fj.size()
	// Activities keep at least minActivityPercent of the budget, as far as
	// they need it: associated records are left out, deepest first, to
	// make that room, but never more than they take.
	pre := make([]renderedActivity, 0, 64)
	reserve, err := activityReserve(sorted, maxBytes*minActivityPercent/100, &pre)
	if err != nil {
		return llm.Request{}, Truncation{}, err
	}
	over := base - maxBytes
	if want := base - (maxBytes - reserve); want > 0 && want > over && len(facts.Related) > 0 {
		over = max(over, min(want, fj.relatedSize()-2))
	}
	if over > 0 {
		cut, kept, err := trimRelated(facts.Related, fj.related, over)
		if err != nil {
			return llm.Request{}, Truncation{}, err
		}
		trunc.Related = cut
		fj.related = fj.related[:0]
		related := make([]llm.Record, 0, len(kept))
		for _, k := range kept {
			related = append(related, facts.Related[k.i])
			fj.related = append(fj.related, k.js)
		}
		facts.Related = related
		pruneFigures(figs, facts.Related)
		if fj.org, err = render(facts.Org); err != nil {
			return llm.Request{}, Truncation{}, err
		}
		if fj.size() > maxBytes {
			return llm.Request{}, Truncation{}, fmt.Errorf("%w: %d tokens", ErrBudgetTooSmall, budgetTokens)
		}
	}

	// Activities newest first while they fit; each adds its bytes and,
	// after the first, a comma. Only those tried are converted.
	used, distinct, full := fj.size(), 0, false
	var oldest time.Time
	for i, a := range sorted {
		ref := Ref(a.Module, a.ID)
		if seen[ref] {
			continue
		}
		seen[ref] = true
		distinct++
		if full {
			continue // only counted
		}
		var rec llm.Record
		var b []byte
		if i < len(pre) {
			rec, b = pre[i].rec, pre[i].js
		} else if rec = record(a); true {
			if b, err = render(rec); err != nil {
				return llm.Request{}, Truncation{}, err
			}
		}
		add := len(b)
		if len(facts.Activities) > 0 {
			add++
		}
		if used+add > maxBytes {
			full = true
			continue
		}
		used += add
		facts.Activities = append(facts.Activities, rec)
		fj.activities = append(fj.activities, b)
		oldest = times[i]
	}
	n := len(facts.Activities)
	if fj.size() > maxBytes {
		return llm.Request{}, Truncation{}, fmt.Errorf("summary: prompt of %d bytes over its %d-byte budget", fj.size(), maxBytes)
	}

	total := max(g.ActivityTotal, distinct)
	for _, s := range asked {
		if !s.UsesActivities {
			continue
		}
		c := SectionCut{Section: s.Key, Cut: n < total, ActivitiesIncluded: n, ActivitiesTotal: total}
		switch {
		case c.Cut && n > 0:
			c.IncludedFrom = oldest.Format(time.DateOnly)
		case c.Cut:
			c.Note = NoActivitiesNote
		}
		trunc.Sections = append(trunc.Sections, c)
	}
	if trunc.Sections == nil {
		trunc.Sections = []SectionCut{}
	}
	req := llm.Request{
		System:   systemPrompt,
		User:     fj.appendTo(task),
		Schema:   llm.AnswerSchema(asked),
		Facts:    &facts,
		Sections: asked,
	}
	return req, trunc, nil
}

// restated are the store's org keys a figure states again (in one unit,
// under its figure name): the prompt gives each once, as the figure.
var restated = map[string]bool{
	orgContactActivity: true, orgAccountWon: true, orgWon: true, "account_revenue_share": true,
	orgPipelineValue: true, "open_deals": true, orgEngagementScore: true,
	orgSourceRate: true, orgSourceLeads: true, orgSourceConverted: true,
	"signals": true, "signal_hours_utc": true, "signal_weekdays_utc": true, "signal_mediums": true,
}

// derivedLast orders the sections a model writes: those built from others
// (Executive Summary, Strategic Next Steps) after every section that feeds
// them. The summary is shown in catalog order whatever this order.
func derivedLast(asked []llm.SectionSpec) []llm.SectionSpec {
	out := make([]llm.SectionSpec, 0, len(asked))
	for _, s := range asked {
		if len(s.Feeds) == 0 {
			out = append(out, s)
		}
	}
	for _, s := range asked {
		if len(s.Feeds) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// minActivityPercent of a prompt's budget is kept for activities when
// there are that many to fill it.
const minActivityPercent = 25

type renderedActivity struct {
	rec llm.Record
	js  []byte
}

// activityReserve is the bytes the newest activities take, up to limit,
// each with its comma; it keeps what it rendered in pre, newest first.
func activityReserve(sorted []store.GraphRecord, limit int, pre *[]renderedActivity) (int, error) {
	need := 0
	for _, a := range sorted {
		if need >= limit {
			break
		}
		rec := record(a)
		b, err := render(rec)
		if err != nil {
			return 0, err
		}
		*pre = append(*pre, renderedActivity{rec, b})
		need += len(b) + 1
	}
	return min(need, limit), nil
}

// withoutDrafts leaves out the associated records and activities in draft
// or incomplete state: they are not real yet (seed 000 refuses to
// summarise them), so they count in no figure and are listed nowhere.
func withoutDrafts(g store.SummaryGraph) store.SummaryGraph {
	keep := func(rs []store.GraphRecord) []store.GraphRecord {
		out := rs[:0:0]
		for _, r := range rs {
			if !draft(r) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, r := range g.Related {
		if draft(r) {
			g.Related = keep(g.Related)
			break
		}
	}
	for _, r := range g.Activities {
		if draft(r) {
			n := len(g.Activities)
			g.Activities = keep(g.Activities)
			// The store counted them: they are not part of the total either.
			g.ActivityTotal = max(0, g.ActivityTotal-(n-len(g.Activities)))
			break
		}
	}
	return g
}

func draft(r store.GraphRecord) bool {
	switch lower(r.Fields["state"]) {
	case "draft", "incomplete":
		return true
	}
	return false
}

func taskText(module, ref string, asked []llm.SectionSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Summarise the %s record %s for a CRM user. Answer with one entry per section below, "+
		"in this order, each a list of bullets {text, sources}.\n\nSections:\n", module, ref)
	for _, s := range asked {
		fmt.Fprintf(&b, "- %s (%s): %s", s.Key, s.Title, s.Instruction)
		if len(s.Feeds) > 0 {
			fmt.Fprintf(&b, " Feeds: %s.", strings.Join(s.Feeds, ", "))
		}
		b.WriteByte('\n')
	}
	b.WriteString("\nFacts (subject; related records with their level and parent; activities, newest first; " +
		"org-wide figures):\n")
	return b.String()
}

// render is compact JSON without HTML escaping, so notes read as written
// and a record's bytes are the same alone and inside the facts.
func render(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("summary: render facts: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// record is a graph record as the facts show it: the fields without empty
// values, the external id (it is in the ref), created_at, updated_at and
// state (drafts are left out before, so every record is active; the data
// hash and data_as_of carry the times).
func record(r store.GraphRecord) llm.Record {
	fields := make(map[string]any, len(r.Fields))
	for k, v := range r.Fields {
		if k == "id" || k == "created_at" || k == "updated_at" || k == "state" || empty(v) {
			continue
		}
		fields[k] = v
	}
	return llm.Record{Ref: Ref(r.Module, r.ID), Module: r.Module, Level: r.Level, Parent: r.Parent, Fields: fields}
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	case store.Record:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// subjectRecord carries the tracked picklist's history (milestones) in
// field_history, shaped like the store's FieldChange JSON.
func subjectRecord(g store.SummaryGraph, module string) llm.Record {
	s := g.Subject
	s.Module, s.Level, s.Parent = module, 0, ""
	rec := record(s)
	if len(g.History) > 0 {
		h := make([]any, 0, len(g.History))
		for _, c := range g.History {
			e := map[string]any{"field": c.Field, "changed_at": c.ChangedAt.UTC().Format(time.RFC3339)}
			if c.OldValue != nil {
				e["old_value"] = *c.OldValue
			}
			if c.NewValue != nil {
				e["new_value"] = *c.NewValue
			}
			h = append(h, e)
		}
		rec.Fields["field_history"] = h
	}
	return rec
}

// newestFirst orders activities by occurred_at, newest first, ties by id,
// whatever order the graph came in; it returns each one's time alongside.
func newestFirst(acts []store.GraphRecord, at []time.Time) ([]store.GraphRecord, []time.Time) {
	type timed struct {
		r store.GraphRecord
		t time.Time
	}
	ts := make([]timed, len(acts))
	for i, a := range acts {
		ts[i] = timed{a, at[i]}
	}
	slices.SortStableFunc(ts, func(a, b timed) int {
		if c := b.t.Compare(a.t); c != 0 {
			return c
		}
		return cmp.Compare(a.r.ID, b.r.ID)
	})
	out, times := make([]store.GraphRecord, len(ts)), make([]time.Time, len(ts))
	for i, x := range ts {
		out[i], times[i] = x.r, x.t
	}
	return out, times
}

// keptRecord is an associated record trimRelated keeps: its index and
// its JSON.
type keptRecord struct {
	i  int
	js []byte
}

// trimRelated leaves out associated records (related, rendered as js),
// deepest level first and the last listed first within a level, until
// over bytes are saved; it returns the records kept, in order.
func trimRelated(related []llm.Record, js [][]byte, over int) (*RelatedCut, []keptRecord, error) {
	total := len(related)
	order := make([]int, total)
	for i := range related {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(related[b].Level, related[a].Level); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	drop := make([]bool, total)
	saved, dropped := 0, 0
	for _, i := range order {
		if saved >= over {
			break
		}
		drop[i] = true
		dropped++
		saved += len(js[i]) + 1 // its comma
	}
	if saved < over {
		return nil, nil, fmt.Errorf("%w: the subject alone overflows it", ErrBudgetTooSmall)
	}
	levels := map[int]int{}
	kept := make([]keptRecord, 0, total-dropped)
	for i, r := range related {
		if drop[i] {
			levels[r.Level]++
			continue
		}
		kept = append(kept, keptRecord{i, js[i]})
	}
	cut := &RelatedCut{Included: len(kept), Total: total}
	for lvl, n := range levels {
		cut.LeftOut = append(cut.LeftOut, LevelCount{Level: lvl, Count: n})
	}
	slices.SortFunc(cut.LeftOut, func(a, b LevelCount) int { return cmp.Compare(b.Level, a.Level) })
	cut.Note = fmt.Sprintf("%d of %d associated records were left out to fit the token budget, deepest levels first",
		total-len(kept), total)
	return cut, kept, nil
}

// factsJSON is llm.Facts rendered part by part: the subject, each
// associated record, each activity, the org figures and today. Put
// together (appendTo) it is what render(facts) gives, in the order of
// llm.Facts' fields; its size is known without putting it together.
type factsJSON struct {
	subject, org, today []byte
	related, activities [][]byte
}

func newFactsJSON(f llm.Facts) (factsJSON, error) {
	var fj factsJSON
	var err error
	if fj.subject, err = render(f.Subject); err != nil {
		return fj, err
	}
	if len(f.Org) > 0 {
		if fj.org, err = render(f.Org); err != nil {
			return fj, err
		}
	}
	if fj.today, err = render(f.Today); err != nil {
		return fj, err
	}
	fj.related = make([][]byte, len(f.Related))
	for i, r := range f.Related {
		if fj.related[i], err = render(r); err != nil {
			return fj, err
		}
	}
	for _, a := range f.Activities {
		b, err := render(a)
		if err != nil {
			return fj, err
		}
		fj.activities = append(fj.activities, b)
	}
	return fj, nil
}

const (
	jsSubject    = `{"subject":`
	jsRelated    = `,"related":`
	jsActivities = `,"activities":`
	jsOrg        = `,"org":`
	jsToday      = `,"today":`
)

// listSize is the bytes of a JSON array of the items.
func listSize(items [][]byte) int {
	n := 2 + max(0, len(items)-1)
	for _, b := range items {
		n += len(b)
	}
	return n
}

func (fj factsJSON) relatedSize() int { return listSize(fj.related) }

func (fj factsJSON) size() int {
	n := len(jsSubject) + len(fj.subject) + len(jsRelated) + listSize(fj.related) +
		len(jsActivities) + listSize(fj.activities) + len(jsToday) + len(fj.today) + 1
	if fj.org != nil {
		n += len(jsOrg) + len(fj.org)
	}
	return n
}

// appendTo returns prefix followed by the facts' JSON.
func (fj factsJSON) appendTo(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + fj.size())
	b.WriteString(prefix)
	list := func(items [][]byte) {
		b.WriteByte('[')
		for i, x := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(x)
		}
		b.WriteByte(']')
	}
	b.WriteString(jsSubject)
	b.Write(fj.subject)
	b.WriteString(jsRelated)
	list(fj.related)
	b.WriteString(jsActivities)
	list(fj.activities)
	if fj.org != nil {
		b.WriteString(jsOrg)
		b.Write(fj.org)
	}
	b.WriteString(jsToday)
	b.Write(fj.today)
	b.WriteByte('}')
	return b.String()
}

// pruneFigures drops per-record figures of records left out of the prompt.
func pruneFigures(figs map[string]any, related []llm.Record) {
	in := make(map[string]bool, len(related))
	for _, r := range related {
		in[r.Ref] = true
	}
	if l, ok := figs[crm.FigStalledDeals].([]any); ok {
		figs[crm.FigStalledDeals] = slices.DeleteFunc(l, func(r any) bool { return !in[text(r)] })
	}
	for _, key := range []string{crm.FigKPIPercent, crm.FigContactActivity} {
		if m, ok := figs[key].(map[string]any); ok {
			for ref := range m {
				if !in[ref] {
					delete(m, ref)
				}
			}
		}
	}
}
