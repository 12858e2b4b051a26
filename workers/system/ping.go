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

// Ping answers with the worker's host and the time the job spent queued
// (the job row's created_at to started_at). The middleware's writes of the
// row are the Postgres half of the check.
type Ping struct{}

// Run implements workers.Handler.
func (Ping) Run(ctx context.Context, job workers.Job[jobs.PingPayload]) (jobs.PingResult, error) {
	if hold := time.Duration(job.Payload.HoldMS) * time.Millisecond; hold > 0 {
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return jobs.PingResult{}, ctx.Err()
		}
	}
	return jobs.PingResult{
		Host:     host,
		PID:      os.Getpid(),
		Queue:    job.Payload.Queue,
		QueuedMS: float64(job.QueuedFor.Microseconds()) / 1000,
	}, nil
}

var host, _ = os.Hostname()
