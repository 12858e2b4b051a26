// Command worker runs the asynq server with every task handler. SIGTERM
// stops taking tasks, lets running ones finish for CRMQ_SHUTDOWN_TIMEOUT,
// then hands the rest back to their queue (they run again elsewhere;
// handlers are idempotent).
package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/export"
	"github.com/crmq/crmq/workers/fair"
)

func main() {
	p := proc.Start("worker", false, 0)
	defer p.Close()
	cfg, log, ctx, db, redisOpt := p.Cfg, p.Log, p.Ctx, p.DB, p.RedisOpt

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := workers.NewMetrics()
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmq_summary_dropped_source_ids_total",
		Help: "Source ids a model cited that were not in its prompt; dropped, never shown.",
	}, []string{"module"})
	llmCalls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmq_llm_calls_total",
		Help: "Model calls by provider, model and outcome (ok, rate_limited, permanent, cancelled, error); rate_limited includes crmq's own per-org and global limits.",
	}, []string{"provider", "model", "outcome"})
	llmTokens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmq_llm_tokens_total",
		Help: "Tokens model calls used, by provider, model and kind (prompt, output), as the provider reports them.",
	}, []string{"provider", "model", "kind"})
	reg.MustRegister(metrics.Started, metrics.Duration, metrics.Outcomes, metrics.HandedBack, dropped, llmCalls, llmTokens)
	observeLLM := func(c llm.Call) {
		llmCalls.WithLabelValues(c.Provider, c.Model, c.Outcome).Inc()
		if c.Usage.PromptTokens+c.Usage.OutputTokens > 0 {
			llmTokens.WithLabelValues(c.Provider, c.Model, "prompt").Add(float64(c.Usage.PromptTokens))
			llmTokens.WithLabelValues(c.Provider, c.Model, "output").Add(float64(c.Usage.OutputTokens))
		}
	}
	fairMetrics := fair.NewMetrics()
	reg.MustRegister(fairMetrics.Collectors()...)

	proc.ServePprof(ctx, log, cfg.PprofAddr)
	rdb, err := proc.Coalesced(redisOpt)
	if err != nil {
		proc.Fatal(log, "redis", err)
	}
	defer rdb.Close()
	provider, err := newProvider(ctx, cfg, rdb, observeLLM)
	if err != nil {
		proc.Fatal(log, "llm provider", err)
	}

	lim := &fair.Limiter{RDB: rdb, Caps: cfg.OrgConcurrency, Shares: cfg.OrgShares, Queues: jobs.Queues, Log: log, M: fairMetrics}
	// This worker's slots count in the fleet the caps are shares of.
	unregister := lim.Register(ctx, cfg.Concurrency)
	defer unregister()

	// asynq's own commands (dequeue, done, retry: scripts from each of
	// the worker's slots) travel together when they arrive together.
	srvRDB, err := proc.Coalesced(redisOpt)
	if err != nil {
		proc.Fatal(log, "redis", err)
	}
	defer srvRDB.Close()
	srv := asynq.NewServerFromRedisClient(srvRDB, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            cfg.QueueWeights,
		TaskCheckInterval: cfg.PollInterval,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		RetryDelayFunc:    workers.RetryDelay, // honours a provider's retry-after
		IsFailure:         workers.IsFailure,  // Postgres away, or an org at its cap, is not the task's failure
		// Retries and tasks handed back for their org's cap return to
		// their queue within a second of their time, not five.
		DelayedTaskCheckInterval: time.Second,
		Logger:                   proc.AsynqLogger{L: log},
		LogLevel:                 asynq.InfoLevel,
		BaseContext:              func() context.Context { return context.Background() },
	})
	inflight := &workers.Inflight{}
	client, clientRDB, err := proc.Client(redisOpt)
	if err != nil {
		proc.Fatal(log, "asynq client", err)
	}
	defer clientRDB.Close()
	defer client.Close()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	bucket, err := export.OpenBucket(ctx, cfg.ExportBucket)
	if err != nil {
		proc.Fatal(log, "export bucket", err)
	}
	defer bucket.Close()
	mux, err := newMux(deps{cfg: cfg, db: db, log: log, metrics: metrics, inflight: inflight, provider: provider, dropped: dropped,
		client: client, inspector: insp, bucket: bucket, rdb: rdb, fair: lim})
	if err != nil {
		proc.Fatal(log, "task registry", err)
	}
	if err := srv.Start(mux); err != nil {
		proc.Fatal(log, "start asynq server", err)
	}
	log.Info("worker started", "concurrency", cfg.Concurrency, "queues", cfg.QueueWeights, "org_concurrency", cfg.OrgConcurrency,
		"poll_interval", cfg.PollInterval, "llm", provider.Name())

	var metricsSrv *http.Server
	if cfg.WorkerMetricsAddr != "" {
		metricsSrv = &http.Server{Addr: cfg.WorkerMetricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener", "err", err)
			}
		}()
	}

	<-ctx.Done()
	log.Info("worker stopping: no new tasks; waiting for running ones", "timeout", cfg.ShutdownTimeout)
	srv.Shutdown()
	// Tasks still running were handed back; let their handlers, which
	// see a cancelled context, record that before the process ends.
	if !inflight.Wait(5 * time.Second) {
		log.Warn("some running attempts did not record their state before exit; their jobs show running until picked up again")
	}
	lim.Flush() // the slots of the tasks that ended
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	log.Info("worker stopped")
}
