// Command scheduler runs the cron table of periodic tasks. Run as many as
// you like: each tick is enqueued once (see package scheduler).
package main

import (
	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/scheduler"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/fair"
)

func main() {
	p := proc.Start("scheduler", false, 4)
	defer p.Close()
	cfg, log, ctx, db, redisOpt := p.Cfg, p.Log, p.Ctx, p.DB, p.RedisOpt
	client, clientRDB, err := proc.Client(redisOpt)
	if err != nil {
		proc.Fatal(log, "asynq client", err)
	}
	defer clientRDB.Close()
	defer client.Close()

	lim, limRDB, err := proc.Fair(cfg, redisOpt, log, nil)
	if err != nil {
		proc.Fatal(log, "per-org limiter", err)
	}
	defer limRDB.Close()
	marking := fair.NewMarking(client, lim)
	s, err := scheduler.New(Table(cfg, db), &jobs.Enqueuer{DB: db, Client: marking, Log: log}, db, log)
	if err != nil {
		proc.Fatal(log, "cron table", err)
	}
	s.Start()
	log.Info("scheduler started", "entries", len(Table(cfg, db)))
	<-ctx.Done()
	log.Info("scheduler stopping")
	s.Stop()
	marking.Flush()
}

// Table is the cron table from config; an empty spec disables its entry.
func Table(cfg config.Config, db *store.DB) []scheduler.Entry {
	var t []scheduler.Entry
	if cfg.CronOrphans != "" {
		t = append(t, scheduler.Entry{Spec: cfg.CronOrphans, Type: jobs.TypeOrphansRecompute, Build: jobs.NewOrphansTask})
	}
	if cfg.CronPrune != "" {
		t = append(t, scheduler.Entry{Spec: cfg.CronPrune, Type: jobs.TypeSummariesPrune, Build: jobs.NewPruneTask})
	}
	if cfg.CronExportsExpire != "" {
		t = append(t, scheduler.Entry{Spec: cfg.CronExportsExpire, Type: jobs.TypeExportsExpire, Build: jobs.NewExportsExpireTask})
	}
	if cfg.CronRFM != "" {
		// The tick's task ids are rfm:refresh:<org>:<tick>; the task is a
		// segment:refresh of the RFM technique.
		t = append(t, scheduler.Entry{Spec: cfg.CronRFM, Type: "rfm:refresh", Build: jobs.NewRFMRefreshTask, Orgs: db.ConfiguredOrgIDs})
	}
	if cfg.CronReconcile != "" {
		t = append(t, scheduler.Entry{Spec: cfg.CronReconcile, Type: jobs.TypeJobsReconcile, Build: jobs.NewReconcileTask})
	}
	return t
}
