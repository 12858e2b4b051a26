package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
)

// Full is the error of a task handed back because this worker process
// already runs its type's Spec.PerWorker tasks. It is not a failure: the
// task returns after about a second, to this worker or another.
type Full struct {
	Type  string
	Limit int
}

func (f *Full) Error() string {
	return fmt.Sprintf("%s: this worker already runs %d such tasks; handed back", f.Type, f.Limit)
}

// IsFull tells whether err is, or wraps, a *Full.
func IsFull(err error) bool {
	var f *Full
	return errors.As(err, &f)
}

// fullDelay is the wait before a handed-back task returns, spread so the
// tasks handed back together do not all return at once.
func fullDelay() time.Duration { return time.Second + rand.N(500*time.Millisecond) }

// PerWorker bounds the tasks of each type with a Spec.PerWorker that run
// at once in this process. Put it after the per-org limiter and before the
// job-state middleware: a handed-back task leaves its job row and crmq's
// task metrics untouched. bounced (may be nil) counts the hand-backs.
func PerWorker(specs []jobs.Spec, log *slog.Logger, bounced func(taskType string)) asynq.MiddlewareFunc {
	slots := map[string]chan struct{}{}
	for _, s := range specs {
		if s.PerWorker > 0 {
			slots[s.Type] = make(chan struct{}, s.PerWorker)
		}
	}
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			sem, ok := slots[t.Type()]
			if !ok {
				return next.ProcessTask(ctx, t)
			}
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				return next.ProcessTask(ctx, t)
			default:
			}
			if bounced != nil {
				bounced(t.Type())
			}
			if log != nil && log.Enabled(ctx, slog.LevelDebug) {
				id, _ := asynq.GetTaskID(ctx)
				log.DebugContext(ctx, "task handed back: its type's per-worker limit is reached", "task_id", id, "type", t.Type(), "limit", cap(sem))
			}
			return &Full{Type: t.Type(), Limit: cap(sem)}
		})
	}
}
