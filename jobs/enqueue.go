package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/store"
)

var (
	// ErrUnavailable: the queue (Redis) refused the task; nothing was kept.
	ErrUnavailable = errors.New("queue unavailable")
	// ErrAlreadyEnqueued: a task with the same deterministic id exists (another scheduler won the tick).
	ErrAlreadyEnqueued = errors.New("task already enqueued")
	// ErrIdempotencyMismatch: an idempotency key was reused for a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
)

// Enqueuer writes the job row, then puts the task on its queue. The row
// exists before a worker can see the task; if Redis refuses, the row is
// removed again, so no job is left that will never run.
type Enqueuer struct {
	DB *store.DB
	// Client is asynq's Client, or a wrapper of it (the per-org limiter's
	// fair.Marking, which records that the org has work waiting).
	Client TaskEnqueuer
	Queue  TaskQueue // for Cancel; may be nil where nothing is cancelled
	Log    *slog.Logger
	// Enqueued, when set, is told of each task put on a queue (metrics);
	// an idempotent replay puts none.
	Enqueued func(taskType string)
}

func (e *Enqueuer) enqueued(taskType string) {
	if e.Enqueued != nil {
		e.Enqueued(taskType)
	}
}

// TaskQueue is what cancelling needs of asynq (its Inspector).
type TaskQueue interface {
	DeleteTask(queue, id string) error
	CancelProcessing(id string) error
}

// Cancel stops a job of the org that has not ended. Its row is cancelled
// at once, so a worker that picks the task up later skips it; a task still
// waiting is deleted from its queue, and a running one is cancelled through
// asynq (its handler's context ends; a handler working in batches also
// learns it from Job.Progress). store.ErrJobFinal when the job already
// ended, store.ErrNotFound for no such job in the org. If Redis does not
// answer, the row stays cancelled and the task is skipped when it runs.
func (e *Enqueuer) Cancel(ctx context.Context, orgID int64, id string) (store.Job, error) {
	j, err := e.DB.CancelJob(ctx, orgID, id)
	if err != nil || e.Queue == nil {
		return j, err
	}
	err = e.Queue.DeleteTask(j.Queue, j.ID)
	switch {
	case err == nil, errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
	default: // most likely running
		if cerr := e.Queue.CancelProcessing(j.ID); cerr != nil {
			e.Log.WarnContext(ctx, "cancelled job's task not reached; a worker will skip it", "job_id", j.ID, "err", errors.Join(err, cerr))
		}
	}
	return j, nil
}

// Request is one task to enqueue for an org.
type Request struct {
	OrgID          int64
	UserID         string // the acting user of the calling app, if any
	IdempotencyKey string // a repeated key returns the first job
	TaskID         string // deterministic id (scheduler); random when empty
	Task           Task
	// Same tells whether a stored payload and this request's payload are
	// the same request, for an Idempotency-Key replay; nil compares the
	// JSON documents.
	Same func(stored, incoming []byte) bool
}

// checkIdempotencyKey refuses a key the store cannot index or hold.
func checkIdempotencyKey(key string) error {
	switch {
	case len(key) > 255:
		return FieldErrors{"Idempotency-Key": "at most 255 bytes"}
	case !printable(key, 255):
		return FieldErrors{"Idempotency-Key": "printable UTF-8 text"}
	}
	return nil
}

// printable: valid UTF-8, no control characters (NUL included), at most
// maxBytes.
func printable(s string, maxBytes int) bool {
	return len(s) <= maxBytes && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// Enqueue returns the job, and whether it was an earlier job returned for
// a repeated idempotency key.
func (e *Enqueuer) Enqueue(ctx context.Context, req Request) (store.Job, bool, error) {
	if req.Task.Spec.System {
		return e.enqueueSystem(ctx, req)
	}
	if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
		return store.Job{}, false, err
	}
	if req.IdempotencyKey != "" {
		if j, ok, err := e.replay(ctx, req); ok || err != nil {
			return j, ok, err
		}
	}
	id := req.TaskID
	if id == "" {
		id = uuid.NewString()
	}
	job := store.Job{
		ID: id, OrgID: req.OrgID, Type: req.Task.Spec.Type, Queue: req.Task.Queue,
		MaxRetry: req.Task.Spec.MaxRetry, Payload: req.Task.Payload,
	}
	if req.UserID != "" {
		job.UserID = &req.UserID
	}
	if req.IdempotencyKey != "" {
		job.IdempotencyKey = &req.IdempotencyKey
	}
	stored, inserted, err := e.DB.InsertJob(ctx, job)
	if errors.Is(err, store.ErrConflict) {
		// A concurrent request with the same key won the insert.
		j, ok, err := e.replay(ctx, req)
		if !ok && err == nil {
			err = fmt.Errorf("idempotent replay: %w", store.ErrConflict)
		}
		return j, ok, err
	}
	if err != nil {
		return store.Job{}, false, err
	}
	if !inserted {
		return store.Job{}, false, fmt.Errorf("job %s: %w", id, ErrAlreadyEnqueued)
	}
	if _, err := e.Client.EnqueueContext(ctx, req.Task.Asynq(asynq.TaskID(id))); err != nil {
		// Keep no row for a task that is not on a queue; the delete must
		// run even if the caller's context is gone. A row a worker has
		// already started shows the task did reach Redis (its answer was
		// lost, as in a failover): the job is accepted, not refused.
		started, derr := e.DB.DeleteQueuedJob(context.WithoutCancel(ctx), id)
		if derr != nil {
			e.Log.ErrorContext(ctx, "job row left after failed enqueue", "job_id", id, "err", derr)
		}
		if started {
			e.Log.WarnContext(ctx, "enqueue reported an error but a worker started the task; accepted", "job_id", id, "err", err)
			e.enqueued(req.Task.Spec.Type)
			return stored, false, nil
		}
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return store.Job{}, false, fmt.Errorf("job %s: %w", id, ErrAlreadyEnqueued)
		}
		return store.Job{}, false, fmt.Errorf("enqueue %s: %w: %w", req.Task.Spec.Type, ErrUnavailable, err)
	}
	e.enqueued(req.Task.Spec.Type)
	return stored, false, nil
}

// enqueueSystem puts a system task on its queue: no job row, and the
// deterministic TaskID is the only guard against a second copy.
func (e *Enqueuer) enqueueSystem(ctx context.Context, req Request) (store.Job, bool, error) {
	if req.TaskID == "" {
		return store.Job{}, false, fmt.Errorf("system task %s needs a deterministic task id", req.Task.Spec.Type)
	}
	_, err := e.Client.EnqueueContext(ctx, req.Task.Asynq(asynq.TaskID(req.TaskID)))
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return store.Job{}, false, fmt.Errorf("task %s: %w", req.TaskID, ErrAlreadyEnqueued)
	case err != nil:
		return store.Job{}, false, fmt.Errorf("enqueue %s: %w: %w", req.Task.Spec.Type, ErrUnavailable, err)
	}
	e.enqueued(req.Task.Spec.Type)
	return store.Job{ID: req.TaskID, Type: req.Task.Spec.Type, Queue: req.Task.Queue, State: store.JobQueued, MaxRetry: req.Task.Spec.MaxRetry}, false, nil
}

// replay returns the job an earlier request created with the same key,
// after checking that it was the same request: the same task, payload and
// acting user.
func (e *Enqueuer) replay(ctx context.Context, req Request) (store.Job, bool, error) {
	j, err := e.DB.JobByIdempotencyKey(ctx, req.OrgID, req.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return store.Job{}, false, nil
	}
	if err != nil {
		return store.Job{}, false, err
	}
	if j.Type != req.Task.Spec.Type || !same(req.Same)(j.Payload, req.Task.Payload) || userOf(j) != req.UserID {
		return store.Job{}, false, ErrIdempotencyMismatch
	}
	return j, true, nil
}

// userOf is the acting user a job was enqueued for, "" when none.
func userOf(j store.Job) string {
	if j.UserID == nil {
		return ""
	}
	return *j.UserID
}

func same(f func(stored, incoming []byte) bool) func(stored, incoming []byte) bool {
	if f == nil {
		return jsonEqual
	}
	return f
}

// jsonEqual compares two JSON documents by value (Postgres' jsonb does not
// keep key order or spacing).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
