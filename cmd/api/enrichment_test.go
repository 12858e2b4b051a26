package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich"
	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// startEnrichWorker runs the enrichment handlers with a fetcher allowed
// to reach loopback (where the fixture sites are served) and nothing else,
// and the handlers of more when given (one worker takes every queue's
// tasks, so it needs them all).
func (e *apiEnv) startEnrichWorker(t *testing.T, more ...workers.Registration) {
	t.Helper()
	allow, err := fetch.ParseAllow("127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	en := enrich.Enricher{Store: e.db, Now: time.Now, Log: quiet, Crawler: enrich.Crawler{
		Fetch: fetch.New(fetch.Config{Allow: allow, HostDelay: time.Millisecond, Timeout: 2 * time.Second}), Provider: offline.New()}}
	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency: 4, Queues: map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval: 10 * time.Millisecond, Logger: nopLogger{},
	})
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { client.Close() })
	mux, err := workers.NewMux(append([]workers.Registration{
		workers.Register(jobs.EnrichRecordSpec, e.db, enrich.Record{Enricher: en, Queue: client}),
		workers.Register(jobs.EnrichBulkSpec, e.db, enrich.Bulk{Enricher: en, Queue: client}),
	}, more...), workers.JobState(e.db, quiet, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func (e *apiEnv) waitJob(t *testing.T, id string) store.Job {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := e.do(t, "GET", "/v1/jobs/"+id, e.keyA, "")
		j := decode[store.Job](t, r)
		if store.JobFinal(j.State) {
			return j
		}
	}
	t.Fatalf("job %s not final", id)
	return store.Job{}
}

// A new user chooses five fields, enriches one account, reads the
// proposal, accepts two fields and finds them, and only them, changed and
// in the history; then a bulk fills the empty fields of two accounts.
func TestEnrichmentOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	site := httptest.NewServer(sites.Handler("northwind"))
	t.Cleanup(site.Close)
	e.startEnrichWorker(t)
	e.ingest(t, "accounts",
		fmt.Sprintf(`{"external_id":"N1","name":"Northwind","website":%q,"industry":"Food","city":"Bremen"}`, site.URL),
		fmt.Sprintf(`{"external_id":"N2","name":"Northwind two","website":%q,"city":"Kiel"}`, site.URL),
		`{"external_id":"X1","name":"No site"}`)

	wantStatus(t, e.do(t, "PUT", "/v1/enrichment/settings", e.keyA, `{"fields":["description","industry","founded_year","phone","city"]}`), http.StatusOK)
	r := e.do(t, "GET", "/v1/enrichment/settings", e.keyA, "")
	wantStatus(t, r, http.StatusOK)
	if st := decode[store.EnrichSettings](t, r); len(st.Fields) != 5 || st.Default {
		t.Fatalf("settings %+v", st)
	}

	r = e.do(t, "POST", "/v1/enrichments", e.keyA, `{"account_id":"N1"}`, "X-User-ID", "user-1")
	wantStatus(t, r, http.StatusAccepted)
	acc := decode[enrichAccepted](t, r)
	if acc.EnrichmentID == "" || acc.Records != 1 || acc.Remaining != jobs.DefaultEnrichDailyLimit-1 {
		t.Fatalf("accepted %+v", acc)
	}
	if j := e.waitJob(t, acc.JobID); j.State != store.JobSucceeded {
		t.Fatalf("job %+v", j)
	}
	r = e.do(t, "GET", "/v1/enrichments/"+acc.EnrichmentID, e.keyA, "")
	wantStatus(t, r, http.StatusOK)
	en := decode[store.Enrichment](t, r)
	if en.State != "succeeded" || len(en.Proposals) != 5 || en.Account != "N1" {
		t.Fatalf("enrichment %+v", en)
	}
	for _, p := range en.Proposals {
		if !p.Found || p.Source == "" || p.URL == "" {
			t.Errorf("proposal %+v", p)
		}
	}
	r = e.do(t, "GET", "/v1/modules/accounts/records/N1", e.keyA, "")
	if b := readBody(r); !strings.Contains(b, `"city":"Bremen"`) || !strings.Contains(b, `"industry":"Food"`) {
		t.Fatalf("the proposal wrote to the account: %s", b)
	}

	r = e.do(t, "POST", "/v1/enrichments/"+acc.EnrichmentID+"/apply", e.keyA, `{"fields":["industry","phone"]}`, "X-User-ID", "user-1")
	wantStatus(t, r, http.StatusOK)
	if b := readBody(r); b != `{"changes":[{"field":"industry","old":"Food","new":"Wholesale Trade"},{"field":"phone","old":null,"new":"+49 40 555 0100"}]}`+"\n" {
		t.Fatalf("changes %s", b)
	}
	r = e.do(t, "GET", "/v1/modules/accounts/records/N1", e.keyA, "")
	if b := readBody(r); !strings.Contains(b, `"city":"Bremen"`) || !strings.Contains(b, `"industry":"Wholesale Trade"`) || !strings.Contains(b, `"phone":"+49 40 555 0100"`) || strings.Contains(b, "founded_year") {
		t.Fatalf("account after apply: %s", b)
	}

	r = e.do(t, "POST", "/v1/enrichments/bulk", e.keyA, `{"account_ids":["N2","X1"]}`)
	wantStatus(t, r, http.StatusAccepted)
	bulk := decode[enrichAccepted](t, r)
	if j := e.waitJob(t, bulk.JobID); j.State != store.JobSucceeded || !strings.Contains(string(*j.Result), `"reasons":{"no_website":1}`) {
		t.Fatalf("bulk job %+v %s", j, *j.Result)
	}
	r = e.do(t, "GET", "/v1/modules/accounts/records/N2", e.keyA, "")
	if b := readBody(r); !strings.Contains(b, `"city":"Kiel"`) || !strings.Contains(b, `"industry":"Wholesale Trade"`) {
		t.Fatalf("N2 after bulk: %s", b)
	}
	r = e.do(t, "GET", "/v1/enrichments?job_id="+bulk.JobID, e.keyA, "")
	if b := readBody(r); !strings.Contains(b, `"account_id":"N2"`) || !strings.Contains(b, `"reason":"no_website"`) {
		t.Fatalf("bulk records: %s", b)
	}

	r = e.do(t, "GET", "/v1/enrichment/history", e.keyA, "")
	wantStatus(t, r, http.StatusOK)
	h := decode[store.HistoryPage](t, r)
	if len(h.Entries) != 2 || h.Entries[0].Kind != "bulk" || *h.Entries[0].Records != 1 || h.Entries[1].Kind != "single" || len(h.Entries[1].Changes) != 2 {
		t.Fatalf("history %+v", h)
	}
	// Three records counted; the one without a website was given back.
	r = e.do(t, "GET", "/v1/enrichment/stats?days=7", e.keyA, "")
	if b := readBody(r); !strings.Contains(b, `"used_today":2`) || !strings.Contains(b, `"reason":"no_website","records":1`) {
		t.Fatalf("stats %s", b)
	}
	// Another org sees none of it.
	wantStatus(t, e.do(t, "GET", "/v1/enrichments/"+acc.EnrichmentID, e.keyB, ""), http.StatusNotFound)
	wantStatus(t, e.do(t, "POST", "/v1/enrichments/"+acc.EnrichmentID+"/apply", e.keyB, `{"fields":["phone"]}`), http.StatusNotFound)
}

func TestEnrichmentRequestsThatCannotBeServedAreProblems(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "accounts", `{"external_id":"A1","name":"A"}`, `{"external_id":"A2","name":"B"}`)
	many := make([]string, 14)
	for i := range many {
		many[i] = fmt.Sprintf("%q", store.EnrichFields[i].Key)
	}
	ids := make([]string, 501)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"a%d"`, i)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/v1/enrichment/settings", `{"fields":[]}`, 400, "at least 1 and at most 13"},
		{"PUT", "/v1/enrichment/settings", `{"fields":[` + strings.Join(many, ",") + `]}`, 400, "(got 14)"},
		{"PUT", "/v1/enrichment/settings", `{"fields":["industry","industry"]}`, 400, "named twice"},
		{"PUT", "/v1/enrichment/settings", `{"fields":["shoe_size"]}`, 400, "not an enrichable field"},
		{"PUT", "/v1/enrichment/settings", `{"fields":"industry"}`, 400, ""},
		{"POST", "/v1/enrichments", `{}`, 400, "account_id"},
		{"POST", "/v1/enrichments", `{"account_id":"nope"}`, 400, "no account"},
		{"POST", "/v1/enrichments", `{"account_id":"A1","extra":1}`, 400, ""},
		{"POST", "/v1/enrichments/bulk", `{}`, 400, "account_ids"},
		{"POST", "/v1/enrichments/bulk", `{"account_ids":[` + strings.Join(ids, ",") + `]}`, 400, "at most 500"},
		{"POST", "/v1/enrichments/bulk", `{"account_ids":["A1"],"segment_id":3}`, 400, "not both"},
		{"POST", "/v1/enrichments/bulk", `{"segment_id":999999}`, 404, ""},
		{"GET", "/v1/enrichments", ``, 400, "account_id"},
		{"GET", "/v1/enrichments?account_id=nope", ``, 404, ""},
		{"GET", "/v1/enrichments/nope", ``, 404, ""},
		{"POST", "/v1/enrichments/nope/apply", `{"fields":["phone"]}`, 404, ""},
		{"GET", "/v1/enrichment/stats?days=0", ``, 400, "days"},
		{"GET", "/v1/enrichment/history?cursor=zz", ``, 400, "cursor"},
	} {
		r := e.do(t, tc.method, tc.path, e.keyA, tc.body)
		b := readBody(r)
		if r.StatusCode != tc.status || !strings.Contains(b, tc.want) || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tc.method, tc.path, tc.body, r.StatusCode, b, tc.status, tc.want)
		}
	}

	// The daily limit: 429 saying how many remain, nothing counted.
	e.s.cfg.EnrichDailyLimit = 2
	wantStatus(t, e.do(t, "POST", "/v1/enrichments", e.keyA, `{"account_id":"A1"}`), http.StatusAccepted)
	r := e.do(t, "POST", "/v1/enrichments/bulk", e.keyA, `{"account_ids":["A1","A2"]}`)
	b := readBody(r)
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(b, `"remaining":1`) || !strings.Contains(b, "1 remain today") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s", r.StatusCode, b)
	}
	wantStatus(t, e.do(t, "POST", "/v1/enrichments/bulk", e.keyA, `{"account_ids":["A2"]}`), http.StatusAccepted)
}

// A retried POST with the same Idempotency-Key answers the first job and
// counts its records once.
func TestARepeatedEnrichmentRequestIsCountedOnce(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "accounts", `{"external_id":"A1","name":"A"}`, `{"external_id":"A2","name":"B"}`)
	var first enrichAccepted
	for i := range 2 {
		r := e.do(t, "POST", "/v1/enrichments/bulk", e.keyA, `{"account_ids":["A1","A2"]}`, "Idempotency-Key", "bulk-once")
		wantStatus(t, r, http.StatusAccepted)
		a := decode[enrichAccepted](t, r)
		if i == 0 {
			first = a
			continue
		}
		if a.JobID != first.JobID || r.Header.Get("Idempotent-Replayed") != "true" || a.Remaining != jobs.DefaultEnrichDailyLimit-2 {
			t.Fatalf("first %+v, again %+v", first, a)
		}
	}
	r := e.do(t, "POST", "/v1/enrichments/bulk", e.keyA, `{"account_ids":["A1"]}`, "Idempotency-Key", "bulk-once")
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if used, _ := e.db.EnrichmentUsage(context.Background(), e.orgA.ID, time.Now()); used != 2 {
		t.Fatalf("used %d, want 2", used)
	}
}
