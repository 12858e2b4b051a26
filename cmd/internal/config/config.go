// Package config reads crmq's settings from the environment, once, at
// start, and fails with one error naming the variable that is wrong.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/crmq/crmq/workers/enrich/fetch"
)

// Config is every setting of every process; each process reads what it needs.
type Config struct {
	DatabaseURL string
	DBMaxConns  int
	DBBatchWait time.Duration
	// DBBatchWaitRate: the calls per second of one kind of job-row write
	// below which DBBatchWait does not apply; 0: at any rate.
	DBBatchWaitRate int
	StartupWait     time.Duration
	RedisURL        string
	// RedisSentinels, when set, are the Sentinels asked for the primary
	// named RedisSentinelMaster; REDIS_URL then gives the DB and password.
	RedisSentinels      []string
	RedisSentinelMaster string

	HTTPAddr        string
	AdminKey        string
	MaxBodyBytes    int64
	BodyIdleTimeout time.Duration
	KeyCacheTTL     time.Duration

	Concurrency  int
	QueueWeights map[string]int
	// OrgConcurrency is the per-org cap of each queue's slots while
	// another org waits (see workers/fair); 0 or absent: no cap. A cap
	// given as a percentage is also in OrgShares, taken of the whole
	// fleet's slots (OrgConcurrency then holds this worker's own share,
	// used until the fleet is known).
	OrgConcurrency  map[string]int
	OrgShares       map[string]float64
	PollInterval    time.Duration
	ShutdownTimeout time.Duration
	MetricsInterval time.Duration

	WorkerMetricsAddr  string
	PprofAddr          string
	MonitoringReadOnly bool

	CronOrphans      string
	CronPrune        string
	CronReconcile    string
	CronRFM          string
	ReconcileMargin  time.Duration
	SummaryRetention time.Duration

	ExportBucket      string
	CronExportsExpire string

	LLMProvider   string
	GeminiAPIKey  string
	GeminiModel   string
	GeminiBaseURL string
	GeminiMaxOut  int // output-token budget of one answer
	GeminiThink   int // thinking-token budget; -1 lets the model decide, 0 turns thinking off
	LLMTimeout    time.Duration
	LLMOrgRPM     int
	LLMGlobalRPM  int
	VoCLLMTexts   int // VoC texts one refresh sends to the model
	SummaryLimit  int
	SummaryBudget int

	EnrichAllowHosts      string // hosts and CIDRs the enrichment fetcher may reach although not public
	EnrichDailyLimit      int
	EnrichHostDelay       time.Duration
	EnrichMaxInflight     int
	EnrichBulkConcurrency int

	LogLevel  slog.Level
	LogFormat string
	LogFlush  time.Duration
}

// Var documents one environment variable; readme_test.go checks that
// README's table has a row for each.
type Var struct {
	Name, Default, Doc string
}

// Vars lists every variable crmq reads.
var Vars = []Var{
	{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable", "PostgreSQL connection URL"},
	{"CRMQ_DB_MAX_CONNS", "20", "maximum open Postgres connections per process"},
	{"CRMQ_DB_BATCH_WAIT", "2ms", "how long a job-row write (insert, start, finish) that arrives while such writes come steadily waits for others to share its statement; a write after a quiet spell never waits; 0: never"},
	{"CRMQ_DB_BATCH_WAIT_RATE", "600", "the rate (writes per second of one kind, over the last 100 ms or so) from which a job-row write waits CRMQ_DB_BATCH_WAIT; below it each runs at once, as the cores have room; 0: at any rate"},
	{"CRMQ_STARTUP_TIMEOUT", "60s", "how long a starting process waits for Postgres to answer before it gives up"},
	{"REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL for asynq (redis://[user:pass@]host:port/db)"},
	{"REDIS_SENTINELS", "", "comma-separated host:port of Redis Sentinels; when set, every process asks them for the primary named REDIS_SENTINEL_MASTER and follows a failover, and REDIS_URL gives only the DB number and password"},
	{"REDIS_SENTINEL_MASTER", "crmq", "the Sentinel master name of crmq's Redis (used with REDIS_SENTINELS)"},
	{"HTTP_ADDR", "127.0.0.1:8080", "address the API listens on"},
	{"CRMQ_ADMIN_KEY", "(required by api; `make run` generates one)", "admin bearer key for /v1/admin, /monitoring and /metrics; at least 24 characters"},
	{"CRMQ_MAX_BODY_BYTES", "16777216", "largest request body the API reads"},
	{"CRMQ_BODY_IDLE_TIMEOUT", "10s", "how long the API waits for the next bytes of a request body before it answers 408 and closes the connection"},
	{"CRMQ_KEY_CACHE_TTL", "10s", "how long the API remembers which org a key belongs to (0 disables); a revoked key works for at most this long"},
	{"CRMQ_WORKER_CONCURRENCY", "40", "tasks one worker process runs at once (segment refreshes and exports at most 4 of them, orphan recomputes and prunes 2)"},
	{"CRMQ_QUEUE_WEIGHTS", "critical=6,default=3,low=1", "weighted priority of the three queues"},
	{"CRMQ_ORG_CONCURRENCY", "critical=80%,default=40%,low=20%", "per-org cap per queue, shared by all workers: while another org has work waiting, one org holds at most this many running tasks of the queue (an org alone may use every slot); queue=N or queue=P% of CRMQ_WORKER_CONCURRENCY (at least 1), so 32, 16 and 8 with the default 40; a queue left out or set to 0 has no cap; `off` or `0` turns fairness off"},
	{"CRMQ_POLL_INTERVAL", "20ms", "how often an idle worker polls an empty queue (asynq TaskCheckInterval)"},
	{"CRMQ_SHUTDOWN_TIMEOUT", "20s", "how long a stopping worker lets running tasks finish before requeueing them; keep below the orchestrator's grace period"},
	{"CRMQ_WORKER_METRICS_ADDR", "", "address where a worker serves its own /metrics (task durations and outcomes); empty: off"},
	{"CRMQ_PPROF_ADDR", "", "address where api and worker serve Go's /debug/pprof/ (CPU and heap profiles); empty: off. Bind it to loopback: it has no auth"},
	{"CRMQ_MONITORING_READ_ONLY", "true", "true: /monitoring only shows queues; false: operators may also retry, archive and delete tasks there"},
	{"CRMQ_METRICS_INTERVAL", "15s", "how often the API refreshes the cached queue metrics"},
	{"CRMQ_CRON_ORPHANS", "0 3 * * 1", "cron spec (UTC) of orphans:recompute for every org; empty disables it"},
	{"CRMQ_CRON_SUMMARY_PRUNE", "30 4 * * *", "cron spec (UTC) of summaries:prune for every org; empty disables it"},
	{"CRMQ_CRON_RFM", "0 2 * * *", "cron spec (UTC) of the nightly rfm:refresh (segment:refresh of RFM) for every org that configured ABM; empty disables it"},
	{"CRMQ_CRON_RECONCILE", "* * * * *", "cron spec (UTC) of jobs:reconcile, which settles job rows left non-final (task lost by Redis, or archived while Postgres was away); empty disables it"},
	{"CRMQ_RECONCILE_MARGIN", "2m", "how long past its task's timeout a job row may stay unchanged and non-final before the reconciler looks at it"},
	{"CRMQ_SUMMARY_RETENTION_DAYS", "90", "unsaved summaries older than this many days are pruned; saved ones never are"},
	{"CRMQ_EXPORT_BUCKET", "file:///tmp/crmq-exports?create_dir=true", "where segment exports are written: file:///dir (a local directory) or s3://bucket?region=...&endpoint=...&use_path_style=true (any S3-compatible store)"},
	{"CRMQ_CRON_EXPORTS_EXPIRE", "0 * * * *", "cron spec (UTC) of exports:expire for every org (files past 14 days, history past 90 days); empty disables it"},
	{"CRMQ_LLM_PROVIDER", "offline", "offline (deterministic, no network; the default) or gemini"},
	{"GEMINI_API_KEY", "", "the Gemini API key; required when CRMQ_LLM_PROVIDER=gemini"},
	{"CRMQ_GEMINI_MODEL", "gemini-2.5-flash", "Gemini model name"},
	{"CRMQ_GEMINI_BASE_URL", "", "another endpoint speaking the Gemini REST protocol (a proxy, or a test server); empty: Google's"},
	{"CRMQ_GEMINI_MAX_OUTPUT_TOKENS", "8192", "output-token budget of one Gemini answer (thinking included)"},
	{"CRMQ_GEMINI_THINKING_BUDGET", "-1", "thinking-token budget of one Gemini answer: -1 lets the model decide, 0 turns thinking off"},
	{"CRMQ_LLM_TIMEOUT", "60s", "time limit of one model call"},
	{"CRMQ_LLM_RPM_ORG", "60", "model requests per minute per org, shared by all workers (0: no limit)"},
	{"CRMQ_LLM_RPM_GLOBAL", "600", "model requests per minute for all orgs together, shared by all workers (0: no limit)"},
	{"CRMQ_VOC_LLM_TEXTS", "10000", "most VoC texts one segment:refresh sends to the model for their intent, for an org that chose intent_classifier llm (with CRMQ_LLM_PROVIDER=gemini); the rest keep the rule table's intent until a later refresh sends them"},
	{"CRMQ_SUMMARY_DAILY_LIMIT", "100", "summaries a user may generate per UTC day (seed 000)"},
	{"CRMQ_SUMMARY_TOKEN_BUDGET", "24000", "largest prompt, in estimated tokens, a summary sends"},
	{"CRMQ_ENRICH_ALLOW_HOSTS", "", "comma-separated host names and CIDRs the enrichment fetcher may reach although they are not public (tests, private deployments; `make run` names the demo sites' loopback address); the address guard stays on for everything else, and cloud-metadata addresses are never allowed"},
	{"CRMQ_ENRICH_DAILY_LIMIT", "5000", "records an org may enrich per UTC day (seed 004)"},
	{"CRMQ_ENRICH_HOST_DELAY", "1s", "pause between two enrichment requests to one host (robots.txt Crawl-delay, up to 5 s, when longer)"},
	{"CRMQ_ENRICH_MAX_INFLIGHT", "16", "enrichment requests in flight at once per worker process, across all hosts"},
	{"CRMQ_ENRICH_BULK_CONCURRENCY", "8", "child tasks of one bulk enrichment queued or running at once (its window)"},
	{"CRMQ_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"CRMQ_LOG_FORMAT", "json", "json or text"},
	{"CRMQ_LOG_FLUSH", "100ms", "longest an info or debug log record waits to be written with the ones after it (warnings and errors are written at once); 0 writes every record as it comes"},
}

// Load reads and validates the environment. requireAdmin is set by the
// processes that serve admin routes.
func Load(requireAdmin bool) (Config, error) {
	return load(os.LookupEnv, requireAdmin)
}

func load(lookup func(string) (string, bool), requireAdmin bool) (Config, error) {
	p := parser{lookup: lookup}
	c := Config{
		DatabaseURL:         p.url("DATABASE_URL", "postgres", "postgresql"),
		DBMaxConns:          p.int("CRMQ_DB_MAX_CONNS", 1, 1000),
		DBBatchWait:         p.duration("CRMQ_DB_BATCH_WAIT", 0, 50*time.Millisecond),
		DBBatchWaitRate:     p.int("CRMQ_DB_BATCH_WAIT_RATE", 0, 1_000_000),
		StartupWait:         p.duration("CRMQ_STARTUP_TIMEOUT", 0, time.Hour),
		RedisURL:            p.url("REDIS_URL", "redis", "rediss"),
		RedisSentinels:      p.hostPorts("REDIS_SENTINELS"),
		RedisSentinelMaster: p.str("REDIS_SENTINEL_MASTER"),
		HTTPAddr:            p.str("HTTP_ADDR"),
		AdminKey:            p.str("CRMQ_ADMIN_KEY"),
		MaxBodyBytes:        int64(p.int("CRMQ_MAX_BODY_BYTES", 1024, 1<<30)),
		BodyIdleTimeout:     p.duration("CRMQ_BODY_IDLE_TIMEOUT", 100*time.Millisecond, 2*time.Minute),
		KeyCacheTTL:         p.duration("CRMQ_KEY_CACHE_TTL", 0, time.Hour),
		Concurrency:         p.int("CRMQ_WORKER_CONCURRENCY", 1, 1000),
		QueueWeights:        p.weights("CRMQ_QUEUE_WEIGHTS"),
		PollInterval:        p.duration("CRMQ_POLL_INTERVAL", time.Millisecond, time.Minute),
		ShutdownTimeout:     p.duration("CRMQ_SHUTDOWN_TIMEOUT", time.Second, 24*time.Hour),
		MetricsInterval:     p.duration("CRMQ_METRICS_INTERVAL", time.Second, time.Hour),
		CronOrphans:         p.raw("CRMQ_CRON_ORPHANS"),
		CronPrune:           p.raw("CRMQ_CRON_SUMMARY_PRUNE"),
		CronReconcile:       p.raw("CRMQ_CRON_RECONCILE"),
		CronRFM:             p.raw("CRMQ_CRON_RFM"),
		ReconcileMargin:     p.duration("CRMQ_RECONCILE_MARGIN", 0, 24*time.Hour),
		SummaryRetention:    time.Duration(p.int("CRMQ_SUMMARY_RETENTION_DAYS", 1, 36500)) * 24 * time.Hour,
		WorkerMetricsAddr:   p.str("CRMQ_WORKER_METRICS_ADDR"),
		PprofAddr:           p.str("CRMQ_PPROF_ADDR"),
		ExportBucket:        p.bucket("CRMQ_EXPORT_BUCKET"),
		CronExportsExpire:   p.raw("CRMQ_CRON_EXPORTS_EXPIRE"),
		MonitoringReadOnly:  p.oneOf("CRMQ_MONITORING_READ_ONLY", "true", "false") == "true",
		LLMProvider:         p.oneOf("CRMQ_LLM_PROVIDER", "offline", "gemini"),
		GeminiAPIKey:        p.str("GEMINI_API_KEY"),
		GeminiModel:         p.str("CRMQ_GEMINI_MODEL"),
		GeminiBaseURL:       p.str("CRMQ_GEMINI_BASE_URL"),
		GeminiMaxOut:        p.int("CRMQ_GEMINI_MAX_OUTPUT_TOKENS", 256, 65536),
		GeminiThink:         p.int("CRMQ_GEMINI_THINKING_BUDGET", -1, 32768),
		LLMTimeout:          p.duration("CRMQ_LLM_TIMEOUT", time.Second, 10*time.Minute),
		LLMOrgRPM:           p.int("CRMQ_LLM_RPM_ORG", 0, 1000000),
		LLMGlobalRPM:        p.int("CRMQ_LLM_RPM_GLOBAL", 0, 1000000),
		VoCLLMTexts:         p.int("CRMQ_VOC_LLM_TEXTS", 1, 10000000),
		SummaryLimit:        p.int("CRMQ_SUMMARY_DAILY_LIMIT", 1, 1000000),
		SummaryBudget:       p.int("CRMQ_SUMMARY_TOKEN_BUDGET", 1000, 2000000),
		EnrichAllowHosts:    p.str("CRMQ_ENRICH_ALLOW_HOSTS"),
		EnrichDailyLimit:    p.int("CRMQ_ENRICH_DAILY_LIMIT", 1, 1000000),
		EnrichHostDelay:     p.duration("CRMQ_ENRICH_HOST_DELAY", 0, time.Minute),
		EnrichMaxInflight:   p.int("CRMQ_ENRICH_MAX_INFLIGHT", 1, 10000),
		LogLevel:            p.level("CRMQ_LOG_LEVEL"),
		LogFormat:           p.oneOf("CRMQ_LOG_FORMAT", "json", "text"),
		LogFlush:            p.duration("CRMQ_LOG_FLUSH", 0, 10*time.Second),
	}
	c.OrgConcurrency, c.OrgShares = p.orgCaps("CRMQ_ORG_CONCURRENCY", c.Concurrency)
	c.EnrichBulkConcurrency = p.int("CRMQ_ENRICH_BULK_CONCURRENCY", 1, 500)
	if _, err := fetch.ParseAllow(c.EnrichAllowHosts); p.err == nil && err != nil {
		p.fail("CRMQ_ENRICH_ALLOW_HOSTS", "%v", err)
	}
	if p.err == nil && c.GeminiBaseURL != "" {
		p.url("CRMQ_GEMINI_BASE_URL", "http", "https")
	}
	if p.err == nil && c.LLMProvider == "gemini" && c.GeminiAPIKey == "" {
		p.err = fmt.Errorf("GEMINI_API_KEY: required when CRMQ_LLM_PROVIDER=gemini")
	}
	if p.err == nil && requireAdmin && len(c.AdminKey) < 24 {
		p.err = fmt.Errorf("CRMQ_ADMIN_KEY: must be set to at least 24 characters")
	}
	return c, p.err
}

// Logger builds the process logger from the config, writing to stderr;
// call flush before the process ends. With CRMQ_LOG_FLUSH above zero the
// records go through a LogWriter: warnings and errors at once, the rest
// at most that long after.
func (c Config) Logger() (log *slog.Logger, flush func()) {
	return c.loggerTo(os.Stderr)
}

func (c Config) loggerTo(w io.Writer) (*slog.Logger, func()) {
	flush := func() {}
	var lw *LogWriter
	if c.LogFlush > 0 {
		lw = NewLogWriter(w, c.LogFlush, logBufferBytes)
		w, flush = lw, func() { _ = lw.Flush() }
	}
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if lw != nil {
		h = flushAbove{Handler: h, w: lw, level: slog.LevelWarn}
	}
	return slog.New(h), flush
}

func defaultOf(name string) string {
	for _, v := range Vars {
		if v.Name == name && !strings.HasPrefix(v.Default, "(") {
			return v.Default
		}
	}
	return ""
}

// parser keeps the first error so Load reports one variable at a time.
type parser struct {
	lookup func(string) (string, bool)
	err    error
}

func (p *parser) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

// str returns the variable, or its default when unset or empty.
func (p *parser) str(name string) string {
	if v, _ := p.lookup(name); v != "" {
		return v
	}
	return defaultOf(name)
}

// raw returns the variable, or its default only when unset: set to "" it
// stays empty (that is how a cron entry is disabled).
func (p *parser) raw(name string) string {
	if v, ok := p.lookup(name); ok {
		return v
	}
	return defaultOf(name)
}

func (p *parser) url(name string, schemes ...string) string {
	v := p.str(name)
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		p.fail(name, "not a URL with a host: %q", redact(v))
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	p.fail(name, "scheme %q, want one of %v", u.Scheme, schemes)
	return v
}

// bucket reads a blob bucket URL: file:///dir or s3://bucket?....
func (p *parser) bucket(name string) string {
	v := p.str(name)
	u, err := url.Parse(v)
	switch {
	case err != nil:
		p.fail(name, "not a URL: %q", redact(v))
	case u.Scheme == "file" && u.Path != "":
	case u.Scheme == "s3" && u.Host != "":
	default:
		p.fail(name, "want file:///dir or s3://bucket?..., got %q", redact(v))
	}
	return v
}

func (p *parser) int(name string, lo, hi int) int {
	v := p.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, "want an integer in [%d, %d], got %q", lo, hi, v)
	}
	return n
}

func (p *parser) duration(name string, lo, hi time.Duration) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		p.fail(name, "want a duration in [%s, %s] such as 20ms or 15s, got %q", lo, hi, v)
	}
	return d
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := p.str(name)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "want one of %v, got %q", allowed, v)
	return v
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(p.str(name))); err != nil {
		p.fail(name, "want debug, info, warn or error, got %q", p.str(name))
	}
	return l
}

// hostPorts parses a comma-separated list of host:port; empty is none.
func (p *parser) hostPorts(name string) []string {
	v := strings.TrimSpace(p.str(name))
	if v == "" {
		return nil
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		hp := strings.TrimSpace(part)
		host, port, err := net.SplitHostPort(hp)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			p.fail(name, "want host:port entries separated by commas, got %q", hp)
			return nil
		}
		out = append(out, hp)
	}
	return out
}

// weights parses "critical=6,default=3,low=1"; all three queues must appear.
func (p *parser) weights(name string) map[string]int {
	v := p.str(name)
	w := map[string]int{}
	for _, part := range strings.Split(v, ",") {
		q, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		weight, err := strconv.Atoi(n)
		if !ok || err != nil || weight < 1 {
			p.fail(name, "want queue=weight pairs with weights >= 1, got %q", v)
			return nil
		}
		w[q] = weight
	}
	for _, q := range []string{"critical", "default", "low"} {
		if _, ok := w[q]; !ok {
			p.fail(name, "queue %q missing in %q", q, v)
		}
	}
	if len(w) != 3 {
		p.fail(name, "only the queues critical, default and low exist, got %q", v)
	}
	return w
}

// orgCaps parses "critical=8,default=40%,low=2" (a percentage is of the
// worker's concurrency, rounded, at least 1); "off" or "0" is no cap at
// all, a queue left out has none either.
func (p *parser) orgCaps(name string, concurrency int) (map[string]int, map[string]float64) {
	v := strings.TrimSpace(p.str(name))
	caps, shares := map[string]int{}, map[string]float64{}
	if v == "off" || v == "0" {
		return caps, shares
	}
	for _, part := range strings.Split(v, ",") {
		q, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		q, n = strings.TrimSpace(q), strings.TrimSpace(n)
		if !ok || !validQueue(q) {
			p.fail(name, "want queue=N or queue=P%% pairs for critical, default and low, or off; got %q", v)
			return nil, nil
		}
		if _, dup := caps[q]; dup {
			p.fail(name, "queue %q given twice in %q", q, v)
			return nil, nil
		}
		if pct, isPct := strings.CutSuffix(n, "%"); isPct {
			x, err := strconv.Atoi(pct)
			if err != nil || x < 0 || x > 100 {
				p.fail(name, "want a percentage in [0, 100] for %s, got %q", q, n)
				return nil, nil
			}
			caps[q] = 0
			if x > 0 {
				caps[q] = max(1, (concurrency*x+50)/100)
				shares[q] = float64(x) / 100
			}
			continue
		}
		x, err := strconv.Atoi(n)
		if err != nil || x < 0 || x > 100000 {
			p.fail(name, "want a number of slots in [0, 100000] for %s, got %q", q, n)
			return nil, nil
		}
		caps[q] = x
	}
	return caps, shares
}

func validQueue(q string) bool { return q == "critical" || q == "default" || q == "low" }

// redact hides a password in a URL for error messages.
func redact(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
