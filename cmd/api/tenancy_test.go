package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich/sites"
	"github.com/crmq/crmq/workers/export"
	"github.com/crmq/crmq/workers/summary"
	"github.com/crmq/crmq/workers/system"
)

// tenancyMarker is in every name and note of org A's data: no answer to
// org B's key may contain it.
const tenancyMarker = "tenancy-marker-of-org-a"

// tenancyBodies are request bodies that pass each route's own checks, so
// that what answers a foreign id is the org check, not validation. A
// route not listed gets "{}"; a route that refuses "{}" with 400 before
// looking its ids up must be listed here (the test says which).
var tenancyBodies = map[string]string{
	"POST /v1/jobs":                                   `{"type":"system:ping","queue":"default"}`,
	"PUT /v1/modules/{module}/records":                `[]`,
	"POST /v1/summaries":                              `{"module":"accounts","record_id":"acc-t1"}`,
	"POST /v1/summaries/{id}/feedback":                `{"rating":"positive"}`,
	"POST /v1/summaries/{id}/expansion-opportunities": `{"name":"More seats"}`,
	"PUT /v1/segments/{id}":                           `{"name":"Renamed","criteria":{"conditions":[{"field":"industry","op":"equals","value":"Tech"}]}}`,
	"POST /v1/segments/{id}/exports":                  `{"fields":"all"}`,
	"POST /v1/enrichments":                            `{"account_id":"acc-t1"}`,
	"POST /v1/enrichments/bulk":                       `{"account_ids":["acc-t1"]}`,
	"POST /v1/enrichments/{id}/apply":                 `{"fields":["city"]}`,
}

// tenancyQueries name org A's ids in query parameters of list routes.
var tenancyQueries = map[string]func(a tenancyIDs) string{
	"GET /v1/exports":     func(a tenancyIDs) string { return fmt.Sprintf("?segment_id=%d", a.segment) },
	"GET /v1/enrichments": func(a tenancyIDs) string { return "?account_id=acc-t1&job_id=" + a.job },
}

// tenancyIDs are org A's ids, one per kind of path parameter.
type tenancyIDs struct {
	org                             int64
	job, summary                    string
	segment, export                 int64
	enrichment                      string
	account, contact, module, techn string
}

// pathFor fills a route's path with org A's ids. The kind of an {id}
// follows the path's collection; a route whose parameter has no id here
// fails the test, so a new route cannot go unchecked.
func (a tenancyIDs) pathFor(path string) (string, bool, error) {
	coll := ""
	var out []string
	foreign := false // the path names one of org A's objects
	for _, seg := range strings.Split(path, "/") {
		if !strings.HasPrefix(seg, "{") {
			out = append(out, seg)
			coll = seg
			continue
		}
		var v string
		switch p := strings.Trim(seg, "{}"); {
		case p == "org":
			v, foreign = fmt.Sprint(a.org), true
		case p == "module":
			v = a.module
		case p == "technique":
			v = a.techn
		case p == "id" && coll == "jobs":
			v, foreign = a.job, true
		case p == "id" && coll == "summaries":
			v, foreign = a.summary, true
		case p == "id" && coll == "segments":
			v, foreign = fmt.Sprint(a.segment), true
		case p == "id" && coll == "exports":
			v, foreign = fmt.Sprint(a.export), true
		case p == "id" && coll == "enrichments":
			v, foreign = a.enrichment, true
		case p == "id" && (coll == "accounts" || coll == "records"):
			v, foreign = a.account, true
		default:
			return "", false, fmt.Errorf("no id of org A for %s after /%s/: add one to tenancyIDs.pathFor", seg, coll)
		}
		out = append(out, v)
	}
	return strings.Join(out, "/"), foreign, nil
}

// Every route of the table, tried with org B's key on org A's ids, answers
// 403 or 404 and never shows org A's data; routes without ids never show
// it either; and org A's data is all there afterwards. The routes come
// from routeTable, so a route added later is tried too.
func TestEveryRouteKeepsOrgsApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newAPI(t)
	b, err := export.OpenBucket(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.s.exports = b
	e.rebuild(t)
	e.startEnrichWorker(t,
		workers.Register(jobs.PingSpec, e.db, system.Ping{}),
		workers.Register(jobs.SummarySpec, e.db, summary.Summarizer{Store: e.db, Provider: offline.New(), Budget: 24000, Now: time.Now}))
	site := httptest.NewServer(sites.Handler("northwind"))
	t.Cleanup(site.Close)

	e.ingest(t, "accounts", `{"external_id":"acc-t1","name":"Acme `+tenancyMarker+`","industry":"Tech","city":"Bremen","website":"`+site.URL+`"}`)
	e.ingest(t, "contacts", `{"external_id":"con-t1","first_name":"Ada","last_name":"`+tenancyMarker+`","account":"acc-t1"}`)
	e.ingest(t, "activities", `{"external_id":"act-t1","medium":"email","direction":"signal","kind":"email","occurred_at":"2026-10-01T10:00:00Z","notes":"`+tenancyMarker+`","contact":"con-t1","account":"acc-t1"}`)

	a := tenancyIDs{org: e.orgA.ID, account: "acc-t1", contact: "con-t1", module: "accounts", techn: "rfm"}
	r, acc := e.summarize(t, "user-1", "accounts", "acc-t1", false)
	wantStatus(t, r, http.StatusAccepted)
	_, sum := e.finished(t, acc.JobID)
	a.summary = sum.ID

	var cr criteria.Criteria
	if err := json.Unmarshal([]byte(`{"conditions":[{"field":"industry","op":"equals","value":"Tech"}]}`), &cr); err != nil {
		t.Fatal(err)
	}
	seg, err := e.db.CreateSegment(ctx, e.orgA.ID, store.SegmentInput{Name: "Segment " + tenancyMarker, Criteria: &cr}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.RecomputeSegment(ctx, e.orgA.ID, seg.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	a.segment = seg.ID
	r = e.do(t, "POST", fmt.Sprintf("/v1/segments/%d/exports", seg.ID), e.keyA, `{"fields":"all"}`, "X-User-ID", "user-1")
	wantStatus(t, r, http.StatusAccepted)
	a.export = decode[exportAccepted](t, r).ExportID
	r = e.do(t, "POST", "/v1/enrichments", e.keyA, `{"account_id":"acc-t1"}`, "X-User-ID", "user-1")
	wantStatus(t, r, http.StatusAccepted)
	var enr struct {
		JobID        string `json:"job_id"`
		EnrichmentID string `json:"enrichment_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&enr); err != nil || enr.EnrichmentID == "" {
		t.Fatalf("enrichment 202: %+v %v", enr, err)
	}
	if j := e.waitJob(t, enr.JobID); j.State != store.JobSucceeded {
		t.Fatalf("enrichment job %+v", j)
	}
	a.enrichment, a.job = enr.EnrichmentID, enr.JobID

	tried, skipped, onIDs, fiveXX := 0, 0, 0, 0
	byStatus := map[int]int{}
	for _, rt := range e.s.routeTable() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok || rt.access == accessPublic {
			skipped++
			continue // public probes and the admin-only dashboard (checked in its own test)
		}
		ids := a
		if strings.HasSuffix(path, "/interactions") { // trails are kept for leads and contacts
			ids.module, ids.account = "contacts", a.contact
		}
		target, foreign, err := ids.pathFor(path)
		if err != nil {
			t.Errorf("%s: %v", rt.pattern, err)
			continue
		}
		if q, ok := tenancyQueries[rt.pattern]; ok {
			target += q(a)
			foreign = false // a list: it answers, with none of org A's rows
		}
		body := tenancyBodies[rt.pattern]
		if body == "" && (method == "POST" || method == "PUT") {
			body = "{}"
		}
		resp := e.do(t, method, target, e.keyB, body, "X-User-ID", "user-b", "Idempotency-Key", "tenancy-"+rt.pattern)
		raw, _ := io.ReadAll(resp.Body)
		tried++
		byStatus[resp.StatusCode]++
		if foreign {
			onIDs++
		}
		if resp.StatusCode >= 500 {
			fiveXX++
		}
		switch {
		case resp.StatusCode >= 500:
			t.Errorf("%s %s with org B's key: %d %s", method, target, resp.StatusCode, raw)
		case strings.Contains(string(raw), tenancyMarker):
			t.Errorf("%s %s with org B's key shows org A's data: %d %s", method, target, resp.StatusCode, raw)
		case foreign && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden:
			t.Errorf("%s %s with org B's key on org A's ids: %d %s, want 404 or 403 (a 400 means tenancyBodies needs a valid body for it)",
				method, target, resp.StatusCode, raw)
		}
	}
	t.Logf("tenancy: %d routes tried with org B's key, one request each (%d on org A's ids, %d without ids; "+
		"%d public or admin-only routes skipped); answers by status %v: %d 404, %d 403, %d 5xx",
		tried, onIDs, tried-onIDs, skipped, byStatus, byStatus[http.StatusNotFound], byStatus[http.StatusForbidden],
		fiveXX)
	if tried < 40 {
		t.Fatalf("tried %d routes: the route table was not read", tried)
	}

	// Nothing of org A changed or went.
	for _, path := range []string{
		"/v1/modules/accounts/records/acc-t1", "/v1/modules/contacts/records/con-t1",
		fmt.Sprintf("/v1/segments/%d", a.segment), fmt.Sprintf("/v1/exports/%d", a.export),
		"/v1/enrichments/" + a.enrichment, "/v1/summaries/" + a.summary, "/v1/jobs/" + a.job,
	} {
		r := e.do(t, "GET", path, e.keyA, "")
		raw, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Errorf("org A's %s after org B's tries: %d %s", path, r.StatusCode, raw)
		}
	}
	got := decode[store.Segment](t, e.do(t, "GET", fmt.Sprintf("/v1/segments/%d", a.segment), e.keyA, ""))
	if !strings.Contains(got.Name, tenancyMarker) {
		t.Errorf("org A's segment renamed to %q", got.Name)
	}
}
