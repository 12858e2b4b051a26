package summary

import (
	"errors"
	"fmt"
	"slices"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// ErrUnknownModule is returned for a module that is neither built in nor a
// custom module.
var ErrUnknownModule = errors.New("summary: unknown module")

// InsufficientData is the text of a derived section (Executive Summary,
// Strategic Next Steps) whose every feeding section is hidden (seed 001,
// "Sections with Insufficient Data").
const InsufficientData = "Insufficient data: every section this summary is built from is hidden."

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

// attentionFirst opens the Overview of contacts, leads and deals: what
// needs attention, from org.figures.
const attentionFirst = "First what needs attention (org.figures): unanswered customer signals and how long the " +
	"oldest has waited, the days in the current status or stage (current_status) with the days since the last " +
	"touch, a stalled deal; nothing of this for a closed deal or a converted lead. "

// citeRule closes every instruction: the contract between the prompt and
// Validate.
const citeRule = " Every bullet cites in sources the refs of the records it rests on."

var accountSections = []llm.SectionSpec{
	{Key: llm.AccountHighlights, Title: "Account Highlights", UsesActivities: true, Instruction: "Essential account " +
		"details: industry, employees and location; annual revenue; product family; won revenue and its share of " +
		"the organisation's won revenue (org.figures); purchase history by product family; overall objective KPI " +
		"progress by status; open and escalated cases; active and red projects; open opportunities and open " +
		"expansion opportunities; the activity trend and engagement level (org.figures)." + citeRule},
	{Key: llm.KeyStakeholders, Title: "Key Stakeholders", UsesActivities: true, Instruction: "The customer " +
		"contacts with their titles who need to be involved in follow-up discussions, with the date and kind of " +
		"each one's latest activity, and the internal owners (account, deal, playbook task and project owners)." +
		citeRule},
	{Key: llm.ExecutiveSummary, Title: "Executive Summary", UsesActivities: true, Feeds: executiveFeeds,
		Instruction: "Open with the health verdict (org.figures.health: healthy, watch or at risk) and the reasons " +
			"behind it (org.figures.health_reasons, weightiest first) in 3 or 4 sentences of prose; then a short " +
			"overview of main challenges, relational health and performance trends, built only from what the " +
			"sections listed in feeds say." + citeRule},
	{Key: llm.KPIProgress, Title: "KPI Progress", Instruction: "Objective KPIs with status On Track or Completed " +
		"and real progress (actual and target above zero): name, actual/target with unit, percent of target " +
		"(org.figures.kpi_progress_percent) and comment. Leave out KPIs that are Off Track, Not Started or " +
		"Blocked." + citeRule},
	{Key: llm.RelationalHealth, Title: "Relational Health", UsesActivities: true, Instruction: "The strength of " +
		"the relationship: engagement level and trend (org.figures), executive engagement (senior contacts " +
		"active in activities) and positive sentiment found in activity notes and subjects, case subjects and " +
		"KPI comments, quoting the words used." + citeRule},
	{Key: llm.RisksAndBlockers, Title: "Risks and Blockers", UsesActivities: true, Instruction: "Problems that " +
		"stop progress or threaten the relationship: escalated cases, KPIs Off Track or Blocked, red projects, " +
		"at-risk success plans, open business challenges, and risks quoted from activity notes and subjects, " +
		"case subjects and KPI comments (escalation, churn, blocked, unhappy, cancel, complaint, delay). Say so " +
		"when no note mentions a risk." + citeRule},
	{Key: llm.ExpansionOpportunities, Title: "Suggested Expansion Opportunities", UsesActivities: true,
		Instruction: "Areas for additional products or services, only from specific signals in activity notes " +
			"and subjects, case subjects and KPI comments (adding seats, more licenses, a new region, an " +
			"upgrade, interest in a product), quoting the note, plus open expansion deals. Say so when no note " +
			"holds such a signal." + citeRule},
	{Key: llm.StrategicValue, Title: "Strategic Value Achievements", Instruction: "Successes realised by the " +
		"customer: KPIs On Track or Completed with real progress (never Off Track, Not Started or Blocked), " +
		"achieved objectives, completed success plans and projects, won deals, with the values recorded." +
		citeRule},
	{Key: llm.StrategicNextSteps, Title: "Strategic Next Steps", UsesActivities: true, Feeds: nextStepFeeds,
		Instruction: "The plan for the next few months to meet the customer's goals, built only from what the " +
			"sections listed in feeds say: risks to resolve, expansion signals to qualify, KPIs to carry to " +
			"target, actions already due." + citeRule},
	{Key: llm.ImmediateActions, Title: "Immediate Actions", UsesActivities: true, Instruction: "First what needs " +
		"attention (org.figures): unanswered customer signals and how long the oldest has waited, days since the " +
		"last touch when a month or more, single-threaded open pipeline, stalled open deals. Then tasks to do now: " +
		"overdue objectives, overdue and open playbook tasks (with due dates and owners), open activity tasks, escalated and open " +
		"cases, and the next steps of open deals." + citeRule},
}

var contactSections = []llm.SectionSpec{
	{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the contact's name, title, account, " +
		"lifecycle stage, email, phone and owner." + citeRule},
	{Key: llm.DecisionPower, Title: "Decision-Making Power", Instruction: "The contact's decision-making power " +
		"and influence, judged from the title, and the deals the contact is on with their stage and amount. " +
		"Say so when no title is recorded." + citeRule},
	{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)." + citeRule},
	{Key: llm.ContactPreferences, Title: "Preferences", UsesActivities: true, Instruction: "Preferred " +
		"communication channels and timings, from when and through which medium the contact's signals happen " +
		"(org.figures.signals_by_channel, signals_by_part_of_day, signals_by_weekday; times are in org.figures.time_zone)." + citeRule},
}

var leadSections = []llm.SectionSpec{
	{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the lead's name, company, email, " +
		"phone, status, owner and whether it was converted." + citeRule},
	{Key: llm.Qualification, Title: "Qualification", Instruction: "Potential value, lead status and its " +
		"history, origin (lead source), that source's historical conversion rate in this organisation " +
		"(org.figures), and the conversion probability stated as that rate, never estimated otherwise." +
		citeRule},
	{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)." + citeRule},
}

var dealSections = []llm.SectionSpec{
	{Key: llm.Overview, Title: "Overview", Instruction: attentionFirst + "Then the deal's name, account, type, " +
		"amount, close date and owner." + citeRule},
	{Key: llm.DealProgress, Title: "Deal Progress", Instruction: "Stage and probability, value, days in the " +
		"current stage and to the close date (org.figures), milestones from the stage history " +
		"(subject.fields.field_history), the key decision makers (related contacts with titles) and the next " +
		"step." + citeRule},
	{Key: llm.DealRisks, Title: "Risks", UsesActivities: true, Instruction: "Competitors (the competitor field " +
		"and notes naming one) and risks quoted from activity notes and subjects (delay, budget, escalation, " +
		"cancel, unhappy), each with a mitigation; a close date already passed; no recent activity. Say so when " +
		"no note mentions a risk." + citeRule},
	{Key: llm.PipelineMetrics, Title: "Pipeline Metrics", UsesActivities: true, Instruction: "Cumulative open " +
		"pipeline value of the organisation and this deal's share of it, and the engagement score " +
		"(org.engagement_30d or org.figures activity counts)." + citeRule},
	{Key: llm.RecentInteractions, Title: "Recent Interactions", UsesActivities: true, Instruction: "The newest " +
		"activities with date, medium, whether a signal or a follow-up, subject and the gist of the notes; the " +
		"total count and date of the latest activity (org.figures)." + citeRule},
}

// otherSections serve custom modules and the built-in modules seed 000 does
// not describe (products, cases, ...): a generalised overview.
var otherSections = []llm.SectionSpec{
	{Key: llm.Overview, Title: "Overview", UsesActivities: true, Instruction: "A general overview of the " +
		"record from its fields, its related records and its newest activities." + citeRule},
}

// Catalog lists the sections of a module's summary in display order, with
// every feed. Accounts have the ten Certinia sections (seed 001), Account
// Highlights also carrying seed 000's account items; contacts, leads and
// deals have seed 000's sections; every other module, custom ones
// included, has a general overview.
func Catalog(module string) ([]llm.SectionSpec, error) {
	var specs []llm.SectionSpec
	switch module {
	case "accounts":
		specs = accountSections
	case "contacts":
		specs = contactSections
	case "leads":
		specs = leadSections
	case "deals":
		specs = dealSections
	default:
		if !store.ValidModule(module) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownModule, module)
		}
		specs = otherSections
	}
	out := slices.Clone(specs)
	for i := range out {
		out[i].Feeds = slices.Clone(out[i].Feeds)
	}
	return out, nil
}

// Sections are the sections to ask a model for, given which are visible: a
// section is hidden when visible holds false for its key (nil shows
// everything). A derived section is asked for with Feeds narrowed to its
// visible feeders; when every feeder is hidden it is not asked for but
// listed in insufficient, and shows InsufficientData. An unknown module
// asks for nothing.
func Sections(module string, visible map[string]bool) (asked []llm.SectionSpec, insufficient []string) {
	specs, err := Catalog(module)
	if err != nil {
		return nil, nil
	}
	shown := func(key string) bool {
		v, ok := visible[key]
		return !ok || v
	}
	for _, s := range specs {
		if !shown(s.Key) {
			continue
		}
		if len(s.Feeds) > 0 {
			s.Feeds = slices.DeleteFunc(s.Feeds, func(k string) bool { return !shown(k) })
			if len(s.Feeds) == 0 {
				insufficient = append(insufficient, s.Key)
				continue
			}
		}
		asked = append(asked, s)
	}
	return asked, insufficient
}
