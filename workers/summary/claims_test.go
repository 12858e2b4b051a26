package summary_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// A claim is a phrase of the offline provider that states a fact: a figure
// (org.figures) or a field of a record the bullet cites. Each number and
// each judgement word ("rising", "likely a decision-maker") the phrase
// holds is checked against the fact it names. A number no claim covers
// must be the value of a field of a record the bullet cites (see
// citedNumbers); being somewhere in the facts is not enough.
type claim struct {
	re    *regexp.Regexp
	check func(c *claimCtx, m []string) []string // problems, empty when the phrase holds
}

// claimCtx is what a bullet may rest on.
type claimCtx struct {
	figs    map[string]any
	subject llm.Record
	cited   []llm.Record
}

// fig is a figure as the offline provider prints it, "" when absent.
func (c *claimCtx) fig(key string) string { return factText(c.figs[key]) }

func factText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// is checks that the numbered groups of m state the figures named.
func is(keys ...string) func(*claimCtx, []string) []string {
	return func(c *claimCtx, m []string) []string {
		var bad []string
		for i, k := range keys {
			if got, want := m[i+1], c.fig(k); got != want {
				bad = append(bad, fmt.Sprintf("says %s %q, the figure is %q", k, got, want))
			}
		}
		return bad
	}
}

// nested checks that got states the fields of the map figure key.
func nested(c *claimCtx, key string, got []string, fields ...string) []string {
	m, _ := c.figs[key].(map[string]any)
	var bad []string
	for i, f := range fields {
		if want := factText(m[f]); got[i] != want {
			bad = append(bad, fmt.Sprintf("says %s.%s %q, the figure is %q", key, f, got[i], want))
		}
	}
	return bad
}

// pairs checks "a 3, b 2" against the map figure key.
func pairs(key, list string, c *claimCtx) []string {
	m, _ := c.figs[key].(map[string]any)
	var bad []string
	for _, p := range strings.Split(list, ", ") {
		i := strings.LastIndexByte(p, ' ')
		if i < 0 {
			bad = append(bad, fmt.Sprintf("%s: %q is not a name and a count", key, p))
			continue
		}
		if want := factText(m[p[:i]]); p[i+1:] != want {
			bad = append(bad, fmt.Sprintf("says %s[%s] = %s, the figure is %q", key, p[:i], p[i+1:], want))
		}
	}
	return bad
}

// trendOf and levelOf are the rules the words summarise (figures.go):
// the last 30 days against the 30 before, and 15 / 5 / 1 activities in
// the window for high / medium / low.
func trendOf(in, prev int) string {
	switch d := in - prev; {
	case in+prev < 8:
		return "too few to call a trend"
	case d*100 < 15*max(prev, 1) && -d*100 < 15*max(prev, 1):
		return crm.TrendSteady
	case d > 0:
		return crm.TrendRising
	}
	return crm.TrendFalling
}

func levelOf(in int) string {
	switch {
	case in >= 15:
		return "high"
	case in >= 5:
		return "medium"
	case in > 0:
		return "low"
	}
	return "none"
}

// trendFollows: the trend word follows from the window counts the facts hold.
func trendFollows(c *claimCtx, word string) []string {
	in, err1 := strconv.Atoi(c.fig(crm.FigInWindow))
	prev, err2 := strconv.Atoi(c.fig(crm.FigInPreviousWindow))
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprintf("says %q without window counts", word)}
	}
	if want := trendOf(in, prev); word != want {
		return []string{fmt.Sprintf("says %q of %d against %d activities, which is %q", word, in, prev, want)}
	}
	return nil
}

// levelFollows: the engagement level follows from the activities in the
// window, or is "none" for a record without any activity.
func levelFollows(c *claimCtx, word string) []string {
	if in, err := strconv.Atoi(c.fig(crm.FigInWindow)); err == nil {
		if want := levelOf(in); word != want {
			return []string{fmt.Sprintf("says engagement %q of %d activities in the window, which is %q", word, in, want)}
		}
		return nil
	}
	if word != "none" || c.fig(crm.FigActivitiesTotal) != "0" {
		return []string{fmt.Sprintf("says engagement %q without window counts (activities: %s)", word, c.fig(crm.FigActivitiesTotal))}
	}
	return nil
}

// Title ranks of every title the fixtures use, as a reader judges them;
// a title missing here fails the check, so the table stays complete.
var titleRanks = map[string]string{
	"VP Operations": "senior", "VP Sales": "senior", "Chief Executive Officer": "senior",
	"Head of Finance": "senior", "Director of IT": "senior",
	"IT Manager": "management", "Account Manager": "management", "Office Manager": "management",
	"Analyst": "other", "Engineer": "other",
}

func titleClaim(rank string) func(*claimCtx, []string) []string {
	return func(c *claimCtx, m []string) []string {
		var bad []string
		if got := titleRanks[m[1]]; got != rank {
			bad = append(bad, fmt.Sprintf("calls title %q %s, it is %q", m[1], rank, got))
		}
		if t := factText(c.subject.Fields["title"]); t != m[1] {
			bad = append(bad, fmt.Sprintf("names title %q, the contact's is %q", m[1], t))
		}
		return bad
	}
}

func subjectField(key string) func(*claimCtx, []string) []string {
	return func(c *claimCtx, m []string) []string {
		want := factText(c.subject.Fields[key])
		if key == "close_date" && len(want) > 10 {
			want = want[:10]
		}
		if m[1] != want {
			return []string{fmt.Sprintf("says %s %q, the record has %q", key, m[1], want)}
		}
		return nil
	}
}

const num = `(\d+(?:\.\d+)?)`

var claims = []claim{
	{regexp.MustCompile(`Open cases: (\d+), escalated: (\d+)`), is(crm.FigOpenCases, crm.FigEscalatedCases)},
	{regexp.MustCompile(`Active projects: (\d+), red: (\d+)`), is(crm.FigActiveProjects, crm.FigRedProjects)},
	{regexp.MustCompile(`[Oo]pen opportunities: (\d+)`), is(crm.FigOpenDeals)},
	{regexp.MustCompile(`opportunities: \d+ worth ` + num), is(crm.FigOpenDealValue)},
	{regexp.MustCompile(`open expansion opportunities: (\d+)`), is(crm.FigOpenExpansion)},
	{regexp.MustCompile(`[Ww]on revenue:? ` + num), is(crm.FigWonRevenue)},
	{regexp.MustCompile(num + `% of the organisation's won revenue`), is(crm.FigWonShare)},
	{regexp.MustCompile(`organisation's won revenue \(` + num + `\)`), is(crm.FigOrgWonRevenue)},
	{regexp.MustCompile(`won deals: (\d+)`), is(crm.FigWonDeals)},
	{regexp.MustCompile(`Activities: (\d+) in total`), is(crm.FigActivitiesTotal)},
	{regexp.MustCompile(`latest on (\d{4}-\d{2}-\d{2})`), is(crm.FigLastActivity)},
	{regexp.MustCompile(`(\d+) activities in the last (\d+) days against (\d+) in the (\d+) days before \(([\w ]+)\)`),
		func(c *claimCtx, m []string) []string {
			bad := is(crm.FigInWindow, crm.FigWindowDays, crm.FigInPreviousWindow, crm.FigWindowDays)(c, m)
			if m[5] != "too few to call a trend" {
				bad = append(bad, is(crm.FigTrend)(c, m[4:])...)
			} else if c.fig(crm.FigTrend) != "" {
				bad = append(bad, "says too few to call a trend where the figure is "+c.fig(crm.FigTrend))
			}
			return append(bad, trendFollows(c, m[5])...)
		}},
	{regexp.MustCompile(`(\d+) activities in the last (\d+) days`), is(crm.FigInWindow, crm.FigWindowDays)},
	{regexp.MustCompile(`[Ee]ngagement level: (\w+)`), func(c *claimCtx, m []string) []string {
		return append(is(crm.FigEngagement)(c, m), levelFollows(c, m[1])...)
	}},
	{regexp.MustCompile(`Engagement: (\w+), (\w+)`), func(c *claimCtx, m []string) []string {
		return append(append(is(crm.FigEngagement, crm.FigTrend)(c, m), levelFollows(c, m[1])...), trendFollows(c, m[2])...)
	}},
	{regexp.MustCompile(`Objective KPIs(?: by status)?: ([^.;]*)`), func(c *claimCtx, m []string) []string {
		return pairs(crm.FigKPIsByStatus, m[1], c)
	}},
	{regexp.MustCompile(`KPIs ((?:Off Track|Blocked) \d+|(?:Off Track|Blocked): \d+)`), func(c *claimCtx, m []string) []string {
		return pairs(crm.FigKPIsByStatus, strings.Replace(m[1], ": ", " ", 1), c)
	}},
	{regexp.MustCompile(`escalated cases: (\d+)`), is(crm.FigEscalatedCases)},
	{regexp.MustCompile(`red projects: (\d+)`), is(crm.FigRedProjects)},
	{regexp.MustCompile(`(\w[\w ]*): ` + num + ` \(line items: (\d+)\)`), func(c *claimCtx, m []string) []string {
		p, _ := c.figs[crm.FigPurchases].(map[string]any)
		fam, _ := p[m[1]].(map[string]any)
		if got, want := m[2]+"/"+m[3], factText(fam["amount"])+"/"+factText(fam["line_items"]); got != want {
			return []string{fmt.Sprintf("says purchases of %s %s, the figure is %s", m[1], got, want)}
		}
		return nil
	}},
	// A KPI: actual/target (percent of target), status; the KPI is the
	// cited one whose name the text gives just before.
	{regexp.MustCompile(num + `/` + num + ` (?:\S+ )?\(` + num + `% of target\), (On Track|Completed|Off Track|Blocked|Not Started)`), nil},
	{regexp.MustCompile(`Stage: ([^,]+), probability (\d+)%`), func(c *claimCtx, m []string) []string {
		return append(subjectField("stage")(c, m), subjectField("probability")(c, m[1:])...)
	}},
	{regexp.MustCompile(`probability \d+%; value: ` + num), subjectField("amount")},
	{regexp.MustCompile(`days in this stage: (\d+)`), is(crm.FigDaysInStage)},
	{regexp.MustCompile(`close date:? (\d{4}-\d{2}-\d{2})`), subjectField("close_date")},
	{regexp.MustCompile(`days to close: (-?\d+)`), is(crm.FigDaysToClose)},
	{regexp.MustCompile(`has passed while the deal is open`), func(c *claimCtx, m []string) []string {
		d, err := strconv.Atoi(c.fig(crm.FigDaysToClose))
		if stage := factText(c.subject.Fields["stage"]); err != nil || d >= 0 || crm.Stage(stage).Closed() {
			return []string{fmt.Sprintf("says the close date passed on an open deal: days to close %q, stage %q", c.fig(crm.FigDaysToClose), stage)}
		}
		return nil
	}},
	{regexp.MustCompile(`Cumulative open pipeline value: ` + num), is(crm.FigPipelineValue)},
	{regexp.MustCompile(`this deal is ` + num + `% of it`), is(crm.FigPipelineShare)},
	{regexp.MustCompile(`Engagement score: (\d+)`), is(crm.FigEngagementScore)},
	{regexp.MustCompile(`Preferred channel: (\w+)`), is(crm.FigPreferredChannel)},
	// What needs attention (attention.go).
	{regexp.MustCompile(`Unanswered: (\d+) customer signals? with no follow-up; the oldest, on (\d{4}-\d{2}-\d{2}), has waited (\d+) days`),
		func(c *claimCtx, m []string) []string {
			return append(is(crm.FigUnanswered)(c, m), nested(c, crm.FigOldestUnanswered, m[2:], "date", "waiting_days")...)
		}},
	{regexp.MustCompile(`A customer signal from (\d{4}-\d{2}-\d{2}) has waited (\d+) days`), func(c *claimCtx, m []string) []string {
		return nested(c, crm.FigOldestUnanswered, m[1:], "date", "waiting_days")
	}},
	{regexp.MustCompile(`Last touch: (\d+) days ago \(on (\d{4}-\d{2}-\d{2})\)`), is(crm.FigDaysSinceTouch, crm.FigLastActivity)},
	{regexp.MustCompile(`[Ll]ast touch(?: was)? (\d+) days ago`), is(crm.FigDaysSinceTouch)},
	{regexp.MustCompile(`since (\d{4}-\d{2}-\d{2}): (\d+) days in this (status|stage|lifecycle stage)`), func(c *claimCtx, m []string) []string {
		field := map[string]string{"status": "lead_status", "stage": "stage", "lifecycle stage": "lifecycle_stage"}[m[3]]
		return nested(c, crm.FigStatusSince, []string{m[1], m[2], field}, "since", "days", "field")
	}},
	{regexp.MustCompile(`open pipeline of ` + num + ` rests on (one contact|no contact|no executive)(?: among (\d+) contacts)?`),
		func(c *claimCtx, m []string) []string {
			bad := is(crm.FigOpenDealValue, crm.FigSingleThreaded)(c, m)
			if m[3] != "" {
				bad = append(bad, is(crm.FigContacts)(c, m[2:])...)
			}
			return bad
		}},
	{regexp.MustCompile(`Stalled: (\d+) open deals? with no activity in the last (\d+) days`), func(c *claimCtx, m []string) []string {
		l, _ := c.figs[crm.FigStalledDeals].([]any)
		bad := is(crm.FigWindowDays)(c, m[1:])
		if m[1] != strconv.Itoa(len(l)) {
			bad = append(bad, fmt.Sprintf("says %s stalled deals, the figure lists %d", m[1], len(l)))
		}
		return bad
	}},
	{regexp.MustCompile(`Stalled: no activity in the last (\d+) days`), func(c *claimCtx, m []string) []string {
		bad := is(crm.FigWindowDays)(c, m)
		if c.figs[crm.FigStalled] != true {
			bad = append(bad, "calls a deal stalled that the figures do not")
		}
		return bad
	}},
	{regexp.MustCompile(`Open deals past their close date: (\d+)`), is(crm.FigPastCloseDeals)},
	{regexp.MustCompile(`Overdue objectives: (\d+)`), is(crm.FigOverdueObjectives)},
	{regexp.MustCompile(`Overdue playbook tasks: (\d+)`), is(crm.FigOverdueTasks)},
	{regexp.MustCompile(`Health: (at risk|watch|healthy)`), is(crm.FigHealth)},
	{regexp.MustCompile(`(\d+) activities, the newest dated (\d{4}-\d{2}-\d{2})`), func(c *claimCtx, m []string) []string {
		per, _ := c.figs[crm.FigContactActivity].(map[string]any)
		for _, r := range c.cited {
			e, _ := per[r.Ref].(map[string]any)
			if r.Module == "contacts" && factText(e["activities"]) == m[1] && factText(e["latest"]) == m[2] {
				return nil
			}
		}
		return []string{fmt.Sprintf("says a contact has %s activities, the newest on %s; no cited contact's figure says so", m[1], m[2])}
	}},
	{regexp.MustCompile(`signals by channel: ([^;]*);`), func(c *claimCtx, m []string) []string {
		return pairs(crm.FigSignalsByChannel, m[1], c)
	}},
	{regexp.MustCompile(`signals: (\d+)\)`), is(crm.FigSignalsTotal)},
	{regexp.MustCompile(`mostly in the (\w+) \(([^)]*), ([\w/+-]+)\)`), func(c *claimCtx, m []string) []string {
		return append(append(is(crm.FigPreferredPart)(c, m), pairs(crm.FigSignalsByPart, m[2], c)...), is(crm.FigTimeZone)(c, m[2:])...)
	}},
	{regexp.MustCompile(`most often on (\w+) \(([^)]*)\)`), func(c *claimCtx, m []string) []string {
		return append(is(crm.FigPreferredWeekday)(c, m), pairs(crm.FigSignalsByWeekday, m[2], c)...)
	}},
	{regexp.MustCompile(`leads convert at ` + num + `% in this organisation`), is(crm.FigSourcePercent)},
	{regexp.MustCompile(`in this organisation \((\d+) of (\d+)\)`), is(crm.FigSourceConverted, crm.FigSourceLeads)},
	{regexp.MustCompile(`Conversion probability: ` + num + `%`), is(crm.FigSourcePercent)},
	{regexp.MustCompile(`Title ([^:]+): a senior title, likely a decision-maker`), titleClaim("senior")},
	{regexp.MustCompile(`Title ([^:]+): a management title, likely an influencer`), titleClaim("management")},
	{regexp.MustCompile(`Title ([^:]+): neither a senior nor a management title`), titleClaim("other")},
}

var kpiClaim = claims[slices.IndexFunc(claims, func(c claim) bool { return c.check == nil })].re

// checkKPI: a cited KPI of the name given just before the match has the
// actual, target, progress figure and status the match states (several
// KPIs may share a name).
func (c *claimCtx) checkKPI(text string, m []string, at int) []string {
	before := strings.TrimSuffix(strings.TrimRight(text[:at], " "), ":")
	pct, _ := c.figs[crm.FigKPIPercent].(map[string]any)
	got := strings.Join(m[1:], " | ")
	var held []string
	for _, k := range c.cited {
		if k.Module != "kpis" || !strings.HasSuffix(before, factText(k.Fields["name"])) {
			continue
		}
		want := strings.Join([]string{factText(k.Fields["actual"]), factText(k.Fields["target"]), factText(pct[k.Ref]), factText(k.Fields["status"])}, " | ")
		if got == want {
			return nil
		}
		held = append(held, k.Ref+": "+want)
	}
	return []string{fmt.Sprintf("says of a KPI %s; the cited KPIs of that name hold %v", got, held)}
}

// checkClaims checks every claim of text and returns the problems and the
// spans the claims covered.
func (c *claimCtx) checkClaims(text string) (bad []string, covered [][2]int) {
	for _, cl := range claims {
		for _, ix := range cl.re.FindAllStringSubmatchIndex(text, -1) {
			m := make([]string, len(ix)/2)
			for i := range m {
				if ix[2*i] >= 0 {
					m[i] = text[ix[2*i]:ix[2*i+1]]
				}
			}
			if cl.re == kpiClaim {
				bad = append(bad, c.checkKPI(text, m, ix[0])...)
			} else {
				bad = append(bad, cl.check(c, m)...)
			}
			covered = append(covered, [2]int{ix[0], ix[1]})
		}
	}
	return bad, covered
}

// citedNumbers are the numbers of the field values of the records a bullet
// cites, ids and lookups (external ids) left out: "acc-1" states no 1.
func citedNumbers(cited []llm.Record, ids map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, r := range cited {
		for k, v := range r.Fields {
			s := factText(v)
			if k == "id" || ids[s] {
				continue
			}
			if b, err := json.Marshal(v); err == nil && !strings.HasPrefix(string(b), "\"") {
				s = string(b) // maps and lists: their JSON
			}
			for _, n := range numberRE.FindAllString(s, -1) {
				out[n] = true
			}
		}
	}
	return out
}
