package store

import "time"

// SummaryGraph is what a summary of one record reads: the record, its
// associated records (seed 001's level table for accounts; the related
// lists of seed 000 for the other modules) and its activities, newest
// first. It is the contract between the store, which gathers it, and
// workers/summary, which turns it into a prompt.
type SummaryGraph struct {
	Subject GraphRecord
	// Related holds the associated records other than activities, each
	// with its level and parent.
	Related []GraphRecord
	// Activities, newest first, at most ActivityCap of them; ActivityTotal
	// counts all, so the prompt can say what was left out.
	Activities    []GraphRecord
	ActivityTotal int
	// History of the subject's tracked picklist (milestones), oldest first.
	History []FieldChange
	// DataAsOf is the newest updated_at among everything read.
	DataAsOf time.Time
	// DataHash changes whenever any record of the graph is created,
	// updated or deleted; equal hashes mean the summary would read the
	// same data. Same value as SummaryDataHash.
	DataHash string
	// Org-wide figures for the module's sections, e.g.
	// "org_won_revenue", "account_won_revenue", "lead_source_conversion_rate",
	// "open_pipeline_value", "engagement_30d".
	Org map[string]any
	// Locale is the org's currency and time zone for the summary's text.
	Locale SummaryLocale
}

// GraphRecord is one record of a graph, as GetRecord renders it.
type GraphRecord struct {
	Module    string
	ID        string // external id
	Level     int    // 0 subject, 1 directly associated, 2+ deeper
	Parent    string // "module/id" of the record it hangs off, if any
	Fields    Record
	UpdatedAt time.Time
}

// ActivityCap bounds the activities a graph loads. A prompt's token budget
// holds far fewer; the cap keeps memory flat for accounts with tens of
// thousands of activities while the count stays exact.
const ActivityCap = 2000
