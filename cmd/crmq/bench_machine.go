package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/cmd/internal/proc"
)

// machine names the machine and the servers a bench ran on: machineLine,
// then PostgreSQL's and Redis's versions as the servers report them
// ("unknown" for one that does not answer), so a figure printed by any
// bench carries the line docs/BENCHMARKS.md asks for.
func (c *cli) machine(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pg, rd := "unknown", "unknown"
	if db, err := c.openDB(ctx); err == nil {
		var v string
		if err := db.GetContext(ctx, &v, "SHOW server_version"); err == nil {
			pg = firstField(v, pg)
		}
	}
	if cfg, err := c.config(); err == nil {
		if opt, err := proc.RedisOpt(cfg); err == nil {
			if rdb, ok := opt.MakeRedisClient().(redis.UniversalClient); ok {
				if info, err := rdb.Info(ctx, "server").Result(); err == nil {
					rd = redisVersion(info, rd)
				}
				_ = rdb.Close()
			}
		}
	}
	return fmt.Sprintf("%s, PostgreSQL %s, Redis %s", machineLine(), pg, rd)
}

// firstField is v's first word ("15.18" of "15.18 (Debian 15.18-0+deb12u1)"),
// or def when v is blank.
func firstField(v, def string) string {
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return def
}

// redisVersion reads redis_version from INFO server's answer.
func redisVersion(info, def string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return firstField(v, def)
		}
	}
	return def
}

// machineLine names the machine a figure was measured on.
func machineLine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load " + strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s%s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
}
