package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

// ingest PUTs rows and fails the test on any row error.
func (e *apiEnv) ingest(t *testing.T, module string, rows ...string) {
	t.Helper()
	r := e.do(t, "PUT", "/v1/modules/"+module+"/records", e.keyA, "["+strings.Join(rows, ",")+"]")
	res := decode[store.UpsertResult](t, r)
	if r.StatusCode != 200 || res.Failed != 0 {
		t.Fatalf("ingest %s: %d %+v", module, r.StatusCode, res)
	}
}

// summarize posts a summary request as user and returns the answer.
func (e *apiEnv) summarize(t *testing.T, user, module, id string, regenerate bool) (*http.Response, summaryAccepted) {
	t.Helper()
	body := fmt.Sprintf(`{"module":%q,"record_id":%q,"regenerate":%v}`, module, id, regenerate)
	r := e.do(t, "POST", "/v1/summaries", e.keyA, body, "X-User-ID", user)
	var acc summaryAccepted
	if r.StatusCode == http.StatusAccepted {
		acc = decode[summaryAccepted](t, r)
	}
	return r, acc
}

// finished waits for the job and returns its summary.
func (e *apiEnv) finished(t *testing.T, jobID string) (store.Job, store.Summary) {
	t.Helper()
	var job store.Job
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		job = decode[store.Job](t, e.do(t, "GET", "/v1/jobs/"+jobID, e.keyA, ""))
		if store.JobFinal(job.State) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if job.State != store.JobSucceeded {
		t.Fatalf("summary job %+v error %v", job, deref(job.Error))
	}
	var res jobs.SummaryResult
	if err := json.Unmarshal(*job.Result, &res); err != nil {
		t.Fatal(err)
	}
	return job, decode[store.Summary](t, e.do(t, "GET", res.URL, e.keyA, ""))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type sectionJSON struct {
	Key     string       `json:"key"`
	Title   string       `json:"title"`
	Bullets []llm.Bullet `json:"bullets"`
}

func sectionsOf(t *testing.T, s store.Summary) []sectionJSON {
	t.Helper()
	var out []sectionJSON
	if err := json.Unmarshal(s.Sections, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const accountFixture = `{"external_id":"acc-1","name":"Acme Freight","industry":"Logistics","annual_revenue":1200000}`

func seedAccount(t *testing.T, e *apiEnv) {
	t.Helper()
	e.ingest(t, "accounts", accountFixture)
	e.ingest(t, "contacts", `{"external_id":"c-1","first_name":"Ada","last_name":"Stone","title":"CFO","account":"acc-1"}`)
	e.ingest(t, "objectives", `{"external_id":"o-1","name":"Cut costs","account":"acc-1"}`)
	e.ingest(t, "kpis",
		`{"external_id":"k-1","name":"On-time rate","status":"On Track","target":100,"actual":80,"objective":"o-1","account":"acc-1"}`,
		`{"external_id":"k-2","name":"Claims","status":"Blocked","target":50,"actual":10,"objective":"o-1","account":"acc-1"}`)
	e.ingest(t, "activities",
		`{"external_id":"a-1","medium":"email","direction":"signal","kind":"email","occurred_at":"2026-10-01T10:00:00Z","notes":"We are interested in adding seats for the new region","contact":"c-1","account":"acc-1"}`,
		`{"external_id":"a-2","medium":"call","direction":"follow_up","kind":"call","status":"Attended","user_id":"user-1","occurred_at":"2026-10-02T10:00:00Z","notes":"Customer unhappy with claim handling","contact":"c-1","account":"acc-1"}`)
}

// Every bullet's sources are records of the summarized record's graph.
func assertSourcesInGraph(t *testing.T, e *apiEnv, s store.Summary) {
	t.Helper()
	g, err := e.db.SummaryGraph(context.Background(), e.orgA.ID, s.Module, s.RecordExternalID)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{summary.Ref(g.Subject.Module, g.Subject.ID): true}
	for _, r := range append(append([]store.GraphRecord{}, g.Related...), g.Activities...) {
		refs[summary.Ref(r.Module, r.ID)] = true
	}
	for _, sec := range sectionsOf(t, s) {
		for _, b := range sec.Bullets {
			for _, src := range b.Sources {
				if !refs[src] {
					t.Errorf("section %s cites %s, which is not in the record's graph", sec.Key, src)
				}
			}
		}
	}
}

func TestSummaryConsumptionAndReuse(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.startWorker(t)
	seedAccount(t, e)

	r, first := e.summarize(t, "user-a", "accounts", "acc-1", false)
	if r.StatusCode != 202 || !first.Counted || first.Usage.Used != 1 || first.Usage.Remaining != 99 {
		t.Fatalf("first request: %d %+v", r.StatusCode, first)
	}
	job, s1 := e.finished(t, first.JobID)
	if s1.ReusedFrom != nil || s1.Provider != "offline" || s1.TotalTokens == 0 || s1.DataAsOf.IsZero() {
		t.Fatalf("generated summary %+v", s1)
	}
	assertSourcesInGraph(t, e, s1)
	if job.Result == nil || !strings.Contains(string(*job.Result), `"total_tokens"`) {
		t.Fatalf("job result lacks token usage: %s", *job.Result)
	}

	t.Run("same user, same record, no change: counted once, stored summary returned", func(t *testing.T) {
		_, again := e.summarize(t, "user-a", "accounts", "acc-1", false)
		if again.Counted || again.Usage.Used != 1 {
			t.Fatalf("%+v", again)
		}
		_, s := e.finished(t, again.JobID)
		if s.ReusedFrom == nil || *s.ReusedFrom != s1.ID || s.TotalTokens != 0 {
			t.Fatalf("want a copy of %s made without the model, got %+v", s1.ID, s)
		}
		_, regen := e.summarize(t, "user-a", "accounts", "acc-1", true)
		if regen.Counted {
			t.Fatal("regenerate without a data change must not count again")
		}
		if _, s := e.finished(t, regen.JobID); s.ReusedFrom == nil {
			t.Fatal("regenerate without a data change must return the stored summary")
		}
	})
	t.Run("another user, same record: counted for that user, content reused", func(t *testing.T) {
		_, other := e.summarize(t, "user-b", "accounts", "acc-1", false)
		if !other.Counted || other.Usage.Used != 1 {
			t.Fatalf("%+v", other)
		}
		if _, s := e.finished(t, other.JobID); s.ReusedFrom == nil || s.UserID != "user-b" {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("same user, changed data: counted again and generated anew", func(t *testing.T) {
		e.ingest(t, "accounts", `{"external_id":"acc-1","name":"Acme Freight","industry":"Logistics","annual_revenue":1500000}`)
		_, changed := e.summarize(t, "user-a", "accounts", "acc-1", false)
		if !changed.Counted || changed.Usage.Used != 2 {
			t.Fatalf("%+v", changed)
		}
		_, s := e.finished(t, changed.JobID)
		if s.ReusedFrom != nil || s.DataHash == s1.DataHash {
			t.Fatalf("want a new generation over the new data, got %+v", s)
		}
		latest := decode[store.Summary](t, e.do(t, "GET", "/v1/modules/accounts/records/acc-1/summary", e.keyA, ""))
		if latest.ID != s.ID {
			t.Fatalf("latest %s, want %s", latest.ID, s.ID)
		}
	})
	usage := decode[store.SummaryUsage](t, e.do(t, "GET", "/v1/usage/summaries", e.keyA, "", "X-User-ID", "user-a"))
	if usage.Used != 2 || usage.Remaining != 98 || usage.Limit != 100 {
		t.Fatalf("usage %+v", usage)
	}

	t.Run("feedback, save and expansion", func(t *testing.T) {
		id := s1.ID
		if r := e.do(t, "POST", "/v1/summaries/"+id+"/feedback", e.keyA, `{"rating":"negative","reasons":["factual_error"],"areas":["accuracy"],"comment":"revenue is old"}`, "X-User-ID", "user-a"); r.StatusCode != 204 {
			t.Fatalf("feedback %d", r.StatusCode)
		}
		p := wantProblem(t, e.do(t, "POST", "/v1/summaries/"+id+"/feedback", e.keyA, `{"rating":"meh","reasons":["boring"]}`, "X-User-ID", "user-a"), 400, "validation")
		if p.Errors["rating"] == "" {
			t.Fatalf("%+v", p)
		}
		stats := decode[map[string]any](t, e.do(t, "GET", "/v1/summaries/feedback/stats", e.keyA, ""))
		if !strings.Contains(fmt.Sprint(stats), "factual_error:1") {
			t.Fatalf("stats %v", stats)
		}
		if s := decode[store.Summary](t, e.do(t, "POST", "/v1/summaries/"+id+"/save", e.keyA, "")); !s.Saved {
			t.Fatal("not saved")
		}
		saved := decode[map[string][]store.Summary](t, e.do(t, "GET", "/v1/modules/accounts/records/acc-1/summaries/saved", e.keyA, ""))
		if len(saved["summaries"]) != 1 || saved["summaries"][0].ID != id {
			t.Fatalf("saved %+v", saved)
		}
		r := e.do(t, "POST", "/v1/summaries/"+id+"/expansion-opportunities", e.keyA, "")
		deal := decode[map[string]any](t, r)
		if r.StatusCode != 201 || deal["deal_type"] != "expansion" || deal["account"] != "acc-1" || !strings.Contains(fmt.Sprint(deal["description"]), "adding seats") {
			t.Fatalf("expansion %d %v", r.StatusCode, deal)
		}
		again := e.do(t, "POST", "/v1/summaries/"+id+"/expansion-opportunities", e.keyA, "")
		if d := decode[map[string]any](t, again); again.StatusCode != 200 || d["id"] != deal["id"] {
			t.Fatalf("second call made another deal: %d %v", again.StatusCode, d["id"])
		}
		wantProblem(t, e.do(t, "GET", "/v1/summaries/"+id, e.keyB, ""), 404, "not-found")
	})
}

func TestSummaryRefusals(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "accounts", `{"external_id":"lonely","name":"No Friends Ltd"}`)
	e.ingest(t, "leads", `{"external_id":"l-draft","last_name":"D","state":"draft"}`, `{"external_id":"l-inc","last_name":"I","state":"incomplete"}`)
	cases := []struct {
		name, body, user string
		status           int
		slug             string
	}{
		{"a draft record", `{"module":"leads","record_id":"l-draft"}`, "u", 409, "record-not-summarizable"},
		{"an incomplete record", `{"module":"leads","record_id":"l-inc"}`, "u", 409, "record-not-summarizable"},
		{"an account with no associated record", `{"module":"accounts","record_id":"lonely"}`, "u", 422, "no-associated-records"},
		{"an unknown record", `{"module":"leads","record_id":"nope"}`, "u", 404, "not-found"},
		{"no acting user", `{"module":"leads","record_id":"l-draft"}`, "", 400, "validation"},
		{"an unknown module", `{"module":"unicorns","record_id":"x"}`, "u", 400, "validation"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			hdr := []string{}
			if c.user != "" {
				hdr = []string{"X-User-ID", c.user}
			}
			wantProblem(t, e.do(t, "POST", "/v1/summaries", e.keyA, c.body, hdr...), c.status, c.slug)
		})
	}
	if u := decode[store.SummaryUsage](t, e.do(t, "GET", "/v1/usage/summaries", e.keyA, "", "X-User-ID", "u")); u.Used != 0 {
		t.Fatalf("refused requests were counted: %+v", u)
	}
}

// 200 parallel requests for 200 records: exactly 100 accepted, 100 refused
// with 429 and Retry-After.
func TestSummaryDailyLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	rows := make([]string, 200)
	for i := range rows {
		rows[i] = fmt.Sprintf(`{"external_id":"l-%03d","last_name":"L%d"}`, i, i)
	}
	e.ingest(t, "leads", rows...)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
		retry = 0
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"module":"leads","record_id":"l-%03d"}`, i)
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/summaries", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.keyA)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-User-ID", "busy-user")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "" {
				retry++
			}
		}()
	}
	wg.Wait()
	if codes[202] != 100 || codes[429] != 100 || retry != 100 {
		t.Fatalf("status counts %v (429s with Retry-After: %d), want 100 accepted and 100 refused", codes, retry)
	}
	u := decode[store.SummaryUsage](t, e.do(t, "GET", "/v1/usage/summaries", e.keyA, "", "X-User-ID", "busy-user"))
	if u.Used != 100 || u.Remaining != 0 {
		t.Fatalf("usage %+v", u)
	}
	var jobs int
	if err := e.db.GetContext(context.Background(), &jobs, `SELECT count(*) FROM jobs WHERE type = 'summary:generate'`); err != nil || jobs != 100 {
		t.Fatalf("jobs %d (%v)", jobs, err)
	}
}

func TestHiddenSectionsAndInsufficientData(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.startWorker(t)
	seedAccount(t, e)
	// Hide every section that feeds the Executive Summary.
	hide := `{"sections":{"account_highlights":false,"kpi_progress":false,"relational_health":false,"risks_and_blockers":false,"strategic_value_achievements":false}}`
	path := fmt.Sprintf("/v1/admin/orgs/%d/summary-sections", e.orgA.ID)
	if r := e.do(t, "PUT", path, testAdminKey, hide); r.StatusCode != 200 {
		t.Fatalf("set visibility %d", r.StatusCode)
	}
	wantProblem(t, e.do(t, "PUT", path, testAdminKey, `{"sections":{"gossip":false}}`), 400, "validation")
	wantProblem(t, e.do(t, "PUT", path, e.keyA, hide), 403, "forbidden")

	_, acc := e.summarize(t, "u", "accounts", "acc-1", false)
	_, s := e.finished(t, acc.JobID)
	got := map[string]sectionJSON{}
	for _, sec := range sectionsOf(t, s) {
		got[sec.Key] = sec
	}
	for _, hidden := range []string{llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers, llm.StrategicValue} {
		if _, ok := got[hidden]; ok {
			t.Errorf("hidden section %s was generated", hidden)
		}
	}
	exec, ok := got[llm.ExecutiveSummary]
	if !ok || len(exec.Bullets) != 1 || exec.Bullets[0].Text != summary.InsufficientData {
		t.Fatalf("executive summary %+v, want the insufficient-data message", exec)
	}
	if next, ok := got[llm.StrategicNextSteps]; !ok || next.Bullets[0].Text == summary.InsufficientData {
		t.Fatalf("strategic next steps still has visible feeders and must be generated: %+v", next)
	}
}

// A summary request that Redis refuses is 503 and costs the user nothing.
func TestRefusedSummaryGivesItsCountBack(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "leads", `{"external_id":"l-1","last_name":"L"}`)
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	e.s.enq = &jobs.Enqueuer{DB: e.db, Client: dead, Log: quiet}
	r, _ := e.summarize(t, "u", "leads", "l-1", false)
	wantProblem(t, r, 503, "unavailable")
	if u := decode[store.SummaryUsage](t, e.do(t, "GET", "/v1/usage/summaries", e.keyA, "", "X-User-ID", "u")); u.Used != 0 {
		t.Fatalf("a refused request was counted: %+v", u)
	}
}

// A retried POST /v1/summaries with the same Idempotency-Key gets the first
// job back (not 422), is not counted again, and a different record under
// the same key is still a mismatch.
func TestSummaryIdempotencyKeyReplaysTheFirstJob(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "accounts", `{"external_id":"acc-1","name":"Acme Freight"}`)
	e.ingest(t, "contacts", `{"external_id":"c-1","first_name":"Ada","account":"acc-1"}`)
	body := `{"module":"accounts","record_id":"acc-1"}`
	r1 := e.do(t, "POST", "/v1/summaries", e.keyA, body, "X-User-ID", "user-1", "Idempotency-Key", "sum-1")
	first := decode[summaryAccepted](t, r1)
	if r1.StatusCode != 202 || !first.Counted || first.Usage.Used != 1 {
		t.Fatalf("first: %d %+v", r1.StatusCode, first)
	}
	r2 := e.do(t, "POST", "/v1/summaries", e.keyA, body, "X-User-ID", "user-1", "Idempotency-Key", "sum-1")
	again := decode[summaryAccepted](t, r2)
	if r2.StatusCode != 202 || again.JobID != first.JobID || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %+v (replayed %q), want the first job %s", r2.StatusCode, again, r2.Header.Get("Idempotent-Replayed"), first.JobID)
	}
	if !again.Counted || again.Usage.Used != 1 {
		t.Fatalf("retry counted again or lost the first count: %+v", again)
	}
	other := `{"module":"contacts","record_id":"c-1"}`
	wantProblem(t, e.do(t, "POST", "/v1/summaries", e.keyA, other, "X-User-ID", "user-1", "Idempotency-Key", "sum-1"), 422, "idempotency-mismatch")
}

// An account summary whose Suggested Expansion Opportunities section
// suggests nothing (no note, case or KPI comment names an expansion
// signal) gives no expansion deal: 409, and no deal is created.
func TestExpansionWithoutASuggestionIsRefused(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.startWorker(t)
	e.ingest(t, "accounts", `{"external_id":"acc-1","name":"Quiet Freight"}`)
	e.ingest(t, "contacts", `{"external_id":"c-1","first_name":"Ada","account":"acc-1"}`)
	_, acc := e.summarize(t, "user-1", "accounts", "acc-1", false)
	_, sum := e.finished(t, acc.JobID)
	wantProblem(t, e.do(t, "POST", "/v1/summaries/"+sum.ID+"/expansion-opportunities", e.keyA, ""), 409, "no-expansion-suggestion")
	deals := decode[map[string]any](t, e.do(t, "GET", "/v1/modules/deals/records", e.keyA, ""))
	if n := len(deals["records"].([]any)); n != 0 {
		t.Fatalf("%d deals after a refused expansion, want none: %v", n, deals)
	}
}
