package export

import (
	"context"
	"time"

	"gocloud.dev/blob"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// expireBatch is how many exports one pass of exports:expire reads.
const expireBatch = 500

// Expirer is the exports:expire task: the files of exports past their two
// weeks, of invalid and of failed exports are removed, then the rows say
// so; rows past 90 days are deleted with their files. Each file is removed
// before its row changes, so a crash leaves the row to be cleaned again;
// removing a file already gone is not an error, so two runs at once (two
// schedulers, a rerun) do no harm.
type Expirer struct {
	Store  *store.DB
	Bucket *blob.Bucket
	Now    func() time.Time
}

// Run implements workers.Handler.
func (e Expirer) Run(ctx context.Context, job workers.Job[jobs.OrgPayload]) (jobs.ExportsExpireResult, error) {
	var res jobs.ExportsExpireResult
	if e.Bucket == nil {
		return res, errNoBucket
	}
	org := job.Payload.OrgID
	now := e.Now()
	for {
		batch, err := e.Store.ExportsToClean(ctx, org, now, expireBatch)
		if err != nil {
			return res, err
		}
		for _, ex := range batch {
			keys := []string{tempKey(org, ex.ID), FileKey(org, ex.ID)}
			if ex.FileKey != nil && *ex.FileKey != keys[1] {
				keys = append(keys, *ex.FileKey)
			}
			for _, k := range keys {
				if err := deleteIfThere(ctx, e.Bucket, k); err != nil {
					return res, err
				}
			}
			deleted, err := e.Store.ExportFilesRemoved(ctx, org, ex.ID, now)
			if err != nil {
				return res, err
			}
			res.FilesRemoved++
			if deleted {
				res.RowsDeleted++
			}
		}
		if len(batch) < expireBatch {
			return res, nil
		}
	}
}
