package workers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers"
)

// A type with a per-worker limit runs at most that many tasks at once in
// one process; one more is handed back, not failed, and comes back after
// about a second; other types are not limited.
func TestPerWorkerLimitHandsBack(t *testing.T) {
	ctx := context.Background()
	heavy := jobs.Spec{Type: "test:heavy", PerWorker: 1}
	entered, release := make(chan struct{}), make(chan struct{})
	var bounced []string
	h := workers.PerWorker([]jobs.Spec{heavy, {Type: "test:light"}}, nil, func(typ string) { bounced = append(bounced, typ) })(
		asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if string(t.Payload()) == "hold" {
				entered <- struct{}{}
				<-release
			}
			return nil
		}))
	done := make(chan error, 1)
	go func() { done <- h.ProcessTask(ctx, asynq.NewTask("test:heavy", []byte("hold"))) }()
	<-entered
	err := h.ProcessTask(ctx, asynq.NewTask("test:heavy", nil))
	var full *workers.Full
	if !errors.As(err, &full) || full.Limit != 1 {
		t.Fatalf("second heavy task: %v, want handed back", err)
	}
	if workers.IsFailure(err) {
		t.Error("a hand-back counts as a failure")
	}
	if d := workers.RetryDelay(0, err, nil); d < time.Second || d > 2*time.Second {
		t.Errorf("handed back for %s, want about a second", d)
	}
	if err := h.ProcessTask(ctx, asynq.NewTask("test:light", nil)); err != nil {
		t.Fatalf("a type without a limit: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, asynq.NewTask("test:heavy", nil)); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	if len(bounced) != 1 || bounced[0] != "test:heavy" {
		t.Errorf("hand-backs counted %v", bounced)
	}
}
