package jobs

import (
	"fmt"
	"time"

	"github.com/crmq/crmq/store"
)

// TypeOrphansRecompute recomputes the orphan state of an org's leads and
// contacts (seed 003: recomputed weekly).
const TypeOrphansRecompute = "orphans:recompute"

// OrphansSpec: set-based SQL over the org's activities; a rerun is harmless.
var OrphansSpec = Spec{Type: TypeOrphansRecompute, Queue: QueueLow, MaxRetry: 5, Timeout: 10 * time.Minute, Retention: 2 * time.Hour, PerWorker: 2}

// OrphansResult is the result of an orphans:recompute job: per module the
// average response gap used, how many records were looked at and found
// orphan, and the time computed. A module's run carries another job id
// when a newer run was already stored (this one was a late retry).
type OrphansResult struct {
	OrgID   int64             `json:"org_id"`
	Modules []store.OrphanRun `json:"modules"`
}

// NewOrphansTask builds the task for one org.
func NewOrphansTask(orgID int64) (Task, error) {
	return newTask(OrphansSpec, OrgPayload{OrgID: orgID}, "")
}

// TickTaskID is the deterministic id of a periodic task for one org and one
// scheduled tick: every scheduler computes the same id for the same tick, so
// asynq accepts it once. The nominal tick time is used, never the wall clock.
func TickTaskID(taskType string, orgID int64, tick time.Time) string {
	return fmt.Sprintf("%s:%d:%d", taskType, orgID, tick.UTC().Unix())
}
