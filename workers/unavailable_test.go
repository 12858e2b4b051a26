package workers_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
)

func TestMain(m *testing.M) {
	// Attempts wait half a second for Postgres here, not fifteen, so the
	// outage tests see tasks handed back several times in a few seconds.
	workers.PostgresWait = 500 * time.Millisecond
	os.Exit(m.Run())
}

// outageEnv runs a worker whose Postgres goes through a relay the test can
// sever, with crmq's retry policy (IsFailure, RetryDelay); the test's own
// reads and the Enqueuer use a direct connection.
type outageEnv struct {
	env
	cut   *storetest.Cut
	calls atomic.Int32
}

func newOutageEnv(t *testing.T, hold time.Duration) *outageEnv {
	t.Helper()
	direct, viaRelay, cut := storetest.NewCutDB(t, 8)
	q := storetest.NewQueue(t)
	opt, client, insp := q.Opt, q.Client, q.Inspector
	org, _ := storetest.NewOrg(t, direct, "outage")
	e := &outageEnv{env: env{db: direct, opt: opt, enq: &jobs.Enqueuer{DB: direct, Client: client, Log: quiet}, org: org, client: client, insp: insp}, cut: cut}

	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          time.Second,
		RetryDelayFunc:           workers.RetryDelay,
		IsFailure:                workers.IsFailure,
		Logger:                   asynqQuiet{},
	})
	mux := asynq.NewServeMux()
	mux.Use(workers.JobState(viaRelay, quiet, workers.NewMetrics(), nil))
	mux.Handle(outageSpec.Type, workers.Handle(viaRelay, func(ctx context.Context, job workers.Job[jobs.OrgPayload]) (result, error) {
		n := e.calls.Add(1)
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
		return result{Calls: n}, nil
	}))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return e
}

// outageSpec allows one retry, like a ping: two attempts lost to an outage
// would archive it if they counted.
var outageSpec = jobs.Spec{Type: "test:outage", Queue: jobs.QueueDefault, MaxRetry: 1, Timeout: 20 * time.Second, Retention: time.Minute}

// Tasks dequeued while Postgres is away are handed back again and again
// without using a retry; once Postgres answers, every job succeeds on its
// first counted attempt.
func TestPostgresAwayAtStartUsesNoRetries(t *testing.T) {
	t.Parallel()
	e := newOutageEnv(t, 50*time.Millisecond)
	e.cut.Down()
	var ids []string
	for range 6 {
		ids = append(ids, e.enqueue(t, outageSpec).ID)
	}
	// Wait until asynq holds a task parked for a retry by an outage,
	// with no retry used.
	bounced := false
	for deadline := time.Now().Add(10 * time.Second); !bounced && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		tasks, _ := e.insp.ListRetryTasks(outageSpec.Queue)
		for _, ti := range tasks {
			if ti.Retried != 0 || !strings.HasPrefix(ti.LastErr, workers.UnavailablePrefix) {
				t.Fatalf("a task parked by the outage: retried %d, last error %q", ti.Retried, ti.LastErr)
			}
			bounced = true
		}
	}
	if !bounced {
		t.Fatal("no task was handed back while Postgres was away")
	}
	time.Sleep(4 * time.Second) // several more rounds of hand-backs
	if n := e.calls.Load(); n != 0 {
		t.Fatalf("the handler ran %d times while Postgres was away", n)
	}
	e.cut.Up()
	for _, id := range ids {
		j := e.waitFinal(t, id)
		if j.State != store.JobSucceeded || j.Attempts != 1 {
			t.Fatalf("job %s after the outage: %+v (error %s), want succeeded on attempt 1", id, j, deref(j.Error))
		}
	}
}

// A task whose work is done while Postgres is away cannot record its
// success; it runs again once Postgres answers, without using a retry.
func TestPostgresAwayAtFinishRunsAgainWithoutUsingARetry(t *testing.T) {
	t.Parallel()
	e := newOutageEnv(t, time.Second)
	var ids []string
	for range 3 {
		ids = append(ids, e.enqueue(t, outageSpec).ID)
	}
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			j, err := e.db.Job(context.Background(), e.org.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == store.JobRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s never ran: %+v", id, j)
			}
		}
	}
	e.cut.Down()
	time.Sleep(4 * time.Second) // the holds end; recording fails; tasks are handed back
	e.cut.Up()
	for _, id := range ids {
		j := e.waitFinal(t, id)
		if j.State != store.JobSucceeded || j.Attempts != 1 {
			t.Fatalf("job %s after the outage: %+v (error %s), want succeeded, no retry used", id, j, deref(j.Error))
		}
	}
	if n := e.calls.Load(); n < 2*int32(len(ids)) {
		t.Fatalf("handler ran %d times, want each task run again after its unrecorded success", n)
	}
}
