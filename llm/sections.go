package llm

// SectionSpec is one section asked for: its key, the title shown, and the
// instruction a model follows. Feeds lists the sections whose content a
// derived section (Executive Summary, Strategic Next Steps) is built from.
type SectionSpec struct {
	Key            string   `json:"key"`
	Title          string   `json:"title"`
	Instruction    string   `json:"instruction"`
	UsesActivities bool     `json:"uses_activities"`
	Feeds          []string `json:"feeds,omitempty"`
}

// Section keys. Accounts follow the Certinia account summary (seed 001);
// the other modules the Zoho record summary (seed 000).
const (
	// accounts (seed 001)
	AccountHighlights      = "account_highlights"
	KeyStakeholders        = "key_stakeholders"
	ExecutiveSummary       = "executive_summary"
	KPIProgress            = "kpi_progress"
	RelationalHealth       = "relational_health"
	RisksAndBlockers       = "risks_and_blockers"
	ExpansionOpportunities = "suggested_expansion_opportunities"
	StrategicValue         = "strategic_value_achievements"
	StrategicNextSteps     = "strategic_next_steps"
	ImmediateActions       = "immediate_actions"
	// other modules (seed 000)
	Overview           = "overview"            // every module: key details
	RecentInteractions = "recent_interactions" // contacts, leads, deals
	ContactPreferences = "preferences"         // contacts: channels and timings
	DecisionPower      = "decision_making"     // contacts
	Qualification      = "qualification"       // leads: value, source, conversion
	DealProgress       = "deal_progress"       // deals: stage, value, milestones, next steps
	DealRisks          = "risks"               // deals: risks with mitigation, competitors
	PipelineMetrics    = "pipeline_metrics"    // deals
)

// SectionKeys lists every section key of every module.
var SectionKeys = []string{
	AccountHighlights, KeyStakeholders, ExecutiveSummary, KPIProgress, RelationalHealth,
	RisksAndBlockers, ExpansionOpportunities, StrategicValue, StrategicNextSteps, ImmediateActions,
	Overview, RecentInteractions, ContactPreferences, DecisionPower, Qualification,
	DealProgress, DealRisks, PipelineMetrics,
}
