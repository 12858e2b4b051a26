package e2e

import (
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/jobs"
)

// The Redis primary SIGKILLed while a job of every family runs (see
// families_test.go): the Sentinels promote the replica, api, worker and
// scheduler follow it without a restart, and every accepted job ends
// succeeded once, with one result. A write the old primary acknowledged
// but had not copied to its replica (a task's completion, a bulk's child
// task) is put back by the scheduler's reconciler, whose cadence the test
// shortens. Afterwards the API's and the worker's /metrics show every
// family's tasks enqueued, started and succeeded.
func TestRedisFailoverEveryFamilyEndsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis primary, a replica and three Sentinels")
	}
	t.Parallel()
	srv := newFamilyServers(t)
	r := newSentinelRedis(t)
	_, dbURL := newTestDB(t)
	workerAddr := stacktest.FreeAddr(t)
	env := append(append(r.env(), "CRMQ_RECONCILE_MARGIN=5s", "CRMQ_CRON_RECONCILE=* * * * *",
		"CRMQ_WORKER_METRICS_ADDR="+workerAddr), srv.env...)
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

	api := scrape(t, s.apiURL+"/metrics", adminKey)
	worker := scrape(t, "http://"+workerAddr+"/metrics", "")
	for _, typ := range []string{jobs.TypeSummaryGenerate, jobs.TypeSegmentRefresh, jobs.TypeExportSegment, jobs.TypeEnrichBulk, jobs.TypePing} {
		if n := api[`crmq_tasks_enqueued_total{type="`+typ+`"}`]; n < 1 {
			t.Errorf("api: %s enqueued %v times, want at least 1", typ, n)
		}
	}
	for _, typ := range append(families, jobs.TypeEnrichBulk) {
		started := worker[`crmq_tasks_started_total{type="`+typ+`"}`]
		succeeded := worker[`crmq_tasks_total{outcome="succeeded",type="`+typ+`"}`]
		timed := worker[`crmq_task_duration_seconds_count{outcome="succeeded",type="`+typ+`"}`]
		if started < 1 || succeeded < 1 || timed != succeeded {
			t.Errorf("worker: %s started %v, succeeded %v, timed %v; want each at least 1, every success timed", typ, started, succeeded, timed)
		}
	}
}
