package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// OpenJob is a non-final job row as the reconciler sees it.
type OpenJob struct {
	ID        string          `db:"id"`
	OrgID     int64           `db:"org_id"`
	Type      string          `db:"type"`
	Queue     string          `db:"queue"`
	State     string          `db:"state"`
	Attempts  int             `db:"attempts"`
	MaxRetry  int             `db:"max_retry"`
	Requeues  int             `db:"requeues"`
	Payload   json.RawMessage `db:"payload"`
	CreatedAt time.Time       `db:"created_at"`
	UpdatedAt time.Time       `db:"updated_at"`
}

// OpenJobsAfter returns up to limit non-final jobs created in
// [from, before), in (created_at, id) order after the key (fromID breaks
// ties at from; "" starts at from).
func (db *DB) OpenJobsAfter(ctx context.Context, from time.Time, fromID string, before time.Time, limit int) ([]OpenJob, error) {
	var out []OpenJob
	err := db.SelectContext(ctx, &out, `
		SELECT id, org_id, type, queue, state, attempts, max_retry, requeues, payload, created_at, updated_at
		FROM jobs
		WHERE (created_at, id) > ($1, $2) AND created_at < $3
		  AND state IN ('queued', 'running', 'retrying')
		ORDER BY created_at, id
		LIMIT $4`, from, fromID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("open jobs: %w", err)
	}
	return out, nil
}

// OpenJobByID reads one non-final job row; ErrNotFound when there is none
// or it is final.
func (db *DB) OpenJobByID(ctx context.Context, id string) (OpenJob, error) {
	var j OpenJob
	err := db.GetContext(ctx, &j, `
		SELECT id, org_id, type, queue, state, attempts, max_retry, requeues, payload, created_at, updated_at
		FROM jobs WHERE id = $1 AND state IN ('queued', 'running', 'retrying')`, id)
	if err != nil {
		return OpenJob{}, notFound(err, "open job "+id)
	}
	return j, nil
}

// ReconcileWatermark is the time before which every job is final.
func (db *DB) ReconcileWatermark(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := db.GetContext(ctx, &t, `SELECT watermark FROM job_reconcile`); err != nil {
		return time.Time{}, fmt.Errorf("reconcile watermark: %w", err)
	}
	return t, nil
}

// SetReconcileWatermark records a new watermark. It never moves back a
// watermark another run moved further.
func (db *DB) SetReconcileWatermark(ctx context.Context, t time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE job_reconcile SET watermark = GREATEST(watermark, $1), updated_at = now()`, t)
	if err != nil {
		return fmt.Errorf("set reconcile watermark: %w", err)
	}
	return nil
}

// RequeueJob records that the job's task goes back on its queue: queued
// again, one more requeue, the reason as its error. It changes nothing,
// and says so, when the row moved since it was read (updatedAt).
func (db *DB) RequeueJob(ctx context.Context, id string, updatedAt time.Time, reason string) (bool, error) {
	res, err := db.ExecContext(ctx, `
		UPDATE jobs SET state = 'queued', requeues = requeues + 1, error = $3, updated_at = now()
		WHERE id = $1 AND updated_at = $2 AND state IN ('queued', 'running', 'retrying')`, id, updatedAt, reason)
	if err != nil {
		return false, fmt.Errorf("requeue job %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FailLostJob ends a job the queue lost or gave up on, with the reason. It
// changes nothing, and says so, when the row moved since it was read.
func (db *DB) FailLostJob(ctx context.Context, id string, updatedAt time.Time, reason string) (bool, error) {
	res, err := db.ExecContext(ctx, `
		UPDATE jobs SET state = 'failed', error = $3, finished_at = now(), updated_at = now()
		WHERE id = $1 AND updated_at = $2 AND state IN ('queued', 'running', 'retrying')`, id, updatedAt, reason)
	if err != nil {
		return false, fmt.Errorf("fail lost job %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
