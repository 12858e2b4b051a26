package workers_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

func (e env) row(t *testing.T, id string) store.Job {
	t.Helper()
	j, err := e.db.Job(context.Background(), e.org.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Progress lands on the row while the attempt runs, starts again from 0
// on the next attempt, and is 100 on success.
func TestProgressIsRecordedPerAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	var atStart atomic.Int32
	var calls atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			n := calls.Add(1)
			cur, _ := e.db.Job(ctx, e.org.ID, job.ID)
			atStart.Store(int32(cur.Progress))
			if err := job.Progress(ctx, 30*int(n)); err != nil {
				return result{}, err
			}
			<-release
			if n == 1 {
				return result{}, errors.New("first attempt fails")
			}
			return result{Calls: n}, nil
		}))
	})
	id := e.enqueue(t, testSpec).ID
	waitUntil(t, "progress 30", func() bool { j := e.row(t, id); return j.State == store.JobRunning && j.Progress == 30 })
	release <- struct{}{}
	waitUntil(t, "progress 60 on attempt 2", func() bool { j := e.row(t, id); return j.Attempts == 2 && j.Progress == 60 })
	if p := atStart.Load(); p != 0 {
		t.Errorf("attempt 2 started with progress %d, want 0", p)
	}
	release <- struct{}{}
	if j := e.waitFinal(t, id); j.State != store.JobSucceeded || j.Progress != 100 {
		t.Fatalf("final: %+v", j)
	}
}

// A handler working in batches learns of a cancel from Progress and stops;
// the task is done with (revoked), not retried or archived. The cancel here
// reaches only the row (no asynq cancellation), as when its message is lost.
func TestCancelStopsABatchHandlerAtItsNextProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var batches atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			for i := 1; i <= 1000; i++ {
				batches.Add(1)
				time.Sleep(20 * time.Millisecond)
				if err := job.Progress(ctx, i/10); err != nil {
					return result{}, err
				}
			}
			return result{}, nil
		}))
	})
	id := e.enqueue(t, testSpec).ID
	waitUntil(t, "a few batches", func() bool { return batches.Load() >= 5 })
	rowOnly := &jobs.Enqueuer{DB: e.db, Client: e.client, Log: quiet}
	if _, err := rowOnly.Cancel(context.Background(), e.org.ID, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stoppedAt := batches.Load()
	time.Sleep(300 * time.Millisecond)
	if n := batches.Load(); n != stoppedAt {
		t.Fatalf("handler still working after the cancel: %d batches, then %d", stoppedAt, n)
	}
	if j := e.row(t, id); j.State != store.JobCancelled || j.FinishedAt == nil {
		t.Fatalf("row after cancel: %+v", j)
	}
	insp := e.insp
	waitUntil(t, "the task revoked", func() bool {
		_, err := insp.GetTaskInfo(testSpec.Queue, id)
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
}

// A running handler that only watches its context is stopped through
// asynq's cancellation; the task is not counted as failed, comes back,
// finds its job cancelled and ends without running again.
func TestCancelRunningJobThroughAsynq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var runs atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			runs.Add(1)
			<-ctx.Done()
			return result{}, ctx.Err()
		}))
	})
	insp := e.insp
	e.enq.Queue = insp
	id := e.enqueue(t, testSpec).ID
	waitUntil(t, "running", func() bool { return e.row(t, id).State == store.JobRunning })
	j, err := e.enq.Cancel(context.Background(), e.org.ID, id)
	if err != nil || j.State != store.JobCancelled {
		t.Fatalf("cancel: %+v, %v", j, err)
	}
	waitUntil(t, "the task finished in asynq", func() bool {
		info, err := insp.GetTaskInfo(testSpec.Queue, id)
		if err == nil && info.Retried != 0 {
			t.Fatalf("the cancel counted as a failed attempt: %+v", info)
		}
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want once", n)
	}
	if j := e.row(t, id); j.State != store.JobCancelled || j.Attempts != 1 {
		t.Fatalf("row: %+v", j)
	}
	// A cancelled job cannot be cancelled again.
	if _, err := e.enq.Cancel(context.Background(), e.org.ID, id); !errors.Is(err, store.ErrJobFinal) {
		t.Fatalf("second cancel: %v, want ErrJobFinal", err)
	}
}

// A job still waiting in its queue is deleted from it.
func TestCancelQueuedJobDeletesItsTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insp := e.insp
	e.enq.Queue = insp
	id := e.enqueue(t, testSpec).ID // no worker runs
	if _, err := e.enq.Cancel(context.Background(), e.org.ID, id); err != nil {
		t.Fatal(err)
	}
	if _, err := insp.GetTaskInfo(testSpec.Queue, id); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("task after cancel: %v, want not found", err)
	}
	if _, err := e.enq.Cancel(context.Background(), e.org.ID+1, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel from another org: %v, want not found", err)
	}
}
