// Package system holds the liveness task: a ping that proves a worker
// consumes a queue and can write to Postgres.
package system

import (
	"context"
	"os"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers"
)

// QueueTimer reads how long a job waited before it started.
type QueueTimer interface {
	JobQueuedFor(ctx context.Context, id string) (time.Duration, error)
}

// Ping answers with the worker's host and the time the job spent queued.
// The middleware writes the result to Postgres, which is the other half of
// the check.
func Ping(st QueueTimer) func(context.Context, workers.Job[jobs.PingPayload]) (jobs.PingResult, error) {
	host, _ := os.Hostname()
	return func(ctx context.Context, job workers.Job[jobs.PingPayload]) (jobs.PingResult, error) {
		if hold := time.Duration(job.Payload.HoldMS) * time.Millisecond; hold > 0 {
			select {
			case <-time.After(hold):
			case <-ctx.Done():
				return jobs.PingResult{}, ctx.Err()
			}
		}
		queued, err := st.JobQueuedFor(ctx, job.ID)
		if err != nil {
			return jobs.PingResult{}, err
		}
		return jobs.PingResult{
			Host:     host,
			PID:      os.Getpid(),
			Queue:    job.Payload.Queue,
			QueuedMS: float64(queued.Microseconds()) / 1000,
		}, nil
	}
}
