package jobs

import "time"

// TypeJobsReconcile finds job rows that stayed non-final far longer than
// their task allows and settles each against asynq's view of the task: the
// task is put back on its queue, or the job fails with the reason.
const TypeJobsReconcile = "jobs:reconcile"

// ReconcileSpec: a system task (no job row) the scheduler enqueues once
// per tick for the whole deployment; a missed run is made up by the next.
var ReconcileSpec = Spec{Type: TypeJobsReconcile, Queue: QueueLow, MaxRetry: 1, Timeout: 5 * time.Minute, Retention: time.Hour, System: true}

// ReconcilePayload is empty: one run covers every org.
type ReconcilePayload struct{}

// Validate implements Payload.
func (ReconcilePayload) Validate() error { return nil }

// ReconcileResult counts what one run settled.
type ReconcileResult struct {
	Checked   int    `json:"checked"`   // job rows old enough to look at
	Alive     int    `json:"alive"`     // asynq still holds the task (pending, active, retry, scheduled)
	PutBack   int    `json:"put_back"`  // task re-queued (lost by Redis, or archived without a real failure)
	Failed    int    `json:"failed"`    // job marked failed with the queue's reason
	Unchanged int    `json:"unchanged"` // the row changed while it was looked at; left to the worker
	Watermark string `json:"watermark"` // every job created before this is final
}

// NewReconcileTask builds the task; org is ignored (system task).
func NewReconcileTask(int64) (Task, error) {
	return newTask(ReconcileSpec, ReconcilePayload{}, "")
}

// Specs lists every task type's spec. A job row's type is looked up here
// to put its task back on a queue.
var Specs = []Spec{PingSpec, OrphansSpec, PruneSpec, SummarySpec, ReconcileSpec, SegmentRefreshSpec, ExportSegmentSpec, ExportsExpireSpec, EnrichRecordSpec, EnrichBulkSpec}

// SpecOf returns the spec of a task type.
func SpecOf(taskType string) (Spec, bool) {
	for _, s := range Specs {
		if s.Type == taskType {
			return s, true
		}
	}
	return Spec{}, false
}
