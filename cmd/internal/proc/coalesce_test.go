package proc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/store/storetest"
)

// newCoalesced is a Redis client of the test's own DB with the coalescer
// on it.
func newCoalesced(t *testing.T) (*redis.Client, *coalescer) {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	c := newCoalescer(rdb.Pipeline)
	rdb.AddHook(c)
	return rdb, c
}

// Scripts that arrive while one is on its way go as one pipeline, and
// each gets its own reply or error: one that fails (INCRBY of a word)
// fails alone.
func TestScriptsArrivingTogetherShareOnePipelineEachWithItsOwnReply(t *testing.T) {
	rdb, c := newCoalesced(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "word", "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A script that keeps Redis busy a while holds the coalescer's turn.
	busy := make(chan error, 1)
	go func() {
		busy <- rdb.Eval(ctx, `local t = redis.call('TIME'); local e = t[1] * 1000000 + t[2] + 300000
			repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= e
			return 1`, nil).Err()
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.running })

	const n = 20
	const incrBy = `return redis.call('INCRBY', KEYS[1], ARGV[1])`
	replies := make([]*redis.Cmd, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("n%d", i)
			if i == 7 {
				key = "word"
			}
			replies[i] = rdb.Eval(ctx, incrBy, []string{key}, i+1)
		})
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.pending) == n })
	wg.Wait()
	if err := <-busy; err != nil {
		t.Fatalf("busy script: %v", err)
	}
	for i, r := range replies {
		switch {
		case i == 7:
			if r.Err() == nil || !strings.Contains(r.Err().Error(), "value is not an integer") {
				t.Errorf("INCRBY of a word: err %v, want Redis's own error", r.Err())
			}
		case r.Err() != nil || r.Val() != int64(i+1):
			t.Errorf("script %d: %v, %v; want %d", i, r.Val(), r.Err(), i+1)
		}
	}
	if p, k := c.pipelines.Load(), c.carried.Load(); p != 1 || k != n {
		t.Errorf("%d pipelines carried %d commands; want 1 carrying %d", p, k, n)
	}
	// Alone again, a script goes as before, with no pipeline.
	if v, err := rdb.Eval(ctx, incrBy, []string{"n0"}, 10).Int64(); err != nil || v != 11 {
		t.Errorf("a lone script after: %d, %v; want 11", v, err)
	}
	if p := c.pipelines.Load(); p != 1 {
		t.Errorf("a lone script went as pipeline %d", p)
	}
}

// A script that finds none under way yields first; scripts that arrive
// meanwhile go with it in one pipeline, it first, each with its reply.
func TestScriptsArrivingDuringTheYieldGoWithTheFirst(t *testing.T) {
	rdb, c := newCoalesced(t)
	ctx := context.Background()
	const n = 5
	arrived := make(chan struct{})
	c.yield = func() {
		<-arrived // the test's stand-in for the scheduler running the rest
	}
	const incrBy = `return redis.call('INCRBY', KEYS[1], ARGV[1])`
	first := make(chan *redis.Cmd, 1)
	go func() { first <- rdb.Eval(ctx, incrBy, []string{"first"}, 100) }()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.running })
	replies := make([]*redis.Cmd, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i] = rdb.Eval(ctx, incrBy, []string{fmt.Sprintf("n%d", i)}, i+1) })
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.pending) == n })
	close(arrived)
	wg.Wait()
	if r := <-first; r.Err() != nil || r.Val() != int64(100) {
		t.Errorf("the first script: %v, %v; want 100", r.Val(), r.Err())
	}
	for i, r := range replies {
		if r.Err() != nil || r.Val() != int64(i+1) {
			t.Errorf("script %d: %v, %v; want %d", i, r.Val(), r.Err(), i+1)
		}
	}
	if p, k := c.pipelines.Load(), c.carried.Load(); p != 1 || k != n+1 {
		t.Errorf("%d pipelines carried %d commands; want 1 carrying all %d", p, k, n+1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || len(c.pending) != 0 {
		t.Errorf("after the pipeline: running %v, %d pending", c.running, len(c.pending))
	}
}

// asynq's client on it: concurrent enqueues all land once, with their
// own ids, and a repeated id is refused as asynq refuses it.
func TestEnqueuesThroughTheCoalescingClientLandOnce(t *testing.T) {
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client, rdb, err := Client(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()

	const clients, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients*each*2)
	for g := range clients {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("t-%d-%d", g, i)
				if _, err := client.Enqueue(asynq.NewTask("system:ping", nil), asynq.TaskID(id), asynq.Queue("coalesce")); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
				}
				if i%10 == 0 { // the same id again: refused, the first kept
					if _, err := client.Enqueue(asynq.NewTask("system:ping", nil), asynq.TaskID(id), asynq.Queue("coalesce")); !errors.Is(err, asynq.ErrTaskIDConflict) {
						errs <- fmt.Errorf("%s again: %v, want a task id conflict", id, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	qi, err := insp.GetQueueInfo("coalesce")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Pending != clients*each {
		t.Errorf("%d tasks pending; want %d", qi.Pending, clients*each)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
