package workers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
)

func TestRetryDelayWaitsForTheRateLimitPlusJitter(t *testing.T) {
	err := fmt.Errorf("summary: %w", &llm.RateLimitError{Scope: "provider", Delay: 17 * time.Second, Err: errors.New("429")})
	seen := map[time.Duration]bool{}
	for range 200 {
		d := workers.RetryDelay(0, err, nil)
		if d < 18*time.Second || d >= 18*time.Second+1700*time.Millisecond+time.Second {
			t.Fatalf("RetryDelay = %s, want 17s, a second for asynq's whole seconds, and less than 2.7s jitter", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct delays in 200: no jitter", len(seen))
	}
}

func TestRetryDelayBounds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		after     time.Duration
		least     time.Duration
		mostBelow time.Duration
	}{
		{"an hour is capped at ten minutes", time.Hour, workers.MaxRateLimitDelay, workers.MaxRateLimitDelay + 1},
		{"no delay named still waits a second", 0, 2 * time.Second, 3*time.Second + 100*time.Millisecond},
		{"a delay near the cap is capped", 9*time.Minute + 59*time.Second, 9*time.Minute + 59*time.Second, workers.MaxRateLimitDelay + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				d := workers.RetryDelay(3, &llm.RateLimitError{Scope: "org", Delay: tc.after}, nil)
				if d < tc.least || d >= tc.mostBelow {
					t.Fatalf("RetryDelay = %s, want in [%s, %s)", d, tc.least, tc.mostBelow)
				}
			}
		})
	}
}

func TestRetryDelayFallsBackToAsynqDefault(t *testing.T) {
	for _, err := range []error{llm.ErrTransient, fmt.Errorf("gemini: %w: 503", llm.ErrTransient), errors.New("postgres down")} {
		for range 50 {
			// asynq's default for the first retry: 15s + rand(30)s.
			if d := workers.RetryDelay(0, err, nil); d < 15*time.Second || d >= 45*time.Second {
				t.Fatalf("RetryDelay(0, %v) = %s, want asynq's 15-44s", err, d)
			}
			// and for the fourth: 3^4 + 15 + rand(30)*4 seconds, rand(30) in 0..29.
			if d := workers.RetryDelay(3, err, nil); d < 96*time.Second || d > 212*time.Second {
				t.Fatalf("RetryDelay(3, %v) = %s, want asynq's 96-212s", err, d)
			}
		}
	}
}

func TestPermanentSkipsRetryOnlyForPermanentErrors(t *testing.T) {
	refused := fmt.Errorf("gemini: %w: 400 INVALID_ARGUMENT: API key not valid", llm.ErrPermanent)
	got := workers.Permanent(refused)
	if !errors.Is(got, asynq.SkipRetry) || !errors.Is(got, llm.ErrPermanent) {
		t.Errorf("Permanent(refused) = %v, want SkipRetry and still ErrPermanent", got)
	}
	if !strings.Contains(got.Error(), "API key not valid") {
		t.Errorf("Permanent(refused) = %q lost the provider's message", got)
	}
	if again := workers.Permanent(got); again != got {
		t.Errorf("Permanent wrapped SkipRetry twice: %v", again)
	}

	transient := fmt.Errorf("gemini: %w: 500 INTERNAL", llm.ErrTransient)
	limited := fmt.Errorf("x: %w", &llm.RateLimitError{Scope: "global", Delay: time.Second})
	plain := errors.New("postgres down")
	for _, err := range []error{transient, limited, plain, nil} {
		if got := workers.Permanent(err); got != err {
			t.Errorf("Permanent(%v) = %v, want it unchanged", err, got)
		}
	}
}

// TestRetryDelayAndPermanentInAsynq runs both through a real asynq server:
// the error chain must survive asynq for RetryDelay to see the
// RateLimitError, and SkipRetry must archive the task at once.
func TestRetryDelayAndPermanentInAsynq(t *testing.T) {
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:              2,
		Queues:                   map[string]int{"default": 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc:           workers.RetryDelay,
		Logger:                   asynqQuiet{},
	})

	var mu sync.Mutex
	var attempts []time.Time
	secondAttempt := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:rate-limited", func(ctx context.Context, _ *asynq.Task) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) == 1 {
			return fmt.Errorf("summary: %w", &llm.RateLimitError{Scope: "provider", Delay: 2 * time.Second, Err: errors.New("429")})
		}
		close(secondAttempt)
		return nil
	})
	mux.HandleFunc("test:refused", func(ctx context.Context, _ *asynq.Task) error {
		return workers.Permanent(fmt.Errorf("gemini: %w: prompt blocked: SAFETY", llm.ErrPermanent))
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	client := asynq.NewClient(opt)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("test:rate-limited", nil), asynq.MaxRetry(3)); err != nil {
		t.Fatal(err)
	}
	refused, err := client.Enqueue(asynq.NewTask("test:refused", nil), asynq.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}

	select {
	case <-secondAttempt:
	case <-time.After(12 * time.Second): // asynq's default would be 15s or more
		t.Fatal("the rate-limited task was not retried within 12s")
	}
	mu.Lock()
	gap := attempts[1].Sub(attempts[0])
	mu.Unlock()
	if gap < 2*time.Second || gap > 5*time.Second {
		t.Errorf("retried after %s, want 2s, not before, and at most 3.2s more (asynq's whole seconds, jitter, polling)", gap)
	}

	insp := asynq.NewInspector(opt)
	defer insp.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := insp.GetTaskInfo("default", refused.ID)
		if err == nil && info.State == asynq.TaskStateArchived {
			if info.Retried != 0 || !strings.Contains(info.LastErr, "prompt blocked: SAFETY") {
				t.Errorf("archived after %d retries with %q, want 0 and the provider's message", info.Retried, info.LastErr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refused task not archived: %+v, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crawlerBusy and pageGone stand for errors of families that do not use
// llm: the worker reads the methods, not llm's types.
type crawlerBusy struct{ after time.Duration }

func (e crawlerBusy) Error() string             { return "site answered 429" }
func (e crawlerBusy) RetryAfter() time.Duration { return e.after }

type pageGone struct{}

func (pageGone) Error() string   { return "page answered 410" }
func (pageGone) Permanent() bool { return true }

func TestRetryClassificationReadsMethodsNotTypes(t *testing.T) {
	err := fmt.Errorf("enrich: %w", crawlerBusy{after: 30 * time.Second})
	if d := workers.RetryDelay(0, err, nil); d < 31*time.Second || d > 35*time.Second {
		t.Errorf("RetryDelay(crawler 429 after 30s) = %s, want 31-35s", d)
	}
	gone := workers.Permanent(fmt.Errorf("enrich: %w", pageGone{}))
	if !errors.Is(gone, asynq.SkipRetry) || !strings.Contains(gone.Error(), "410") {
		t.Errorf("Permanent(page gone) = %v, want SkipRetry with the cause", gone)
	}
}
