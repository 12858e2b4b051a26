package enrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var today = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	*fixtures
	db  *store.DB
	org int64
	enq *jobs.Enqueuer
	en  enrich.Enricher
	q   storetest.Queue
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, _ := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	org, _ := storetest.NewOrg(t, db, "enrich")
	f := newFixtures(t)
	return &env{fixtures: f, db: db, org: org.ID, q: q, enq: &jobs.Enqueuer{DB: db, Client: q.Client, Log: quiet},
		en: enrich.Enricher{Store: db, Crawler: f.crawler(t), Now: func() time.Time { return today }, Log: quiet}}
}

func (e *env) ingest(t *testing.T, module string, rows ...string) {
	t.Helper()
	raw := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		raw[i] = json.RawMessage(r)
	}
	if res, err := e.db.UpsertRecords(context.Background(), e.org, module, raw); err != nil || res.Failed != 0 {
		t.Fatalf("%s: %+v %v", module, res, err)
	}
}

func (e *env) account(t *testing.T, ext string) store.EnrichTarget {
	t.Helper()
	ids, err := e.db.EnrichAccountIDs(context.Background(), e.org, []string{ext})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.db.EnrichTarget(context.Background(), e.org, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve runs a worker with the real middleware and the two handlers.
func (e *env) serve(t *testing.T) {
	t.Helper()
	srv := asynq.NewServer(e.q.Opt, asynq.Config{
		Concurrency: 4, Queues: map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 50 * time.Millisecond },
		IsFailure:      workers.IsFailure, Logger: asynqQuiet{},
	})
	mux, err := workers.NewMux([]workers.Registration{
		workers.Register(jobs.EnrichRecordSpec, e.db, enrich.Record{Enricher: e.en, Queue: e.q.Client}),
		workers.Register(jobs.EnrichBulkSpec, e.db, enrich.Bulk{Enricher: e.en, Queue: e.q.Client, Concurrency: 6}),
	}, workers.JobState(e.db, quiet, workers.NewMetrics(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

type asynqQuiet struct{}

func (asynqQuiet) Debug(...any) {}
func (asynqQuiet) Info(...any)  {}
func (asynqQuiet) Warn(...any)  {}
func (asynqQuiet) Error(...any) {}
func (asynqQuiet) Fatal(...any) {}

// waitFinal polls the job row until it is final, calling seen with each
// progress read.
func (e *env) waitFinal(t *testing.T, id string, seen func(int)) store.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.db.Job(context.Background(), e.org, id)
		if err != nil {
			t.Fatal(err)
		}
		if seen != nil {
			seen(j.Progress)
		}
		if store.JobFinal(j.State) {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s never reached a final state", id)
	return store.Job{}
}

func (e *env) runRecord(t *testing.T, ext string) (jobs.EnrichRecordResult, error) {
	t.Helper()
	a := e.account(t, ext)
	return enrich.Record{Enricher: e.en}.Run(context.Background(), workers.Job[jobs.EnrichRecordPayload]{
		ID: "job-" + ext, Payload: jobs.EnrichRecordPayload{OrgID: e.org, AccountID: a.ID, Account: ext}})
}

func TestASingleEnrichmentProposesAndApplyWritesOnlyTheAcceptedFields(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fields := []string{"description", "industry", "founded_year", "phone", "city"}
	if _, err := e.db.PutEnrichmentSettings(ctx, e.org, fields, today); err != nil {
		t.Fatal(err)
	}
	e.ingest(t, "accounts", fmt.Sprintf(`{"external_id": "acc-1", "name": "Northwind", "website": %q, "industry": "Food", "city": "Bremen",
		"attributes": {"phone": "+49 421 000"}}`, e.urls["northwind"]))
	before := e.account(t, "acc-1")

	res, err := e.runRecord(t, "acc-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "succeeded" || strings.Join(res.Found, ",") != strings.Join(fields, ",") {
		t.Fatalf("result %+v", res)
	}
	got, err := e.db.GetEnrichment(ctx, e.org, res.EnrichmentID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]any{ // current, proposed
		"description":  {nil, "Importer and wholesale distributor of specialty foods for independent retailers."},
		"industry":     {"Food", "Wholesale Trade"},
		"founded_year": {nil, float64(1994)},
		"phone":        {"+49 421 000", "+49 40 555 0100"},
		"city":         {"Bremen", "Hamburg"},
	}
	for _, p := range got.Proposals {
		w := want[p.Field]
		if p.Current != w[0] || p.Proposed != w[1] || !p.Found || p.Source != "json-ld" || !strings.HasPrefix(p.URL, e.urls["northwind"]) || p.Confidence <= 0 {
			t.Errorf("%s: %+v, want current %v proposed %v from json-ld", p.Field, p, w[0], w[1])
		}
	}
	if len(got.Proposals) != 5 {
		t.Fatalf("%d proposals", len(got.Proposals))
	}
	if after := e.account(t, "acc-1"); fmt.Sprint(after.Values) != fmt.Sprint(before.Values) {
		t.Fatalf("the proposal wrote to the account: %v -> %v", before.Values, after.Values)
	}

	changes, err := e.db.ApplyEnrichment(ctx, e.org, res.EnrichmentID, []string{"founded_year", "phone"}, "user-1", today)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(changes) != fmt.Sprint([]store.EnrichChange{{Field: "founded_year", Old: nil, New: int64(1994)}, {Field: "phone", Old: "+49 421 000", New: "+49 40 555 0100"}}) {
		t.Fatalf("changes %+v", changes)
	}
	after := e.account(t, "acc-1")
	wantAfter := map[string]any{"name": "Northwind", "website": e.urls["northwind"], "industry": "Food", "city": "Bremen",
		"phone": "+49 40 555 0100", "founded_year": int64(1994)}
	if fmt.Sprint(after.Values) != fmt.Sprint(wantAfter) {
		t.Fatalf("account after apply %v, want %v", after.Values, wantAfter)
	}
	h, err := e.db.EnrichmentHistory(ctx, e.org, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != 1 || h.Entries[0].Kind != "single" || *h.Entries[0].Account != "acc-1" || len(h.Entries[0].Changes) != 2 ||
		h.Entries[0].Changes[1].Old != "+49 421 000" || h.Entries[0].Changes[1].New != "+49 40 555 0100" || *h.Entries[0].UserID != "user-1" {
		t.Fatalf("history %+v", h.Entries)
	}

	// A field the enrichment did not find, or that is not a field, is refused.
	for _, bad := range [][]string{{"linkedin"}, {"bogus"}, {}} {
		if _, err := e.db.ApplyEnrichment(ctx, e.org, res.EnrichmentID, bad, "", today); err == nil {
			t.Errorf("apply %v accepted", bad)
		}
	}
}

func TestASingleEnrichmentThatCannotReadTheSiteFailsWithItsReason(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, "accounts",
		fmt.Sprintf(`{"external_id": "closed", "name": "Closed", "website": %q}`, e.urls["closed"]),
		fmt.Sprintf(`{"external_id": "meta", "name": "Meta", "website": %q}`, e.urls["metadata"]),
		`{"external_id": "none", "name": "Nowhere"}`)
	for ext, reason := range map[string]string{"closed": "robots_disallowed", "meta": "refused_address", "none": "no_website"} {
		res, err := e.runRecord(t, ext)
		if err == nil || !strings.HasPrefix(err.Error(), reason) || !isSkipRetry(err) {
			t.Errorf("%s: err %v, want a permanent %s", ext, err, reason)
		}
		got, gerr := e.db.GetEnrichment(context.Background(), e.org, res.EnrichmentID)
		if gerr != nil || got.State != "failed" || got.Reason == nil || *got.Reason != reason {
			t.Errorf("%s: enrichment %+v %v", ext, got, gerr)
		}
	}
}

func TestAMissingWebsiteIsProposedFromTheContactsEmailDomain(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, "accounts", `{"external_id": "acc-9", "name": "Blue Fern"}`)
	e.ingest(t, "contacts",
		`{"external_id": "c1", "account": "acc-9", "email": "a@gmail.com"}`,
		`{"external_id": "c2", "account": "acc-9", "email": "b@gmail.com"}`,
		`{"external_id": "c3", "account": "acc-9", "email": "c@gmail.com"}`,
		`{"external_id": "c4", "account": "acc-9", "email": "d@bluefern.test"}`,
		`{"external_id": "c5", "account": "acc-9", "email": "E@BlueFern.test"}`,
		`{"external_id": "c6", "account": "acc-9", "email": "f@other.test"}`)
	website := func(id string) (store.Enrichment, *store.EnrichProposal) {
		t.Helper()
		got, err := e.db.GetEnrichment(context.Background(), e.org, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range got.Proposals {
			if p.Field == "website" {
				return got, &got.Proposals[i]
			}
		}
		t.Fatalf("no website proposal in %+v", got.Proposals)
		return got, nil
	}
	const counted = "2 of the account's 6 contacts with an email address use @bluefern.test"

	// https://bluefern.test/ does not answer (nothing listens on its
	// port); http://bluefern.test/ does, and is what is proposed.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := fmt.Sprint(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	u, _ := url.Parse(e.urls["bluefern"])
	e.en.ContactPorts = map[string]string{"https": closedPort, "http": u.Port()}
	res, err := e.runRecord(t, "acc-9")
	if err != nil || res.State != "succeeded" {
		t.Fatalf("%+v %v", res, err)
	}
	httpSite := "http://bluefern.test:" + u.Port() + "/"
	got, web := website(res.EnrichmentID)
	if got.Website == nil || *got.Website != httpSite || *got.WebsiteSource != "contacts" {
		t.Fatalf("website %v from %v", got.Website, got.WebsiteSource)
	}
	if web.Proposed != httpSite || web.Source != "contacts" ||
		web.Evidence != counted+"; https://bluefern.test:"+closedPort+"/ did not answer (unreachable), "+httpSite+" answered" {
		t.Fatalf("website proposal %+v", web)
	}

	// Neither answers: the enrichment fails unreachable, the https
	// address stays proposed with what was tried.
	e.en.ContactPorts = map[string]string{"https": closedPort, "http": closedPort}
	res, err = e.runRecord(t, "acc-9")
	if err == nil || res.State != "failed" {
		t.Fatalf("%+v %v", res, err)
	}
	httpsSite := "https://bluefern.test:" + closedPort + "/"
	got, web = website(res.EnrichmentID)
	if got.Website == nil || *got.Website != httpsSite || *got.Reason != "unreachable" || web.Proposed != httpsSite ||
		web.Evidence != counted+"; "+httpsSite+" did not answer (unreachable), http://bluefern.test:"+closedPort+"/ did not answer (unreachable)" {
		t.Fatalf("enrichment %+v, website proposal %+v", got, web)
	}
}

func TestADeletedAccountFailsItsEnrichmentAtOnce(t *testing.T) {
	e := newEnv(t)
	_, err := enrich.Record{Enricher: e.en}.Run(context.Background(), workers.Job[jobs.EnrichRecordPayload]{
		ID: "job-gone", Payload: jobs.EnrichRecordPayload{OrgID: e.org, AccountID: 987654, Account: "gone"}})
	if err == nil || !isSkipRetry(err) || !strings.Contains(err.Error(), "gone was deleted") {
		t.Fatalf("%v", err)
	}
}
