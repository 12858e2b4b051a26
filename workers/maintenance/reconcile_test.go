package maintenance_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/maintenance"
)

type reconcileEnv struct {
	db     *store.DB
	org    store.Org
	opt    asynq.RedisConnOpt
	client *asynq.Client
	insp   *asynq.Inspector
	enq    *jobs.Enqueuer
	rec    maintenance.Reconciler
}

func newReconcileEnv(t *testing.T) *reconcileEnv {
	t.Helper()
	db, _ := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	opt, client, insp := q.Opt, q.Client, q.Inspector
	org, _ := storetest.NewOrg(t, db, "acme")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &reconcileEnv{
		db: db, org: org, opt: opt, client: client, insp: insp,
		enq: &jobs.Enqueuer{DB: db, Client: client, Log: quiet},
		// An hour from now, every row is older than any task's timeout.
		rec: maintenance.Reconciler{Store: db, Queue: insp, Client: client, Margin: time.Minute,
			Now: func() time.Time { return time.Now().Add(time.Hour) }, Log: quiet},
	}
}

// ping enqueues a ping job through the real Enqueuer, with the given
// asynq retry budget and queue.
func (e *reconcileEnv) ping(t *testing.T, queue string, maxRetry int) store.Job {
	t.Helper()
	spec := jobs.PingSpec
	spec.MaxRetry = maxRetry
	b, _ := json.Marshal(jobs.PingPayload{OrgID: e.org.ID, Queue: queue})
	j, _, err := e.enq.Enqueue(context.Background(), jobs.Request{OrgID: e.org.ID, Task: jobs.Task{Spec: spec, Queue: queue, Payload: b}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *reconcileEnv) job(t *testing.T, id string) store.Job {
	t.Helper()
	j, err := e.db.Job(context.Background(), e.org.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *reconcileEnv) taskState(t *testing.T, queue, id string) asynq.TaskState {
	t.Helper()
	info, err := e.insp.GetTaskInfo(queue, id)
	if err != nil {
		t.Fatalf("task %s: %v", id, err)
	}
	return info.State
}

// runBare processes the low queue with handlers but without the job-state
// middleware, so asynq's view moves on while the rows stay as they were:
// what a worker that cannot reach Postgres leaves behind.
func (e *reconcileEnv) runBare(t *testing.T, outcome map[string]error, until func() bool) {
	t.Helper()
	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency: 2, Queues: map[string]int{"low": 1}, TaskCheckInterval: 10 * time.Millisecond,
		IsFailure: workers.IsFailure, Logger: silent{},
	})
	var mu sync.Mutex
	mux := asynq.NewServeMux()
	mux.HandleFunc(jobs.TypePing, func(ctx context.Context, task *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		mu.Lock()
		defer mu.Unlock()
		return outcome[id]
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for deadline := time.Now().Add(10 * time.Second); !until(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("asynq did not reach the wanted state")
		}
	}
}

type silent struct{}

func (silent) Debug(...any) {}
func (silent) Info(...any)  {}
func (silent) Warn(...any)  {}
func (silent) Error(...any) {}
func (silent) Fatal(...any) {}

func TestReconcilerSettlesEveryKindOfStrandedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReconcileEnv(t)

	alive := e.ping(t, "critical", 1)
	lost := e.ping(t, "critical", 1)
	if err := e.insp.DeleteTask("critical", lost.ID); err != nil {
		t.Fatal(err)
	}
	givenUp := e.ping(t, "critical", 1)
	if err := e.insp.DeleteTask("critical", givenUp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE jobs SET requeues = $2 WHERE id = $1`, givenUp.ID, maintenance.MaxRequeues); err != nil {
		t.Fatal(err)
	}
	parked := e.ping(t, "low", 0)    // archived after an attempt that found Postgres away
	failed := e.ping(t, "low", 0)    // archived after a real error nobody recorded
	completed := e.ping(t, "low", 1) // completed, but its success never reached the row
	e.runBare(t, map[string]error{
		parked.ID:    &workers.Unavailable{Err: errors.New("start job: connection refused")},
		failed.ID:    errors.New("upstream exploded"),
		completed.ID: nil,
	}, func() bool {
		a, _ := e.insp.GetTaskInfo("low", parked.ID)
		b, _ := e.insp.GetTaskInfo("low", failed.ID)
		c, _ := e.insp.GetTaskInfo("low", completed.ID)
		return a != nil && b != nil && c != nil && a.State == asynq.TaskStateArchived &&
			b.State == asynq.TaskStateArchived && c.State == asynq.TaskStateCompleted
	})

	res, err := e.rec.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 6 || res.Alive != 1 || res.PutBack != 3 || res.Failed != 2 || res.Unchanged != 0 {
		t.Errorf("result = %+v, want 6 checked: 1 alive, 3 put back, 2 failed", res)
	}

	if j := e.job(t, alive.ID); j.State != store.JobQueued || j.Error != nil || e.taskState(t, "critical", alive.ID) != asynq.TaskStatePending {
		t.Errorf("alive job touched: %+v", j)
	}
	for _, tc := range []struct {
		id, queue, reason string
	}{
		{lost.ID, "critical", "lost by the queue after 0 attempts; put back on queue critical"},
		{parked.ID, "low", "archived while Postgres was unreachable after 0 attempts; put back on queue low"},
		{completed.ID, "low", "completed without a recorded outcome after 0 attempts; put back on queue low"},
	} {
		j := e.job(t, tc.id)
		var requeues int
		_ = e.db.GetContext(ctx, &requeues, `SELECT requeues FROM jobs WHERE id = $1`, tc.id)
		if j.State != store.JobQueued || requeues != 1 || j.Error == nil || *j.Error != tc.reason {
			t.Errorf("put-back job %s: %+v requeues %d error %q, want queued, 1, %q", tc.id, j, requeues, deref(j.Error), tc.reason)
		}
		if s := e.taskState(t, tc.queue, tc.id); s != asynq.TaskStatePending {
			t.Errorf("put-back task %s is %s in asynq, want pending", tc.id, s)
		}
	}
	for _, tc := range []struct{ id, reason string }{
		{givenUp.ID, "lost by the queue after 0 attempts; already put back 3 times"},
		{failed.ID, "the queue gave up after 1 attempts: upstream exploded"},
	} {
		j := e.job(t, tc.id)
		if j.State != store.JobFailed || j.FinishedAt == nil || deref(j.Error) != tc.reason {
			t.Errorf("job %s: %+v error %q, want failed with %q", tc.id, j, deref(j.Error), tc.reason)
		}
	}
	// The oldest job still open is the alive one: the watermark stops there.
	wm, err := e.db.ReconcileWatermark(ctx)
	if err != nil || !wm.Equal(alive.CreatedAt) {
		t.Errorf("watermark %s (%v), want the alive job's creation %s", wm, err, alive.CreatedAt)
	}
}

// A child job the queue gave up on (its retries used by crashes, say) is
// failed, and its parent, whose task completed long ago and whose row its
// children keep fresh, runs again at once to settle it.
func TestReconcilerWakesTheParentOfAChildItFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReconcileEnv(t)
	parent := e.ping(t, "low", 1)
	spec := jobs.PingSpec
	spec.MaxRetry = 0
	b, _ := json.Marshal(jobs.PingPayload{OrgID: e.org.ID, Queue: "low"})
	child, _, err := e.enq.Enqueue(ctx, jobs.Request{OrgID: e.org.ID, TaskID: parent.ID + ".1", Task: jobs.Task{Spec: spec, Queue: "low", Payload: b}})
	if err != nil {
		t.Fatal(err)
	}
	e.runBare(t, map[string]error{parent.ID: nil, child.ID: errors.New("worker crashed")}, func() bool {
		p, _ := e.insp.GetTaskInfo("low", parent.ID)
		c, _ := e.insp.GetTaskInfo("low", child.ID)
		return p != nil && c != nil && p.State == asynq.TaskStateCompleted && c.State == asynq.TaskStateArchived
	})
	// The parent handed its row to its children, which moved it lately (in
	// the reconciler's clock, an hour ahead).
	if _, err := e.db.ExecContext(ctx, `UPDATE jobs SET state = 'running', updated_at = now() + interval '1 hour' WHERE id = $1`, parent.ID); err != nil {
		t.Fatal(err)
	}
	res, err := e.rec.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.PutBack != 1 {
		t.Errorf("result = %+v, want the child failed and its parent put back", res)
	}
	if j := e.job(t, child.ID); j.State != store.JobFailed {
		t.Errorf("child %+v, want failed", j)
	}
	want := "a child failed for good after 0 attempts; put back on queue low"
	if j := e.job(t, parent.ID); j.State != store.JobQueued || deref(j.Error) != want {
		t.Errorf("parent %+v error %q, want queued with %q", j, deref(j.Error), want)
	}
	if s := e.taskState(t, "low", parent.ID); s != asynq.TaskStatePending {
		t.Errorf("parent task is %s in asynq, want pending", s)
	}
}

func TestReconcilerLeavesRecentJobsAndMovesTheWatermark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReconcileEnv(t)
	lost := e.ping(t, "critical", 1)
	if err := e.insp.DeleteTask("critical", lost.ID); err != nil {
		t.Fatal(err)
	}

	// Now: the row is younger than a ping's timeout plus the margin.
	young := e.rec
	young.Now = time.Now
	res, err := young.Reconcile(ctx)
	if err != nil || res.Checked != 0 {
		t.Fatalf("a fresh job was looked at: %+v, %v", res, err)
	}
	if j := e.job(t, lost.ID); j.State != store.JobQueued || j.Error != nil {
		t.Fatalf("fresh job touched: %+v", j)
	}

	// An hour later it is put back; once it succeeds, the watermark
	// passes it and the next run reads nothing before it.
	if _, err := e.rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE jobs SET state = 'succeeded' WHERE id = $1`, lost.ID); err != nil {
		t.Fatal(err)
	}
	res, err = e.rec.Reconcile(ctx)
	if err != nil || res.Checked != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	wm, _ := e.db.ReconcileWatermark(ctx)
	if !wm.After(lost.CreatedAt) {
		t.Fatalf("watermark %s did not pass the settled job created %s", wm, lost.CreatedAt)
	}
}

// Redis away: the run stops with an error and changes nothing.
func TestReconcilerChangesNothingWhenRedisIsAway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReconcileEnv(t)
	j := e.ping(t, "critical", 1)
	down := asynq.NewInspector(asynq.RedisClientOpt{Addr: "127.0.0.1:1"})
	defer down.Close()
	rec := e.rec
	rec.Queue = down
	if _, err := rec.Reconcile(ctx); err == nil || !strings.Contains(err.Error(), "inspect task") {
		t.Fatalf("run with Redis away: %v, want an inspect error", err)
	}
	if got := e.job(t, j.ID); got.State != store.JobQueued || got.Error != nil {
		t.Fatalf("job changed while Redis was away: %+v", got)
	}
	if wm, _ := e.db.ReconcileWatermark(ctx); wm.After(j.CreatedAt) {
		t.Fatalf("watermark moved to %s while Redis was away", wm)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
