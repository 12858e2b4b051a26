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
//
// A slot admitted under the cap is kept by the worker process for Keep
// after its task ends, and the org's next task on the queue there takes
// it without a round trip (its start is recorded in the background), for
// up to ReuseFor after the admission. Its member in the run set stays the
// id of the task it was admitted for.
package fair

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
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
	DefaultKeep     = 100 * time.Millisecond
	DefaultReuseFor = time.Second
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
	Admitted *prometheus.CounterVec // how: free, alone, idle, waited, kept, overcap, failopen
	Bounced  *prometheus.CounterVec
	Held     *prometheus.GaugeVec
	Cap      *prometheus.GaugeVec
}

// NewMetrics creates the limiter's metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Admitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_fair_admitted_total",
			Help: "Tasks the per-org limiter let start, by queue and how: free (under the cap), alone (over the cap, no other org waiting), idle (over the cap, every other org waiting at its own caps), waited (a slot freed during the short wait), kept (on a slot the org kept in this worker from its task that just ended), overcap (last attempt, run over the cap), failopen (Redis error: run without the cap).",
		}, []string{"queue", "how"}),
		Bounced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmq_fair_bounced_total",
			Help: "Tasks handed back to their queue because their org held its share while another org waited; not failures, not retries.",
		}, []string{"queue"}),
		Held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmq_fair_held_slots",
			Help: "Slots this worker process holds in the per-org limiter, by queue.",
		}, []string{"queue"}),
		Cap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmq_fair_cap",
			Help: "Per-org cap of each queue at this worker's last admission: a share of the fleet's registered slots, or the fixed cap.",
		}, []string{"queue"}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Admitted, m.Bounced, m.Held, m.Cap}
}

// Limiter is the per-org cap. A nil *Limiter or one with no caps lets
// every task run.
type Limiter struct {
	RDB  redis.UniversalClient
	Caps map[string]int // queue -> slots one org may hold while others wait; 0 or absent: no cap
	// Shares: queue -> the cap as a share of the fleet's slots (the live
	// worker processes' concurrency, see Register); Caps[queue] is used
	// while no worker is registered. 0 or absent: the cap is Caps[queue].
	Shares map[string]float64
	Queues []string // every queue an org's work may wait on (for its demand)
	Log    *slog.Logger
	M      *Metrics // may be nil

	Lease, Stale, Linger, Wait, LastWait, RetryIn time.Duration
	// Keep: how long a slot admitted under the cap stays held after its
	// task ends, for the org's next task on the queue in this process
	// (default DefaultKeep; negative: released at once). ReuseFor: how
	// long after its admission a slot may serve further tasks (default
	// DefaultReuseFor); then the next task asks Redis again.
	Keep, ReuseFor time.Duration

	bgOnce sync.Once
	bg     *sender     // releases and starts on kept slots, sent in the background (Middleware)
	starts *markGroups // starts on kept slots waiting for bg, by queue and org

	keptMu sync.Mutex
	kept   map[markKey][]*slot // slots held between tasks, by queue and org
}

// slot is a place in an org's run set (its member) that this process
// holds: for a running task, or kept for the org's next one.
type slot struct {
	queue    string
	org      int64
	member   string    // the id of the task it was admitted for
	admitted time.Time // by the admission script
	timer    *time.Timer
}

func (l *Limiter) enabled() bool {
	if l == nil || l.RDB == nil {
		return false
	}
	for _, q := range l.Queues {
		if l.capped(q) {
			return true
		}
	}
	return false
}

// capped: the queue has a per-org cap.
func (l *Limiter) capped(queue string) bool { return l.Caps[queue] > 0 || l.Shares[queue] > 0 }

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
func (l *Limiter) keep() time.Duration {
	if l.Keep < 0 {
		return 0
	}
	return or(l.Keep, DefaultKeep)
}
func (l *Limiter) reuseFor() time.Duration { return or(l.ReuseFor, DefaultReuseFor) }

func runKey(queue string, org int64) string {
	return prefix + "run:" + queue + ":" + strconv.FormatInt(org, 10)
}
func waitKey(queue string, org int64) string {
	return prefix + "wait:" + queue + ":" + strconv.FormatInt(org, 10)
}
func startedKey(queue string, org int64) string {
	return prefix + "started:" + queue + ":" + strconv.FormatInt(org, 10)
}

const (
	demandKey     = prefix + "demand"
	fleetKey      = prefix + "fleet" // ZSET worker process -> registration end (ms)
	fleetSlotsKey = prefix + "fleet:slots"
)

// recordStartLua defines record_start for the scripts that start tasks:
// the tasks (ids) leave the org's wait set and enter its started set (kept
// for the lease), and when nothing of the org waits on any queue (waits:
// its wait keys) its demand lingers.
const recordStartLua = `
local function record_start(now, wait, started, demand, waits, org, ids, lease, stale, linger)
  redis.call("ZREMRANGEBYSCORE", started, "-inf", now - lease)
  for _, id in ipairs(ids) do
    redis.call("ZREM", wait, id)
    redis.call("ZADD", started, now, id)
  end
  redis.call("PEXPIRE", started, lease)
  local waiting = 0
  for _, k in ipairs(waits) do
    waiting = waiting + redis.call("ZCOUNT", k, "(" .. (now - stale), "+inf")
  end
  if waiting == 0 then
    redis.call("ZADD", demand, now + linger, org)
    redis.call("PEXPIRE", demand, stale)
  end
end
`

// acquire: KEYS[1] run key, KEYS[2] wait key, KEYS[3] demand, KEYS[4]
// started key, KEYS[5] fleet, KEYS[6] fleet slots, KEYS[7..] the org's
// wait keys on every queue. ARGV: queue, task id, lease ms, org, stale ms,
// linger ms, mark (1: a refused task enters the wait set), then for every
// queue its name, fixed cap and fleet share.
// Returns {admitted (0/1), how (0 free, 1 alone, 2 idle), cap}.
//
// A cap given as a share is taken of the fleet's slots: the sum of the
// live worker processes' concurrency (registered by Register), or the
// fixed cap while none is registered. The sum is kept for a second in
// <fleet>:total (a registration drops it), so an admission reads one key
// rather than every worker's. An org over its cap is refused only
// while another org in demand could use the slot: one lingering after its
// last start (a reservation for its next task), or one with a task waiting
// on a queue where it holds less than its cap. When every other org in
// demand is at its own caps the slot would stay idle: admitted ("idle").
// The other orgs' run and wait keys are named inside the script (Redis
// and Sentinel, not Cluster).
var acquire = redis.NewScript(recordStartLua + `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queue, lease, stale, linger = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local fleet = -1
local function cap_of(i)
  local fixed, share = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if share <= 0 then return fixed end
  if fleet < 0 then
    fleet = tonumber(redis.call("GET", KEYS[5] .. ":total") or "")
    if not fleet then
      fleet = 0
      redis.call("ZREMRANGEBYSCORE", KEYS[5], "-inf", now)
      for _, w in ipairs(redis.call("ZRANGE", KEYS[5], 0, -1)) do
        fleet = fleet + (tonumber(redis.call("HGET", KEYS[6], w)) or 0)
      end
      redis.call("SET", KEYS[5] .. ":total", fleet, "PX", 1000)
    end
  end
  if fleet <= 0 then return fixed end
  return math.max(1, math.floor(share * fleet + 0.5))
end
local caps = {}
for i = 8, #ARGV, 3 do caps[ARGV[i]] = cap_of(i) end
local cap = caps[queue] or 0
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", now)
local how = -1
if redis.call("ZSCORE", KEYS[1], ARGV[2]) or redis.call("ZCARD", KEYS[1]) < cap then
  how = 0
else
  how = 1
  for _, o in ipairs(redis.call("ZRANGEBYSCORE", KEYS[3], "(" .. now, "+inf")) do
    if o ~= ARGV[4] then
      local waiting, usable = false, false
      for q, c in pairs(caps) do
        local wk = "crmq:fair:wait:" .. q .. ":" .. o
        redis.call("ZREMRANGEBYSCORE", wk, "-inf", now - stale)
        if redis.call("ZCARD", wk) > 0 then
          waiting = true
          if c <= 0 or redis.call("ZCOUNT", "crmq:fair:run:" .. q .. ":" .. o, "(" .. now, "+inf") < c then
            usable = true
          end
        end
      end
      if usable or not waiting then
        how = -1
        break
      end
      how = 2
    end
  end
end
if how >= 0 then
  redis.call("ZADD", KEYS[1], now + lease, ARGV[2])
  redis.call("PEXPIRE", KEYS[1], lease * 2)
  record_start(now, KEYS[2], KEYS[4], KEYS[3], {unpack(KEYS, 7)}, ARGV[4], {ARGV[2]}, lease, stale, linger)
  return {1, how, cap}
end
if ARGV[7] == "1" then
  redis.call("ZADD", KEYS[2], "NX", now, ARGV[2])
  redis.call("PEXPIRE", KEYS[2], stale)
  redis.call("ZADD", KEYS[3], "GT", now + stale, ARGV[4])
  redis.call("PEXPIRE", KEYS[3], stale)
end
return {0, -1, cap}
`)

// mark: KEYS[1] wait key, KEYS[2] demand, KEYS[3] started key (of one
// queue and org). ARGV: org, stale ms, then one or more task ids. A task
// already started is not marked. Returns how many were.
var mark = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  if not redis.call("ZSCORE", KEYS[3], ARGV[i]) then
    redis.call("ZADD", KEYS[1], "NX", now, ARGV[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call("PEXPIRE", KEYS[1], stale)
  redis.call("ZADD", KEYS[2], "GT", now + stale, ARGV[1])
  redis.call("PEXPIRE", KEYS[2], stale)
end
return n
`)

// markMaxIDs bounds the task ids of one mark call (Redis runs nothing
// else while a script runs).
const markMaxIDs = 256

// renew: KEYS[1] run key. ARGV: task id, lease ms.
var renew = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`)

// started records tasks that began on a slot their org kept (see
// Limiter.Keep), as the admission script does for the tasks it admits:
// each leaves its wait set and enters the started set, and the org's
// demand lingers when nothing of it waits any more. KEYS[1] wait key,
// KEYS[2] demand, KEYS[3] started key, KEYS[4..] the org's wait keys on
// every queue. ARGV: org, lease ms, stale ms, linger ms, then task ids.
var started = redis.NewScript(recordStartLua + `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
record_start(now, KEYS[1], KEYS[3], KEYS[2], {unpack(KEYS, 4)}, ARGV[1], {unpack(ARGV, 5)},
  tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
`)

// startedCmd records the starts of one queue and org's tasks on kept
// slots in one script call.
func (l *Limiter) startedCmd(queue string, org int64, ids []string) sendCmd {
	keys := []string{waitKey(queue, org), demandKey, startedKey(queue, org)}
	for _, q := range l.Queues {
		keys = append(keys, waitKey(q, org))
	}
	args := make([]any, 0, 4+len(ids))
	args = append(args, org, l.lease().Milliseconds(), l.stale().Milliseconds(), l.linger().Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	return func(ctx context.Context, c redis.Cmdable) redis.Cmder {
		return started.Run(ctx, c, keys, args...)
	}
}

// Admission says how a task got its slot.
type Admission int

// How a task was admitted.
const (
	Refused Admission = iota
	Free              // the org is under its cap
	Alone             // over the cap, but no other org waits
	Idle              // over the cap, but every other org waiting is at its own caps
)

// TryAcquire asks once for a slot of queue for the org's task. mark puts a
// refused task in the org's wait set (it will be handed back). A queue
// with no cap answers Free and holds nothing.
func (l *Limiter) TryAcquire(ctx context.Context, queue string, org int64, taskID string, mark bool) (Admission, error) {
	a, c, err := l.tryAcquire(ctx, queue, org, taskID, mark)
	if err == nil && l.M != nil && l.M.Cap != nil {
		l.M.Cap.WithLabelValues(queue).Set(float64(c))
	}
	return a, err
}

// tryAcquire is TryAcquire, also returning the queue's cap as it stood.
func (l *Limiter) tryAcquire(ctx context.Context, queue string, org int64, taskID string, mark bool) (Admission, int64, error) {
	if !l.capped(queue) {
		return Free, 0, nil
	}
	keys := []string{runKey(queue, org), waitKey(queue, org), demandKey, startedKey(queue, org), fleetKey, fleetSlotsKey}
	for _, q := range l.Queues {
		keys = append(keys, waitKey(q, org))
	}
	m := "0"
	if mark {
		m = "1"
	}
	args := []any{queue, taskID, l.lease().Milliseconds(), org, l.stale().Milliseconds(), l.linger().Milliseconds(), m}
	for _, q := range l.Queues {
		if l.capped(q) {
			args = append(args, q, l.Caps[q], strconv.FormatFloat(l.Shares[q], 'f', -1, 64))
		}
	}
	r, err := acquire.Run(ctx, l.RDB, keys, args...).Int64Slice()
	if err != nil {
		return Refused, 0, fmt.Errorf("fair acquire: %w", err)
	}
	if len(r) != 3 {
		return Refused, 0, fmt.Errorf("fair acquire: unexpected answer %v", r)
	}
	switch {
	case r[0] == 0:
		return Refused, r[2], nil
	case r[1] == 1:
		return Alone, r[2], nil
	case r[1] == 2:
		return Idle, r[2], nil
	default:
		return Free, r[2], nil
	}
}

// register: KEYS[1] fleet, KEYS[2] fleet slots. ARGV: process, slots,
// lease ms.
var register = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
for _, w in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now)) do
  redis.call("ZREM", KEYS[1], w)
  redis.call("HDEL", KEYS[2], w)
end
redis.call("DEL", KEYS[1] .. ":total")
return 1
`)

// Register counts this worker process's slots in the fleet that shares
// are taken of, until stop is called or ctx ends: renewed every Lease/3,
// so a process that dies drops out within Lease (30 s). stop removes it
// at once.
func (l *Limiter) Register(ctx context.Context, slots int) (stop func()) {
	if !l.enabled() || slots <= 0 {
		return func() {}
	}
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s:%d:%08x", host, os.Getpid(), rand.Uint32())
	renew := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := register.Run(rctx, l.RDB, []string{fleetKey, fleetSlotsKey}, id, slots, l.lease().Milliseconds()).Err()
		if err != nil && l.Log != nil {
			l.Log.WarnContext(ctx, "worker not registered in the per-org limiter's fleet; caps given as shares may be smaller", "err", err)
		}
	}
	renew()
	stopRenew := every(l.lease()/3, renew)
	var once sync.Once
	return func() {
		once.Do(func() {
			stopRenew()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			l.RDB.ZRem(rctx, fleetKey, id)
			l.RDB.HDel(rctx, fleetSlotsKey, id)
			l.RDB.Del(rctx, fleetKey+":total")
		})
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

// releaseLater frees the task's slot in the background, in one round trip
// with other releases (see sender): the worker's slot is free for its next
// task without waiting for Redis, and the org's lease goes a few
// milliseconds later.
func (l *Limiter) releaseLater(queue string, org int64, taskID string) {
	key := runKey(queue, org)
	l.releases().send(context.Background(), func(ctx context.Context, c redis.Cmdable) redis.Cmder {
		return c.ZRem(ctx, key, taskID)
	})
}

// Flush releases the kept slots and waits until the releases sent in the
// background are done (before a worker process exits).
func (l *Limiter) Flush() {
	l.releaseKept()
	l.releases().flush()
}

func (l *Limiter) releases() *sender {
	l.bgOnce.Do(func() {
		l.starts = &markGroups{cmd: l.startedCmd, ids: map[markKey][]string{}}
		l.bg = newSender(l.RDB, l.Log, "release")
		l.bg.gather = l.starts.take
	})
	return l.bg
}

// startedLater records in the background that the task began on a kept
// slot (see started).
func (l *Limiter) startedLater(queue string, org int64, taskID string) {
	bg := l.releases()
	if l.starts.add(queue, org, taskID) {
		bg.poke()
		return
	}
	bg.send(context.Background(), l.startedCmd(queue, org, []string{taskID}))
}

// takeKept hands out a slot the org keeps on queue in this process, nil
// when it keeps none young enough to reuse (those are released). The
// longest kept goes first, so every kept slot stays in use while the
// org's tasks keep coming, and a burst finds them all. At 750 pings/s
// (bench capacity), the tasks that started on kept slots: 70% taking the
// newest first and 74-76% the oldest, with Keep 20 ms; 95% with 100 ms.
func (l *Limiter) takeKept(queue string, org int64) *slot {
	if l.keep() <= 0 {
		return nil
	}
	k := markKey{queue, org}
	l.keptMu.Lock()
	defer l.keptMu.Unlock()
	for ss := l.kept[k]; len(ss) > 0; ss = l.kept[k] {
		s := ss[0]
		l.kept[k] = ss[1:]
		// A callback already under way finds the slot gone, or, if the
		// slot was kept again meanwhile, releases it early: no harm.
		s.timer.Stop()
		if time.Since(s.admitted) < l.reuseFor() {
			return s
		}
		l.releaseLater(s.queue, s.org, s.member)
	}
	return nil
}

// putKept keeps the slot for the org's next task, or releases it when it
// may not serve another. A kept slot no task took within Keep is
// released.
func (l *Limiter) putKept(s *slot) {
	if l.keep() <= 0 || time.Since(s.admitted) >= l.reuseFor() {
		l.releaseLater(s.queue, s.org, s.member)
		return
	}
	k := markKey{s.queue, s.org}
	l.keptMu.Lock()
	defer l.keptMu.Unlock()
	if l.kept == nil {
		l.kept = map[markKey][]*slot{}
	}
	l.kept[k] = append(l.kept[k], s)
	if s.timer == nil {
		s.timer = time.AfterFunc(l.keep(), func() { l.dropKept(s) })
	} else {
		s.timer.Reset(l.keep())
	}
}

// dropKept releases the slot if it is still kept.
func (l *Limiter) dropKept(s *slot) {
	k := markKey{s.queue, s.org}
	l.keptMu.Lock()
	ss := l.kept[k]
	i := slices.Index(ss, s)
	if i >= 0 {
		l.kept[k] = slices.Delete(ss, i, i+1)
	}
	l.keptMu.Unlock()
	if i >= 0 {
		l.releaseLater(s.queue, s.org, s.member)
	}
}

// releaseKept releases every kept slot (at shutdown).
func (l *Limiter) releaseKept() {
	l.keptMu.Lock()
	var all []*slot
	for k, ss := range l.kept {
		all = append(all, ss...)
		delete(l.kept, k)
	}
	l.keptMu.Unlock()
	for _, s := range all {
		s.timer.Stop()
		l.releaseLater(s.queue, s.org, s.member)
	}
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
	if !l.enabled() || org <= 0 || !l.capped(queue) {
		return nil
	}
	if err := l.markCmd(queue, org, []string{taskID})(ctx, l.RDB).Err(); err != nil {
		return fmt.Errorf("fair mark: %w", err)
	}
	return nil
}

// markCmd marks the tasks of one queue and org in one script call.
func (l *Limiter) markCmd(queue string, org int64, ids []string) sendCmd {
	keys := []string{waitKey(queue, org), demandKey, startedKey(queue, org)}
	args := make([]any, 0, 2+len(ids))
	args = append(args, org, l.stale().Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	return func(ctx context.Context, c redis.Cmdable) redis.Cmder {
		return mark.Run(ctx, c, keys, args...)
	}
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
	if org, ok := leadingOrg(payload); ok {
		return org
	}
	var p struct {
		OrgID int64 `json:"org_id"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return 0
	}
	return p.OrgID
}

// leadingOrg reads the org id of a payload that starts with it, as every
// payload encoding/json makes of a struct whose first field is OrgID does
// (all of crmq's org tasks): no decode of the whole document per task. ok
// is false for any other shape, which OrgOf then decodes. What follows the
// id is not checked: a payload broken there fails in its handler.
func leadingOrg(payload []byte) (int64, bool) {
	rest, found := bytes.CutPrefix(payload, []byte(`{"org_id":`))
	if !found {
		return 0, false
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 1 {
		return 0, false
	}
	num := rest[:end]
	digits := bytes.TrimPrefix(num, []byte("-"))
	if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) || bytes.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false // not a JSON integer as encoding/json writes one
	}
	org, err := strconv.ParseInt(string(num), 10, 64)
	return org, err == nil
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
			if org <= 0 || !l.capped(queue) {
				return next.ProcessTask(ctx, t)
			}
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			return l.run(ctx, queue, org, id, t.Type(), retried >= maxRetry, func() error { return next.ProcessTask(ctx, t) })
		})
	}
}

// run runs fn on a slot of the org's share of queue: one it keeps in
// this process from a task that just ended (no round trip to Redis; the
// start is recorded in the background), or one the admission script
// gives. After fn, a slot taken under the cap is kept for the org's next
// task (see Keep); one taken over it (alone, idle) is released, so the
// cap bites again as soon as another org waits.
func (l *Limiter) run(ctx context.Context, queue string, org int64, id, typ string, last bool, fn func() error) error {
	how := "kept"
	s := l.takeKept(queue, org)
	if s != nil {
		l.startedLater(queue, org, id)
	} else {
		var err error
		how, err = l.admit(ctx, queue, org, id, last)
		if err != nil {
			var b *Busy
			if errors.As(err, &b) {
				l.count(queue, "", true)
				if l.Log != nil && l.Log.Enabled(ctx, slog.LevelDebug) {
					l.Log.DebugContext(ctx, "task handed back: org at its cap", "task_id", id, "type", typ, "org_id", org, "queue", queue)
				}
				return err
			}
			// Redis away: asynq cannot run without it either; run the
			// task without the cap rather than refuse it.
			if l.Log != nil {
				l.Log.WarnContext(ctx, "per-org limiter unavailable; task runs without its cap", "task_id", id, "err", err)
			}
			l.count(queue, "failopen", false)
			return fn()
		}
		if how == "overcap" {
			l.count(queue, how, false)
			return fn()
		}
		s = &slot{queue: queue, org: org, member: id, admitted: time.Now()}
	}
	l.count(queue, how, false)
	reuse := how == "free" || how == "waited" || how == "kept"
	defer func() {
		if reuse {
			l.putKept(s)
		} else {
			l.releaseLater(queue, org, s.member)
		}
	}()
	if l.M != nil {
		g := l.M.Held.WithLabelValues(queue)
		g.Inc()
		defer g.Dec()
	}
	stop := l.heartbeat(ctx, queue, org, s.member)
	defer stop()
	return fn()
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
		case a == Idle:
			return "idle", nil
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
	return every(l.lease()/3, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.Renew(rctx, queue, org, id); err != nil && l.Log != nil {
			l.Log.WarnContext(ctx, "per-org slot lease not renewed", "task_id", id, "err", err)
		}
	})
}

// every runs fn every d until stop is called; stop waits for a run in
// progress. A timer, not a goroutine, waits: most tasks end before the
// first run.
func every(d time.Duration, fn func()) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		fn()
		t.Reset(d)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
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
	// bg sends the marks gathered in marks in the background
	// (NewMarking); nil: each mark is sent before EnqueueContext returns.
	bg    *sender
	marks *markGroups
}

// NewMarking is a Marking that sends the marks in the background, many in
// one round trip (see sender) and the marks of one queue and org in one
// script call, so an enqueue waits for one Redis round trip (asynq's)
// instead of two, and Redis runs one script for many marks. A mark that
// arrives after its task started is ignored (the started set), so the
// order does not matter; a process that stops without Flush drops the
// marks still queued, and their tasks mark themselves when first refused.
func NewMarking(c TaskEnqueuer, l *Limiter) Marking {
	m := Marking{TaskEnqueuer: c, L: l}
	if l.enabled() {
		m.marks = &markGroups{cmd: l.markCmd, ids: map[markKey][]string{}}
		m.bg = newSender(l.RDB, l.Log, "mark")
		m.bg.gather = m.marks.take
	}
	return m
}

// markGroups holds the marks (or starts) waiting for the sender, by
// queue and org.
type markGroups struct {
	cmd func(queue string, org int64, ids []string) sendCmd
	mu  sync.Mutex
	n   int
	// ids of the tasks to mark, by queue and org
	ids map[markKey][]string
}

type markKey struct {
	queue string
	org   int64
}

// add queues a mark; false when too many wait (the caller marks itself).
func (g *markGroups) add(queue string, org int64, id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n >= sendMaxQueued {
		return false
	}
	k := markKey{queue, org}
	g.ids[k] = append(g.ids[k], id)
	g.n++
	return true
}

// take turns the marks waiting into commands, one per queue and org (and
// per markMaxIDs tasks).
func (g *markGroups) take() []sendCmd {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		return nil
	}
	var cmds []sendCmd
	for k, ids := range g.ids {
		for chunk := range slices.Chunk(ids, markMaxIDs) {
			cmds = append(cmds, g.cmd(k.queue, k.org, chunk))
		}
	}
	clear(g.ids)
	g.n = 0
	return cmds
}

// Flush waits until the marks sent in the background are done.
func (m Marking) Flush() {
	if m.bg != nil {
		m.bg.flush()
	}
}

// EnqueueContext enqueues, then marks.
func (m Marking) EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := m.TaskEnqueuer.EnqueueContext(ctx, task, opts...)
	if err != nil || !m.L.enabled() {
		return info, err
	}
	org := OrgOf(task.Payload())
	if org <= 0 || !m.L.capped(info.Queue) {
		return info, nil
	}
	if m.bg != nil && m.marks.add(info.Queue, org, info.ID) {
		m.bg.poke()
		return info, nil
	}
	if merr := m.L.Mark(ctx, info.Queue, org, info.ID); merr != nil && m.L.Log != nil {
		m.L.Log.WarnContext(ctx, "org not marked as waiting", "task_id", info.ID, "err", merr)
	}
	return info, nil
}
