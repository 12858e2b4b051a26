package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/store"
)

// TaskEnqueuer is what putting child tasks on their queue needs (asynq's
// Client).
type TaskEnqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// ChildJob binds a child task to its deterministic id, as the row its
// parent writes (store.ChildJob).
func ChildJob(id string, t Task) store.ChildJob {
	return store.ChildJob{ID: id, Type: t.Spec.Type, Queue: t.Queue, MaxRetry: t.Spec.MaxRetry, Payload: t.Payload}
}

// EnqueueChildren puts children whose job rows exist on their queues
// under their row's id. A child the queue holds already (the id is taken:
// a retried parent, or a child enqueued by a sibling) is left as it is, so
// calling it again for the same children enqueues nothing twice. It
// answers how many were new.
func EnqueueChildren(ctx context.Context, q TaskEnqueuer, children []store.ChildJob) (int, error) {
	added := 0
	for _, c := range children {
		spec, ok := SpecOf(c.Type)
		if !ok {
			return added, fmt.Errorf("child %s: unknown task type %q", c.ID, c.Type)
		}
		t := Task{Spec: spec, Queue: c.Queue, Payload: c.Payload}
		_, err := q.EnqueueContext(ctx, t.Asynq(asynq.TaskID(c.ID)))
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
		case err != nil:
			return added, fmt.Errorf("enqueue child %s: %w: %w", c.ID, ErrUnavailable, err)
		default:
			added++
		}
	}
	return added, nil
}
