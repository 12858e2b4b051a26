package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ChildJob is the job row of a task a parent task enqueues: queued, in
// the parent's org and for its user, under a deterministic id so that a
// retried parent finds the row instead of adding one.
type ChildJob struct {
	ID       string
	Type     string
	Queue    string
	MaxRetry int
	Payload  []byte
}

// insertChildJobs writes the children's job rows; rows that exist already
// are left as they are.
func insertChildJobs(ctx context.Context, q sqlx.ExecerContext, orgID int64, userID *string, children []ChildJob) error {
	if len(children) == 0 {
		return nil
	}
	ids, types, queues := make([]string, len(children)), make([]string, len(children)), make([]string, len(children))
	retries := make([]int64, len(children))
	payloads := make([]string, len(children))
	for i, c := range children {
		ids[i], types[i], queues[i], retries[i], payloads[i] = c.ID, c.Type, c.Queue, int64(c.MaxRetry), string(c.Payload)
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO jobs (id, org_id, user_id, type, queue, max_retry, payload)
		SELECT c.id, $1, $2, c.type, c.queue, c.max_retry, c.payload::jsonb
		FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::text[]) AS c(id, type, queue, max_retry, payload)
		ON CONFLICT (id) DO NOTHING`,
		orgID, userID, pq.StringArray(ids), pq.StringArray(types), pq.StringArray(queues), pq.Int64Array(retries), pq.StringArray(payloads))
	if err != nil {
		return fmt.Errorf("child job rows: %w", err)
	}
	return nil
}

// DetachJob hands a running job row over from the attempt that runs it to
// its children: the row's run id becomes token, so the attempt's own
// FinishJob, fenced by run id, writes nothing when the parent task
// returns, and the row stays running until FinishDetachedJob (or a
// child's progress) moves it. It answers whether the row was running.
func (db *DB) DetachJob(ctx context.Context, id, token string) (bool, error) {
	res, err := db.ExecContext(ctx, `UPDATE jobs SET run_id = $2, updated_at = now() WHERE id = $1 AND state = 'running'`, id, token)
	if err != nil {
		return false, fmt.Errorf("detach job %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetDetachedProgress records the progress of a job handed to its
// children (see DetachJob); it also tells the reconciler, through
// updated_at, that the job is moving.
func (db *DB) SetDetachedProgress(ctx context.Context, id string, percent int) error {
	return setDetachedProgress(ctx, db, id, percent)
}

func setDetachedProgress(ctx context.Context, q sqlx.ExecerContext, id string, percent int) error {
	_, err := q.ExecContext(ctx, `UPDATE jobs SET progress = $2, updated_at = now()
		WHERE id = $1 AND state IN ('queued', 'running', 'retrying')`, id, max(0, min(100, percent)))
	if err != nil {
		return fmt.Errorf("progress of job %s: %w", id, err)
	}
	return nil
}

// finishDetachedJob ends a detached job with its result, once: a job
// already final (succeeded, failed, cancelled) is left as it is.
func finishDetachedJob(ctx context.Context, q sqlx.ExecerContext, id string, result []byte) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE jobs SET state = 'succeeded', result = $2, progress = 100, error = NULL,
			finished_at = now(), updated_at = now()
		WHERE id = $1 AND state IN ('queued', 'running', 'retrying')`, id, result)
	if err != nil {
		return false, fmt.Errorf("finish job %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// JobState reads a job's state and error (any org: the caller holds an
// id it made).
func (db *DB) JobState(ctx context.Context, id string) (state string, errMsg *string, err error) {
	var row struct {
		State string  `db:"state"`
		Error *string `db:"error"`
	}
	if err := db.GetContext(ctx, &row, `SELECT state, error FROM jobs WHERE id = $1`, id); err != nil {
		return "", nil, notFound(err, "job "+id)
	}
	return row.State, row.Error, nil
}
