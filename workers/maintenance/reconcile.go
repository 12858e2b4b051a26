package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// ReconcileStore is what the reconciler needs of the store.
type ReconcileStore interface {
	ReconcileWatermark(ctx context.Context) (time.Time, error)
	SetReconcileWatermark(ctx context.Context, t time.Time) error
	OpenJobsAfter(ctx context.Context, from time.Time, fromID string, before time.Time, limit int) ([]store.OpenJob, error)
	OpenJobByID(ctx context.Context, id string) (store.OpenJob, error)
	RequeueJob(ctx context.Context, id string, updatedAt time.Time, reason string) (bool, error)
	FailLostJob(ctx context.Context, id string, updatedAt time.Time, reason string) (bool, error)
}

// Queue is what the reconciler needs of asynq's Inspector.
type Queue interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	RunTask(queue, id string) error
	DeleteTask(queue, id string) error
}

// Enqueuer puts a task back on a queue (asynq's Client).
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// MaxRequeues is how many times the reconciler puts one job's task back
// before it fails the job instead.
const MaxRequeues = 3

// Reconcile batches: rows read per query, and at most per run (the next
// run carries on from the watermark).
const (
	reconcileBatch   = 500
	reconcileMaxRows = 20000
)

// Reconciler settles job rows that stayed non-final longer than their
// task's timeout plus Margin. For each it asks asynq about the task:
//
//   - pending, active, scheduled or retry: the task is alive; left alone;
//   - gone (Redis lost it, or the row outlived a task that ended without
//     recording its outcome): enqueued again from the row's payload;
//   - archived after an attempt that found Postgres away
//     (workers.Unavailable; asynq archives a task whose retries were used
//     up whatever the error): run again;
//   - archived after a real error the worker could not record: the job
//     fails with asynq's last error;
//   - completed while the row says otherwise: run again.
//
// A job whose task was put back MaxRequeues times fails with the reason
// instead. A child job it fails (id <parent>.<n>, as enrich:bulk names
// its children) may be the last its parent waits for, so the parent's
// task runs again at once to settle it, rather than after the parent's
// own timeout. Every write is conditional on the row not having moved since
// it was read, so a worker that picks the job up meanwhile wins.
type Reconciler struct {
	Store  ReconcileStore
	Queue  Queue
	Client Enqueuer
	Margin time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// Run implements workers.Handler: the jobs:reconcile task.
func (r Reconciler) Run(ctx context.Context, _ workers.Job[jobs.ReconcilePayload]) (jobs.ReconcileResult, error) {
	return r.Reconcile(ctx)
}

// Reconcile walks the non-final jobs from the watermark and settles each
// that is old enough; the watermark then moves to the oldest job still open.
func (r Reconciler) Reconcile(ctx context.Context) (jobs.ReconcileResult, error) {
	var res jobs.ReconcileResult
	now := r.Now()
	before := now.Add(-r.minAge())
	wm, err := r.Store.ReconcileWatermark(ctx)
	if err != nil {
		return res, err
	}
	newWM, pinned := before, false
	cursor, cursorID := wm, ""
	for res.Checked < reconcileMaxRows {
		batch, err := r.Store.OpenJobsAfter(ctx, cursor, cursorID, before, reconcileBatch)
		if err != nil {
			return res, err
		}
		for _, j := range batch {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			res.Checked++
			settled, err := r.settle(ctx, j, now, &res)
			if err != nil {
				return res, err
			}
			if !settled && !pinned {
				newWM, pinned = j.CreatedAt, true
			}
		}
		if len(batch) < reconcileBatch {
			break
		}
		last := batch[len(batch)-1]
		cursor, cursorID = last.CreatedAt, last.ID
		if res.Checked >= reconcileMaxRows && !pinned {
			newWM = cursor
		}
	}
	if newWM.Before(wm) {
		newWM = wm
	}
	if err := r.Store.SetReconcileWatermark(ctx, newWM); err != nil {
		return res, err
	}
	res.Watermark = newWM.UTC().Format(time.RFC3339Nano)
	r.Log.InfoContext(ctx, "jobs reconciled", "checked", res.Checked, "alive", res.Alive, "put_back", res.PutBack,
		"failed", res.Failed, "unchanged", res.Unchanged, "watermark", newWM)
	return res, nil
}

// minAge is the age below which no job is looked at: the shortest task
// timeout plus the margin.
func (r Reconciler) minAge() time.Duration {
	shortest := time.Duration(0)
	for _, s := range jobs.Specs {
		if !s.System && (shortest == 0 || s.Timeout < shortest) {
			shortest = s.Timeout
		}
	}
	return shortest + r.Margin
}

// settle looks at one job and reports whether it is settled: final now,
// or handed back to the queue. An error is Redis or Postgres trouble: the
// run stops and the next one tries again.
func (r Reconciler) settle(ctx context.Context, j store.OpenJob, now time.Time, res *jobs.ReconcileResult) (bool, error) {
	spec, ok := jobs.SpecOf(j.Type)
	if !ok {
		return r.fail(ctx, j, res, fmt.Sprintf("no worker knows task type %q", j.Type))
	}
	if now.Sub(j.UpdatedAt) < spec.Timeout+r.Margin {
		return false, nil // changed recently: a worker may be on it
	}
	info, err := r.Queue.GetTaskInfo(j.Queue, j.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return r.putBack(ctx, j, res, "lost by the queue", func() error { return r.enqueue(ctx, j, spec) })
	case err != nil:
		return false, fmt.Errorf("inspect task %s: %w", j.ID, err)
	}
	switch info.State {
	case asynq.TaskStateArchived:
		if strings.HasPrefix(info.LastErr, workers.UnavailablePrefix) {
			return r.putBack(ctx, j, res, "archived while Postgres was unreachable", func() error { return r.Queue.RunTask(j.Queue, j.ID) })
		}
		return r.fail(ctx, j, res, fmt.Sprintf("the queue gave up after %d attempts: %s", info.Retried+1, info.LastErr))
	case asynq.TaskStateCompleted:
		return r.putBack(ctx, j, res, "completed without a recorded outcome", func() error {
			if err := r.Queue.DeleteTask(j.Queue, j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				return err
			}
			return r.enqueue(ctx, j, spec)
		})
	default: // pending, active, scheduled, retry, aggregating
		res.Alive++
		return false, nil
	}
}

// putBack records the requeue on the row, then acts on the queue; after
// MaxRequeues it fails the job instead.
func (r Reconciler) putBack(ctx context.Context, j store.OpenJob, res *jobs.ReconcileResult, why string, act func() error) (bool, error) {
	if j.Requeues >= MaxRequeues {
		return r.fail(ctx, j, res, fmt.Sprintf("%s after %d attempts; already put back %d times", why, j.Attempts, j.Requeues))
	}
	ok, err := r.Store.RequeueJob(ctx, j.ID, j.UpdatedAt, fmt.Sprintf("%s after %d attempts; put back on queue %s", why, j.Attempts, j.Queue))
	if err != nil {
		return false, err
	}
	if !ok {
		res.Unchanged++
		return false, nil
	}
	if err := act(); err != nil {
		return false, fmt.Errorf("put back task %s: %w", j.ID, err)
	}
	res.PutBack++
	r.Log.WarnContext(ctx, "job put back on its queue", "job_id", j.ID, "org_id", j.OrgID, "type", j.Type, "reason", why, "requeues", j.Requeues+1)
	return true, nil
}

func (r Reconciler) fail(ctx context.Context, j store.OpenJob, res *jobs.ReconcileResult, reason string) (bool, error) {
	ok, err := r.Store.FailLostJob(ctx, j.ID, j.UpdatedAt, reason)
	if err != nil {
		return false, err
	}
	if !ok {
		res.Unchanged++
		return false, nil
	}
	res.Failed++
	r.Log.WarnContext(ctx, "job failed by the reconciler", "job_id", j.ID, "org_id", j.OrgID, "type", j.Type, "reason", reason)
	if err := r.wakeParent(ctx, j.ID, res); err != nil {
		return true, err
	}
	return true, nil
}

// wakeParent runs the parent of a child job that just failed again, when
// the parent's task is not already waiting or running: the parent's run
// settles children that ended without an outcome (see enrich.Bulk).
func (r Reconciler) wakeParent(ctx context.Context, childID string, res *jobs.ReconcileResult) error {
	i := strings.LastIndexByte(childID, '.')
	if i <= 0 {
		return nil
	}
	parent, err := r.Store.OpenJobByID(ctx, childID[:i])
	if errors.Is(err, store.ErrNotFound) {
		return nil // no parent, or it has ended
	}
	if err != nil {
		return err
	}
	spec, ok := jobs.SpecOf(parent.Type)
	if !ok {
		return nil // settle fails it on its own turn
	}
	info, err := r.Queue.GetTaskInfo(parent.Queue, parent.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
	case err != nil:
		return fmt.Errorf("inspect task %s: %w", parent.ID, err)
	case info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived:
		return nil // waiting or running: it settles its children when it runs
	}
	_, err = r.putBack(ctx, parent, res, "a child failed for good", func() error {
		if err := r.Queue.DeleteTask(parent.Queue, parent.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return err
		}
		return r.enqueue(ctx, parent, spec)
	})
	return err
}

// enqueue puts the row's task on its queue again, under the same id.
func (r Reconciler) enqueue(ctx context.Context, j store.OpenJob, spec jobs.Spec) error {
	task := jobs.Task{Spec: spec, Queue: j.Queue, Payload: j.Payload}
	_, err := r.Client.EnqueueContext(ctx, task.Asynq(asynq.TaskID(j.ID)))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // already back
	}
	return err
}
