package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// A worker killed with SIGKILL mid-job: asynq gives the task back once its
// lease lapses and the recoverer runs (1-2 minutes), another worker runs it,
// and the job ends succeeded once; the crash counts as an attempt.
func TestKilledWorkerJobIsRecoveredAndSucceedsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about 2 minutes)")
	}
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	key := s.newOrg("crash")
	w := s.start("worker")
	a := s.enqueue(key, map[string]any{"type": "system:ping", "queue": "low", "hold_ms": 3000})
	s.waitJob(key, a.JobID, 20*time.Second, store.JobRunning)
	_ = w.Cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	<-w.Done

	s.start("worker")
	o := settle(t, s, []string{a.JobID}, killed, 4*time.Minute)
	o.log(t, "worker SIGKILL", "the kill")
	j := s.waitJob(key, a.JobID, time.Second, store.JobSucceeded, store.JobFailed)
	if j.State != store.JobSucceeded || j.Attempts != 2 {
		t.Fatalf("after a crash and recovery: %+v (want succeeded on attempt 2)", j)
	}
}

// Redis restarts: a POST while it is down is 503 and leaves no job row;
// jobs accepted before the restart (kept in the AOF) all run after it, each
// exactly once; new jobs are accepted again.
func TestRedisRestartLosesNothingAccepted(t *testing.T) {
	t.Parallel()
	r := newPrivateRedis(t)
	_, dbURL := newTestDB(t)
	s := newSystemOn(t, dbURL, r.url())
	s.startAPI()
	key := s.newOrg("redis-restart")

	// Accepted while no worker runs: they wait in Redis.
	var before []string
	for range 20 {
		before = append(before, s.enqueue(key, map[string]any{"type": "system:ping", "queue": "default"}).JobID)
	}
	refused := 0
	r.restart(time.Second, func() {
		resp := s.call("POST", "/v1/jobs", key, map[string]any{"type": "system:ping"}, nil)
		if resp.StatusCode != 503 {
			t.Errorf("POST with Redis down: %d, want 503", resp.StatusCode)
		} else {
			refused++
		}
		if resp := s.call("GET", "/readyz", "", nil, nil); resp.StatusCode != 503 {
			t.Errorf("readyz with Redis down: %d, want 503", resp.StatusCode)
		}
	})
	back := time.Now()
	s.start("worker")
	after := s.enqueue(key, map[string]any{"type": "system:ping", "queue": "critical"}).JobID
	ids := append(before, after)
	o := settle(t, s, ids, back, 30*time.Second)
	var rows int
	if err := s.db.GetContext(context.Background(), &rows, `SELECT count(*) FROM jobs`); err != nil {
		t.Fatal(err)
	}
	o.log(t, fmt.Sprintf("Redis restart (%d POST refused with 503, %d job rows)", refused, rows),
		"Redis was back (a worker started then)")
	if o.Succeeded != len(ids) || o.RanAgain != 0 {
		t.Fatalf("want all %d accepted jobs succeeded on their first attempt", len(ids))
	}
	if rows != len(ids) {
		t.Fatalf("job rows %d, want %d: the refused POST must leave none", rows, len(ids))
	}
}

// Postgres stops while jobs run: their success cannot be recorded, so the
// worker holds the result until Postgres answers again (or hands the task
// back without using a retry); a POST meanwhile is 503 and enqueues
// nothing; a worker started while Postgres is down waits for it. Once
// Postgres is back every accepted job ends succeeded, once, on its first
// counted attempt.
func TestPostgresStopLosesNothingAccepted(t *testing.T) {
	t.Parallel()
	pg := newPrivatePostgres(t)
	pg.migrate()
	s := newSystemOn(t, pg.url(), newTestRedis(t), "CRMQ_SHUTDOWN_TIMEOUT=5s")
	s.startAPI()
	key := s.newOrg("pg-stop")
	s.start("worker")
	var running []string
	for range 5 {
		running = append(running, s.enqueue(key, map[string]any{"type": "system:ping", "queue": "low", "hold_ms": 2000}).JobID)
	}
	for _, id := range running {
		s.waitJob(key, id, 20*time.Second, store.JobRunning)
	}
	pg.stop()
	if resp := s.call("POST", "/v1/jobs", key, map[string]any{"type": "system:ping"}, nil); resp.StatusCode != 503 {
		t.Errorf("POST with Postgres down: %d, want 503", resp.StatusCode)
	}
	late := s.start("worker")   // starts while Postgres is down: waits for it
	time.Sleep(3 * time.Second) // the holds end; recording their success fails
	select {
	case <-late.Done:
		t.Fatalf("a worker started while Postgres was down exited: %v", late.Err)
	default:
	}
	pg.start()
	o := settle(t, s, running, time.Now(), 2*time.Minute)
	var n int
	if err := s.db.GetContext(context.Background(), &n, `SELECT count(*) FROM jobs`); err != nil {
		t.Fatal(err)
	}
	o.log(t, fmt.Sprintf("Postgres stopped (%d job rows)", n), "Postgres was back")
	if o.Succeeded != len(running) || o.RanAgain != 0 {
		t.Fatalf("want all %d accepted jobs succeeded with no retry used", len(running))
	}
	if n != len(running) {
		t.Fatalf("job rows %d, want %d: the refused POST must leave none", n, len(running))
	}
}
