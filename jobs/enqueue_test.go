package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

type fixture struct {
	db   *store.DB
	enq  *jobs.Enqueuer
	insp *asynq.Inspector
	org  store.Org
}

func setup(t *testing.T) fixture {
	t.Helper()
	db, _ := storetest.NewDB(t)
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { client.Close(); insp.Close() })
	org, _ := storetest.NewOrg(t, db, "acme")
	return fixture{db: db, enq: &jobs.Enqueuer{DB: db, Client: client, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, insp: insp, org: org}
}

func ping(t *testing.T, orgID int64, queue string) jobs.Task {
	t.Helper()
	task, err := jobs.NewPingTask(orgID, queue, 0)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestEnqueueWritesRowThenTask(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	job, replayed, err := f.enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, UserID: "u1", Task: ping(t, f.org.ID, "default")})
	if err != nil || replayed {
		t.Fatalf("enqueue: %v replayed=%v", err, replayed)
	}
	if job.State != store.JobQueued || job.Queue != "default" || job.Type != jobs.TypePing || job.MaxRetry != jobs.PingSpec.MaxRetry {
		t.Fatalf("unexpected job row %+v", job)
	}
	info, err := f.insp.GetTaskInfo("default", job.ID)
	if err != nil {
		t.Fatalf("task not in redis: %v", err)
	}
	if info.State != asynq.TaskStatePending || info.MaxRetry != jobs.PingSpec.MaxRetry {
		t.Fatalf("task %+v", info)
	}
}

func TestIdempotencyKeyReturnsFirstJob(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	req := jobs.Request{OrgID: f.org.ID, IdempotencyKey: "k-1", Task: ping(t, f.org.ID, "low")}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = map[string]int{}
		errs []error
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, _, err := f.enq.Enqueue(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids[j.ID]++
		}()
	}
	wg.Wait()
	if len(errs) > 0 || len(ids) != 1 {
		t.Fatalf("20 concurrent requests with one key: ids=%v errs=%v", ids, errs)
	}
	q, err := f.insp.GetQueueInfo("low")
	if err != nil || q.Pending != 1 {
		t.Fatalf("want exactly one pending task, got %+v %v", q, err)
	}

	_, replayed, err := f.enq.Enqueue(ctx, req)
	if err != nil || !replayed {
		t.Fatalf("replay: replayed=%v err=%v", replayed, err)
	}
	other := req
	other.Task = ping(t, f.org.ID, "critical")
	if _, _, err := f.enq.Enqueue(ctx, other); !errors.Is(err, jobs.ErrIdempotencyMismatch) {
		t.Fatalf("same key, different body: want ErrIdempotencyMismatch, got %v", err)
	}
}

func TestRedisDownLeavesNoJobRow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	enq := &jobs.Enqueuer{DB: f.db, Client: dead, Log: f.enq.Log}
	_, _, err := enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, IdempotencyKey: "k", Task: ping(t, f.org.ID, "")})
	if !errors.Is(err, jobs.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	var n int
	if err := f.db.GetContext(ctx, &n, `SELECT count(*) FROM jobs`); err != nil || n != 0 {
		t.Fatalf("job rows after refused enqueue: %d (%v)", n, err)
	}
	// The key is free again: a retry once Redis is back succeeds.
	if _, replayed, err := f.enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, IdempotencyKey: "k", Task: ping(t, f.org.ID, "")}); err != nil || replayed {
		t.Fatalf("retry after outage: replayed=%v err=%v", replayed, err)
	}
}

func TestDeterministicTaskIDEnqueuesOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	task, err := jobs.NewOrphansTask(f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := jobs.TickTaskID(jobs.TypeOrphansRecompute, f.org.ID, time.Unix(1_700_000_000, 0))
	if _, _, err := f.enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, TaskID: id, Task: task}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, TaskID: id, Task: task}); !errors.Is(err, jobs.ErrAlreadyEnqueued) {
		t.Fatalf("second enqueue of the tick: want ErrAlreadyEnqueued, got %v", err)
	}
}

func TestPayloadValidation(t *testing.T) {
	t.Parallel()
	if _, err := jobs.NewPingTask(1, "urgent", 0); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("unknown queue: want ErrInvalid, got %v", err)
	}
	if _, err := jobs.NewOrphansTask(0); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("org 0: want ErrInvalid, got %v", err)
	}
	if _, err := jobs.FromGeneric(1, jobs.Generic{Type: "nope"}); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("unknown type: want ErrInvalid, got %v", err)
	}
	if _, err := jobs.Decode[jobs.OrgPayload]([]byte(`{"org_id":1,"extra":2}`)); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("unknown payload field must not be retried, got %v", err)
	}
}

// lostAnswer is a queue whose enqueue reaches Redis and a worker, but
// whose answer is lost (a failover): a worker starts the row, then the
// enqueue reports an error.
type lostAnswer struct {
	db *store.DB
}

func (l lostAnswer) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	if _, err := l.db.ExecContext(ctx, `UPDATE jobs SET state = 'running', attempts = 1, started_at = now() WHERE state = 'queued'`); err != nil {
		return nil, err
	}
	return nil, errors.New("READONLY You can't write against a read only replica")
}

// An enqueue that reports an error after a worker already started the
// task was accepted: the job is returned and its row kept, not a 503 for
// a job that runs anyway.
func TestAnEnqueueWhoseTaskStartedIsAccepted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	enq := &jobs.Enqueuer{DB: f.db, Client: lostAnswer{f.db}, Log: f.enq.Log}
	j, _, err := enq.Enqueue(ctx, jobs.Request{OrgID: f.org.ID, Task: ping(t, f.org.ID, "")})
	if err != nil || j.ID == "" {
		t.Fatalf("enqueue whose task started: job %q, err %v", j.ID, err)
	}
	var state string
	if err := f.db.GetContext(ctx, &state, `SELECT state FROM jobs WHERE id = $1`, j.ID); err != nil || state != "running" {
		t.Fatalf("row of the started job: %q (%v)", state, err)
	}
}
