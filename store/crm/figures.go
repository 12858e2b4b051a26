package crm

// Figures are the numbers a summary states that no single record holds.
// workers/summary computes them into the facts (org.figures) under these
// names; llm/offline reads them back by the same names, and a model reads
// them from the prompt.
const (
	Figures = "figures" // the key of the facts' org object that holds them

	FigActivitiesTotal  = "activities_total"
	FigLastActivity     = "last_activity_date"
	FigWindowDays       = "activity_window_days"
	FigInWindow         = "activities_in_window"
	FigInPreviousWindow = "activities_in_previous_window"
	FigTrend            = "activity_trend" // TrendRising, TrendFalling or TrendSteady
	FigEngagement       = "engagement_level"
	FigWonRevenue       = "won_revenue"
	FigOrgWonRevenue    = "org_won_revenue"
	FigWonShare         = "won_revenue_share_percent"
	FigWonDeals         = "won_deals"
	FigPurchases        = "purchases_by_product_family"
	FigKPIsByStatus     = "kpis_by_status"
	FigKPIPercent       = "kpi_progress_percent"
	FigOpenCases        = "open_cases"
	FigEscalatedCases   = "escalated_cases"
	FigActiveProjects   = "active_projects"
	FigRedProjects      = "red_projects"
	FigOpenDeals        = "open_deals"
	FigOpenDealValue    = "open_deal_value"
	FigOpenExpansion    = "open_expansion_deals"
	FigOpenTasks        = "open_playbook_tasks"
	FigOverdueTasks     = "overdue_playbook_tasks"
	FigSignalsTotal     = "signals_total"
	FigSignalsByChannel = "signals_by_channel"
	FigSignalsByPart    = "signals_by_part_of_day"
	FigSignalsByWeekday = "signals_by_weekday"
	FigPreferredChannel = "preferred_channel"
	FigPreferredPart    = "preferred_part_of_day"
	FigPreferredWeekday = "preferred_weekday"
	FigSourcePercent    = "source_conversion_percent"
	FigSourceLeads      = "source_leads"
	FigSourceConverted  = "source_converted"
	FigDaysInStage      = "days_in_stage"
	FigDaysToClose      = "days_to_close"
	FigPipelineValue    = "open_pipeline_value"
	FigPipelineShare    = "deal_share_of_pipeline_percent"
	FigEngagementScore  = "engagement_30d"
	// Per contact ref: {"activities": n, "latest": "YYYY-MM-DD"}, over every
	// activity of the graph (the store counts them in SQL).
	FigContactActivity   = "activities_by_contact"
	FigOverdueObjectives = "overdue_objectives"
	FigPastCloseDeals    = "open_deals_past_close_date"
	FigSignalsTie        = "signals_channel_tie" // the channels sharing the top count, when no one leads

	FigCurrency = "currency"  // ISO 4217 code of every amount
	FigTimeZone = "time_zone" // IANA zone of the signal timings

	// What needs attention.
	FigUnanswered       = "unanswered_signals"       // customer signals with no later follow-up
	FigOldestUnanswered = "oldest_unanswered_signal" // {"ref", "date", "waiting_days"}
	FigDaysSinceTouch   = "days_since_last_touch"    // days since the newest activity
	FigStatusSince      = "current_status"           // {"field", "value", "since", "days"}: the tracked picklist's current value
	FigSingleThreaded   = "single_threaded"          // "one contact" or "no executive" on open pipeline
	FigExecContacts     = "executive_contacts"       // contacts with a Director title or above
	FigContacts         = "contacts_total"           // contacts of the account
	FigStalledDeals     = "stalled_open_deals"       // open deals with no activity in the window
	FigStalled          = "stalled"                  // a deal: no activity in the window and long in its stage
	FigHealth           = "health"                   // HealthAtRisk, HealthWatch or HealthHealthy
	FigHealthReasons    = "health_reasons"           // figure keys behind the verdict, weightiest first
)

// Values of FigHealth.
const (
	HealthAtRisk  = "at risk"
	HealthWatch   = "watch"
	HealthHealthy = "healthy"
)

// Trend is the activity trend of in activities in the last window against
// prev in the window before: "" (too few to tell) below MinTrendSample
// activities in both; steady when the change is under SteadyPercent of
// the earlier window; else rising or falling.
func Trend(in, prev int) string {
	if in+prev < MinTrendSample {
		return ""
	}
	diff := in - prev
	if abs(diff)*100 < SteadyPercent*max(prev, 1) {
		return TrendSteady
	}
	if diff > 0 {
		return TrendRising
	}
	return TrendFalling
}

// Thresholds of Trend and of a preferred channel or time.
const (
	MinTrendSample      = 8
	SteadyPercent       = 15
	MinPreferenceSample = 5 // signals before a channel or time is called preferred
)

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Values of FigTrend.
const (
	TrendRising  = "rising"
	TrendFalling = "falling"
	TrendSteady  = "steady"
)
