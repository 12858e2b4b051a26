package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// A worker that gets SIGTERM while a job runs lets it finish within
// CRMQ_SHUTDOWN_TIMEOUT: the job ends succeeded, once.
func TestSIGTERMLetsRunningJobFinish(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	key := s.newOrg("drain")
	w := s.start("worker", "CRMQ_SHUTDOWN_TIMEOUT=15s")
	a := s.enqueue(key, map[string]any{"type": "system:ping", "queue": "low", "hold_ms": 1500})
	s.waitJob(key, a.JobID, 20*time.Second, store.JobRunning)
	w.Terminate(t, 20*time.Second)
	j := s.waitJob(key, a.JobID, time.Second, store.JobSucceeded)
	if j.Attempts != 1 {
		t.Fatalf("attempts %d, want 1", j.Attempts)
	}
}

// A job still running when the shutdown timeout ends is handed back to
// the queue, and another worker finishes it: succeeded once, nothing lost.
func TestSIGTERMRequeuesJobPastTimeout(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	key := s.newOrg("requeue")
	w := s.start("worker", "CRMQ_SHUTDOWN_TIMEOUT=1s")
	a := s.enqueue(key, map[string]any{"type": "system:ping", "queue": "low", "hold_ms": 4000})
	s.waitJob(key, a.JobID, 20*time.Second, store.JobRunning)
	w.Terminate(t, 15*time.Second)
	s.waitJob(key, a.JobID, 5*time.Second, store.JobQueued)

	s.start("worker", "CRMQ_SHUTDOWN_TIMEOUT=15s")
	j := s.waitJob(key, a.JobID, 30*time.Second, store.JobSucceeded, store.JobFailed)
	if j.State != store.JobSucceeded {
		t.Fatalf("job %+v", j)
	}
	var finished int
	if err := s.db.GetContext(context.Background(), &finished,
		`SELECT count(*) FROM jobs WHERE id = $1 AND state = 'succeeded'`, a.JobID); err != nil || finished != 1 {
		t.Fatalf("succeeded rows %d (%v)", finished, err)
	}
}

// Two scheduler processes with the same cron table enqueue each tick once.
func TestTwoSchedulerProcessesOneTaskPerTick(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.newOrg("one")
	s.newOrg("two")
	a := s.start("scheduler", "CRMQ_CRON_ORPHANS=* * * * * *")
	b := s.start("scheduler", "CRMQ_CRON_ORPHANS=* * * * * *")
	time.Sleep(3500 * time.Millisecond)
	a.Terminate(t, 10*time.Second)
	b.Terminate(t, 10*time.Second)

	var perTick []struct {
		Tick  string `db:"tick"`
		Count int    `db:"n"`
	}
	err := s.db.SelectContext(context.Background(), &perTick, `
		SELECT split_part(id, ':', 4) AS tick, count(*) AS n
		FROM jobs WHERE type = 'orphans:recompute' GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(perTick) < 2 {
		t.Fatalf("want at least 2 ticks in 3.5 s, got %v", perTick)
	}
	for _, p := range perTick {
		if p.Count != 2 { // one task per org per tick
			t.Fatalf("tick %s has %d tasks for 2 orgs: %v", p.Tick, p.Count, perTick)
		}
	}
}
