package jobs

import "time"

// TypePing proves a worker consumes a queue and can write to Postgres.
const TypePing = "system:ping"

// PingSpec: a probe must fail fast rather than linger.
var PingSpec = Spec{Type: TypePing, Queue: QueueCritical, MaxRetry: 1, Timeout: 30 * time.Second, Retention: 10 * time.Minute}

// PingPayload names the queue probed. Time queued is measured from the job
// row (created_at to started_at, both Postgres' clock), not the payload.
// HoldMS keeps the worker slot busy that long (at most MaxPingHold), which
// lets an operator watch a deploy drain running tasks.
type PingPayload struct {
	OrgID  int64  `json:"org_id"`
	Queue  string `json:"queue"`
	HoldMS int    `json:"hold_ms,omitempty"`
}

// MaxPingHold bounds hold_ms well inside PingSpec.Timeout.
const MaxPingHold = 20 * time.Second

// PingResult is what a ping job stores.
type PingResult struct {
	Host     string  `json:"host"`
	PID      int     `json:"pid"`
	Queue    string  `json:"queue"`
	QueuedMS float64 `json:"queued_ms"`
}

// Validate implements Payload.
func (p PingPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	if !validQueue(p.Queue) {
		fe["queue"] = "must be critical, default or low"
	}
	// Compare milliseconds: converting a huge hold_ms to a Duration overflows.
	if p.HoldMS < 0 || p.HoldMS > int(MaxPingHold/time.Millisecond) {
		fe["hold_ms"] = "must be between 0 and 20000"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// NewPingTask builds a ping for the queue it probes.
func NewPingTask(orgID int64, queue string, holdMS int) (Task, error) {
	if queue == "" {
		queue = PingSpec.Queue
	}
	return newTask(PingSpec, PingPayload{OrgID: orgID, Queue: queue, HoldMS: holdMS}, queue)
}

func validQueue(q string) bool {
	for _, known := range Queues {
		if q == known {
			return true
		}
	}
	return false
}
