package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/cmd/internal/proc"
)

// benchRaw measures asynq alone: an in-process server on its own queue
// with a no-op handler, polling as often as the crmq worker does, fed by
// asynq.Client at the bench rate. Latency = Enqueue call -> handler entry.
func benchRaw(ctx context.Context, bc benchConfig) (phaseResult, error) {
	var (
		p       = newPhase(bc.MaxInFlight)
		calls   sync.WaitGroup // Enqueue calls running
		flights sync.Map       // task id -> *flight, until the flight ends
	)
	handler := asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		entered := time.Now()
		id, _ := asynq.GetTaskID(ctx)
		if v, ok := flights.LoadAndDelete(id); ok {
			f := v.(*flight)
			f.end(sample{lat: entered.Sub(f.t0)}, nil)
		}
		return nil
	})
	srv := asynq.NewServer(bc.RedisOpt, asynq.Config{
		Concurrency:       bc.Concurrency,
		Queues:            map[string]int{bc.RawQueue: 1},
		TaskCheckInterval: bc.PollInterval,
		ShutdownTimeout:   5 * time.Second,
		Logger:            proc.AsynqLogger{L: bc.Log.With("component", "bench-raw")},
		LogLevel:          asynq.WarnLevel,
		BaseContext:       func() context.Context { return context.Background() },
	})
	if err := srv.Start(handler); err != nil {
		return phaseResult{}, fmt.Errorf("start asynq server: %w", err)
	}
	client := asynq.NewClient(bc.RedisOpt)
	defer func() {
		calls.Wait()
		srv.Shutdown()
		_ = client.Close()
		insp := asynq.NewInspector(bc.RedisOpt)
		if err := insp.DeleteQueue(bc.RawQueue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			bc.Log.Warn("bench: raw queue not removed", "queue", bc.RawQueue, "err", err)
		}
		_ = insp.Close()
	}()

	run, n := runID(), 0
	enqueue := func(f *flight) {
		n++
		f.id = fmt.Sprintf("%s-%d", run, n)
		flights.Store(f.id, f)
		calls.Add(1)
		go func() {
			defer calls.Done()
			_, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", nil), asynq.Queue(bc.RawQueue),
				asynq.TaskID(f.id), asynq.MaxRetry(0), asynq.Timeout(time.Minute))
			if err != nil {
				flights.Delete(f.id)
				f.end(sample{}, fmt.Errorf("enqueue: %w", err))
			}
		}()
	}

	// One task before anything else proves the server consumes the queue,
	// as the crmq phase's preflight does.
	pre := make(chan error, 1)
	enqueue(&flight{t0: time.Now(), onEnd: func(err error) { pre <- err }})
	if err := waitOne(ctx, pre, 10*time.Second); err != nil {
		return phaseResult{}, fmt.Errorf("preflight: %w", err)
	}

	sent, dropped, window := p.run(ctx, bc, enqueue)
	wait, cancel := context.WithTimeout(ctx, bc.JobTimeout)
	defer cancel()
	if p.settle(wait) != nil {
		// Whatever the handler has not seen by now is lost for this run.
		flights.Range(func(_, v any) bool {
			v.(*flight).end(sample{}, fmt.Errorf("not handled within %s of the last start", bc.JobTimeout))
			return true
		})
		p.pending.Wait()
	}
	if err := ctx.Err(); err != nil {
		return phaseResult{}, err
	}
	r := p.t.result("raw asynq", sent, dropped, window)
	r.StartedAll = p.started
	return r, nil
}

// waitOne waits for one preflight flight.
func waitOne(ctx context.Context, done <-chan error, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("no answer within %s", limit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runID tells this run's task ids from any other's.
func runID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "bench-" + hex.EncodeToString(b)
}
