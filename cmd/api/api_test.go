package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
	"github.com/crmq/crmq/workers/summary"
	"github.com/crmq/crmq/workers/system"
)

const testAdminKey = "admin-key-for-tests-0123456789"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type apiEnv struct {
	srv        *httptest.Server
	s          *server
	db         *store.DB
	opt        asynq.RedisConnOpt
	keyA, keyB string
	orgA       store.Org
	dbURL      string
}

func newAPI(t *testing.T) *apiEnv {
	t.Helper()
	db, dbURL := storetest.NewDB(t)
	q := storetest.NewQueue(t)
	opt, client, insp := q.Opt, q.Client, q.Inspector
	cfg, err := config.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminKey = testAdminKey
	cfg.MaxBodyBytes = 64 << 10
	cfg.SummaryLimit = 100
	s := &server{
		cfg: cfg, db: db, log: quiet, now: time.Now,
		enq:       &jobs.Enqueuer{DB: db, Client: client, Queue: insp, Log: quiet},
		pingRedis: client.Ping,
		metrics:   promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}),
	}
	s.abm = segment.Setup{DB: db, Enq: s.enq, Now: time.Now}
	e := &apiEnv{s: s, db: db, opt: opt, dbURL: dbURL}
	e.orgA, e.keyA = storetest.NewOrg(t, db, "org-a")
	_, e.keyB = storetest.NewOrg(t, db, "org-b")
	e.srv = httptest.NewServer(s.routes())
	t.Cleanup(e.srv.Close)
	return e
}

// rebuild serves the routes again after a test swapped a part of the server.
func (e *apiEnv) rebuild(t *testing.T) {
	t.Helper()
	e.srv = httptest.NewServer(e.s.routes())
	t.Cleanup(e.srv.Close)
}

// startWorker runs an in-process worker with the real middleware and ping handler.
func (e *apiEnv) startWorker(t *testing.T) {
	t.Helper()
	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency: 4, Queues: map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval: 10 * time.Millisecond, Logger: nopLogger{},
	})
	mux := asynq.NewServeMux()
	mux.Use(workers.JobState(e.db, quiet, nil, nil))
	mux.Handle(jobs.TypePing, workers.Handle(e.db, system.Ping{}.Run))
	sum := summary.Summarizer{Store: e.db, Provider: offline.New(), Budget: 24000, Now: time.Now}
	mux.Handle(jobs.TypeSummaryGenerate, workers.Handle(e.db, sum.Run))
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}

func (e *apiEnv) do(t *testing.T, method, path, key, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL.Path, err)
	}
	return v
}

// wantProblem checks the status and that the body is problem+json of the type.
func wantProblem(t *testing.T, resp *http.Response, status int, slug string) problem {
	t.Helper()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	p := decode[problem](t, resp)
	if p.Type != problemPrefix+slug || p.Status != status || p.Title == "" {
		t.Fatalf("problem %+v, want type %s", p, slug)
	}
	return p
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	if r := e.do(t, "GET", "/healthz", "", ""); r.StatusCode != 200 {
		t.Fatalf("healthz %d", r.StatusCode)
	}
	if r := e.do(t, "GET", "/readyz", "", ""); r.StatusCode != 200 {
		t.Fatalf("readyz %d", r.StatusCode)
	}
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	e.s.pingRedis = dead.Ping
	r := e.do(t, "GET", "/readyz", "", "")
	p := wantProblem(t, r, 503, "unavailable")
	if r.Header.Get("Retry-After") == "" || p.Checks["redis"] != "unreachable" || p.Checks["postgres"] != "ok" {
		t.Fatalf("readyz with Redis down: Retry-After %q, problem %+v", r.Header.Get("Retry-After"), p)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	wantProblem(t, e.do(t, "GET", "/v1/jobs/x", "", ""), 401, "unauthenticated")
	wantProblem(t, e.do(t, "GET", "/v1/jobs/x", "crmq_wrong", ""), 401, "unauthenticated")
	wantProblem(t, e.do(t, "POST", "/v1/admin/orgs", e.keyA, `{"name":"x"}`), 403, "forbidden")
	wantProblem(t, e.do(t, "GET", "/metrics", "", ""), 401, "unauthenticated")
	if r := e.do(t, "GET", "/metrics", testAdminKey, ""); r.StatusCode != 200 {
		t.Fatalf("metrics with admin key: %d", r.StatusCode)
	}
	// A browser sends Basic auth with the key as password.
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.SetBasicAuth("operator", testAdminKey)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("basic auth: %v %v", r, err)
	}
}

func TestCreateOrgReturnsWorkingKey(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	r := e.do(t, "POST", "/v1/admin/orgs", testAdminKey, `{"name":"new-org"}`)
	if r.StatusCode != 201 {
		t.Fatalf("create org: %d", r.StatusCode)
	}
	created := decode[createOrgResponse](t, r)
	if created.APIKey == "" || created.Org.Name != "new-org" {
		t.Fatalf("%+v", created)
	}
	if r := e.do(t, "POST", "/v1/jobs", created.APIKey, `{"type":"system:ping"}`); r.StatusCode != 202 {
		t.Fatalf("new key cannot enqueue: %d", r.StatusCode)
	}
	wantProblem(t, e.do(t, "POST", "/v1/admin/orgs", testAdminKey, `{"name":"new-org"}`), 409, "conflict")
}

func TestBadInputGetsProblems(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		slug                     string
	}{
		{"malformed JSON", "POST", "/v1/jobs", `{"type":`, 400, "malformed-json"},
		{"not JSON at all", "POST", "/v1/jobs", `type=ping`, 400, "malformed-json"},
		{"empty body", "POST", "/v1/jobs", ``, 400, "malformed-json"},
		{"two JSON values", "POST", "/v1/jobs", `{"type":"system:ping"}{}`, 400, "malformed-json"},
		{"unknown field", "POST", "/v1/jobs", `{"type":"system:ping","priority":1}`, 400, "validation"},
		{"wrong type", "POST", "/v1/jobs", `{"type":7}`, 400, "validation"},
		{"unknown job type", "POST", "/v1/jobs", `{"type":"summary:everything"}`, 400, "validation"},
		{"unknown queue", "POST", "/v1/jobs", `{"type":"system:ping","queue":"urgent"}`, 400, "validation"},
		{"queue on a fixed-queue task", "POST", "/v1/jobs", `{"type":"orphans:recompute","queue":"critical"}`, 400, "validation"},
		{"body too large", "POST", "/v1/jobs", `{"type":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too-large"},
		{"unknown route", "GET", "/v1/nothing-here", ``, 404, "not-found"},
		{"wrong method", "DELETE", "/v1/jobs", ``, 405, "method-not-allowed"},
		{"unknown job", "GET", "/v1/jobs/does-not-exist", ``, 404, "not-found"},
	}
	for _, c := range cases {
		t.Run(c.name+" is answered "+http.StatusText(c.status), func(t *testing.T) {
			p := wantProblem(t, e.do(t, c.method, c.path, e.keyA, c.body), c.status, c.slug)
			if c.slug == "validation" && len(p.Errors) == 0 {
				t.Fatalf("validation problem without per-field errors: %+v", p)
			}
		})
	}
	var n int
	if err := e.db.GetContext(context.Background(), &n, `SELECT count(*) FROM jobs`); err != nil || n != 0 {
		t.Fatalf("bad requests left %d job rows (%v)", n, err)
	}
}

func TestPingRoundTripAndOtherOrgIsolation(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.startWorker(t)
	r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"default"}`, "X-User-ID", "user-1")
	if r.StatusCode != 202 {
		t.Fatalf("enqueue: %d", r.StatusCode)
	}
	acc := decode[accepted](t, r)
	if r.Header.Get("Location") != acc.StatusURL || acc.StatusURL != "/v1/jobs/"+acc.JobID {
		t.Fatalf("location %q, body %+v", r.Header.Get("Location"), acc)
	}
	var job store.Job
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		job = decode[store.Job](t, e.do(t, "GET", acc.StatusURL, e.keyA, ""))
		if store.JobFinal(job.State) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if job.State != store.JobSucceeded || job.Result == nil || job.UserID == nil || *job.UserID != "user-1" {
		t.Fatalf("job %+v", job)
	}
	var res jobs.PingResult
	if err := json.Unmarshal(*job.Result, &res); err != nil || res.Host == "" || res.Queue != "default" {
		t.Fatalf("result %s", *job.Result)
	}
	// Another org's key cannot see it: 404, not 403, so ids do not leak.
	wantProblem(t, e.do(t, "GET", acc.StatusURL, e.keyB, ""), 404, "not-found")
	wantProblem(t, e.do(t, "GET", acc.EventsURL, e.keyB, ""), 404, "not-found")
}

func TestIdempotencyKeyOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	first := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping"}`, "Idempotency-Key", "abc"))
	r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping"}`, "Idempotency-Key", "abc")
	again := decode[accepted](t, r)
	if again.JobID != first.JobID || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay gave %s (replayed=%q), first %s", again.JobID, r.Header.Get("Idempotent-Replayed"), first.JobID)
	}
	wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"orphans:recompute"}`, "Idempotency-Key", "abc"), 422, "idempotency-mismatch")
	// Keys are per org.
	other := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyB, `{"type":"system:ping"}`, "Idempotency-Key", "abc"))
	if other.JobID == first.JobID {
		t.Fatal("another org's request with the same key got the first org's job")
	}
}

func TestRedisDownIs503AndNothingIsKept(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	dead := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	e.s.enq = &jobs.Enqueuer{DB: e.db, Client: dead, Log: quiet}
	r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping"}`)
	wantProblem(t, r, 503, "unavailable")
	var n int
	if err := e.db.GetContext(context.Background(), &n, `SELECT count(*) FROM jobs`); err != nil || n != 0 {
		t.Fatalf("job rows after 503: %d (%v)", n, err)
	}
}

func TestEventsStreamUntilFinal(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	acc := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"low"}`))
	req, _ := http.NewRequest("GET", e.srv.URL+acc.EventsURL, nil)
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	e.startWorker(t) // start after the stream opened so it sees queued first
	var states []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			var j store.Job
			if err := json.Unmarshal(data, &j); err != nil {
				t.Fatal(err)
			}
			states = append(states, j.State)
		}
	}
	if len(states) < 2 || states[0] != store.JobQueued || states[len(states)-1] != store.JobSucceeded {
		t.Fatalf("event states %v: want queued first and succeeded last, then the stream ends", states)
	}
}

func TestMonitoringShowsTheThreeQueuesToAdminsOnly(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: e.opt, ReadOnly: true})
	t.Cleanup(func() { mon.Close() })
	e.s.monitoring = mon
	e.rebuild(t)
	for _, q := range []string{"critical", "default", "low"} {
		e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"`+q+`"}`)
	}

	r := e.do(t, "GET", "/monitoring/", "", "")
	if r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("dashboard without a key: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	wantProblem(t, e.do(t, "GET", "/monitoring/", e.keyA, ""), 403, "forbidden")
	page := e.do(t, "GET", "/monitoring/", testAdminKey, "")
	body, _ := io.ReadAll(page.Body)
	if page.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("dashboard page: %d", page.StatusCode)
	}
	var queues struct {
		Queues []struct {
			Queue string `json:"queue"`
			Size  int    `json:"size"`
		} `json:"queues"`
	}
	qr := e.do(t, "GET", "/monitoring/api/queues", testAdminKey, "")
	if err := json.NewDecoder(qr.Body).Decode(&queues); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range queues.Queues {
		names = append(names, q.Queue)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"critical", "default", "low"}) {
		t.Fatalf("dashboard queues %v", names)
	}
	// Read-only: the dashboard refuses to change anything.
	if r := e.do(t, "POST", "/monitoring/api/queues/low:pause", testAdminKey, ""); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("pause through a read-only dashboard: %d", r.StatusCode)
	}
}

func TestMetricsExposeQueueSizes(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	insp := asynq.NewInspector(e.opt)
	t.Cleanup(func() { insp.Close() })
	e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"default"}`)
	reg := prometheus.NewRegistry()
	qc := newQueueCollector(insp, quiet)
	qc.refresh()
	reg.MustRegister(qc)
	e.s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	e.rebuild(t)
	r := e.do(t, "GET", "/metrics", testAdminKey, "")
	b, _ := io.ReadAll(r.Body)
	for _, want := range []string{
		`crmq_queue_tasks{queue="default",state="pending"} 1`,
		`crmq_queue_tasks{queue="critical",state="pending"} 0`,
		`crmq_queue_latency_seconds{queue="low"}`,
		`crmq_queue_stats_up 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
