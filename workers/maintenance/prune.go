package maintenance

import (
	"context"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers"
)

// PruneStore is what summary pruning needs of the store.
type PruneStore interface {
	PruneSummaries(ctx context.Context, orgID int64, olderThan time.Time) (int64, error)
	PruneSummaryUsage(ctx context.Context, orgID int64, before time.Time) (int64, error)
}

// Prune is the summaries:prune task: unsaved summaries older than
// Retention go, saved ones stay; daily counts of days before today go
// (they only matter on their own day).
type Prune struct {
	Store     PruneStore
	Retention time.Duration
	Now       func() time.Time
}

// Run implements workers.Handler.
func (p Prune) Run(ctx context.Context, job workers.Job[jobs.OrgPayload]) (jobs.PruneResult, error) {
	t := p.Now().UTC()
	res := jobs.PruneResult{Cutoff: t.Add(-p.Retention)}
	var err error
	if res.SummariesDeleted, err = p.Store.PruneSummaries(ctx, job.Payload.OrgID, res.Cutoff); err != nil {
		return jobs.PruneResult{}, err
	}
	if res.UsageRowsDeleted, err = p.Store.PruneSummaryUsage(ctx, job.Payload.OrgID, t); err != nil {
		return jobs.PruneResult{}, err
	}
	return res, nil
}
