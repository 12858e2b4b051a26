package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/system"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	db     *store.DB
	opt    asynq.RedisConnOpt
	enq    *jobs.Enqueuer
	org    store.Org
	client *asynq.Client
	insp   *asynq.Inspector
}

func newEnv(t *testing.T) env {
	t.Helper()
	db, _ := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	return env{db: db, opt: q.Opt, enq: &jobs.Enqueuer{DB: db, Client: q.Client, Log: quiet}, org: org, client: q.Client, insp: q.Inspector}
}

// serve runs a worker with the real middleware; stop it with the returned func.
func (e env) serve(t *testing.T, shutdown time.Duration, register func(mux *asynq.ServeMux)) func() {
	t.Helper()
	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          shutdown,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 50 * time.Millisecond },
		IsFailure:                workers.IsFailure,
		Logger:                   asynqQuiet{},
	})
	mux := asynq.NewServeMux()
	mux.Use(workers.JobState(e.db, quiet, workers.NewMetrics(), nil))
	register(mux)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Shutdown()
		}
	}
	t.Cleanup(stop)
	return stop
}

type asynqQuiet struct{}

func (asynqQuiet) Debug(...any) {}
func (asynqQuiet) Info(...any)  {}
func (asynqQuiet) Warn(...any)  {}
func (asynqQuiet) Error(...any) {}
func (asynqQuiet) Fatal(...any) {}

var testSpec = jobs.Spec{Type: "test:work", Queue: jobs.QueueDefault, MaxRetry: 2, Timeout: 10 * time.Second, Retention: time.Minute}

func (e env) enqueue(t *testing.T, spec jobs.Spec) store.Job {
	t.Helper()
	b, _ := json.Marshal(jobs.OrgPayload{OrgID: e.org.ID})
	j, _, err := e.enq.Enqueue(context.Background(), jobs.Request{OrgID: e.org.ID, Task: jobs.Task{Spec: spec, Queue: spec.Queue, Payload: b}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitFinal polls the job row until it is final.
func (e env) waitFinal(t *testing.T, id string) store.Job {
	t.Helper()
	return e.waitFinalOf(t, e.org.ID, id, 20*time.Second)
}

// waitFinalOf polls a job row of the org until it is final.
func (e env) waitFinalOf(t *testing.T, org int64, id string, within time.Duration) store.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		j, err := e.db.Job(context.Background(), org, id)
		if err != nil {
			t.Fatal(err)
		}
		if store.JobFinal(j.State) {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %s never reached a final state", id)
	return store.Job{}
}

type result struct {
	Calls int32 `json:"calls"`
}

func TestPingSucceedsWithItsResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(jobs.TypePing, workers.Handle(e.db, system.Ping{}.Run))
	})
	task, _ := jobs.NewPingTask(e.org.ID, "low", 0)
	j, _, err := e.enq.Enqueue(context.Background(), jobs.Request{OrgID: e.org.ID, Task: task})
	if err != nil {
		t.Fatal(err)
	}
	j = e.waitFinal(t, j.ID)
	var r jobs.PingResult
	if j.Result == nil || json.Unmarshal(*j.Result, &r) != nil {
		t.Fatalf("no result on %+v", j)
	}
	if j.State != store.JobSucceeded || j.Attempts != 1 || j.Progress != 100 || r.Host == "" || r.Queue != "low" || r.QueuedMS < 0 {
		t.Fatalf("job %+v result %+v", j, r)
	}
	if j.StartedAt == nil || j.FinishedAt == nil {
		t.Fatalf("timestamps missing: %+v", j)
	}
}

func TestFailedAttemptIsRetriedThenSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	sawRetrying := make(chan string, 1)
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			n := calls.Add(1)
			if n == 1 {
				return result{}, errors.New("transient trouble")
			}
			prev, _ := e.db.Job(ctx, e.org.ID, job.ID)
			sawRetrying <- prev.State
			return result{Calls: n}, nil
		}))
	})
	j := e.waitFinal(t, e.enqueue(t, testSpec).ID)
	if j.State != store.JobSucceeded || j.Attempts != 2 || j.Error != nil {
		t.Fatalf("want succeeded on attempt 2 with no error, got %+v", j)
	}
	if string(*j.Result) != `{"calls": 2}` && string(*j.Result) != `{"calls":2}` {
		t.Fatalf("result %s", *j.Result)
	}
	if s := <-sawRetrying; s != store.JobRunning {
		t.Fatalf("second attempt saw state %q, want running", s)
	}
}

func TestLastAttemptFailsTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			return result{}, fmt.Errorf("attempt %d: upstream said no", calls.Add(1))
		}))
	})
	j := e.waitFinal(t, e.enqueue(t, testSpec).ID)
	if j.State != store.JobFailed || j.Attempts != testSpec.MaxRetry+1 || j.Error == nil || *j.Error != "attempt 3: upstream said no" {
		t.Fatalf("want failed after %d attempts with the last error, got %+v (err %v)", testSpec.MaxRetry+1, j, deref(j.Error))
	}
}

func TestSkipRetryFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			calls.Add(1)
			return result{}, fmt.Errorf("record is a draft: %w", asynq.SkipRetry)
		}))
	})
	j := e.waitFinal(t, e.enqueue(t, testSpec).ID)
	if j.State != store.JobFailed || j.Attempts != 1 || calls.Load() != 1 {
		t.Fatalf("want one failed attempt, got %+v calls=%d", j, calls.Load())
	}
}

func TestSucceededJobIsNotRunAgainOnRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			return result{Calls: calls.Add(1)}, nil
		}))
	})
	j := e.waitFinal(t, e.enqueue(t, testSpec).ID)
	// Deliver the same task id again, as asynq does when a worker dies
	// after the commit but before its ack.
	b, _ := json.Marshal(jobs.OrgPayload{OrgID: e.org.ID})
	if _, err := e.client.Enqueue(asynq.NewTask(testSpec.Type, b, asynq.Queue("critical"), asynq.MaxRetry(1), asynq.Retention(time.Minute)), asynq.TaskID(j.ID)); err != nil {
		t.Fatal(err)
	}
	// The redelivered task must be consumed (completed, since the job is
	// already final), or the test proves nothing.
	insp := e.insp
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := insp.GetTaskInfo("critical", j.ID)
		if err == nil && info.State == asynq.TaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the redelivered task was never consumed: %+v, %v", info, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", calls.Load())
	}
	if got := e.row(t, j.ID); got.State != store.JobSucceeded || got.Attempts != 1 {
		t.Fatalf("row after the redelivery: %+v", got)
	}
}

func TestStoppingWorkerRequeuesAndJobSucceedsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	var finished atomic.Int32
	stop := e.serve(t, 200*time.Millisecond, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			started <- struct{}{}
			<-ctx.Done() // a long job that honours cancellation
			return result{}, ctx.Err()
		}))
	})
	j := e.enqueue(t, testSpec)
	<-started
	stop()
	// asynq requeues after ShutdownTimeout; the middleware marks the row.
	deadline := time.Now().Add(5 * time.Second)
	var got store.Job
	for time.Now().Before(deadline) {
		got, _ = e.db.Job(context.Background(), e.org.ID, j.ID)
		if got.State == store.JobQueued {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.State != store.JobQueued {
		t.Fatalf("after shutdown the job is %q, want queued", got.State)
	}
	e.serve(t, time.Second, func(mux *asynq.ServeMux) {
		mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
			return result{Calls: finished.Add(1)}, nil
		}))
	})
	got = e.waitFinal(t, j.ID)
	if got.State != store.JobSucceeded || finished.Load() != 1 {
		t.Fatalf("want one success after the restart, got %+v runs=%d", got, finished.Load())
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
