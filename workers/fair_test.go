package workers_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/fair"
)

// fairEnv is a worker with the real middleware chain (limiter, then job
// state), the real IsFailure and RetryDelay, and an enqueuer that marks
// orgs as waiting.
type fairEnv struct {
	env
	lim     *fair.Limiter
	metrics *workers.Metrics
	running sync.Map // org id -> *atomic.Int32
	peak    sync.Map // org id -> *atomic.Int32
	start   func()   // starts the worker
}

func newFairEnv(t *testing.T, concurrency int, caps map[string]int, hold func(orgID int64) time.Duration) *fairEnv {
	t.Helper()
	e := &fairEnv{env: newEnv(t), metrics: workers.NewMetrics()}
	opt := e.opt.(asynq.RedisClientOpt)
	rdb := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB, Password: opt.Password})
	t.Cleanup(func() { rdb.Close() })
	e.lim = &fair.Limiter{RDB: rdb, Caps: caps, Queues: jobs.Queues, Log: quiet, M: fair.NewMetrics(), LastWait: 300 * time.Millisecond}
	e.enq.Client = fair.Marking{TaskEnqueuer: e.client, L: e.lim}
	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency:              concurrency,
		Queues:                   map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           workers.RetryDelay,
		IsFailure:                workers.IsFailure,
		Logger:                   asynqQuiet{},
	})
	mux := asynq.NewServeMux()
	mux.Use(e.lim.Middleware(), workers.JobState(e.db, quiet, e.metrics, nil))
	counter := func(m *sync.Map, org int64) *atomic.Int32 {
		v, _ := m.LoadOrStore(org, &atomic.Int32{})
		return v.(*atomic.Int32)
	}
	mux.Handle(testSpec.Type, workers.Handle(e.db, func(ctx context.Context, j workers.Job[jobs.OrgPayload]) (result, error) {
		n := counter(&e.running, j.Payload.OrgID).Add(1)
		defer counter(&e.running, j.Payload.OrgID).Add(-1)
		p := counter(&e.peak, j.Payload.OrgID)
		for old := p.Load(); n > old && !p.CompareAndSwap(old, n); old = p.Load() {
		}
		time.Sleep(hold(j.Payload.OrgID))
		return result{}, nil
	}))
	e.start = func() {
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	return e
}

func (e *fairEnv) peakOf(org int64) int32 {
	v, ok := e.peak.Load(org)
	if !ok {
		return 0
	}
	return v.(*atomic.Int32).Load()
}

func (e *fairEnv) enqueueFor(t *testing.T, org int64, spec jobs.Spec) store.Job {
	t.Helper()
	b, _ := json.Marshal(jobs.OrgPayload{OrgID: org})
	j, _, err := e.enq.Enqueue(context.Background(), jobs.Request{OrgID: org, Task: jobs.Task{Spec: spec, Queue: spec.Queue, Payload: b}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Work-conserving: a lone org's 30 tasks of 200 ms on 10 slots drain in
// about 0.6 s although its cap is 2 (at the cap they would take 3 s).
func TestFairLoneOrgDrainsOnEverySlot(t *testing.T) {
	t.Parallel()
	e := newFairEnv(t, 10, map[string]int{"default": 2}, func(int64) time.Duration { return 200 * time.Millisecond })
	// Enqueued before the worker starts, so the drain is timed alone.
	var ids []string
	for range 30 {
		ids = append(ids, e.enqueueFor(t, e.org.ID, testSpec).ID)
	}
	began := time.Now()
	e.start()
	for _, id := range ids {
		if j := e.waitFinalOf(t, e.org.ID, id, 30*time.Second); j.State != store.JobSucceeded {
			t.Fatalf("job %+v", j)
		}
	}
	took := time.Since(began)
	t.Logf("30 tasks of 200 ms, 10 slots, cap 2, org alone: %s, peak %d running", took.Round(time.Millisecond), e.peakOf(e.org.ID))
	if took > 2*time.Second || e.peakOf(e.org.ID) < 8 {
		t.Fatalf("a lone org was held to its cap: %s, peak %d", took, e.peakOf(e.org.ID))
	}
	if b := counter(t, e.lim.M.Bounced, "default"); b != 0 {
		t.Fatalf("%v tasks of a lone org handed back", b)
	}
}

// With another org waiting, an org over its cap is handed back: the task
// is not retried, not archived (not even on its last allowed attempt), its
// job row and crmq's task metrics show one successful attempt, and the
// other org's task starts while the first org's backlog waits.
func TestFairBusyOrgIsHandedBackNotFailed(t *testing.T) {
	t.Parallel()
	holdA := time.Second
	var orgA atomic.Int64
	var aWhileB atomic.Int32
	var e *fairEnv
	e = newFairEnv(t, 4, map[string]int{"default": 1}, func(org int64) time.Duration {
		if org == orgA.Load() {
			return holdA
		}
		// Org B's task: how many of org A's run in its middle?
		time.Sleep(holdA / 2)
		if v, ok := e.running.Load(orgA.Load()); ok {
			aWhileB.Store(v.(*atomic.Int32).Load())
		}
		return holdA / 2
	})
	orgA.Store(e.org.ID)
	e.start()
	orgB, _ := storetest.NewOrg(t, e.db, "neighbour")
	once := testSpec
	once.MaxRetry = 1
	last := testSpec
	last.MaxRetry = 0 // every attempt is the last: handing it back would archive it

	var a []string
	for range 12 { // org A alone: 4 start on the 4 slots, 8 wait
		a = append(a, e.enqueueFor(t, e.org.ID, once).ID)
	}
	time.Sleep(100 * time.Millisecond)
	b := e.enqueueFor(t, orgB.ID, once)
	a = append(a, e.enqueueFor(t, e.org.ID, last).ID)
	jb := e.waitFinalOf(t, orgB.ID, b.ID, 30*time.Second)
	if jb.State != store.JobSucceeded {
		t.Fatalf("org B's job %+v", jb)
	}
	// Org B's task waited for a slot of org A's first four, not for the
	// eight more of org A's queued before it (3 s without the cap).
	if d := jb.StartedAt.Sub(jb.CreatedAt); d > 2*holdA {
		t.Fatalf("org B's task waited %s behind org A", d)
	}
	if n := aWhileB.Load(); n > 2 { // its one slot, plus the last-attempt task run over the cap
		t.Fatalf("org A ran %d at once while org B waited, cap 1", n)
	}
	for _, id := range a {
		j := e.waitFinalOf(t, e.org.ID, id, 30*time.Second)
		if j.State != store.JobSucceeded || j.Attempts != 1 || j.Error != nil {
			t.Fatalf("org A's job %+v (error %q)", j, deref(j.Error))
		}
		// The row is written before asynq settles the task.
		var info *asynq.TaskInfo
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var err error
			if info, err = e.insp.GetTaskInfo("default", id); err != nil {
				t.Fatal(err)
			}
			if info.State != asynq.TaskStateActive || time.Now().After(deadline) {
				break
			}
		}
		if info.State != asynq.TaskStateCompleted || info.Retried != 0 {
			t.Fatalf("task %s: %v, retried %d", id, info.State, info.Retried)
		}
	}
	bounced := counter(t, e.lim.M.Bounced, "default")
	overcap := counter(t, e.lim.M.Admitted, "default", "overcap")
	t.Logf("handed back %v times; %v run over the cap on its last attempt", bounced, overcap)
	if bounced == 0 {
		t.Fatal("no task was handed back: the cap never bit")
	}
	for _, outcome := range []string{store.JobRetrying, store.JobFailed, store.JobQueued} {
		if n := counter(t, e.metrics.Outcomes, testSpec.Type, outcome); n != 0 {
			t.Fatalf("crmq_tasks_total{outcome=%s} = %v", outcome, n)
		}
	}
	if n := counter(t, e.metrics.Outcomes, testSpec.Type, store.JobSucceeded); n != 14 {
		t.Fatalf("crmq_tasks_total{outcome=succeeded} = %v, want 14", n)
	}
	if arch, _ := e.insp.ListArchivedTasks("default"); len(arch) != 0 {
		t.Fatalf("archived: %v", strings.Join(func() []string {
			var s []string
			for _, t := range arch {
				s = append(s, t.ID+": "+t.LastErr)
			}
			return s
		}(), "; "))
	}
}

// counter reads the value of c's series with these label values (0 when
// the series does not exist).
func counter(t *testing.T, c *prometheus.CounterVec, values ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			ok := len(m.GetLabel()) == len(values)
			for _, l := range m.GetLabel() {
				ok = ok && slices.Contains(values, l.GetValue())
			}
			if ok {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
