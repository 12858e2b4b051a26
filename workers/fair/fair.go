// Package fair shares each queue's worker slots between orgs: a per-org
// concurrency cap per queue, held in Redis so it spans every worker
// process, that bites only while another org has work waiting.
//
// Three kinds of keys (all under crmq:fair:, times from Redis's clock):
//
//   - run:<queue>:<org>  ZSET task id -> lease end (ms). A running task
//     holds a member; a heartbeat moves its lease end every Lease/3, so a
//     worker that dies frees its slots within Lease (30 s).
//   - wait:<queue>:<org> ZSET task id -> first seen (ms). A task enters at
//     enqueue (Marking wraps the asynq client) or when it is refused a slot,
//     and leaves when it gets one. Members older than Stale (a task deleted
//     from its queue) are dropped.
//   - started:<queue>:<org> ZSET task id -> start (ms), for Lease: tasks
//     that got a slot. A mark arriving after its task started (the
//     enqueuer marks after asynq's enqueue, and a polling worker may take
//     the task in between) is ignored, so it cannot leave a waiting task
//     that never starts, and its org in demand, for Stale.
//   - demand             ZSET org -> "wants slots until" (ms). Raised to
//     now+Stale while the org has tasks waiting; set to now+Linger when its
//     last waiting task starts, so a busy org's neighbour stays capped for a
//     few seconds between two of its tasks instead of refilling every slot.
//
// A task of org X on queue q starts at once while X holds fewer than the
// cap's slots of q, or while no other org is in demand. Otherwise it waits
// up to Wait (default none: a waiting task holds a slot another org could
// use) for a slot and is then handed back (*Busy): asynq retries it
// after RetryIn without counting a failure (see IsBusy). A task on its last
// allowed attempt is never handed back (asynq would archive it, whatever
// IsFailure says): it waits up to LastWait, then runs over the cap.
package fair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Defaults of a Limiter's timings.
const (
	DefaultLease    = 30 * time.Second
	DefaultStale    = 10 * time.Minute
	DefaultLinger   = 5 * time.Second
	DefaultLastWait = 10 * time.Second
	DefaultRetryIn  = time.Second
)

const prefix = "crmq:fair:"

// Busy is the error of a task handed back because its org holds its
// share of the queue while another org waits. It is not a failure.
type Busy struct {
	Queue   string
	OrgID   int64
	RetryIn time.Duration
}

func (b *Busy) Error() string {
	return fmt.Sprintf("org %d is at its concurrency cap on queue %s while another org waits; handed back", b.OrgID, b.Queue)
}

// IsBusy tells whether err is, or wraps, a *Busy.
func IsBusy(err error) bool {
	var b *Busy
	return errors.As(err, &b)
}

// RetryDelay is the wait before a handed-back task returns: its RetryIn
// plus up to half a second, so tasks handed back together spread out.
// asynq stores the time in whole seconds and moves it to pending on its
// DelayedTaskCheckInterval. ok is false when err is no *Busy.
func RetryDelay(err error) (time.Duration, bool) {
	var b *Busy
	if !errors.As(err, &b) {
		return 0, false
	}
	return b.RetryIn + rand.N(500*time.Millisecond), true
}

// Metrics of the limiter; register them with the worker's registry.
type Metrics struct {
	Admitted *prometheus.CounterVec // how: free, alone, waited, overcap, failopen
	Bounced  *prometheus.CounterVec
	Held     *prometheus.GaugeVec
}

// NewMetrics creates the limiter's metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Admitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_fair_admitted_total",
			Help: "Tasks the per-org limiter let start, by queue and how: free (under the cap), alone (over the cap, no other org waiting), waited (a slot freed during the short wait), overcap (last attempt, run over the cap), failopen (Redis error: run without the cap).",
		}, []string{"queue", "how"}),
		Bounced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_fair_bounced_total",
			Help: "Tasks handed back to their queue because their org held its share while another org waited; not failures, not retries.",
		}, []string{"queue"}),
		Held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmq_fair_held_slots",
			Help: "Slots this worker process holds in the per-org limiter, by queue.",
		}, []string{"queue"}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Admitted, m.Bounced, m.Held}
}

// Limiter is the per-org cap. A nil *Limiter or one with no caps lets
// every task run.
type Limiter struct {
	RDB    redis.UniversalClient
	Caps   map[string]int // queue -> slots one org may hold while others wait; 0 or absent: no cap
	Queues []string       // every queue an org's work may wait on (for its demand)
	Log    *slog.Logger
	M      *Metrics // may be nil

	Lease, Stale, Linger, Wait, LastWait, RetryIn time.Duration
}

func (l *Limiter) enabled() bool {
	if l == nil || l.RDB == nil {
		return false
	}
	for _, c := range l.Caps {
		if c > 0 {
			return true
		}
	}
	return false
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (l *Limiter) lease() time.Duration    { return or(l.Lease, DefaultLease) }
func (l *Limiter) stale() time.Duration    { return or(l.Stale, DefaultStale) }
func (l *Limiter) linger() time.Duration   { return or(l.Linger, DefaultLinger) }
func (l *Limiter) wait() time.Duration     { return max(l.Wait, 0) } // default: none
func (l *Limiter) lastWait() time.Duration { return or(l.LastWait, DefaultLastWait) }
func (l *Limiter) retryIn() time.Duration  { return or(l.RetryIn, DefaultRetryIn) }

func runKey(queue string, org int64) string {
	return prefix + "run:" + queue + ":" + strconv.FormatInt(org, 10)
}
func waitKey(queue string, org int64) string {
	return prefix + "wait:" + queue + ":" + strconv.FormatInt(org, 10)
}
func startedKey(queue string, org int64) string {
	return prefix + "started:" + queue + ":" + strconv.FormatInt(org, 10)
}

const demandKey = prefix + "demand"

// acquire: KEYS[1] run key, KEYS[2] wait key, KEYS[3] demand, KEYS[4]
// started key, KEYS[5..] the org's wait keys on every queue. ARGV: cap, task id, lease ms, org,
// stale ms, linger ms, mark (1: a refused task enters the wait set).
// Returns {admitted (0/1), how (0 free, 1 alone)}.
var acquire = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, lease, stale, linger = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", now)
local how = -1
if redis.call("ZSCORE", KEYS[1], ARGV[2]) or redis.call("ZCARD", KEYS[1]) < cap then
  how = 0
else
  local others = false
  for _, o in ipairs(redis.call("ZRANGEBYSCORE", KEYS[3], "(" .. now, "+inf", "LIMIT", 0, 2)) do
    if o ~= ARGV[4] then others = true end
  end
  if not others then how = 1 end
end
if how >= 0 then
  redis.call("ZADD", KEYS[1], now + lease, ARGV[2])
  redis.call("PEXPIRE", KEYS[1], lease * 2)
  redis.call("ZREM", KEYS[2], ARGV[2])
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now - lease)
  redis.call("ZADD", KEYS[4], now, ARGV[2])
  redis.call("PEXPIRE", KEYS[4], lease)
  local waiting = 0
  for i = 5, #KEYS do
    redis.call("ZREMRANGEBYSCORE", KEYS[i], "-inf", now - stale)
    waiting = waiting + redis.call("ZCARD", KEYS[i])
  end
  if waiting == 0 then
    redis.call("ZADD", KEYS[3], now + linger, ARGV[4])
    redis.call("PEXPIRE", KEYS[3], stale)
  end
  return {1, how}
end
if ARGV[7] == "1" then
  redis.call("ZADD", KEYS[2], "NX", now, ARGV[2])
  redis.call("PEXPIRE", KEYS[2], stale)
  redis.call("ZADD", KEYS[3], "GT", now + stale, ARGV[4])
  redis.call("PEXPIRE", KEYS[3], stale)
end
return {0, -1}
`)

// mark: KEYS[1] wait key, KEYS[2] demand, KEYS[3] started key. ARGV:
// task id, org, stale ms. A task already started is not marked.
var mark = redis.NewScript(`
if redis.call("ZSCORE", KEYS[3], ARGV[1]) then
  return 0
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[3])
redis.call("ZADD", KEYS[1], "NX", now, ARGV[1])
redis.call("PEXPIRE", KEYS[1], stale)
redis.call("ZADD", KEYS[2], "GT", now + stale, ARGV[2])
redis.call("PEXPIRE", KEYS[2], stale)
return 1
`)

// renew: KEYS[1] run key. ARGV: task id, lease ms.
var renew = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`)

// Admission says how a task got its slot.
type Admission int

// How a task was admitted.
const (
	Refused Admission = iota
	Free              // the org is under its cap
	Alone             // over the cap, but no other org waits
)

// TryAcquire asks once for a slot of queue for the org's task. mark puts a
// refused task in the org's wait set (it will be handed back). A queue
// with no cap answers Free and holds nothing.
func (l *Limiter) TryAcquire(ctx context.Context, queue string, org int64, taskID string, mark bool) (Admission, error) {
	if l.Caps[queue] <= 0 {
		return Free, nil
	}
	keys := []string{runKey(queue, org), waitKey(queue, org), demandKey, startedKey(queue, org)}
	for _, q := range l.Queues {
		keys = append(keys, waitKey(q, org))
	}
	m := "0"
	if mark {
		m = "1"
	}
	r, err := acquire.Run(ctx, l.RDB, keys, l.Caps[queue], taskID, l.lease().Milliseconds(), org,
		l.stale().Milliseconds(), l.linger().Milliseconds(), m).Int64Slice()
	if err != nil {
		return Refused, fmt.Errorf("fair acquire: %w", err)
	}
	switch {
	case len(r) != 2:
		return Refused, fmt.Errorf("fair acquire: unexpected answer %v", r)
	case r[0] == 0:
		return Refused, nil
	case r[1] == 1:
		return Alone, nil
	default:
		return Free, nil
	}
}

// Release frees the task's slot. It runs on a context of its own: the
// task's may already be done.
func (l *Limiter) Release(queue string, org int64, taskID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.RDB.ZRem(ctx, runKey(queue, org), taskID).Err(); err != nil {
		return fmt.Errorf("fair release: %w", err)
	}
	return nil
}

// Renew moves the task's lease end to now+Lease.
func (l *Limiter) Renew(ctx context.Context, queue string, org int64, taskID string) error {
	if err := renew.Run(ctx, l.RDB, []string{runKey(queue, org)}, taskID, l.lease().Milliseconds()).Err(); err != nil {
		return fmt.Errorf("fair renew: %w", err)
	}
	return nil
}

// Mark records that the org has a task waiting on queue (called when it
// is enqueued). Tasks of no org are not marked.
func (l *Limiter) Mark(ctx context.Context, queue string, org int64, taskID string) error {
	if !l.enabled() || org <= 0 || l.Caps[queue] <= 0 {
		return nil
	}
	if err := mark.Run(ctx, l.RDB, []string{waitKey(queue, org), demandKey, startedKey(queue, org)}, taskID, org, l.stale().Milliseconds()).Err(); err != nil {
		return fmt.Errorf("fair mark: %w", err)
	}
	return nil
}

// Held counts the live slots of queue the org holds (for tests and
// operators).
func (l *Limiter) Held(ctx context.Context, queue string, org int64) (int64, error) {
	now, err := l.RDB.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	return l.RDB.ZCount(ctx, runKey(queue, org), "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf").Result()
}

// OrgOf reads the org id from a task payload ({"org_id": n, ...}); 0 when
// it has none (deployment-wide tasks, which no cap applies to).
func OrgOf(payload []byte) int64 {
	var p struct {
		OrgID int64 `json:"org_id"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return 0
	}
	return p.OrgID
}

// Middleware admits each task under its org's cap. Put it before the
// job-state middleware: a handed-back task then leaves its job row and
// crmq's task metrics untouched.
func (l *Limiter) Middleware() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		if !l.enabled() {
			return next
		}
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			queue, _ := asynq.GetQueueName(ctx)
			org := OrgOf(t.Payload())
			if org <= 0 || l.Caps[queue] <= 0 {
				return next.ProcessTask(ctx, t)
			}
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			how, err := l.admit(ctx, queue, org, id, retried >= maxRetry)
			if err != nil {
				var b *Busy
				if errors.As(err, &b) {
					l.count(queue, "", true)
					if l.Log != nil && l.Log.Enabled(ctx, slog.LevelDebug) {
						l.Log.DebugContext(ctx, "task handed back: org at its cap", "task_id", id, "type", t.Type(), "org_id", org, "queue", queue)
					}
					return err
				}
				// Redis away: asynq cannot run without it either; run the
				// task without the cap rather than refuse it.
				if l.Log != nil {
					l.Log.WarnContext(ctx, "per-org limiter unavailable; task runs without its cap", "task_id", id, "err", err)
				}
				l.count(queue, "failopen", false)
				return next.ProcessTask(ctx, t)
			}
			l.count(queue, how, false)
			if how == "overcap" {
				return next.ProcessTask(ctx, t)
			}
			defer func() {
				if err := l.Release(queue, org, id); err != nil && l.Log != nil {
					l.Log.WarnContext(ctx, "per-org slot not released; its lease frees it", "task_id", id, "err", err)
				}
			}()
			if l.M != nil {
				g := l.M.Held.WithLabelValues(queue)
				g.Inc()
				defer g.Dec()
			}
			stop := l.heartbeat(ctx, queue, org, id)
			defer stop()
			return next.ProcessTask(ctx, t)
		})
	}
}

func (l *Limiter) count(queue, how string, bounced bool) {
	if l.M == nil {
		return
	}
	if bounced {
		l.M.Bounced.WithLabelValues(queue).Inc()
		return
	}
	l.M.Admitted.WithLabelValues(queue, how).Inc()
}

// admit gets the task a slot: at once, or within Wait, else *Busy. A task
// on its last attempt (last) waits up to LastWait, bounded by its
// deadline, and then runs over the cap ("overcap", no slot held).
func (l *Limiter) admit(ctx context.Context, queue string, org int64, id string, last bool) (string, error) {
	limit := time.Now().Add(l.wait())
	if last {
		limit = time.Now().Add(l.lastWait())
		if d, ok := ctx.Deadline(); ok && d.Add(-2*time.Second).Before(limit) {
			limit = d.Add(-2 * time.Second)
		}
	}
	waited := false
	for {
		final := !time.Now().Before(limit)
		a, err := l.TryAcquire(ctx, queue, org, id, final && !last)
		if err != nil {
			return "", err
		}
		switch {
		case a == Alone:
			return "alone", nil
		case a == Free && waited:
			return "waited", nil
		case a == Free:
			return "free", nil
		case final && last:
			return "overcap", nil
		case final:
			return "", &Busy{Queue: queue, OrgID: org, RetryIn: l.retryIn()}
		}
		waited = true
		select {
		case <-ctx.Done():
			if last {
				return "overcap", nil
			}
			return "", &Busy{Queue: queue, OrgID: org, RetryIn: l.retryIn()}
		case <-time.After(min(50*time.Millisecond, time.Until(limit)+time.Millisecond)):
		}
	}
}

// heartbeat renews the task's lease every Lease/3 until stopped.
func (l *Limiter) heartbeat(ctx context.Context, queue string, org int64, id string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(l.lease() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := l.Renew(rctx, queue, org, id); err != nil && l.Log != nil {
					l.Log.WarnContext(ctx, "per-org slot lease not renewed", "task_id", id, "err", err)
				}
				cancel()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TaskEnqueuer is asynq's Client as crmq uses it.
type TaskEnqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Marking wraps a client so each task it enqueues marks its org as
// waiting on the task's queue. A mark that fails is logged, not returned:
// the task is on its queue, and it marks itself when it is first refused.
type Marking struct {
	TaskEnqueuer
	L *Limiter
}

// EnqueueContext enqueues, then marks.
func (m Marking) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := m.TaskEnqueuer.EnqueueContext(ctx, task, opts...)
	if err != nil || !m.L.enabled() {
		return info, err
	}
	if merr := m.L.Mark(ctx, info.Queue, OrgOf(task.Payload()), info.ID); merr != nil && m.L.Log != nil {
		m.L.Log.WarnContext(ctx, "org not marked as waiting", "task_id", info.ID, "err", merr)
	}
	return info, nil
}
