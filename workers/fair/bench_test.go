package fair_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/workers/fair"
)

// redisCPU reads the Redis server's CPU seconds (user + system) so far.
func redisCPU(b *testing.B, rdb redis.UniversalClient) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			sum += f
		}
	}
	return sum
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTaskSlot is what the limiter costs one task as a worker runs
// it under load: the enqueuer's mark, the admission, the release, with
// 16 tasks at once of one org under its cap; with slots kept for the
// org's next task (the default) and without. It reports Redis's CPU and
// this process's CPU per task besides the time:
//
//	go test ./workers/fair -run '^$' -bench TaskSlot -benchtime 20000x
func BenchmarkTaskSlot(b *testing.B) {
	for _, c := range []struct {
		name string
		keep time.Duration
	}{{"kept", 0}, {"released", -1}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			r1, _ := newRedis(b)
			l := &fair.Limiter{RDB: r1, Caps: map[string]int{"critical": 32, "default": 16, "low": 8}, Queues: jobs.Queues, Keep: c.keep}
			mk := fair.NewMarking(idEnqueuer{queue: "critical"}, l)
			var n atomic.Int64
			redis0, self0 := redisCPU(b, r1), selfCPU()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := `{"org_id":1,"n":` + strconv.FormatInt(n.Add(1), 10) + `}`
					if _, err := mk.EnqueueContext(ctx, asynq.NewTask("system:ping", []byte(id))); err != nil {
						b.Fatal(err)
					}
					if err := fair.Run(ctx, l, "critical", 1, id, func() error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
			mk.Flush()
			l.Flush()
			b.StopTimer()
			ops := float64(b.N)
			b.ReportMetric((redisCPU(b, r1)-redis0)*1e6/ops, "redis-µs/op")
			b.ReportMetric(float64((selfCPU()-self0).Microseconds())/ops, "proc-µs/op")
		})
	}
}
