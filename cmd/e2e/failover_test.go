package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// sentinelRedis is a Redis primary, one replica and three Sentinels on
// loopback, the test's own: the Sentinel mode of the Debian redis-server
// binary (what the redis-sentinel package runs), quorum 2, a primary
// judged down after 1 s.
type sentinelRedis struct {
	t                *testing.T
	dir              string
	primary, replica string // ports
	sentinels        []string
	master           string
}

func newSentinelRedis(t *testing.T) *sentinelRedis {
	t.Helper()
	r := &sentinelRedis{t: t, dir: t.TempDir(), primary: freePort(t), replica: freePort(t), master: "crmq"}
	for range 3 {
		r.sentinels = append(r.sentinels, freePort(t))
	}
	r.server(r.primary)
	r.server(r.replica, "--replicaof", "127.0.0.1", r.primary)
	for _, p := range r.sentinels {
		conf := filepath.Join(r.dir, "sentinel-"+p+".conf") // Sentinel rewrites its own config: one file each
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
			p, r.dir, r.master, r.primary, r.master, r.master, r.master)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("redis-server", conf, "--sentinel", "--daemonize", "yes",
			"--logfile", filepath.Join(r.dir, "sentinel-"+p+".log")).CombinedOutput()
		if err != nil {
			t.Fatalf("redis sentinel: %v %s", err, out)
		}
	}
	t.Cleanup(func() {
		for _, p := range append([]string{r.primary, r.replica}, r.sentinels...) {
			_ = exec.Command("redis-cli", "-p", p, "shutdown", "nosave").Run()
		}
	})
	// Every Sentinel knows the primary and its replica before the test goes on.
	waitFor(t, 30*time.Second, func() bool {
		for _, p := range r.sentinels {
			out, _ := exec.Command("redis-cli", "-p", p, "sentinel", "replicas", r.master).Output()
			if !strings.Contains(string(out), r.replica) {
				return false
			}
		}
		return true
	})
	return r
}

func (r *sentinelRedis) server(port string, args ...string) {
	r.t.Helper()
	d := filepath.Join(r.dir, port)
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.t.Fatal(err)
	}
	out, err := exec.Command("redis-server", append([]string{"--daemonize", "yes", "--bind", "127.0.0.1", "--port", port,
		"--dir", d, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(d, "redis.log")}, args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("redis-server: %v %s", err, out)
	}
	waitFor(r.t, 10*time.Second, func() bool {
		out, _ := exec.Command("redis-cli", "-p", port, "ping").Output()
		return strings.TrimSpace(string(out)) == "PONG"
	})
}

// killPrimary SIGKILLs the primary's process: no shutdown, no last write.
func (r *sentinelRedis) killPrimary() {
	r.t.Helper()
	out, err := exec.Command("redis-cli", "-p", r.primary, "info", "server").Output()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				r.t.Fatal(err)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				r.t.Fatal(err)
			}
			return
		}
	}
	r.t.Fatalf("no process_id in %s", out)
}

// masterPort is the primary's port as the first Sentinel names it.
func (r *sentinelRedis) masterPort() string {
	out, _ := exec.Command("redis-cli", "-p", r.sentinels[0], "sentinel", "get-master-addr-by-name", r.master).Output()
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return ""
	}
	return f[1]
}

func (r *sentinelRedis) env() []string {
	var addrs []string
	for _, p := range r.sentinels {
		addrs = append(addrs, "127.0.0.1:"+p)
	}
	return []string{"REDIS_SENTINELS=" + strings.Join(addrs, ","), "REDIS_SENTINEL_MASTER=" + r.master}
}

// The Redis primary is SIGKILLed in the middle of a load of jobs. The
// Sentinels promote the replica; the API, the worker and the scheduler,
// configured with REDIS_SENTINELS, follow it without a restart. POSTs
// answered while no primary is known are 503 and leave nothing; every job
// answered 202 ends succeeded, once (a task the old primary acknowledged
// but had not yet copied to its replica is put back by the scheduler's
// reconciler). The figures are logged for docs/RELIABILITY.md.
func TestRedisFailoverLosesNothingAccepted(t *testing.T) {
	t.Parallel()
	r := newSentinelRedis(t)
	_, dbURL := newTestDB(t)
	// The scheduler also enqueues orphans:recompute every 2 s, to show
	// that it follows the promoted replica too.
	s := newSystemOn(t, dbURL, "redis://127.0.0.1:"+r.primary+"/0",
		append(r.env(), "CRMQ_RECONCILE_MARGIN=5s", "CRMQ_CRON_RECONCILE=* * * * *",
			"CRMQ_CRON_ORPHANS=*/2 * * * * *")...)
	s.startAPI()
	s.start("worker")
	s.start("scheduler")
	key := s.newOrg("redis-failover")

	const rate, seconds, killAt = 50, 16, 5 // jobs per second, least load length, kill after
	var (
		mu         sync.Mutex
		ids        []string
		acceptedAt []time.Time
		statuses   = map[int]int{}
		first503   time.Time
		last503    time.Time
		killedAt   time.Time
		recovered  time.Time // the first 202 to a POST sent after the kill
	)
	start := time.Now()
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / rate)
	killed, sent := false, 0
	// The load runs its seconds and, however long the Sentinels take to
	// promote the replica (longer on a busy machine), 3 s past that, so
	// that jobs are accepted through the new primary too (at most 90 s).
	var promoted time.Time
	for time.Since(start) < 90*time.Second &&
		(time.Since(start) < seconds*time.Second || promoted.IsZero() || time.Since(promoted) < 3*time.Second) {
		<-tick.C
		if !killed && time.Since(start) > killAt*time.Second {
			r.killPrimary()
			killedAt, killed = time.Now(), true
			t.Logf("primary on port %s killed at %s", r.primary, time.Since(start).Round(time.Millisecond))
		}
		if killed && promoted.IsZero() && sent%rate == 0 && r.masterPort() == r.replica {
			promoted = time.Now()
			t.Logf("Sentinels name the replica as primary at %s", time.Since(start).Round(time.Millisecond))
		}
		sent++
		wg.Add(1)
		afterKill := killed
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", s.apiURL+"/v1/jobs", bytes.NewReader([]byte(`{"type":"system:ping","queue":"default"}`)))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			defer resp.Body.Close()
			statuses[resp.StatusCode]++
			switch resp.StatusCode {
			case http.StatusAccepted:
				var a accepted
				if json.NewDecoder(resp.Body).Decode(&a) == nil {
					now := time.Now()
					ids = append(ids, a.JobID)
					acceptedAt = append(acceptedAt, now)
					if afterKill && (recovered.IsZero() || now.Before(recovered)) {
						recovered = now
					}
				}
			case http.StatusServiceUnavailable:
				now := time.Now()
				if first503.IsZero() {
					first503 = now
				}
				last503 = now
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	if promoted.IsZero() {
		t.Fatalf("the Sentinels did not promote the replica within 90 s (they name port %q)", r.masterPort())
	}
	var afterPromotion int
	for _, at := range acceptedAt {
		if at.After(promoted) {
			afterPromotion++
		}
	}
	if afterPromotion == 0 {
		t.Fatal("no POST accepted after the promotion: the API did not follow the new primary")
	}
	for code, n := range statuses {
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d during the failover: only 202 and 503 are expected", n, code)
		}
	}

	// Every accepted job ends, once; the reconciler runs each minute.
	settled := time.Now()
	var open int
	waitFor(t, 4*time.Minute, func() bool {
		err := s.db.GetContext(context.Background(), &open,
			`SELECT count(*) FROM jobs WHERE id = ANY($1) AND state NOT IN ('succeeded', 'failed', 'cancelled')`, pq.StringArray(ids))
		return err == nil && open == 0
	})
	allFinal := time.Since(killedAt)
	var res struct {
		Succeeded int `db:"succeeded"`
		Failed    int `db:"failed"`
		Rerun     int `db:"rerun"`
		Rows      int `db:"rows"`
	}
	err := s.db.GetContext(context.Background(), &res, `
		SELECT count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
		       count(*) FILTER (WHERE state = 'failed') AS failed,
		       count(*) FILTER (WHERE attempts > 1) AS rerun,
		       (SELECT count(*) FROM jobs WHERE type = 'system:ping') AS rows
		FROM jobs WHERE id = ANY($1)`, pq.StringArray(ids))
	if err != nil {
		t.Fatal(err)
	}
	unavailable := time.Duration(0)
	if !first503.IsZero() {
		unavailable = last503.Sub(first503)
	}
	t.Logf("failover: %d POSTs, %d accepted, %d answered 503 over %s, %v by status; "+
		"%d succeeded, %d failed, %d ran more than once, %d lost; all final %s after the load; "+
		"from the kill: first 202 after %s, every accepted job final after %s",
		sent, len(ids), statuses[http.StatusServiceUnavailable], unavailable.Round(time.Millisecond), statuses,
		res.Succeeded, res.Failed, res.Rerun, len(ids)-res.Succeeded-res.Failed, time.Since(settled).Round(time.Second),
		recovered.Sub(killedAt).Round(time.Millisecond), allFinal.Round(time.Second))
	if res.Succeeded != len(ids) {
		t.Fatalf("%d of %d accepted jobs succeeded (%d failed)", res.Succeeded, len(ids), res.Failed)
	}
	if res.Rows != len(ids) {
		t.Fatalf("%d job rows for %d accepted POSTs: a refused POST left a row", res.Rows, len(ids))
	}

	// The scheduler follows the new primary: a tick after the promotion
	// is enqueued through it and its job ends succeeded.
	var ticks struct {
		Enqueued  int `db:"enqueued"`
		Succeeded int `db:"succeeded"`
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := s.db.GetContext(context.Background(), &ticks, `
			SELECT count(*) AS enqueued, count(*) FILTER (WHERE state = 'succeeded') AS succeeded
			FROM jobs WHERE type = 'orphans:recompute' AND created_at > $1`, promoted)
		if err == nil && ticks.Succeeded > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no orphans:recompute tick after the promotion succeeded within a minute "+
				"(%d enqueued, %v): the scheduler did not follow the new primary", ticks.Enqueued, err)
		}
	}
	t.Logf("scheduler after the promotion: %d orphans:recompute ticks enqueued, %d succeeded",
		ticks.Enqueued, ticks.Succeeded)
}
