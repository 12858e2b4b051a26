// Package proc holds what the crmq processes share at start and stop:
// connecting to Redis and Postgres from config, signals, asynq logging.
package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/store"
)

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// RedisOpt turns REDIS_URL (and REDIS_SENTINELS when set) into asynq's
// connection options. With Sentinels every client asks them for the
// current primary and follows a failover: asynq's servers, clients and
// inspectors, and the go-redis clients made from the same options (the
// LLM rate limit, the API's readiness ping).
func RedisOpt(cfg config.Config) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if len(cfg.RedisSentinels) == 0 {
		return opt, nil
	}
	c, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		return nil, fmt.Errorf("REDIS_URL: with REDIS_SENTINELS it must be redis:// or rediss://, got %T", opt)
	}
	return asynq.RedisFailoverClientOpt{
		MasterName:    cfg.RedisSentinelMaster,
		SentinelAddrs: cfg.RedisSentinels,
		Username:      c.Username,
		Password:      c.Password,
		DB:            c.DB,
		TLSConfig:     c.TLSConfig,
	}, nil
}

// AsynqLogger routes asynq's own logs through slog.
type AsynqLogger struct{ L *slog.Logger }

func (a AsynqLogger) Debug(args ...any) { a.L.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Info(args ...any)  { a.L.Info(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Warn(args ...any)  { a.L.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Error(args ...any) { a.L.Error(fmt.Sprint(args...), "component", "asynq") }

// Fatal is called by asynq only when it cannot go on; exit as it expects.
func (a AsynqLogger) Fatal(args ...any) {
	a.L.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
	os.Exit(1)
}

// Fatal logs a start-up error and exits; used by main functions only.
func Fatal(log *slog.Logger, msg string, err error) {
	log.Error(msg, "err", err)
	os.Exit(1)
}

// OpenDB connects to Postgres, waiting with backoff while it does not
// answer (a process may start before its database), for at most within.
func OpenDB(ctx context.Context, log *slog.Logger, url string, maxConns int, within time.Duration) (*store.DB, error) {
	deadline := time.Now().Add(within)
	wait := 100 * time.Millisecond
	for {
		db, err := store.Open(ctx, url, maxConns)
		if err == nil {
			return db, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("postgres did not answer within %s: %w", within, err)
		}
		log.Warn("waiting for postgres", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// GCPercent is the garbage collector's target (Go's GOGC) in crmq's
// processes unless GOGC is set: their live heaps are small (at 1,000
// jobs/s, GODEBUG=gctrace=1: worker 4 MB, api 11-13 MB), so Go's default
// of 100 collects several times a second under load. At
// 1,000 jobs/s, 400 cost the api and the worker 7-9% less CPU per job
// than 100 (make bench-capacity, alternated), and the export's peak RSS
// stayed at 38 MB (37 with 100). GOMEMLIMIT, when set, still bounds the
// heap.
const GCPercent = 400

// SetGCDefault applies GCPercent when the environment has no GOGC (the
// runtime has read it already otherwise).
func SetGCDefault() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
}

// Process is what every crmq process starts with.
type Process struct {
	Cfg      config.Config
	Log      *slog.Logger
	Ctx      context.Context // cancelled on SIGINT or SIGTERM
	DB       *store.DB
	RedisOpt asynq.RedisConnOpt
	stop     context.CancelFunc
	flush    func() // writes the log records still held
}

// Start loads the config, builds the logger, connects to Postgres (waiting
// for it up to CRMQ_STARTUP_TIMEOUT) and parses REDIS_URL; it exits the
// process with one clear error when any of that fails. For main only.
func Start(name string, requireAdmin bool, maxConns int) *Process {
	SetGCDefault()
	cfg, err := config.Load(requireAdmin)
	if err != nil {
		Fatal(slog.Default(), "config", err)
	}
	logger, flush := cfg.Logger()
	log := logger.With("process", name)
	ctx, stop := SignalContext()
	if maxConns <= 0 {
		maxConns = cfg.DBMaxConns
	}
	db, err := OpenDB(ctx, log, cfg.DatabaseURL, maxConns, cfg.StartupWait)
	if err != nil {
		Fatal(log, "postgres", err)
	}
	db.SetJobBatchDelay(cfg.DBBatchWait, float64(cfg.DBBatchWaitRate))
	redisOpt, err := RedisOpt(cfg)
	if err != nil {
		Fatal(log, "redis", err)
	}
	return &Process{Cfg: cfg, Log: log, Ctx: ctx, DB: db, RedisOpt: redisOpt, stop: stop, flush: flush}
}

// Close releases what Start opened and writes the log records still held.
func (p *Process) Close() {
	p.DB.Close()
	p.stop()
	p.flush()
}

// ServePprof serves Go's profiles under /debug/pprof/ on addr until ctx
// ends; nothing when addr is empty. It has no auth: bind it to loopback.
func ServePprof(ctx context.Context, log *slog.Logger, addr string) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener", "addr", addr, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("pprof listening", "addr", addr)
}
