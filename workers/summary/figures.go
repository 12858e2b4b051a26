package summary

import (
	"time"

	"github.com/crmq/crmq/store"
)

// Figures are the numbers a summary states that no single record holds:
// counts, sums, shares and windows. They are computed here, from the whole
// graph (every activity it loaded, not only those the budget lets into the
// prompt), and rendered into the facts as org.figures, so a model copies
// them instead of doing arithmetic and the offline provider never invents
// a number. The names below are the prompt's vocabulary; llm/offline reads
// the same names.
const (
	figActivitiesTotal    = "activities_total"
	figLastActivity       = "last_activity_date"
	figWindowDays         = "activity_window_days"
	figInWindow           = "activities_in_window"
	figInPreviousWindow   = "activities_in_previous_window"
	figTrend              = "activity_trend"
	figEngagement         = "engagement_level"
	figWonRevenue         = "won_revenue"
	figOrgWonRevenue      = "org_won_revenue"
	figWonShare           = "won_revenue_share_percent"
	figWonDeals           = "won_deals"
	figPurchases          = "purchases_by_product_family"
	figKPIsByStatus       = "kpis_by_status"
	figKPIPercent         = "kpi_progress_percent"
	figOpenCases          = "open_cases"
	figEscalatedCases     = "escalated_cases"
	figActiveProjects     = "active_projects"
	figRedProjects        = "red_projects"
	figOpenDeals          = "open_deals"
	figOpenDealValue      = "open_deal_value"
	figOpenExpansion      = "open_expansion_deals"
	figOpenTasks          = "open_playbook_tasks"
	figOverdueTasks       = "overdue_playbook_tasks"
	figSignalsTotal       = "signals_total"
	figSignalsByChannel   = "signals_by_channel"
	figSignalsByPart      = "signals_by_part_of_day"
	figSignalsByWeekday   = "signals_by_weekday"
	figPreferredChannel   = "preferred_channel"
	figPreferredPart      = "preferred_part_of_day"
	figPreferredWeekday   = "preferred_weekday"
	figSourcePercent      = "source_conversion_percent"
	figSourceLeads        = "source_leads"
	figSourceConverted    = "source_converted"
	figDaysInStage        = "days_in_stage"
	figDaysToClose        = "days_to_close"
	figPipelineValue      = "open_pipeline_value"
	figPipelineShare      = "deal_share_of_pipeline_percent"
	figEngagementScore    = "engagement_30d"
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
)

func figures(g store.SummaryGraph, module string, today time.Time) map[string]any {
	f := map[string]any{}
	activityFigures(f, g, today)
	switch module {
	case "accounts":
		accountFigures(f, g, today)
	case "contacts":
		signalFigures(f, g)
		f[figOpenDeals] = countOpenDeals(g.Related)
	case "leads":
		leadFigures(f, g.Org)
	case "deals":
		dealFigures(f, g, today)
	}
	return f
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
func activityFigures(f map[string]any, g store.SummaryGraph, today time.Time) {
	total := max(g.ActivityTotal, len(g.Activities))
	f[figActivitiesTotal] = total
	if len(g.Activities) == 0 {
		if total == 0 {
			f[figEngagement] = "none"
		}
		return
	}
	newest, oldest := occurred(g.Activities[0]), occurred(g.Activities[0])
	for _, a := range g.Activities {
		t := occurred(a)
		if t.After(newest) {
			newest = t
		}
		if t.Before(oldest) {
			oldest = t
		}
	}
	f[figLastActivity] = newest.Format(time.DateOnly)
	window := activityWindowDays * 24 * time.Hour
	from, prevFrom := today.Add(-window), today.Add(-2*window)
	if total > len(g.Activities) && !oldest.Before(prevFrom) {
		return
	}
	var in, prev int
	for _, a := range g.Activities {
		switch t := occurred(a); {
		case t.After(today):
		case t.After(from):
			in++
		case t.After(prevFrom):
			prev++
		}
	}
	f[figWindowDays] = activityWindowDays
	f[figInWindow] = in
	f[figInPreviousWindow] = prev
	switch {
	case in > prev:
		f[figTrend] = "rising"
	case in < prev:
		f[figTrend] = "falling"
	default:
		f[figTrend] = "steady"
	}
	switch {
	case in >= engagementHighAtLeast:
		f[figEngagement] = "high"
	case in >= engagementMedAtLeast:
		f[figEngagement] = "medium"
	case in > 0:
		f[figEngagement] = "low"
	default:
		f[figEngagement] = "none"
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
		if !dealClosed(d.Fields["stage"]) {
			n++
		}
	}
	return n
}
