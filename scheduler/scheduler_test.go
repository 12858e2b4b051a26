package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/scheduler"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// twoSchedulers builds two independent schedulers (own Redis clients, own
// Enqueuers) over the same Redis DB and Postgres database, as two clock
// processes would be.
func twoSchedulers(t *testing.T, spec string) (*store.DB, asynq.RedisConnOpt, [2]*scheduler.Scheduler, []scheduler.Entry) {
	t.Helper()
	db, _ := storetest.NewDB(t)
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.NewOrg(t, db, "one")
	storetest.NewOrg(t, db, "two")
	entries := []scheduler.Entry{{Spec: spec, Type: jobs.TypeOrphansRecompute, Build: jobs.NewOrphansTask}}
	var s [2]*scheduler.Scheduler
	for i := range s {
		c := asynq.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		s[i], err = scheduler.New(entries, &jobs.Enqueuer{DB: db, Client: c, Log: quiet}, db, quiet)
		if err != nil {
			t.Fatal(err)
		}
	}
	return db, opt, s, entries
}

func TestTwoSchedulersSameTickEnqueueOnce(t *testing.T) {
	t.Parallel()
	db, opt, s, entries := twoSchedulers(t, "0 3 * * 1")
	tick := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	var (
		wg  sync.WaitGroup
		res [2]scheduler.TickResult
	)
	for i := range s {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if res[i], err = s[i].Tick(context.Background(), entries[0], tick); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := res[0].Enqueued + res[1].Enqueued; got != 2 {
		t.Fatalf("two orgs, one tick: %d enqueued in all (%+v), want 2", got, res)
	}
	if got := res[0].AlreadyEnqueued + res[1].AlreadyEnqueued; got != 2 {
		t.Fatalf("the losing scheduler should see 2 already-enqueued, got %+v", res)
	}
	assertOneTaskPerRow(t, db, opt, 2)
}

func TestTwoLiveSchedulersEnqueueEachTickOnce(t *testing.T) {
	t.Parallel()
	db, opt, s, _ := twoSchedulers(t, "* * * * * *") // every second
	s[0].Start()
	s[1].Start()
	time.Sleep(3200 * time.Millisecond)
	s[0].Stop()
	s[1].Stop()

	var rows []struct {
		ID    string `db:"id"`
		OrgID int64  `db:"org_id"`
	}
	if err := db.SelectContext(context.Background(), &rows, `SELECT id, org_id FROM jobs`); err != nil {
		t.Fatal(err)
	}
	// 3 or 4 ticks in 3.2 s, two orgs each.
	if len(rows) < 6 || len(rows) > 8 || len(rows)%2 != 0 {
		t.Fatalf("got %d job rows for ~3 ticks x 2 orgs: %v", len(rows), rows)
	}
	assertOneTaskPerRow(t, db, opt, len(rows))
}

// assertOneTaskPerRow checks Redis holds exactly one task per job row.
func assertOneTaskPerRow(t *testing.T, db *store.DB, opt asynq.RedisConnOpt, want int) {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, `SELECT count(*) FROM jobs`); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	q, err := insp.GetQueueInfo(jobs.QueueLow)
	if err != nil {
		t.Fatal(err)
	}
	if n != want || q.Pending != want {
		t.Fatalf("job rows %d, pending tasks %d, want %d of each", n, q.Pending, want)
	}
}

func TestNominalTickIgnoresFiringDelay(t *testing.T) {
	t.Parallel()
	sched, err := scheduler.Parse("0 3 * * 1")
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC) // a Monday
	for _, late := range []time.Duration{0, time.Millisecond, 900 * time.Millisecond, 30 * time.Second} {
		if got := scheduler.NominalTick(sched, tick.Add(late)); !got.Equal(tick) {
			t.Errorf("fired %s late: tick %s, want %s", late, got, tick)
		}
	}
}

func TestEveryIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := scheduler.Parse("@every 1m"); err == nil {
		t.Fatal("@every must be refused: its ticks are not aligned across processes")
	}
	if _, err := scheduler.Parse("61 * * * *"); err == nil {
		t.Fatal("bad spec accepted")
	}
}

// flakyEnqueuer refuses the first calls as Redis does while it restarts,
// then enqueues through the real Enqueuer.
type flakyEnqueuer struct {
	real  *jobs.Enqueuer
	fails int
	calls int
}

func (f *flakyEnqueuer) Enqueue(ctx context.Context, req jobs.Request) (store.Job, bool, error) {
	f.calls++
	if f.calls <= f.fails {
		return store.Job{}, false, fmt.Errorf("enqueue: %w", jobs.ErrUnavailable)
	}
	return f.real.Enqueue(ctx, req)
}

func TestTickIsRetriedForTheOrgsThatFailed(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.NewOrg(t, db, "one")
	storetest.NewOrg(t, db, "two")
	c := asynq.NewClient(opt)
	defer c.Close()
	flaky := &flakyEnqueuer{real: &jobs.Enqueuer{DB: db, Client: c, Log: quiet}, fails: 3}
	entry := scheduler.Entry{Spec: "0 3 * * 1", Type: jobs.TypeOrphansRecompute, Build: jobs.NewOrphansTask}
	s, err := scheduler.New([]scheduler.Entry{entry}, flaky, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	res, err := s.TickWithRetry(context.Background(), entry, tick, 5, 10*time.Millisecond)
	if err != nil || res.Enqueued != 2 {
		t.Fatalf("after a Redis blip: %+v, %v; want both orgs enqueued", res, err)
	}
	assertOneTaskPerRow(t, db, opt, 2)

	// A bad payload is not retried: the error comes back at once.
	bad := scheduler.Entry{Spec: entry.Spec, Type: entry.Type, Build: func(int64) (jobs.Task, error) { return jobs.NewOrphansTask(0) }}
	if _, err := s.TickWithRetry(context.Background(), bad, tick.Add(time.Hour), 5, time.Hour); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("bad payload: %v", err)
	}
}

// failingOrgs is an org list that cannot be read: a system entry must not
// need it.
type failingOrgs struct{}

func (failingOrgs) OrgIDs(context.Context) ([]int64, error) {
	return nil, errors.New("postgres unreachable")
}

// A system task (jobs:reconcile) is one task per tick for the whole
// deployment, deduplicated by its TaskID alone: two schedulers enqueue it
// once, keep no job row, and need no org list.
func TestSystemEntryEnqueuesOneTaskPerTick(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	entry := scheduler.Entry{Spec: "* * * * *", Type: jobs.TypeJobsReconcile, Build: jobs.NewReconcileTask}
	tick := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	var total scheduler.TickResult
	for range 2 {
		c := asynq.NewClient(q.Opt)
		t.Cleanup(func() { c.Close() })
		s, err := scheduler.New([]scheduler.Entry{entry}, &jobs.Enqueuer{DB: db, Client: c, Log: quiet}, failingOrgs{}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Tick(context.Background(), entry, tick)
		if err != nil {
			t.Fatal(err)
		}
		total.Enqueued += res.Enqueued
		total.AlreadyEnqueued += res.AlreadyEnqueued
	}
	if total.Enqueued != 1 || total.AlreadyEnqueued != 1 {
		t.Fatalf("two schedulers, one tick: %+v, want 1 enqueued and 1 already enqueued", total)
	}
	info, err := q.Inspector.GetTaskInfo(jobs.QueueLow, jobs.TickTaskID(jobs.TypeJobsReconcile, 0, tick))
	if err != nil || info.Type != jobs.TypeJobsReconcile {
		t.Fatalf("reconcile task: %+v, %v", info, err)
	}
	var rows int
	if err := db.GetContext(context.Background(), &rows, `SELECT count(*) FROM jobs`); err != nil || rows != 0 {
		t.Fatalf("%d job rows (%v), want none for a system task", rows, err)
	}
}

// An entry with its own org list (rfm:refresh: the orgs that configured
// ABM) enqueues for those orgs only, with tick ids of its own type.
func TestEntryWithItsOwnOrgList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	one, _ := storetest.NewOrg(t, db, "configured")
	storetest.NewOrg(t, db, "not-configured")
	if err := db.MarkABMConfigured(ctx, one.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	entry := scheduler.Entry{Spec: "0 2 * * *", Type: "rfm:refresh", Build: jobs.NewRFMRefreshTask, Orgs: db.ConfiguredOrgIDs}
	s, err := scheduler.New([]scheduler.Entry{entry}, &jobs.Enqueuer{DB: db, Client: q.Client, Log: quiet}, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	res, err := s.Tick(ctx, entry, tick)
	if err != nil || res.Enqueued != 1 {
		t.Fatalf("tick: %+v, %v; want one task, for the configured org", res, err)
	}
	j, err := db.Job(ctx, one.ID, jobs.TickTaskID("rfm:refresh", one.ID, tick))
	if err != nil || j.Type != jobs.TypeSegmentRefresh {
		t.Fatalf("job %+v, %v; want a segment:refresh under the rfm:refresh tick id", j, err)
	}
}
