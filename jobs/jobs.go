// Package jobs is the task contract shared by the API, the scheduler and
// the workers: each task type's name, payload, validation and options, and
// the Enqueuer that writes the job row and puts the task on its queue.
package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Queues, in priority order; weights come from config.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Queues lists every queue a worker consumes.
var Queues = []string{QueueCritical, QueueDefault, QueueLow}

// ErrInvalid marks a payload that fails validation; FieldErrors says why.
var ErrInvalid = errors.New("invalid job")

// FieldErrors maps a JSON field to what is wrong with it.
type FieldErrors map[string]string

func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+fe[k])
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalid) hold for any FieldErrors.
func (fe FieldErrors) Unwrap() error { return ErrInvalid }

// Spec is a task type's fixed options.
type Spec struct {
	Type      string
	Queue     string
	MaxRetry  int // at least 1: a worker crash counts as a retry in asynq
	Timeout   time.Duration
	Retention time.Duration // how long asynq keeps the finished task (dashboard, TaskID dedupe)
	// System tasks work for the whole deployment, not for one org: they
	// have no job row, and their deterministic TaskID alone dedupes them.
	System bool
	// PerWorker, when above 0, bounds the tasks of this type one worker
	// process runs at once (families heavy on Postgres); a task over it is
	// handed back for a second, not failed. 0: only the worker's
	// concurrency bounds them.
	PerWorker int
}

// Options are the asynq options of the spec, with the queue overridable.
func (s Spec) Options(queue string) []asynq.Option {
	if queue == "" {
		queue = s.Queue
	}
	return []asynq.Option{
		asynq.Queue(queue),
		asynq.MaxRetry(s.MaxRetry),
		asynq.Timeout(s.Timeout),
		asynq.Retention(s.Retention),
	}
}

// Payload is implemented by every task payload.
type Payload interface {
	// Validate reports every bad field at once.
	Validate() error
}

// Decode unmarshals a task payload strictly and validates it. A payload
// that cannot be decoded will never succeed, so the error skips retries.
func Decode[P Payload](data []byte) (P, error) {
	var p P
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("decode payload: %w: %w", err, asynq.SkipRetry)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return p, nil
}

// Task is a validated payload bound to its spec and queue, ready to enqueue.
type Task struct {
	Spec    Spec
	Queue   string
	Payload []byte
}

// Asynq builds the asynq task with the spec's options.
func (t Task) Asynq(extra ...asynq.Option) *asynq.Task {
	return asynq.NewTask(t.Spec.Type, t.Payload, append(t.Spec.Options(t.Queue), extra...)...)
}

// newTask marshals a validated payload into a task of the spec.
func newTask(s Spec, p Payload, queue string) (Task, error) {
	if err := p.Validate(); err != nil {
		return Task{}, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return Task{}, fmt.Errorf("marshal %s payload: %w", s.Type, err)
	}
	if queue == "" {
		queue = s.Queue
	}
	return Task{Spec: s, Queue: queue, Payload: b}, nil
}

// OrgPayload is the payload of tasks that work on a whole org.
type OrgPayload struct {
	OrgID int64 `json:"org_id"`
}

// Validate implements Payload.
func (p OrgPayload) Validate() error {
	if p.OrgID <= 0 {
		return FieldErrors{"org_id": "must be a positive org id"}
	}
	return nil
}
