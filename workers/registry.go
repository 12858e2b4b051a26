package workers

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
)

// Handler is the one shape of every task handler: a value (its
// dependencies are its fields) whose Run takes the decoded, validated
// payload and returns the result stored with the succeeded job.
type Handler[P jobs.Payload, R any] interface {
	Run(ctx context.Context, job Job[P]) (R, error)
}

// Registration binds a task type's spec to its handler; cmd/worker lists
// one per task type and builds its mux from the list.
type Registration struct {
	Spec    jobs.Spec
	Handler asynq.Handler
}

// Register binds spec to h. P is the payload type the spec's tasks carry.
func Register[P jobs.Payload, R any](spec jobs.Spec, st JobStore, h Handler[P, R]) Registration {
	return Registration{Spec: spec, Handler: Handle(st, h.Run)}
}

// NewMux builds the worker's mux: the middlewares, then one handler per
// registration. A type registered twice, or a registration whose spec is
// not the one jobs declares for its type, is an error.
func NewMux(regs []Registration, mws ...asynq.MiddlewareFunc) (*asynq.ServeMux, error) {
	mux := asynq.NewServeMux()
	mux.Use(mws...)
	seen := map[string]bool{}
	for _, r := range regs {
		if seen[r.Spec.Type] {
			return nil, fmt.Errorf("task type %s registered twice", r.Spec.Type)
		}
		if spec, ok := jobs.SpecOf(r.Spec.Type); !ok || spec != r.Spec {
			return nil, fmt.Errorf("task type %s: registered with a spec jobs does not declare", r.Spec.Type)
		}
		seen[r.Spec.Type] = true
		mux.Handle(r.Spec.Type, r.Handler)
	}
	return mux, nil
}
