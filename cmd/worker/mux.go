package main

import (
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/maintenance"
	"github.com/crmq/crmq/workers/system"
)

// newMux registers every task type's handler behind the job-state middleware.
func newMux(db *store.DB, log *slog.Logger, m *workers.Metrics) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(workers.JobState(db, log, m))
	mux.Handle(jobs.TypePing, workers.Handle(db, system.Ping()))
	mux.Handle(jobs.TypeOrphansRecompute, workers.Handle(db, maintenance.OrphansHandler(db, time.Now)))
	return mux
}
