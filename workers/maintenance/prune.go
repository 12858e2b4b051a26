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

// PruneResult is the result of a summaries:prune job.
type PruneResult struct {
	Cutoff           time.Time `json:"cutoff"`
	SummariesDeleted int64     `json:"summaries_deleted"`
	UsageRowsDeleted int64     `json:"usage_rows_deleted"`
}

// PruneHandler is the summaries:prune task: unsaved summaries older than
// retention go, saved ones stay; daily counts of days before today go
// (they only matter on their own day).
func PruneHandler(st PruneStore, retention time.Duration, now func() time.Time) func(context.Context, workers.Job[jobs.OrgPayload]) (PruneResult, error) {
	return func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (PruneResult, error) {
		t := now().UTC()
		res := PruneResult{Cutoff: t.Add(-retention)}
		var err error
		if res.SummariesDeleted, err = st.PruneSummaries(ctx, job.Payload.OrgID, res.Cutoff); err != nil {
			return PruneResult{}, err
		}
		if res.UsageRowsDeleted, err = st.PruneSummaryUsage(ctx, job.Payload.OrgID, t); err != nil {
			return PruneResult{}, err
		}
		return res, nil
	}
}
