package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/crmq/crmq/client"
	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// The fault scenarios below run one job of every task family at once on the
// demo org, each sized to be still running when the fault strikes:
// summaries through a model that answers after a pause, a full segment
// refresh and an export over 30,000 extra accounts, a bulk enrichment of
// fixture sites fetched slowly, and pings that hold. Each scenario ends by
// checking that every accepted job has exactly one final state, succeeded,
// and at most one result.

const (
	familyAccounts  = 30_000
	familySummaries = 6
	familyEnrich    = 12
	familyPings     = 4
	modelPause      = 3 * time.Second
)

// families is the task types the scenarios catch running at once.
var families = []string{jobs.TypeSummaryGenerate, jobs.TypeSegmentRefresh, jobs.TypeExportSegment, jobs.TypeEnrichRecord, jobs.TypePing}

// slowModel speaks the Gemini REST protocol and answers every call after
// a pause, with every section empty (a valid answer).
func slowModel(t *testing.T, pause time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(pause):
		case <-r.Context().Done():
			return
		}
		answer := `{"sections":[]}`
		resp, _ := json.Marshal(map[string]any{
			"candidates":    []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": answer}}}, "finishReason": "STOP"}},
			"usageMetadata": map[string]any{"promptTokenCount": 500, "candidatesTokenCount": 10, "totalTokenCount": 510},
			"modelVersion":  "gemini-slow-001",
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// familyLoad is the jobs of one scenario.
type familyLoad struct {
	s         *system
	key       string
	orgID     int64
	segmentID int64
	bucket    string
	accepted  map[string]string // job id -> task type
	exportID  int64
	bulkJob   string
	workers   []*stacktest.Proc // dumped (SIGQUIT) when a job never ends
}

// startWorker starts a worker the load knows of.
func (l *familyLoad) startWorker() *stacktest.Proc {
	w := l.s.start("worker")
	l.workers = append(l.workers, w)
	return w
}

// familyServers are what a scenario's processes reach besides Redis and
// Postgres: the slow model, a fixture site, the export bucket.
type familyServers struct {
	env    []string // every process of the scenario runs with it
	bucket string   // the export bucket's directory
	site   string   // the fixture site's URL
}

func newFamilyServers(t *testing.T) familyServers {
	model := slowModel(t, modelPause)
	site := httptest.NewServer(sites.Handler("northwind"))
	t.Cleanup(site.Close)
	bucket := t.TempDir()
	return familyServers{bucket: bucket, site: site.URL, env: []string{
		"CRMQ_LLM_PROVIDER=gemini", "GEMINI_API_KEY=test-key", "CRMQ_GEMINI_BASE_URL=" + model.URL,
		"CRMQ_ENRICH_ALLOW_HOSTS=127.0.0.1/32", "CRMQ_ENRICH_HOST_DELAY=300ms", "CRMQ_ENRICH_BULK_CONCURRENCY=2",
		"CRMQ_EXPORT_BUCKET=file://" + bucket,
		"CRMQ_WORKER_CONCURRENCY=20",
	}}
}

// newFamilyLoad seeds the demo org, grows it, and accepts one job of each
// family (while no worker runs, so they start together).
func newFamilyLoad(t *testing.T, s *system, srv familyServers) *familyLoad {
	t.Helper()
	ctx := context.Background()
	l := &familyLoad{s: s, key: s.run("seed"), bucket: srv.bucket, accepted: map[string]string{}}
	org, err := s.db.OrgByName(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	l.orgID = org.ID
	site := srv.site
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO accounts (org_id, external_id, name, industry, country, employees, website)
		SELECT $1, 'bulk-' || g, 'Bulk account ' || g, 'Software', 'DE', 10 + g % 5000, 'https://b' || g || '.example'
		FROM generate_series(1, $2::int) g`, l.orgID, familyAccounts); err != nil {
		t.Fatal(err)
	}
	var enrichIDs []string
	var rows []map[string]any
	for i := range familyEnrich {
		enrichIDs = append(enrichIDs, fmt.Sprintf("site-%d", i))
		rows = append(rows, map[string]any{"external_id": enrichIDs[i], "name": "Northwind", "website": site, "country": "DE"})
	}
	if r := s.call("PUT", "/v1/modules/accounts/records", l.key, rows, nil); r.StatusCode != 200 {
		t.Fatalf("ingest: %d", r.StatusCode)
	}
	var seg store.Segment
	if r := s.call("POST", "/v1/segments", l.key, map[string]any{"name": "Everyone in scope", "criteria": map[string]any{"conditions": []any{}}}, &seg); r.StatusCode != 201 || seg.MemberCount < familyAccounts {
		t.Fatalf("segment: %d %+v", r.StatusCode, seg)
	}
	l.segmentID = seg.ID

	c := s.client(l.key)
	var deals []string
	if err := s.db.SelectContext(ctx, &deals, `SELECT external_id FROM deals WHERE org_id = $1 AND state = 'active' ORDER BY id LIMIT $2`, l.orgID, familySummaries); err != nil || len(deals) != familySummaries {
		t.Fatalf("demo deals %v: %v", deals, err)
	}
	for i, id := range deals {
		a, err := c.Summarize(ctx, client.SummaryRequest{Module: "deals", RecordID: id}, client.User(fmt.Sprintf("user-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		l.accepted[a.JobID] = jobs.TypeSummaryGenerate
	}
	r, err := c.RefreshSegments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	l.accepted[r.JobID] = jobs.TypeSegmentRefresh
	ex, err := c.ExportSegment(ctx, l.segmentID, client.ExportRequest{}, client.User("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	l.accepted[ex.JobID], l.exportID = jobs.TypeExportSegment, ex.ExportID
	en, err := c.EnrichBulk(ctx, enrichIDs, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.accepted[en.JobID], l.bulkJob = jobs.TypeEnrichBulk, en.JobID
	for range familyPings {
		p, err := c.Enqueue(ctx, client.Task{Type: jobs.TypePing, Queue: "default", HoldMS: 4000})
		if err != nil {
			t.Fatal(err)
		}
		l.accepted[p.JobID] = jobs.TypePing
	}
	return l
}

// waitAllRunning waits until a job of every family is running at once.
func (l *familyLoad) waitAllRunning(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var running []string
		if err := l.s.db.SelectContext(context.Background(), &running,
			`SELECT DISTINCT type FROM jobs WHERE org_id = $1 AND state = 'running'`, l.orgID); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, r := range running {
			have[r] = true
		}
		all := true
		for _, f := range families {
			all = all && have[f]
		}
		if all {
			t.Logf("every family running: %v", running)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not catch every family running at once (running: %v)", running)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// familyOutcome counts what became of the accepted jobs.
type familyOutcome struct {
	Accepted, Succeeded, Failed, Lost, Duplicated, RanAgain int
}

// check waits until every accepted job is final and checks that each
// succeeded once with exactly one result.
func (l *familyLoad) check(t *testing.T, within time.Duration) familyOutcome {
	t.Helper()
	ctx := context.Background()
	o := familyOutcome{Accepted: len(l.accepted)}
	deadline := time.Now().Add(within)
	for id, typ := range l.accepted {
		var j store.Job
		for {
			var err error
			if j, err = l.s.db.Job(ctx, l.orgID, id); err != nil {
				t.Fatalf("job %s (%s): %v", id, typ, err)
			}
			if store.JobFinal(j.State) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		switch j.State {
		case store.JobSucceeded:
			o.Succeeded++
		case store.JobFailed:
			o.Failed++
			t.Errorf("%s job %s failed: %v", typ, id, j.Error)
		default:
			o.Lost++
			t.Errorf("%s job %s is still %s after %s", typ, id, j.State, within)
		}
		if j.Attempts > 1 {
			o.RanAgain++
		}
	}
	if o.Lost > 0 { // what Postgres is doing, for the log
		var act []string
		_ = l.s.db.SelectContext(ctx, &act, `SELECT concat_ws(' | ', state, wait_event_type, wait_event, now() - query_start, left(query, 300))
			FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		for _, a := range act {
			t.Logf("postgres session: %s", a)
		}
		for _, w := range l.workers {
			_ = w.Cmd.Process.Signal(syscall.SIGQUIT) // its goroutines go to its log
		}
	}
	// Children of the bulk enrichment end too, each once. The last child
	// finishes the bulk's job in its own transaction, then its own row a
	// few milliseconds later (the job-state middleware, after the handler):
	// the bulk may be final while that row is not yet.
	var open int
	for {
		if err := l.s.db.GetContext(ctx, &open, `SELECT count(*) FROM jobs WHERE org_id = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled')`, l.orgID); err != nil {
			t.Fatal(err)
		}
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if open != 0 {
		t.Errorf("%d job rows of the org are not final", open)
	}

	// One result each.
	var n int
	for id, typ := range l.accepted {
		if typ != jobs.TypeSummaryGenerate {
			continue
		}
		if err := l.s.db.GetContext(ctx, &n, `SELECT count(*) FROM summaries WHERE id = $1`, id); err != nil || n != 1 {
			t.Errorf("summary job %s: %d summaries (%v), want 1", id, n, err)
		}
	}
	ex, err := l.s.db.Export(ctx, l.orgID, l.exportID)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != store.ExportReady || ex.RowCount == nil || *ex.RowCount < familyAccounts {
		t.Errorf("export %+v, want ready with every member", ex)
	}
	if files := bucketFiles(t, l.bucket); len(files) != 1 {
		o.Duplicated += max(0, len(files)-1)
		t.Errorf("bucket holds %v, want one file", files)
	}
	var bulk struct {
		Done     int `db:"done"`
		History  int `db:"history"`
		Enriched int `db:"enriched"`
	}
	if err := l.s.db.GetContext(ctx, &bulk, `SELECT b.done,
			(SELECT count(*) FROM enrichment_history WHERE job_id = b.job_id) AS history,
			(SELECT count(*) FROM enrichments e WHERE e.job_id = b.job_id AND e.state = 'succeeded') AS enriched
		FROM enrich_bulks b WHERE b.job_id = $1`, l.bulkJob); err != nil {
		t.Fatal(err)
	}
	if bulk.Done != familyEnrich || bulk.History != 1 || bulk.Enriched != familyEnrich {
		if bulk.Enriched > familyEnrich {
			o.Duplicated += bulk.Enriched - familyEnrich
		}
		t.Errorf("bulk enrichment ledger %+v, want %d records done once and one history row", bulk, familyEnrich)
	}
	var members int
	if err := l.s.db.GetContext(ctx, &members, `SELECT count(*) FROM segment_members WHERE segment_id = $1`, l.segmentID); err != nil {
		t.Fatal(err)
	}
	if members < familyAccounts {
		t.Errorf("segment has %d members after the refresh, want at least %d", members, familyAccounts)
	}
	return o
}

func (o familyOutcome) log(t *testing.T, scenario string, recovered time.Duration) {
	t.Logf("%s: accepted %d, succeeded %d, failed %d, lost %d, duplicated %d, ran again %d; every job final %.1f s after the fault ended",
		scenario, o.Accepted, o.Succeeded, o.Failed, o.Lost, o.Duplicated, o.RanAgain, recovered.Seconds())
}

// A worker SIGKILLed while a job of every family runs: asynq gives the
// tasks back once their leases lapse, a new worker runs them, and each job
// ends succeeded with one result.
func TestKilledWorkerEveryFamilyEndsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about 2 minutes)")
	}
	t.Parallel()
	srv := newFamilyServers(t)
	s := newSystem(t, srv.env...)
	s.startAPI()
	l := newFamilyLoad(t, s, srv)
	w := l.startWorker()
	l.waitAllRunning(t)
	_ = w.Cmd.Process.Signal(syscall.SIGKILL)
	<-w.Done
	start := time.Now()
	l.startWorker()
	o := l.check(t, 5*time.Minute)
	o.log(t, "worker SIGKILL", time.Since(start))
	if o.RanAgain == 0 {
		t.Error("no job ran again after the kill; the test proved nothing")
	}
}

// Redis restarted (AOF) while a job of every family runs and others wait:
// every accepted job ends succeeded once.
func TestRedisRestartEveryFamilyEndsOnce(t *testing.T) {
	t.Parallel()
	srv := newFamilyServers(t)
	r := newPrivateRedis(t)
	_, dbURL := newTestDB(t)
	s := newSystemOn(t, dbURL, r.url(), srv.env...)
	s.startAPI()
	s.start("scheduler")
	l := newFamilyLoad(t, s, srv)
	l.startWorker()
	l.waitAllRunning(t)
	r.restart(2*time.Second, nil)
	start := time.Now()
	o := l.check(t, 5*time.Minute)
	o.log(t, "Redis restart", time.Since(start))
}

// Postgres stopped for 30 s while a job of every family runs: every
// accepted job ends succeeded once after it is back.
func TestPostgresStopEveryFamilyEndsOnce(t *testing.T) {
	t.Parallel()
	srv := newFamilyServers(t)
	pg := newPrivatePostgres(t)
	pg.migrate()
	s := newSystemOn(t, pg.url(), newTestRedis(t), srv.env...)
	s.startAPI()
	s.start("scheduler")
	l := newFamilyLoad(t, s, srv)
	l.startWorker()
	l.waitAllRunning(t)
	pg.stop()
	time.Sleep(30 * time.Second)
	pg.start()
	start := time.Now()
	o := l.check(t, 5*time.Minute)
	o.log(t, "Postgres stopped 30 s", time.Since(start))
}
