// Package maintenance holds crmq's periodic upkeep: orphan recomputation
// (orphans:recompute), summary pruning (summaries:prune) and the job
// reconciler (jobs:reconcile). Each task is a value with a Run method over
// a small store interface, registered in cmd/worker.
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

// RecomputeOrphans recomputes the orphan state of the org's leads and
// contacts as of now. Each module is one transaction and a rerun with the
// same now and job id writes the same rows, so a retried job is harmless.
// progress (may be nil) is told the percent done after each module; its
// error (the job was cancelled) stops the work.
func RecomputeOrphans(ctx context.Context, st OrphanStore, orgID int64, now time.Time, jobID string, progress func(percent int) error) (jobs.OrphansResult, error) {
	res := jobs.OrphansResult{OrgID: orgID, Modules: make([]store.OrphanRun, 0, len(OrphanModules))}
	for i, module := range OrphanModules {
		if err := ctx.Err(); err != nil {
			return jobs.OrphansResult{}, fmt.Errorf("recompute orphans of org %d: %w", orgID, err)
		}
		start := time.Now()
		run, err := st.RecomputeOrphans(ctx, orgID, module, now, jobID)
		if err != nil {
			return jobs.OrphansResult{}, fmt.Errorf("recompute orphans of org %d, %s: %w", orgID, module, err)
		}
		attrs := []any{"org_id", orgID, "module", module, "records", run.Records, "orphans", run.Orphans,
			"computed_at", run.ComputedAt, "job_id", jobID, "duration", time.Since(start)}
		if run.AverageGapSeconds != nil {
			attrs = append(attrs, "average_gap_seconds", *run.AverageGapSeconds)
		}
		slog.InfoContext(ctx, "orphans recomputed", attrs...)
		res.Modules = append(res.Modules, run)
		if progress != nil && i < len(OrphanModules)-1 {
			if err := progress(100 * (i + 1) / len(OrphanModules)); err != nil {
				return jobs.OrphansResult{}, err
			}
		}
	}
	return res, nil
}

// Orphans is the orphans:recompute task: the org's state as of the
// attempt's start.
type Orphans struct {
	Store OrphanStore
	Now   func() time.Time
}

// Run implements workers.Handler.
func (o Orphans) Run(ctx context.Context, job workers.Job[jobs.OrgPayload]) (jobs.OrphansResult, error) {
	return RecomputeOrphans(ctx, o.Store, job.Payload.OrgID, o.Now(), job.ID, func(p int) error { return job.Progress(ctx, p) })
}
