package proc

import (
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers/fair"
)

// Fair builds the per-org limiter from CRMQ_ORG_CONCURRENCY on its own
// Redis client; close the client when the process ends. m may be nil (the
// API and scheduler only mark orgs as waiting).
func Fair(cfg config.Config, redisOpt asynq.RedisConnOpt, log *slog.Logger, m *fair.Metrics) (*fair.Limiter, redis.UniversalClient, error) {
	rdb, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, nil, fmt.Errorf("unexpected redis client for %T", redisOpt)
	}
	return &fair.Limiter{RDB: rdb, Caps: cfg.OrgConcurrency, Shares: cfg.OrgShares, Queues: jobs.Queues, Log: log, M: m}, rdb, nil
}
