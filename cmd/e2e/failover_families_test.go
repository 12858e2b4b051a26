package e2e

import (
	"testing"
	"time"
)

// The Redis primary SIGKILLed while a job of every family runs (see
// families_test.go): the Sentinels promote the replica, api, worker and
// scheduler follow it without a restart, and every accepted job ends
// succeeded once, with one result. A write the old primary acknowledged
// but had not copied to its replica (a task's completion, a bulk's child
// task) is put back by the scheduler's reconciler, whose cadence the test
// shortens.
func TestRedisFailoverEveryFamilyEndsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis primary, a replica and three Sentinels")
	}
	t.Parallel()
	srv := newFamilyServers(t)
	r := newSentinelRedis(t)
	_, dbURL := newTestDB(t)
	env := append(append(r.env(), "CRMQ_RECONCILE_MARGIN=5s", "CRMQ_CRON_RECONCILE=* * * * *"), srv.env...)
	s := newSystemOn(t, dbURL, "redis://127.0.0.1:"+r.primary+"/0", env...)
	s.startAPI()
	s.start("scheduler")
	l := newFamilyLoad(t, s, srv)
	l.startWorker()
	l.waitAllRunning(t)
	old := r.masterPort()
	r.killPrimary()
	killed := time.Now()
	waitFor(t, 90*time.Second, func() bool { p := r.masterPort(); return p != "" && p != old })
	promoted := time.Since(killed)
	o := l.check(t, 5*time.Minute)
	t.Logf("replica promoted %.1f s after the kill", promoted.Seconds())
	o.log(t, "Redis failover", time.Since(killed))
}
