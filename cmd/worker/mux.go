package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gocloud.dev/blob"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/gemini"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich"
	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/export"
	"github.com/crmq/crmq/workers/fair"
	"github.com/crmq/crmq/workers/maintenance"
	"github.com/crmq/crmq/workers/segment"
	"github.com/crmq/crmq/workers/summary"
	"github.com/crmq/crmq/workers/system"
)

// limiterMaxWait is how long a task waits in its slot for the shared
// requests-per-minute budget before it hands the wait to asynq's retry.
const limiterMaxWait = 5 * time.Second

// deps is what the handlers are built from.
type deps struct {
	cfg      config.Config
	db       *store.DB
	log      *slog.Logger
	metrics  *workers.Metrics
	inflight *workers.Inflight
	provider llm.Provider
	dropped  *prometheus.CounterVec

	client    *asynq.Client    // the reconciler puts lost tasks back
	inspector *asynq.Inspector // and asks asynq about each task

	bucket *blob.Bucket // segment exports

	rdb redis.UniversalClient // robots.txt files shared between workers; nil: per process

	fair *fair.Limiter // per-org caps; nil: none
}

// queue is the client handlers enqueue follow-up tasks with: each one
// marks its org as waiting for the per-org limiter.
func (d deps) queue() jobs.TaskEnqueuer {
	if d.fair == nil {
		return d.client
	}
	return fair.NewMarking(d.client, d.fair)
}

// newProvider builds the configured LLM provider behind the shared rate limiter.
func newProvider(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, observe func(llm.Call)) (llm.Provider, error) {
	var p llm.Provider
	switch cfg.LLMProvider {
	case "gemini":
		g, err := gemini.New(ctx, gemini.Config{APIKey: cfg.GeminiAPIKey, Model: cfg.GeminiModel, BaseURL: cfg.GeminiBaseURL, Timeout: cfg.LLMTimeout,
			MaxOutputTokens: cfg.GeminiMaxOut, ThinkingBudget: &cfg.GeminiThink})
		if err != nil {
			return nil, fmt.Errorf("gemini: %w", err)
		}
		p = g
	default:
		// The offline provider makes no request, so no budget applies.
		return llm.Observed(offline.New(), "offline", observe), nil
	}
	limited := llm.Limited(p, llm.NewLimiter(rdb, cfg.LLMOrgRPM, cfg.LLMGlobalRPM, ""), limiterMaxWait)
	return llm.Observed(limited, cfg.GeminiModel, observe), nil
}

// registry is the one table of task types this worker runs: the spec
// jobs declares for each type, bound to its handler. mux_test.go checks it
// against jobs.Specs, so a type with no handler fails a test, not a user.
func registry(d deps) []workers.Registration {
	en := d.enricher()
	return []workers.Registration{
		workers.Register(jobs.PingSpec, d.db, system.Ping{}),
		workers.Register(jobs.OrphansSpec, d.db, maintenance.Orphans{Store: d.db, Now: time.Now}),
		workers.Register(jobs.PruneSpec, d.db, maintenance.Prune{Store: d.db, Retention: d.cfg.SummaryRetention, Now: time.Now}),
		workers.Register(jobs.SummarySpec, d.db, summary.Summarizer{
			Store: d.db, Provider: d.provider, Budget: d.cfg.SummaryBudget, Now: time.Now,
			Dropped: func(module string, n int) {
				if d.dropped != nil {
					d.dropped.WithLabelValues(module).Add(float64(n))
				}
			},
		}),
		workers.Register(jobs.SegmentRefreshSpec, d.db, segment.Refresher{Store: d.db, Segments: d.db, Now: time.Now, Log: d.log,
			IntentModel: d.intentModel(), IntentBudget: d.cfg.VoCLLMTexts}),
		workers.Register(jobs.ExportSegmentSpec, d.db, export.Exporter{Store: d.db, Bucket: d.bucket, Now: time.Now, Log: d.log}),
		workers.Register(jobs.ExportsExpireSpec, d.db, export.Expirer{Store: d.db, Bucket: d.bucket, Now: time.Now}),
		workers.Register(jobs.EnrichRecordSpec, d.db, enrich.Record{Enricher: en, Queue: d.queue()}),
		workers.Register(jobs.EnrichBulkSpec, d.db, enrich.Bulk{Enricher: en, Queue: d.queue(), Concurrency: d.cfg.EnrichBulkConcurrency}),
		workers.Register(jobs.ReconcileSpec, d.db, maintenance.Reconciler{
			Store: d.db, Queue: d.inspector, Client: d.queue(), Margin: d.cfg.ReconcileMargin, Now: time.Now, Log: d.log,
		}),
	}
}

// intentModel is the provider VoC may ask for intents: the worker's when
// it is Gemini (behind the same rate limits and metrics as summaries);
// none with the offline provider, whose answers are summaries only.
func (d deps) intentModel() llm.Provider {
	if d.cfg.LLMProvider != "gemini" {
		return nil
	}
	return d.provider
}

// enricher builds the enrichment handlers' shared part: one guarded
// fetcher per process, so per-host turns and the global cap hold across
// both task types; robots.txt files are shared with the other workers
// through Redis.
func (d deps) enricher() enrich.Enricher {
	allow, _ := fetch.ParseAllow(d.cfg.EnrichAllowHosts) // checked by config.Load
	var robots fetch.RobotsCache
	if d.rdb != nil {
		robots = fetch.RedisRobots{RDB: d.rdb}
	}
	f := fetch.New(fetch.Config{Allow: allow, HostDelay: d.cfg.EnrichHostDelay, MaxInflight: d.cfg.EnrichMaxInflight,
		Retries: 2, Backoff: 500 * time.Millisecond, Robots: robots})
	return enrich.Enricher{Store: d.db, Crawler: enrich.Crawler{Fetch: f, Provider: d.provider}, Now: time.Now, Log: d.log}
}

// newMux builds the mux from the registry behind the per-org limiter and
// the job-state middleware, in that order: a task handed back for its
// org's cap leaves its job row untouched.
func newMux(d deps) (*asynq.ServeMux, error) {
	var bounced func(string)
	if d.metrics != nil {
		bounced = func(t string) { d.metrics.HandedBack.WithLabelValues(t).Inc() }
	}
	return workers.NewMux(registry(d), d.fair.Middleware(), workers.PerWorker(jobs.Specs, d.log, bounced),
		workers.JobState(d.db, d.log, d.metrics, d.inflight))
}
