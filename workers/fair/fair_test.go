package fair_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers/fair"
)

// newRedis claims the test's own Redis DB and returns two clients on it:
// two worker processes.
func newRedis(t testing.TB) (redis.UniversalClient, redis.UniversalClient) {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := redis.NewClient(opt), redis.NewClient(opt)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func limiter(rdb redis.UniversalClient, caps map[string]int) *fair.Limiter {
	return &fair.Limiter{RDB: rdb, Caps: caps, Queues: jobs.Queues}
}

func try(t *testing.T, l *fair.Limiter, queue string, org int64, id string) fair.Admission {
	t.Helper()
	a, err := l.TryAcquire(context.Background(), queue, org, id, true)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The cap holds across two worker processes while another org waits, and
// a released slot is taken again.
func TestCapHeldAcrossWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, r2 := newRedis(t)
	w1, w2 := limiter(r1, map[string]int{"default": 2}), limiter(r2, map[string]int{"default": 2})
	if err := w1.Mark(ctx, "default", 2, "b-1"); err != nil { // org 2 has work waiting
		t.Fatal(err)
	}
	if a := try(t, w1, "default", 1, "a-1"); a != fair.Free {
		t.Fatalf("first slot: %v", a)
	}
	if a := try(t, w2, "default", 1, "a-2"); a != fair.Free {
		t.Fatalf("second slot on the other worker: %v", a)
	}
	for _, w := range []*fair.Limiter{w1, w2} {
		if a := try(t, w, "default", 1, "a-3"); a != fair.Refused {
			t.Fatalf("third slot while org 2 waits: %v, want refused", a)
		}
	}
	if a := try(t, w2, "default", 1, "a-1"); a != fair.Free {
		t.Fatalf("a holder asking again keeps its slot: %v", a)
	}
	if n, _ := w1.Held(ctx, "default", 1); n != 2 {
		t.Fatalf("held %d, want 2", n)
	}
	// Another queue has its own cap; another org its own slots.
	if a := try(t, w1, "low", 1, "a-4"); a != fair.Free {
		t.Fatalf("low has no cap: %v", a)
	}
	if a := try(t, w1, "default", 2, "b-1"); a != fair.Free {
		t.Fatalf("org 2: %v", a)
	}
	if err := w1.Release("default", 1, "a-1"); err != nil {
		t.Fatal(err)
	}
	if a := try(t, w2, "default", 1, "a-3"); a != fair.Free {
		t.Fatalf("after a release: %v", a)
	}
}

// A worker that dies holding slots frees them when their lease ends; a
// heartbeat keeps a live holder's.
func TestLeaseExpiryFreesACrashedHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, r2 := newRedis(t)
	caps := map[string]int{"low": 1}
	crashed := limiter(r1, caps)
	crashed.Lease = 400 * time.Millisecond
	live := limiter(r2, caps)
	if err := live.Mark(ctx, "low", 9, "other"); err != nil {
		t.Fatal(err)
	}
	if a := try(t, crashed, "low", 1, "held"); a != fair.Free {
		t.Fatal(a)
	}
	// The crashed worker never releases nor renews.
	if a := try(t, live, "low", 1, "next"); a != fair.Refused {
		t.Fatalf("slot of a live lease: %v", a)
	}
	time.Sleep(600 * time.Millisecond)
	if a := try(t, live, "low", 1, "next"); a != fair.Free {
		t.Fatalf("after the lease ended: %v, want the slot", a)
	}
	// Renewed, a lease outlives its first term.
	live.Lease = 400 * time.Millisecond
	for range 3 {
		time.Sleep(200 * time.Millisecond)
		if err := live.Renew(ctx, "low", 1, "next"); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := live.Held(ctx, "low", 1); n != 1 {
		t.Fatalf("renewed lease gone: held %d", n)
	}
}

// Work-conserving: an org alone may take every slot; the cap bites once
// another org has a task waiting, and stops biting a short while after
// that org's last waiting task started.
func TestLoneOrgUsesEverySlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 2})
	l.Linger = 300 * time.Millisecond
	for i := range 10 {
		want := fair.Free
		if i >= 2 {
			want = fair.Alone
		}
		if a := try(t, l, "default", 1, "a-"+string(rune('0'+i))); a != want {
			t.Fatalf("task %d of a lone org: %v, want %v", i, a, want)
		}
	}
	if err := l.Mark(ctx, "default", 2, "b-1"); err != nil {
		t.Fatal(err)
	}
	if a := try(t, l, "default", 1, "a-x"); a != fair.Refused {
		t.Fatalf("with org 2 waiting: %v", a)
	}
	// Org 2's task starts: its demand lingers, then ends.
	if a := try(t, l, "default", 2, "b-1"); a != fair.Free {
		t.Fatal(a)
	}
	if a := try(t, l, "default", 1, "a-x"); a != fair.Refused {
		t.Fatalf("within org 2's linger: %v", a)
	}
	time.Sleep(500 * time.Millisecond)
	if a := try(t, l, "default", 1, "a-x"); a != fair.Alone {
		t.Fatalf("after org 2's linger: %v, want alone", a)
	}
}

// A task without an org, or a limiter with no caps, is not limited; a
// refused task marks its own org as waiting (tasks no Marking client
// enqueued: retries, children of other paths).
func TestRefusedTaskMarksItsOrg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 1})
	if a := try(t, l, "default", 1, "a-1"); a != fair.Free {
		t.Fatal(a)
	}
	if a := try(t, l, "default", 2, "b-1"); a != fair.Free {
		t.Fatal(a)
	}
	// Org 2 is over its cap, org 1 not waiting (its demand lingers only
	// DefaultLinger after its start): refused only if org 1 is in demand.
	if a := try(t, l, "default", 2, "b-2"); a != fair.Refused {
		t.Fatalf("org 1 started a task within its linger: %v", a)
	}
	// b-2 is now waiting, but org 2 holds its cap: it could not take a
	// slot org 1 leaves, so org 1 takes it rather than let it idle.
	if a := try(t, l, "default", 1, "a-2"); a != fair.Idle {
		t.Fatalf("org 2 waits at its cap: %v, want idle", a)
	}
	// Org 2's running task ends: its waiting b-2 could take a slot now,
	// so org 1 is capped.
	if err := l.Release("default", 2, "b-1"); err != nil {
		t.Fatal(err)
	}
	if a := try(t, l, "default", 1, "a-3"); a != fair.Refused {
		t.Fatalf("org 2 has a refused task waiting under its cap: %v", a)
	}
	if fair.OrgOf([]byte(`{"org_id":42,"queue":"low"}`)) != 42 || fair.OrgOf([]byte(`{}`)) != 0 || fair.OrgOf([]byte(`x`)) != 0 {
		t.Fatal("OrgOf")
	}
	if err := (&fair.Limiter{RDB: r1}).Mark(ctx, "default", 1, "x"); err != nil {
		t.Fatal(err)
	}
}

// A task a worker started before its enqueuer's mark arrived (the mark
// follows asynq's enqueue, and a polling worker may take the task in
// between) leaves no waiting task behind: its org is not in demand, so a
// lone neighbour still uses every slot. Before, the late mark made the
// org look busy for the whole Stale period (10 minutes).
func TestAMarkAfterTheStartIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 1})
	l.Linger = 200 * time.Millisecond
	if a := try(t, l, "default", 2, "b-1"); a != fair.Free { // started before its mark
		t.Fatal(a)
	}
	if err := l.Release("default", 2, "b-1"); err != nil { // and finished
		t.Fatal(err)
	}
	if err := l.Mark(ctx, "default", 2, "b-1"); err != nil { // the late mark
		t.Fatal(err)
	}
	if n, err := r1.ZCard(ctx, "crmq:fair:wait:default:2").Result(); err != nil || n != 0 {
		t.Fatalf("a started task left waiting: %d (%v)", n, err)
	}
	time.Sleep(300 * time.Millisecond) // org 2's linger after its start
	for i := range 3 {
		want := fair.Free
		if i >= 1 {
			want = fair.Alone
		}
		if a := try(t, l, "default", 1, "a-"+string(rune('0'+i))); a != want {
			t.Fatalf("task %d of the org now alone: %v, want %v", i, a, want)
		}
	}
}

// A cap given as a share is taken of the slots of every live worker
// process: two workers of 10 slots and a 40% share make a cap of 8; when
// one leaves, 4.
func TestShareOfTheFleet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, r2 := newRedis(t)
	w1, w2 := limiter(r1, map[string]int{"default": 4}), limiter(r2, map[string]int{"default": 4})
	w1.Shares = map[string]float64{"default": 0.4}
	w2.Shares = w1.Shares
	// tryCap admits a task and returns the cap the admission script applied.
	tryCap := func(l *fair.Limiter, org int64, id string) (fair.Admission, int64) {
		t.Helper()
		a, c, err := l.TryAcquireCap(ctx, "default", org, id)
		if err != nil {
			t.Fatal(err)
		}
		return a, c
	}
	if a, c := tryCap(w1, 5, "e-1"); a != fair.Free || c != 4 {
		t.Fatalf("with no worker registered: %v under a cap of %d; want free under the fixed 4", a, c)
	}
	if err := w1.Release("default", 5, "e-1"); err != nil {
		t.Fatal(err)
	}
	stop1 := w1.Register(ctx, 10)
	defer stop1()
	if a, c := tryCap(w1, 3, "c-1"); a != fair.Free || c != 4 { // 40% of a fleet of 10
		t.Fatalf("one worker of 10: %v under a cap of %d; want free under 4", a, c)
	}
	if err := w1.Release("default", 3, "c-1"); err != nil {
		t.Fatal(err)
	}
	stop2 := w2.Register(ctx, 10)
	if err := w1.Mark(ctx, "default", 2, "b-1"); err != nil { // org 2 waits, under its cap
		t.Fatal(err)
	}
	for i := range 9 {
		want := fair.Free
		if i == 8 {
			want = fair.Refused
		}
		if a, c := tryCap([]*fair.Limiter{w1, w2}[i%2], 1, fmt.Sprintf("a-%d", i)); a != want || c != 8 {
			t.Fatalf("org 1's task %d with two workers of 10: %v under a cap of %d, want %v under 8", i, a, c, want)
		}
	}
	stop2()
	for i := range 4 {
		if err := w1.Release("default", 1, fmt.Sprintf("a-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if a, c := tryCap(w1, 1, "a-9"); a != fair.Refused || c != 4 { // holds 4 of a cap of 4 again
		t.Fatalf("org 1's task after a worker left: %v under a cap of %d, want refused under 4", a, c)
	}
}

// Two orgs backlogged on one queue use every slot between them: once each
// holds its cap, neither could take a slot the other leaves, so over-cap
// tasks are admitted ("idle") rather than leave slots empty; a third org
// with a task waiting under its cap stops that.
func TestTwoBackloggedOrgsLeaveNoSlotIdle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 4})
	for i := range 10 {
		for _, org := range []int64{1, 2} {
			if err := l.Mark(ctx, "default", org, fmt.Sprintf("%d-%d", org, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	admitted := map[fair.Admission]int{}
	for i := range 5 { // ten slots, taken in turn
		for _, org := range []int64{1, 2} {
			a := try(t, l, "default", org, fmt.Sprintf("%d-%d", org, i))
			if a == fair.Refused {
				t.Fatalf("task %d of org %d refused with slots free and the other org at its cap", i, org)
			}
			admitted[a]++
		}
	}
	if admitted[fair.Free] != 8 || admitted[fair.Idle] != 2 {
		t.Fatalf("admissions %v, want 8 free and 2 idle", admitted)
	}
	if err := l.Mark(ctx, "default", 3, "3-0"); err != nil {
		t.Fatal(err)
	}
	if a := try(t, l, "default", 1, "1-5"); a != fair.Refused {
		t.Fatalf("with org 3 waiting under its cap: %v, want refused", a)
	}
}

// fakeEnqueuer answers as asynq's client does, without Redis.
type fakeEnqueuer struct{ queue string }

func (f fakeEnqueuer) EnqueueContext(_ context.Context, task *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{ID: "t-" + string(task.Payload()[10:11]), Queue: f.queue}, nil
}

// NewMarking's marks are sent in the background and land: the enqueued
// task's org is waiting, and its neighbour is capped.
func TestBackgroundMarksLand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 1})
	m := fair.NewMarking(fakeEnqueuer{queue: "default"}, l)
	if _, err := m.EnqueueContext(ctx, asynq.NewTask("system:ping", []byte(`{"org_id":7}`))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := r1.ZCard(ctx, "crmq:fair:wait:default:7").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background mark never landed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a := try(t, l, "default", 1, "a-1"); a != fair.Free {
		t.Fatal(a)
	}
	if a := try(t, l, "default", 1, "a-2"); a != fair.Refused {
		t.Fatalf("org 7 marked as waiting: %v, want refused", a)
	}
}

// countTrips counts the round trips a client makes (a pipeline is one),
// and the commands it sends.
type countTrips struct{ n, cmds atomic.Int64 }

func (c *countTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); c.cmds.Add(1); return next(ctx, cmd) }
}
func (c *countTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		c.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Marks sent in a burst share round trips, and every one lands, also
// after Redis forgot the limiter's scripts (a restart, SCRIPT FLUSH).
func TestBackgroundMarksShareRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	trips := &countTrips{}
	r1.AddHook(trips)
	l := limiter(r1, map[string]int{"default": 1})
	m := fair.NewMarking(idEnqueuer{queue: "default"}, l)
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := m.EnqueueContext(ctx, asynq.NewTask("system:ping", fmt.Appendf(nil, `{"org_id":7,"n":%d}`, i))); err != nil {
				t.Fatal(err)
			}
		}
		m.Flush()
	}
	send(0, 100)
	if n, cmds := trips.n.Load(), trips.cmds.Load(); n > 20 || cmds > 20 {
		t.Errorf("100 marks took %d round trips and %d commands", n, cmds)
	}
	if err := r1.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	send(100, 200)
	if n, err := r1.ZCard(ctx, "crmq:fair:wait:default:7").Result(); err != nil || n != 200 {
		t.Fatalf("%d marks landed (%v), want 200", n, err)
	}

	// Marks of two orgs and two queues, one task of them already started:
	// each lands in its own wait set, the started one nowhere.
	m2 := fair.NewMarking(idEnqueuer{queue: "low"}, limiter(r1, map[string]int{"default": 1, "low": 1}))
	if err := r1.ZAdd(ctx, "crmq:fair:started:low:8", redis.Z{Score: 1, Member: `{"org_id":8,"n":0}`}).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		org := 8 + i%2
		if _, err := m2.EnqueueContext(ctx, asynq.NewTask("system:ping", fmt.Appendf(nil, `{"org_id":%d,"n":%d}`, org, i))); err != nil {
			t.Fatal(err)
		}
	}
	m2.Flush()
	for org, want := range map[int]int64{8: 299, 9: 300} {
		if n, err := r1.ZCard(ctx, fmt.Sprintf("crmq:fair:wait:low:%d", org)).Result(); err != nil || n != want {
			t.Errorf("org %d: %d marks landed (%v), want %d", org, n, err, want)
		}
		if s, err := r1.ZScore(ctx, "crmq:fair:demand", strconv.Itoa(org)).Result(); err != nil || s == 0 {
			t.Errorf("org %d not in demand: %v %v", org, s, err)
		}
	}
	if n, _ := r1.ZScore(ctx, "crmq:fair:wait:low:8", `{"org_id":8,"n":0}`).Result(); n != 0 {
		t.Error("a started task was marked as waiting")
	}
}

// idEnqueuer answers as asynq's client does, a task id per payload.
type idEnqueuer struct{ queue string }

func (f idEnqueuer) EnqueueContext(_ context.Context, task *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{ID: string(task.Payload()), Queue: f.queue}, nil
}

// A slot taken under the cap is kept for the org's next task in the same
// process, which then starts without asking Redis (and still leaves its
// wait set); a slot taken over the cap, or admitted longer ago than
// ReuseFor, is not reused; a kept slot nobody takes is released after
// Keep.
func TestKeptSlotServesTheOrgsNextTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, _ := newRedis(t)
	l := limiter(r1, map[string]int{"default": 1})
	l.M = fair.NewMetrics()
	l.Keep, l.ReuseFor = 300*time.Millisecond, 2*time.Second
	admitted := func(how string) float64 {
		t.Helper()
		var m dto.Metric
		if err := l.M.Admitted.WithLabelValues("default", how).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	run := func(id string, fn func()) {
		t.Helper()
		if err := fair.Run(ctx, l, "default", 1, id, func() error { fn(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Mark(ctx, "default", 1, "a-2"); err != nil {
		t.Fatal(err)
	}
	run("a-1", func() {})
	run("a-2", func() {
		if n, _ := l.Held(ctx, "default", 1); n != 1 {
			t.Errorf("a-2 on the kept slot: org holds %d slots, want 1", n)
		}
	})
	if admitted("free") != 1 || admitted("kept") != 1 {
		t.Fatalf("admitted free %v, kept %v; want 1 and 1", admitted("free"), admitted("kept"))
	}
	l.Flush() // as a stopping worker does: the kept slot goes at once
	if n, _ := l.Held(ctx, "default", 1); n != 0 || fair.KeptSlots(l, "default", 1) != 0 {
		t.Fatalf("after Flush the org still holds %d slots (%d kept)", n, fair.KeptSlots(l, "default", 1))
	}
	if n, err := r1.ZCard(ctx, "crmq:fair:wait:default:1").Result(); err != nil || n != 0 {
		t.Fatalf("a-2 started on a kept slot but still waits: %d (%v)", n, err)
	}
	if s, err := r1.ZScore(ctx, "crmq:fair:started:default:1", "a-2").Result(); err != nil || s == 0 {
		t.Fatalf("a-2 not recorded as started: %v", err)
	}

	// Over the cap (alone): not kept. a-3 holds the org's one slot while
	// a-4 runs over it.
	run("a-3", func() {
		run("a-4", func() {})
		if n := fair.KeptSlots(l, "default", 1); n != 0 {
			t.Errorf("a-4 ran over the cap (alone), and its slot is kept: %d kept", n)
		}
	})
	if admitted("alone") != 1 {
		t.Fatalf("a-4 admitted alone %v times, want 1", admitted("alone"))
	}
	run("a-5", func() {})
	time.Sleep(l.Keep + 200*time.Millisecond)
	if n, _ := l.Held(ctx, "default", 1); n != 0 {
		t.Fatalf("a kept slot nobody took is still held %v after its task", l.Keep)
	}

	// A slot admitted more than ReuseFor ago goes back to Redis.
	l.ReuseFor = 100 * time.Millisecond
	kept := admitted("kept")
	run("a-6", func() {})
	time.Sleep(150 * time.Millisecond) // kept, but admitted too long ago
	run("a-7", func() { time.Sleep(150 * time.Millisecond) })
	run("a-8", func() {}) // a-7's slot is too old once it ends
	if admitted("kept") != kept {
		t.Fatalf("a slot older than ReuseFor was reused: kept %v -> %v", kept, admitted("kept"))
	}
}
