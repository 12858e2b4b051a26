// Package workers holds what every task handler shares: the middleware that
// moves the job row through its states and the typed adapter that decodes a
// payload once. Each task family lives in its own subpackage.
package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// JobStore is what the middleware needs of Postgres.
type JobStore interface {
	PingContext(ctx context.Context) error
	StartJob(ctx context.Context, id string, attempt int, runID string) (store.JobStart, error)
	FinishJob(ctx context.Context, id, runID, state string, result []byte, errMsg string) error
	SetJobProgress(ctx context.Context, id, runID string, percent int) error
}

// Job is what a typed handler receives: the decoded payload and the means
// to report progress.
type Job[P jobs.Payload] struct {
	ID        string
	Payload   P
	QueuedFor time.Duration // from enqueue to the first attempt's start
	store     JobStore
	runID     string
}

// ErrCancelled is returned by Progress when the job was cancelled: the
// handler returns it (wrapped or not), and the attempt ends without a
// retry.
var ErrCancelled = store.ErrJobCancelled

// Progress records progress in percent on the job row, for the attempt
// that owns it. A handler that works in batches calls it between them: it
// returns an error wrapping ErrCancelled once the job was cancelled, and
// the handler then stops and returns that error. Other failures to record
// are logged, not returned: progress is advisory.
func (j Job[P]) Progress(ctx context.Context, percent int) error {
	if j.store == nil || j.runID == "" {
		return nil
	}
	err := j.store.SetJobProgress(ctx, j.ID, j.runID, percent)
	if errors.Is(err, ErrCancelled) {
		return err
	}
	if err != nil {
		slog.WarnContext(ctx, "progress not recorded", "job_id", j.ID, "err", err)
	}
	return nil
}

// resultKey carries the slot a typed handler fills with its result.
type resultKey struct{}

// resultSlot carries the job's start (middleware -> adapter) and its
// result (adapter -> middleware).
type resultSlot struct {
	start store.JobStart
	runID string
	data  []byte
}

// Handle adapts a typed function to an asynq handler: the payload is
// decoded and validated once (a bad payload fails without retries), and the
// function's result is handed to the middleware, which stores it with the
// succeeded state.
func Handle[P jobs.Payload, R any](st JobStore, fn func(ctx context.Context, job Job[P]) (R, error)) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		p, err := jobs.Decode[P](t.Payload())
		if err != nil {
			return err
		}
		id, _ := asynq.GetTaskID(ctx)
		slot, _ := ctx.Value(resultKey{}).(*resultSlot)
		if slot == nil {
			slot = &resultSlot{}
		}
		r, err := fn(ctx, Job[P]{ID: id, Payload: p, QueuedFor: slot.start.QueuedFor(), store: st, runID: slot.runID})
		if err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("marshal result: %w: %w", err, asynq.SkipRetry)
		}
		slot.data = b
		return nil
	}
}

// Metrics of task execution, registered by the worker process.
type Metrics struct {
	Started    *prometheus.CounterVec
	Duration   *prometheus.HistogramVec
	Outcomes   *prometheus.CounterVec
	HandedBack *prometheus.CounterVec // by PerWorker
}

// NewMetrics creates the task metrics; register them with a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		Started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_tasks_started_total",
			Help: "Task attempts a worker started running, by type (an attempt skipped as already final is not counted).",
		}, []string{"type"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmq_task_duration_seconds",
			Help:    "Time a task handler ran, by type and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"type", "outcome"}),
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_tasks_total",
			Help: "Task attempts by type and outcome (succeeded, retrying, failed, queued: handed back by a stopping worker, skipped: already final, unrecorded: ran but its success could not be written).",
		}, []string{"type", "outcome"}),
		HandedBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_tasks_handed_back_total",
			Help: "Tasks a worker handed back unrun because it already ran as many of their type as the type allows per worker (segment refreshes, exports, orphan recomputes, prunes), by type.",
		}, []string{"type"}),
	}
}

// JobState is the middleware that keeps the jobs row in step with asynq:
// running when an attempt starts; succeeded with its result, retrying or
// failed with the error when it ends; queued again when a stopping worker
// hands the task back. A redelivered task whose job already succeeded (the
// worker died after the commit but before asynq's ack) is not run again.
//
// inflight (may be nil) counts running attempts so a stopping worker can
// wait for their state writes before it exits (see Inflight).
func JobState(st JobStore, log *slog.Logger, m *Metrics, inflight *Inflight) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if inflight != nil {
				inflight.wg.Add(1)
				defer inflight.wg.Done()
			}
			if spec, ok := jobs.SpecOf(t.Type()); ok && spec.System {
				// A system task has no job row (see jobs.Spec.System).
				began := time.Now()
				m.started(t.Type())
				err := next.ProcessTask(ctx, t)
				m.observe(t.Type(), systemOutcome(err), time.Since(began))
				return err
			}
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			// The job's attributes are formatted only for a line that is
			// written: a job that succeeds writes none at the info level.
			jl := func() *slog.Logger { return log.With("job_id", id, "type", t.Type(), "attempt", retried+1) }
			// State writes must land even when the task's context is done.
			bg := context.WithoutCancel(ctx)

			runID := uuid.NewString()
			start, err := st.StartJob(ctx, id, retried+1, runID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				// Postgres away: hold the slot until it answers (the worker
				// takes no more tasks meanwhile), or give the task back
				// without using a retry.
				if werr := waitForPostgres(ctx, st); werr != nil {
					jl().WarnContext(ctx, "postgres unreachable; task handed back without using a retry", "err", err)
					return &Unavailable{Err: fmt.Errorf("start job: %w", err)}
				}
				start, err = st.StartJob(ctx, id, retried+1, runID)
			}
			if errors.Is(err, store.ErrNotFound) {
				jl().ErrorContext(ctx, "task has no job row; dropped")
				return fmt.Errorf("job row %s missing: %w", id, asynq.SkipRetry)
			}
			if err != nil {
				// Postgres answers, yet the start failed: a real failure.
				jl().ErrorContext(ctx, "job start failed; the attempt counts", "err", err)
				return fmt.Errorf("start job: %w", err)
			}
			if start.Final != "" {
				jl().InfoContext(ctx, "job already final; not run again", "state", start.Final)
				m.observe(t.Type(), "skipped", 0)
				return nil
			}

			if log.Enabled(ctx, slog.LevelDebug) {
				jl().DebugContext(ctx, "job started", "queued_for", start.QueuedFor())
			}
			began := time.Now()
			m.started(t.Type())
			slot := &resultSlot{start: start, runID: runID}
			err = next.ProcessTask(context.WithValue(ctx, resultKey{}, slot), t)
			elapsed := time.Since(began)

			if err != nil && ctx.Err() == nil && !IsUnavailable(err) && !errors.Is(err, asynq.SkipRetry) && pingPostgres(ctx, st) != nil {
				// The handler failed while Postgres is away: most likely
				// because of it, so the attempt does not count.
				err = &Unavailable{Err: err}
			}
			state, msg := outcome(ctx, err, retried, maxRetry)
			ferr := st.FinishJob(bg, id, runID, state, slot.data, msg)
			if ferr != nil && err == nil && waitForPostgres(ctx, st) == nil {
				// The result is in hand: record it once Postgres is back
				// rather than run the task again.
				ferr = st.FinishJob(bg, id, runID, state, slot.data, msg)
			}
			if ferr != nil {
				jl().ErrorContext(ctx, "job state not recorded", "state", state, "err", ferr)
				if err == nil {
					// Without the succeeded row the result is not durable:
					// let asynq run it again (handlers are idempotent),
					// without using a retry when Postgres is away.
					err = fmt.Errorf("record success: %w", ferr)
					if pingPostgres(ctx, st) != nil {
						err = &Unavailable{Err: err}
					}
					state = "unrecorded"
				}
			}
			m.observe(t.Type(), state, elapsed)
			switch state {
			case store.JobSucceeded:
				// One line per job would cost more CPU than a ping's
				// handler; the outcome is counted in crmq_tasks_total and
				// kept on the job row.
				if log.Enabled(ctx, slog.LevelDebug) {
					jl().DebugContext(ctx, "job succeeded", "duration", elapsed)
				}
			case store.JobQueued:
				jl().WarnContext(ctx, "job handed back to the queue", "duration", elapsed, "err", err)
			case "unrecorded":
				jl().WarnContext(ctx, "job ran but its success was not recorded; it runs again", "duration", elapsed, "err", err)
			case store.JobCancelled:
				// Neither retried nor archived: the task is done with.
				jl().InfoContext(ctx, "job stopped: cancelled", "duration", elapsed)
				return fmt.Errorf("%w: %w", err, asynq.RevokeTask)
			default:
				jl().WarnContext(ctx, "job attempt failed", "state", state, "duration", elapsed, "err", err)
			}
			return err
		})
	}
}

// Inflight tracks attempts still running. asynq's Shutdown requeues tasks
// still running after its timeout and returns without waiting for their
// handlers; a worker that exits at once would lose their last state write
// (the job would show running while its task waits in the queue).
type Inflight struct{ wg sync.WaitGroup }

// Wait waits until every attempt has written its state, or the timeout
// passes; it tells which.
func (f *Inflight) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// outcome maps a handler's return to the job state, mirroring asynq's own
// decision: SkipRetry or the last allowed attempt fails the job; a context
// cancelled by a stopping worker requeues it, and an attempt Postgres's
// absence spoilt is retried, neither using an attempt.
func outcome(ctx context.Context, err error, retried, maxRetry int) (state, msg string) {
	switch {
	case err == nil:
		return store.JobSucceeded, ""
	case errors.Is(err, ErrCancelled):
		return store.JobCancelled, "cancelled by the client"
	case errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, asynq.SkipRetry):
		return store.JobQueued, "worker stopped during the attempt; requeued"
	case IsUnavailable(err):
		return store.JobRetrying, err.Error() // not the task's failure: no retry used
	case errors.Is(err, asynq.SkipRetry), errors.Is(err, asynq.RevokeTask), retried >= maxRetry:
		return store.JobFailed, err.Error()
	default:
		return store.JobRetrying, err.Error()
	}
}

func systemOutcome(err error) string {
	if err != nil {
		return store.JobFailed
	}
	return store.JobSucceeded
}

func (m *Metrics) started(taskType string) {
	if m != nil && m.Started != nil {
		m.Started.WithLabelValues(taskType).Inc()
	}
}

func (m *Metrics) observe(taskType, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.Outcomes.WithLabelValues(taskType, outcome).Inc()
	if outcome != "skipped" {
		m.Duration.WithLabelValues(taskType, outcome).Observe(d.Seconds())
	}
}

// PostgresWait bounds how long an attempt holds its worker slot waiting
// for Postgres to answer again before it hands the task back. A variable
// so tests can shorten it; set it before any worker starts.
var PostgresWait = 15 * time.Second

// pingPostgres asks Postgres for a sign of life, in at most two seconds.
func pingPostgres(ctx context.Context, st JobStore) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return st.PingContext(pctx)
}

// waitForPostgres returns nil as soon as Postgres answers, or an error
// after PostgresWait, a second before the task's deadline (asynq counts an
// attempt past its deadline as failed, whatever the handler returns), or
// when the task's context ends.
func waitForPostgres(ctx context.Context, st JobStore) error {
	limit := time.Now().Add(PostgresWait)
	if d, ok := ctx.Deadline(); ok && d.Add(-time.Second).Before(limit) {
		limit = d.Add(-time.Second)
	}
	for {
		err := pingPostgres(ctx, st)
		if err == nil {
			return nil
		}
		wait := 500 * time.Millisecond
		if time.Until(limit) < wait {
			return fmt.Errorf("postgres did not answer: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres did not answer: %w", errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
	}
}
