// Command api serves crmq's HTTP API, the asynq dashboard under
// /monitoring and Prometheus metrics under /metrics.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers/export"
	"github.com/crmq/crmq/workers/fair"
	"github.com/crmq/crmq/workers/segment"
)

func main() {
	p := proc.Start("api", true, 0)
	defer p.Close()
	cfg, log, ctx, db, redisOpt := p.Cfg, p.Log, p.Ctx, p.DB, p.RedisOpt
	client, clientRDB, err := proc.Client(redisOpt)
	if err != nil {
		proc.Fatal(log, "asynq client", err)
	}
	defer clientRDB.Close()
	defer client.Close()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	lim, limRDB, err := proc.Fair(cfg, redisOpt, log, nil)
	if err != nil {
		proc.Fatal(log, "per-org limiter", err)
	}
	defer limRDB.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	queues := newQueueCollector(insp, log)
	reg.MustRegister(queues)
	reqDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "crmq_http_request_duration_seconds", Help: "HTTP request duration by route and status.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "status"})
	enqueued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmq_tasks_enqueued_total",
		Help: "Tasks the API put on a queue, by type (an idempotent replay puts none).",
	}, []string{"type"})
	quota := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmq_quota_total",
		Help: "Daily quota use by quota (summaries: per user; enrichments: records per org) and outcome: consumed counts units (a summary, an enriched record), refused counts requests answered 429.",
	}, []string{"quota", "outcome"})
	reg.MustRegister(reqDur, enqueued, quota)
	go queues.run(ctx, cfg.MetricsInterval)
	proc.ServePprof(ctx, log, cfg.PprofAddr)
	if err := db.WatchJobs(ctx, cfg.DatabaseURL, log); err != nil {
		log.Warn("job status reads query postgres each: no job notifications", "err", err)
	}

	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redisOpt, ReadOnly: cfg.MonitoringReadOnly})
	defer mon.Close()

	marking := fair.NewMarking(client, lim)
	s := &server{
		cfg: cfg,
		db:  db,
		enq: &jobs.Enqueuer{DB: db, Client: marking, Queue: insp, Log: log,
			Enqueued: func(t string) { enqueued.WithLabelValues(t).Inc() }},
		pingRedis:  client.Ping,
		log:        log,
		now:        time.Now,
		metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		monitoring: mon,
		reqDur:     reqDur,
		quota:      quota,
		keys:       newKeyCache(cfg.KeyCacheTTL, db.GrantByKey),
	}
	s.abm = segment.Setup{DB: db, Enq: s.enq, Now: time.Now}
	exports, err := export.OpenBucket(ctx, cfg.ExportBucket)
	if err != nil {
		proc.Fatal(log, "export bucket", err)
	}
	defer exports.Close()
	s.exports = exports
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      2 * time.Minute, // SSE streams extend their own deadline
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("api listening", "addr", cfg.HTTPAddr)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			proc.Fatal(log, "listen", err)
		}
	case <-ctx.Done():
	}
	log.Info("api stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("api shutdown", "err", err)
	}
	marking.Flush()
	log.Info("api stopped")
}
