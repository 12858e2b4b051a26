package offline

import (
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/crm"
)

// Every section is defined once, here: its module, key, title, the
// instruction a model follows, the figures it reads (org.figures, named by
// their crm constants), the sections that feed it, and the composer that
// writes it without a model. workers/summary's catalog is this table, so
// the prompt's instruction and the offline composer are one edit and
// cannot drift; a test checks that each composer reads only the figures
// its definition names.

// Definition is one section of one module.
type Definition struct {
	// Module is the module the section belongs to; "" for every module
	// without sections of its own (custom modules among them).
	Module string
	llm.SectionSpec
	// Reads are the figures (org.figures) the section states; the prompt's
	// instruction names them.
	Reads   []string
	compose func(v *view, feeds map[string]bool) []llm.Bullet
}

// citeRule closes every instruction: the contract between the prompt and
// workers/summary's Validate.
const citeRule = " Every bullet cites in sources the refs of the records it rests on."

// attentionFirst opens the Overview of contacts, leads and deals: what
// needs attention, from org.figures.
const attentionFirst = "First what needs attention (org.figures): unanswered customer signals and how long the " +
	"oldest has waited, the days in the current status or stage (current_status) with the days since the last " +
	"touch, a stalled deal; nothing of this for a closed deal or a converted lead. "

// Feeds of the derived account sections. Executive Summary is "account
// health, main challenges, relational health and performance trends"
// (seed 001), so it reads the sections that say exactly that. Strategic
// Next Steps is the plan for the coming months: what is at risk, where to
// grow, which KPIs to carry to target and what is already due.
var (
	executiveFeeds = []string{llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth,
		llm.RisksAndBlockers, llm.StrategicValue}
	nextStepFeeds = []string{llm.RisksAndBlockers, llm.ExpansionOpportunities, llm.KPIProgress,
		llm.ImmediateActions}
)

func plain(f func(*view) []llm.Bullet) func(*view, map[string]bool) []llm.Bullet {
	return func(v *view, _ map[string]bool) []llm.Bullet { return f(v) }
}

// definitions in display order within each module: accounts have the ten
// Certinia sections (seed 001), Account Highlights also carrying seed
// 000's account items; contacts, leads and deals have seed 000's
// sections; every other module a general overview.
var definitions = []Definition{
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.AccountHighlights, Title: "Account Highlights", UsesActivities: true, Instruction: "Essential account " +
		"details: industry, employees and location; annual revenue; product family; won revenue and its share of " +
		"the organisation's won revenue (org.figures); purchase history by product family; overall objective KPI " +
		"progress by status; open and escalated cases; active and red projects; open opportunities and open " +
		"expansion opportunities; the activity trend and engagement level (org.figures)."},
		Reads:   []string{crm.FigCurrency, crm.FigWonRevenue, crm.FigOrgWonRevenue, crm.FigWonShare, crm.FigWonDeals, crm.FigPurchases, crm.FigKPIsByStatus, crm.FigOpenCases, crm.FigEscalatedCases, crm.FigActiveProjects, crm.FigRedProjects, crm.FigOpenDeals, crm.FigOpenDealValue, crm.FigOpenExpansion, crm.FigActivitiesTotal, crm.FigLastActivity, crm.FigWindowDays, crm.FigInWindow, crm.FigInPreviousWindow, crm.FigTrend, crm.FigEngagement},
		compose: plain((*view).accountHighlights)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.KeyStakeholders, Title: "Key Stakeholders", UsesActivities: true, Instruction: "The customer " +
		"contacts with their titles who need to be involved in follow-up discussions, with the date and kind of " +
		"each one's latest activity, and the internal owners (account, deal, playbook task and project owners)."},
		Reads:   []string{crm.FigContactActivity},
		compose: plain((*view).keyStakeholders)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.ExecutiveSummary, Title: "Executive Summary", UsesActivities: true, Feeds: executiveFeeds,
		Instruction: "Open with the health verdict (org.figures.health: healthy, watch or at risk) and the reasons " +
			"behind it (org.figures.health_reasons, weightiest first) in 3 or 4 sentences of prose; then a short " +
			"overview of main challenges, relational health and performance trends, built only from what the " +
			"sections listed in feeds say."},
		Reads:   []string{crm.FigHealth, crm.FigHealthReasons, crm.FigCurrency, crm.FigWonRevenue, crm.FigWonShare, crm.FigOpenDeals, crm.FigKPIsByStatus, crm.FigKPIPercent, crm.FigEscalatedCases, crm.FigRedProjects, crm.FigOldestUnanswered, crm.FigDaysSinceTouch, crm.FigSingleThreaded, crm.FigOpenDealValue, crm.FigPastCloseDeals, crm.FigOverdueObjectives, crm.FigOverdueTasks, crm.FigStalledDeals, crm.FigActivitiesTotal, crm.FigLastActivity, crm.FigWindowDays, crm.FigInWindow, crm.FigInPreviousWindow, crm.FigTrend, crm.FigEngagement},
		compose: (*view).executiveSummary},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.KPIProgress, Title: "KPI Progress", Instruction: "Objective KPIs with status On Track or Completed " +
		"and real progress (actual and target above zero): name, actual/target with unit, percent of target " +
		"(org.figures.kpi_progress_percent) and comment. Leave out KPIs that are Off Track, Not Started or " +
		"Blocked."},
		Reads:   []string{crm.FigKPIPercent},
		compose: plain((*view).kpiProgress)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.RelationalHealth, Title: "Relational Health", UsesActivities: true, Instruction: "The strength of " +
		"the relationship: engagement level and trend (org.figures), executive engagement (senior contacts " +
		"active in activities) and positive sentiment in the notes of the customer's own signals (never a rep's " +
		"follow-up, a subject line alone, or a negated phrase), quoting the words used."},
		Reads:   []string{crm.FigActivitiesTotal, crm.FigLastActivity, crm.FigWindowDays, crm.FigInWindow, crm.FigInPreviousWindow, crm.FigTrend, crm.FigEngagement},
		compose: plain((*view).relationalHealth)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.RisksAndBlockers, Title: "Risks and Blockers", UsesActivities: true, Instruction: "Problems that " +
		"stop progress or threaten the relationship: escalated cases, KPIs Off Track or Blocked, red projects, " +
		"at-risk success plans, open business challenges, and risks quoted from activity notes and subjects, " +
		"case subjects and KPI comments (escalation, churn, blocked, unhappy, cancel, complaint, delay). Say so " +
		"when no note mentions a risk."},
		compose: plain((*view).risksAndBlockers)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.ExpansionOpportunities, Title: "Suggested Expansion Opportunities", UsesActivities: true,
		Instruction: "Areas for additional products or services, only from specific signals in activity notes " +
			"and subjects, case subjects and KPI comments (adding seats, more licenses, a new region, an " +
			"upgrade, interest in a product), quoting the note, plus open expansion deals. Say so when no note " +
			"holds such a signal."},
		Reads:   []string{crm.FigCurrency},
		compose: plain((*view).expansion)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.StrategicValue, Title: "Strategic Value Achievements", Instruction: "Successes realised by the " +
		"customer: KPIs On Track or Completed with real progress (never Off Track, Not Started or Blocked), " +
		"achieved objectives, completed success plans and projects, won deals, with the values recorded."},
		Reads:   []string{crm.FigKPIPercent, crm.FigCurrency},
		compose: plain((*view).strategicValue)},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.StrategicNextSteps, Title: "Strategic Next Steps", UsesActivities: true, Feeds: nextStepFeeds,
		Instruction: "The plan for the next few months to meet the customer's goals, built only from what the " +
			"sections listed in feeds say: risks to resolve, expansion signals to qualify, KPIs to carry to " +
			"target, actions already due."},
		Reads:   []string{crm.FigKPIPercent, crm.FigCurrency},
		compose: (*view).strategicNextSteps},
	{Module: "accounts", SectionSpec: llm.SectionSpec{Key: llm.ImmediateActions, Title: "Immediate Actions", UsesActivities: true, Instruction: "First what needs " +
		"attention (org.figures): unanswered customer signals and how long the oldest has waited, days since the " +
		"last touch when a month or more, single-threaded open pipeline (engage a sponsor at Director level or above), stalled open deals. Then tasks to do now: " +
		"overdue objectives, overdue and open playbook tasks (with due dates and owners), open activity tasks, escalated and open " +
		"cases, and the next steps of open deals."},
		Reads:   []string{crm.FigUnanswered, crm.FigOldestUnanswered, crm.FigDaysSinceTouch, crm.FigLastActivity, crm.FigSingleThreaded, crm.FigOpenDealValue, crm.FigContacts, crm.FigStalledDeals, crm.FigWindowDays, crm.FigCurrency},
		compose: plain((*view).immediateActions)},
	{Module: "contacts", SectionSpec: llm.SectionSpec{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the contact's name, title, account, " +
		"lifecycle stage, email, phone and owner."},
		Reads:   []string{crm.FigUnanswered, crm.FigOldestUnanswered, crm.FigStatusSince, crm.FigDaysSinceTouch, crm.FigLastActivity},
		compose: plain((*view).overview)},
	{Module: "contacts", SectionSpec: llm.SectionSpec{Key: llm.DecisionPower, Title: "Decision-Making Power", Instruction: "The contact's decision-making power " +
		"and influence, judged from the title, and the deals the contact is on with their stage and amount. " +
		"Say so when no title is recorded."},
		Reads:   []string{crm.FigCurrency},
		compose: plain((*view).decisionPower)},
	{Module: "contacts", SectionSpec: llm.SectionSpec{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)."},
		Reads:   []string{crm.FigActivitiesTotal, crm.FigLastActivity},
		compose: plain((*view).recentInteractions)},
	{Module: "contacts", SectionSpec: llm.SectionSpec{Key: llm.ContactPreferences, Title: "Preferences", UsesActivities: true, Instruction: "Preferred " +
		"communication channels and timings, from when and through which medium the contact's signals happen " +
		"(org.figures.signals_by_channel, signals_by_part_of_day, signals_by_weekday; times are in org.figures.time_zone)."},
		Reads:   []string{crm.FigSignalsTotal, crm.FigSignalsByChannel, crm.FigSignalsByPart, crm.FigSignalsByWeekday, crm.FigPreferredChannel, crm.FigPreferredPart, crm.FigPreferredWeekday, crm.FigSignalsTie, crm.FigTimeZone},
		compose: plain((*view).preferences)},
	{Module: "leads", SectionSpec: llm.SectionSpec{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the lead's name, company, email, " +
		"phone, status, owner and whether it was converted."},
		Reads:   []string{crm.FigUnanswered, crm.FigOldestUnanswered, crm.FigStatusSince, crm.FigDaysSinceTouch, crm.FigLastActivity},
		compose: plain((*view).overview)},
	{Module: "leads", SectionSpec: llm.SectionSpec{Key: llm.Qualification, Title: "Qualification", Instruction: "Potential value, lead status and its " +
		"history, origin (lead source), that source's historical conversion rate in this organisation " +
		"(org.figures), and the conversion probability stated as that rate, never estimated otherwise."},
		Reads:   []string{crm.FigCurrency, crm.FigSourcePercent, crm.FigSourceLeads, crm.FigSourceConverted},
		compose: plain((*view).qualification)},
	{Module: "leads", SectionSpec: llm.SectionSpec{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)."},
		Reads:   []string{crm.FigActivitiesTotal, crm.FigLastActivity},
		compose: plain((*view).recentInteractions)},
	{Module: "deals", SectionSpec: llm.SectionSpec{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the deal's name, account, type, " +
		"amount, close date and owner."},
		Reads:   []string{crm.FigUnanswered, crm.FigOldestUnanswered, crm.FigStatusSince, crm.FigDaysSinceTouch, crm.FigLastActivity, crm.FigStalled, crm.FigWindowDays, crm.FigDaysInStage, crm.FigCurrency},
		compose: plain((*view).overview)},
	{Module: "deals", SectionSpec: llm.SectionSpec{Key: llm.DealProgress, Title: "Deal Progress", Instruction: "Stage and probability, value, days in the " +
		"current stage and to the close date (org.figures), milestones from the stage history " +
		"(subject.fields.field_history), the key decision makers (related contacts with titles) and the next " +
		"step."},
		Reads:   []string{crm.FigCurrency, crm.FigDaysInStage, crm.FigDaysToClose},
		compose: plain((*view).dealProgress)},
	{Module: "deals", SectionSpec: llm.SectionSpec{Key: llm.DealRisks, Title: "Risks", UsesActivities: true, Instruction: "Competitors (the competitor field " +
		"and notes naming one) and risks quoted from activity notes and subjects (delay, budget, escalation, " +
		"cancel, unhappy), each with a mitigation; a close date already passed; no recent activity. Say so when " +
		"no note mentions a risk."},
		Reads:   []string{crm.FigDaysToClose, crm.FigInWindow, crm.FigWindowDays, crm.FigStalled},
		compose: plain((*view).dealRisks)},
	{Module: "deals", SectionSpec: llm.SectionSpec{Key: llm.PipelineMetrics, Title: "Pipeline Metrics", UsesActivities: true, Instruction: "Cumulative open " +
		"pipeline value of the organisation and this deal's share of it, and the engagement score " +
		"(org.engagement_30d or org.figures activity counts)."},
		Reads:   []string{crm.FigCurrency, crm.FigPipelineValue, crm.FigPipelineShare, crm.FigEngagementScore, crm.FigActivitiesTotal, crm.FigLastActivity, crm.FigWindowDays, crm.FigInWindow, crm.FigInPreviousWindow, crm.FigTrend, crm.FigEngagement},
		compose: plain((*view).pipelineMetrics)},
	{Module: "deals", SectionSpec: llm.SectionSpec{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)."},
		Reads:   []string{crm.FigActivitiesTotal, crm.FigLastActivity},
		compose: plain((*view).recentInteractions)},
	{Module: "", SectionSpec: llm.SectionSpec{Key: llm.Overview, Title: "Overview", UsesActivities: true, Instruction: "A general overview of the " +
		"record from its fields, its related records and its newest activities."},
		compose: plain((*view).overview)},
}

// Catalog is the module's sections in display order, as a model is asked
// for them: each instruction names the figures it reads and closes with
// the citation rule. module "" (or any module without sections of its
// own) gets the general overview.
func Catalog(module string) []llm.SectionSpec {
	if !slices.ContainsFunc(definitions, func(d Definition) bool { return d.Module == module }) {
		module = ""
	}
	var out []llm.SectionSpec
	for _, d := range definitions {
		if d.Module != module {
			continue
		}
		s := d.SectionSpec
		s.Feeds = slices.Clone(s.Feeds)
		if len(d.Reads) > 0 {
			s.Instruction += " Figures: org.figures." + strings.Join(d.Reads, ", ") + "."
		}
		s.Instruction += citeRule
		out = append(out, s)
	}
	return out
}

// Definitions is every section definition (a copy).
func Definitions() []Definition { return slices.Clone(definitions) }

// definition is the section key of the subject's module, else of any
// module (facts built by hand may pair a module with another's section).
func definition(module, key string) (Definition, bool) {
	fallback, found := Definition{}, false
	for _, d := range definitions {
		if d.Key != key {
			continue
		}
		if d.Module == module {
			return d, true
		}
		if !found {
			fallback, found = d, true
		}
	}
	return fallback, found
}
