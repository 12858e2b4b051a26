// Package maintenance holds crmq's periodic upkeep: the RFM refresh
// fan-out, orphan recomputation and export expiry. Each is a plain function
// over a small store interface; the asynq handlers wrap them.
package maintenance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// OrphanStore is what orphan recomputation needs of the store.
type OrphanStore interface {
	RecomputeOrphans(ctx context.Context, orgID int64, module string, now time.Time, jobID string) (store.OrphanRun, error)
}

// OrphanModules are the modules with an orphan state, in the order they
// are recomputed.
var OrphanModules = []string{"leads", "contacts"}

// OrphansResult is the result of an orphans:recompute job: per module the
// average response gap used, how many records were looked at and found
// orphan, and the time computed. A module's run carries another job id
// when a newer run was already stored (this one was a late retry).
type OrphansResult struct {
	OrgID   int64             `json:"org_id"`
	Modules []store.OrphanRun `json:"modules"`
}

// RecomputeOrphans recomputes the orphan state of the org's leads and
// contacts as of now. Each module is one transaction and a rerun with the
// same now and job id writes the same rows, so a retried job is harmless.
func RecomputeOrphans(ctx context.Context, st OrphanStore, orgID int64, now time.Time, jobID string) (OrphansResult, error) {
	res := OrphansResult{OrgID: orgID, Modules: make([]store.OrphanRun, 0, len(OrphanModules))}
	for _, module := range OrphanModules {
		if err := ctx.Err(); err != nil {
			return OrphansResult{}, fmt.Errorf("recompute orphans of org %d: %w", orgID, err)
		}
		start := time.Now()
		run, err := st.RecomputeOrphans(ctx, orgID, module, now, jobID)
		if err != nil {
			return OrphansResult{}, fmt.Errorf("recompute orphans of org %d, %s: %w", orgID, module, err)
		}
		attrs := []any{"org_id", orgID, "module", module, "records", run.Records, "orphans", run.Orphans,
			"computed_at", run.ComputedAt, "job_id", jobID, "duration", time.Since(start)}
		if run.AverageGapSeconds != nil {
			attrs = append(attrs, "average_gap_seconds", *run.AverageGapSeconds)
		}
		slog.InfoContext(ctx, "orphans recomputed", attrs...)
		res.Modules = append(res.Modules, run)
	}
	return res, nil
}

// OrphansHandler is the orphans:recompute task: the org's state as of the
// attempt's start.
func OrphansHandler(st OrphanStore, now func() time.Time) func(context.Context, workers.Job[jobs.OrgPayload]) (OrphansResult, error) {
	return func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (OrphansResult, error) {
		return RecomputeOrphans(ctx, st, job.Payload.OrgID, now(), job.ID)
	}
}
