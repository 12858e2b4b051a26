package summary

import (
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// Figures are the numbers a summary states that no single record holds:
// counts, sums, shares and windows. They are computed here, from the whole
// graph (every activity it loaded, not only those the budget lets into the
// prompt), and rendered into the facts as org.figures, so a model copies
// them instead of doing arithmetic and the offline provider never invents
// a number. Their names (crm.Fig*) are the prompt's vocabulary; llm/offline
// reads the same names.
const (
	activityWindowDays    = 30
	engagementHighAtLeast = 15 // activities in the window for "high"
	engagementMedAtLeast  = 5  // ... for "medium"; 1 to 4 is "low", 0 "none"
)

// Org keys the store fills (store.SummaryGraph.Org).
const (
	orgAccountWon      = "account_won_revenue"
	orgWon             = "org_won_revenue"
	orgSourceRate      = "lead_source_conversion_rate" // a fraction, 0.25 for 25 % (above 1: already a percent)
	orgSourceLeads     = "lead_source_leads"
	orgSourceConverted = "lead_source_converted"
	orgPipelineValue   = "open_pipeline_value"
	orgEngagementScore = "engagement_30d"
	orgContactActivity = "activities_by_contact" // per contact ref: activities, latest date
)

func figures(g store.SummaryGraph, module string, today time.Time, ix activityIndex) map[string]any {
	f := map[string]any{}
	loc := locale(g)
	f[crm.FigCurrency], f[crm.FigTimeZone] = loc.Currency, loc.TimeZone
	activityFigures(f, g, today, ix)
	switch module {
	case "accounts":
		accountFigures(f, g, today, ix)
	case "contacts":
		signalFigures(f, g, loc.TimeZone, ix)
		f[crm.FigOpenDeals] = countOpenDeals(g.Related)
	case "leads":
		leadFigures(f, g.Org)
	case "deals":
		dealFigures(f, g, today)
	}
	attentionFigures(f, g, module, today, ix)
	return f
}

// activityIndex holds what the figures read of each activity of the graph
// (same order as g.Activities), read once: its time and its direction.
type activityIndex struct {
	at  []time.Time
	dir []string // lower-cased
}

func indexActivities(acts []store.GraphRecord) activityIndex {
	ix := activityIndex{at: make([]time.Time, len(acts)), dir: make([]string, len(acts))}
	for i, a := range acts {
		ix.at[i] = occurred(a)
		ix.dir[i] = lower(a.Fields["direction"])
	}
	return ix
}

// locale is the graph's, the default for any part it leaves empty.
func locale(g store.SummaryGraph) store.SummaryLocale {
	l := g.Locale
	if l.Currency == "" {
		l.Currency = store.DefaultSummaryLocale.Currency
	}
	if l.TimeZone == "" {
		l.TimeZone = store.DefaultSummaryLocale.TimeZone
	}
	return l
}

func occurred(r store.GraphRecord) time.Time {
	if t, ok := when(r.Fields["occurred_at"]); ok {
		return t
	}
	return r.UpdatedAt.UTC()
}

// activityFigures: the total, the latest date and, when the graph holds
// every activity of the last two windows, the counts in each, the trend
// and the engagement level. With older activities cut by the cap and the
// window not covered, no count is given rather than a low one.
func activityFigures(f map[string]any, g store.SummaryGraph, today time.Time, ix activityIndex) {
	total := max(g.ActivityTotal, len(g.Activities))
	f[crm.FigActivitiesTotal] = total
	if len(g.Activities) == 0 {
		if total == 0 {
			f[crm.FigEngagement] = "none"
		}
		return
	}
	newest, oldest := ix.at[0], ix.at[0]
	for _, t := range ix.at {
		if t.After(newest) {
			newest = t
		}
		if t.Before(oldest) {
			oldest = t
		}
	}
	f[crm.FigLastActivity] = newest.Format(time.DateOnly)
	window := activityWindowDays * 24 * time.Hour
	from, prevFrom := today.Add(-window), today.Add(-2*window)
	if total > len(g.Activities) && !oldest.Before(prevFrom) {
		return
	}
	var in, prev int
	for _, t := range ix.at {
		switch {
		case t.After(today):
		case t.After(from):
			in++
		case t.After(prevFrom):
			prev++
		}
	}
	f[crm.FigWindowDays] = activityWindowDays
	f[crm.FigInWindow] = in
	f[crm.FigInPreviousWindow] = prev
	if t := crm.Trend(in, prev); t != "" {
		f[crm.FigTrend] = t
	}
	switch {
	case in >= engagementHighAtLeast:
		f[crm.FigEngagement] = "high"
	case in >= engagementMedAtLeast:
		f[crm.FigEngagement] = "medium"
	case in > 0:
		f[crm.FigEngagement] = "low"
	default:
		f[crm.FigEngagement] = "none"
	}
}

func byModule(rs []store.GraphRecord, module string) []store.GraphRecord {
	var out []store.GraphRecord
	for _, r := range rs {
		if r.Module == module {
			out = append(out, r)
		}
	}
	return out
}

func countOpenDeals(related []store.GraphRecord) int {
	n := 0
	for _, d := range byModule(related, "deals") {
		if !stage(d).Closed() {
			n++
		}
	}
	return n
}
