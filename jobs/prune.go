package jobs

import "time"

// TypeSummariesPrune deletes an org's unsaved summaries past the retention
// period, and its daily summary counts of past days. Saved summaries stay.
const TypeSummariesPrune = "summaries:prune"

// PruneSpec: batched deletes; a rerun deletes what is left.
var PruneSpec = Spec{Type: TypeSummariesPrune, Queue: QueueLow, MaxRetry: 3, Timeout: 10 * time.Minute, Retention: 2 * time.Hour, PerWorker: 2}

// PruneResult is the result of a summaries:prune job.
type PruneResult struct {
	Cutoff           time.Time `json:"cutoff"`
	SummariesDeleted int64     `json:"summaries_deleted"`
	UsageRowsDeleted int64     `json:"usage_rows_deleted"`
}

// NewPruneTask builds the task for one org.
func NewPruneTask(orgID int64) (Task, error) {
	return newTask(PruneSpec, OrgPayload{OrgID: orgID}, "")
}
