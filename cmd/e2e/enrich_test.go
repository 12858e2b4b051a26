package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// A new user enriches an account through the worker process, whose
// fetcher reaches the fixture site only because the allow-list names
// loopback; without it the same account fails as a refused address.
func TestEnrichmentThroughTheWorker(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(sites.Handler("pressly"))
	t.Cleanup(site.Close)
	s := newSystem(t)
	s.startAPI()
	s.start("worker", "CRMQ_ENRICH_ALLOW_HOSTS=127.0.0.1/32", "CRMQ_ENRICH_HOST_DELAY=10ms")
	key := s.newOrg("enrich")
	var v any
	body := fmt.Sprintf(`[{"external_id":"p1","name":"Pressly","website":%q},{"external_id":"p2","name":"Pressly too","website":%q,"industry":"Design"}]`, site.URL, site.URL)
	if r := s.call("PUT", "/v1/modules/accounts/records", key, json.RawMessage(body), &v); r.StatusCode != 200 {
		t.Fatalf("ingest: %d %v", r.StatusCode, v)
	}
	var a struct {
		accepted
		EnrichmentID string `json:"enrichment_id"`
	}
	if r := s.call("POST", "/v1/enrichments", key, json.RawMessage(`{"account_id":"p1"}`), &a); r.StatusCode != 202 {
		t.Fatalf("enrich: %d", r.StatusCode)
	}
	if j := s.waitJob(key, a.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed); j.State != store.JobSucceeded {
		t.Fatalf("enrich:record %+v", j)
	}
	var e store.Enrichment
	if r := s.call("GET", "/v1/enrichments/"+a.EnrichmentID, key, nil, &e); r.StatusCode != 200 || e.State != "succeeded" {
		t.Fatalf("enrichment: %d %+v", r.StatusCode, e)
	}
	techs := map[string]bool{}
	for _, p := range e.Proposals {
		if p.Field == "technologies" {
			for _, x := range p.Proposed.([]any) {
				techs[x.(string)] = true
			}
		}
	}
	if !techs["WordPress 6.4.2"] || !techs["Google Analytics"] || !techs["HubSpot"] {
		t.Fatalf("technologies %v", techs)
	}

	if r := s.call("POST", "/v1/enrichments/bulk", key, json.RawMessage(`{"account_ids":["p1","p2"]}`), &a); r.StatusCode != 202 {
		t.Fatalf("bulk: %d", r.StatusCode)
	}
	j := s.waitJob(key, a.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	var res jobs.EnrichBulkResult
	if j.State != store.JobSucceeded || json.Unmarshal(*j.Result, &res) != nil || res.Succeeded != 2 || j.Progress != 100 {
		t.Fatalf("enrich:bulk %+v %+v", j, res)
	}
	var rec struct {
		Industry string `json:"industry"`
	}
	if r := s.call("GET", "/v1/modules/accounts/records/p2", key, nil, &rec); r.StatusCode != 200 || rec.Industry != "Design" {
		t.Fatalf("p2 after bulk: %d %+v (a filled field was overwritten)", r.StatusCode, rec)
	}
}

// Without the allow-list, the worker refuses the loopback site.
func TestTheWorkersFetcherRefusesLoopbackByDefault(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(sites.Handler("northwind"))
	t.Cleanup(site.Close)
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	key := s.newOrg("guarded")
	var v any
	if r := s.call("PUT", "/v1/modules/accounts/records", key, json.RawMessage(fmt.Sprintf(`[{"external_id":"n1","name":"N","website":%q}]`, site.URL)), &v); r.StatusCode != 200 {
		t.Fatalf("ingest: %d %v", r.StatusCode, v)
	}
	var a struct {
		accepted
		EnrichmentID string `json:"enrichment_id"`
	}
	if r := s.call("POST", "/v1/enrichments", key, json.RawMessage(`{"account_id":"n1"}`), &a); r.StatusCode != 202 {
		t.Fatalf("enrich: %d", r.StatusCode)
	}
	j := s.waitJob(key, a.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	if j.State != store.JobFailed || j.Error == nil || j.Attempts != 1 {
		t.Fatalf("job %+v, want failed at once", j)
	}
	var e store.Enrichment
	if r := s.call("GET", "/v1/enrichments/"+a.EnrichmentID, key, nil, &e); r.StatusCode != 200 || e.Reason == nil || *e.Reason != "refused_address" {
		t.Fatalf("enrichment: %+v", e)
	}
}

// A worker killed with SIGKILL in the middle of a bulk enrichment: the
// children it was running come back after asynq's lease lapses (1-2
// minutes) on a new worker, the others go on, and the parent finishes
// once, with every record counted once and each filled once.
func TestKilledWorkerBulkEnrichmentFinishesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about 2 minutes)")
	}
	t.Parallel()
	const records = 24
	site := httptest.NewServer(sites.Handler("northwind"))
	t.Cleanup(site.Close)
	s := newSystem(t)
	s.startAPI()
	env := []string{"CRMQ_ENRICH_ALLOW_HOSTS=127.0.0.1/32", "CRMQ_ENRICH_HOST_DELAY=150ms", "CRMQ_ENRICH_BULK_CONCURRENCY=4"}
	w := s.start("worker", env...)
	key := s.newOrg("enrich-crash")
	var rows []map[string]any
	var ids []string
	for i := range records {
		ids = append(ids, fmt.Sprintf("n%d", i))
		rows = append(rows, map[string]any{"external_id": ids[i], "name": "Northwind", "website": site.URL})
	}
	var v any
	if r := s.call("PUT", "/v1/modules/accounts/records", key, rows, &v); r.StatusCode != 200 {
		t.Fatalf("ingest: %d %v", r.StatusCode, v)
	}
	var a accepted
	if r := s.call("POST", "/v1/enrichments/bulk", key, map[string]any{"account_ids": ids}, &a); r.StatusCode != 202 {
		t.Fatalf("bulk: %d", r.StatusCode)
	}
	var j store.Job
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.call("GET", "/v1/jobs/"+a.JobID, key, nil, &j)
		if j.Progress >= 15 && j.Progress < 60 {
			break
		}
		if store.JobFinal(j.State) || time.Now().After(deadline) {
			t.Fatalf("could not catch the bulk mid-way: %+v", j)
		}
	}
	_ = w.Cmd.Process.Signal(syscall.SIGKILL)
	<-w.Done
	t.Logf("worker killed at %d%%", j.Progress)
	killed := time.Now()

	s.start("worker", env...)
	j = s.waitJob(key, a.JobID, 4*time.Minute, store.JobSucceeded, store.JobFailed)
	var res jobs.EnrichBulkResult
	if j.State != store.JobSucceeded || j.Progress != 100 || json.Unmarshal(*j.Result, &res) != nil {
		t.Fatalf("after the crash: %+v", j)
	}
	if res.Records != records || res.Succeeded != records || res.Failed != 0 || res.Enriched != records {
		t.Fatalf("result %+v", res)
	}
	ctx := context.Background()
	var outcomes struct {
		Done     int `db:"done"`
		Finished int `db:"finished"`
		Children int `db:"children"`
		Open     int `db:"open"`
		History  int `db:"history"`
	}
	// A child killed after its outcome was committed but before its job
	// row was, ends its row when asynq gives its task back (its lease
	// lapses), which may come after the parent finished.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if err := s.db.GetContext(ctx, &outcomes, `SELECT b.done, (b.finished_at IS NOT NULL)::int AS finished,
				(SELECT count(*) FROM jobs WHERE id LIKE b.job_id || '.%') AS children,
				(SELECT count(*) FROM jobs WHERE id LIKE b.job_id || '.%' AND state <> 'succeeded') AS open,
				(SELECT count(*) FROM enrichment_history WHERE job_id = b.job_id) AS history
			FROM enrich_bulks b WHERE b.job_id = $1`, a.JobID); err != nil {
			t.Fatal(err)
		}
		if outcomes.Open == 0 || time.Now().After(deadline) {
			break
		}
	}
	if outcomes.Done != records || outcomes.Finished != 1 || outcomes.Children != records || outcomes.Open != 0 || outcomes.History != 1 {
		t.Fatalf("ledger %+v", outcomes)
	}
	var retried int
	if err := s.db.GetContext(ctx, &retried, `SELECT count(*) FROM jobs WHERE id LIKE $1 || '.%' AND attempts > 1`, a.JobID); err != nil {
		t.Fatal(err)
	}
	t.Logf("bulk enrichment, worker SIGKILL: accepted 1 (%d children), succeeded 1, lost 0, duplicated 0 (%d records done once, one history row), %d children ran again; every row final %.1f s after the kill",
		outcomes.Children, outcomes.Done, retried, time.Since(killed).Seconds())
	if retried == 0 {
		t.Error("no child was caught running by the kill; the test proved nothing")
	}
}
