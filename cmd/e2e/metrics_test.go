package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/store"
)

// series is one scrape: each sample by `name{label="value",...}` (labels
// sorted); a histogram gives its _count and _sum.
type series map[string]float64

func scrape(t *testing.T, url, key string) series {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	out := series{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, "{", "_sum{", 1)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// scriptedGemini speaks the Gemini REST protocol: the first call is a 429
// with a retry delay, the second a valid answer with tokens counted, every
// later one a 400 (a request the model refuses for good).
func scriptedGemini(t *testing.T) *httptest.Server {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(429)
			_, _ = io.WriteString(w, `{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED",
				"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1s"}]}}`)
		case 2:
			resp, _ := json.Marshal(map[string]any{
				"candidates":    []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": `{"sections":[]}`}}}, "finishReason": "STOP"}},
				"usageMetadata": map[string]any{"promptTokenCount": 700, "candidatesTokenCount": 40, "totalTokenCount": 740},
				"modelVersion":  "gemini-metrics-001",
			})
			_, _ = w.Write(resp)
		default:
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":{"code":400,"message":"request refused","status":"INVALID_ARGUMENT"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// After a short run, an operator's scrape of the API's and the worker's
// /metrics shows each series the run should have moved: tasks enqueued,
// started, succeeded, retried and failed per type with their durations;
// queue sizes and the oldest pending task's age; model calls, tokens and
// errors per provider and model; quota consumed and refused; HTTP requests
// by route and status.
func TestMetricsMoveAfterARun(t *testing.T) {
	t.Parallel()
	model := scriptedGemini(t)
	workerAddr := stacktest.FreeAddr(t)
	s := newSystem(t, "CRMQ_LLM_PROVIDER=gemini", "GEMINI_API_KEY=test-key", "CRMQ_GEMINI_BASE_URL="+model.URL,
		"CRMQ_GEMINI_MODEL=gemini-configured", "CRMQ_METRICS_INTERVAL=1s", "CRMQ_SUMMARY_DAILY_LIMIT=1",
		"CRMQ_WORKER_METRICS_ADDR="+workerAddr)
	s.startAPI()
	key := s.newOrg("metrics")
	if r := s.call("PUT", "/v1/modules/leads/records", key, []map[string]any{
		{"external_id": "l-1", "last_name": "Lee", "lead_source": "Referral"},
		{"external_id": "l-2", "last_name": "Other", "lead_source": "Referral"},
	}, nil); r.StatusCode != 200 {
		t.Fatalf("ingest %d", r.StatusCode)
	}
	apiMetrics := s.apiURL + "/metrics"

	// Pings wait while no worker runs: the queue's size and its oldest
	// task's age show them.
	var pings []string
	for range 3 {
		pings = append(pings, s.enqueue(key, map[string]any{"type": "system:ping", "queue": "low"}).JobID)
	}
	waitFor(t, 20*time.Second, func() bool {
		waiting := scrape(t, apiMetrics, adminKey)
		return waiting[`crmq_queue_tasks{queue="low",state="pending"}`] >= 3 && waiting[`crmq_queue_latency_seconds{queue="low"}`] >= 1
	})

	s.start("worker")
	for _, id := range pings {
		s.waitJob(key, id, 30*time.Second, store.JobSucceeded)
	}
	// A summary the model first refuses with a 429 (retried), then answers.
	ok := s.enqueueAt("/v1/summaries", key, map[string]any{"module": "leads", "record_id": "l-1"}, "X-User-ID", "user-1")
	if j := s.waitJob(key, ok.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed); j.State != store.JobSucceeded {
		t.Fatalf("summary: %+v", j)
	}
	// A summary the model refuses for good.
	bad := s.enqueueAt("/v1/summaries", key, map[string]any{"module": "leads", "record_id": "l-2"}, "X-User-ID", "user-2")
	if j := s.waitJob(key, bad.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed); j.State != store.JobFailed {
		t.Fatalf("summary the model refuses: %+v", j)
	}
	// Over user-1's daily limit of 1.
	if r := s.call("POST", "/v1/summaries", key, map[string]any{"module": "leads", "record_id": "l-2"}, nil, "X-User-ID", "user-1"); r.StatusCode != 429 {
		t.Fatalf("summary over the daily limit: %d", r.StatusCode)
	}

	var api, worker series
	waitFor(t, 20*time.Second, func() bool {
		api = scrape(t, apiMetrics, adminKey)
		return api[`crmq_queue_tasks{queue="low",state="pending"}`] == 0
	})
	worker = scrape(t, "http://"+workerAddr+"/metrics", "")
	want := []struct {
		from series
		name string
		min  float64
	}{
		{api, `crmq_tasks_enqueued_total{type="system:ping"}`, 3},
		{api, `crmq_tasks_enqueued_total{type="summary:generate"}`, 2},
		{api, `crmq_quota_total{outcome="consumed",quota="summaries"}`, 2},
		{api, `crmq_quota_total{outcome="refused",quota="summaries"}`, 1},
		{api, `crmq_http_request_duration_seconds_count{route="POST /v1/jobs",status="Accepted"}`, 3},
		{api, `crmq_http_request_duration_seconds_count{route="POST /v1/summaries",status="Too Many Requests"}`, 1},
		{worker, `crmq_tasks_started_total{type="system:ping"}`, 3},
		{worker, `crmq_tasks_started_total{type="summary:generate"}`, 3},
		{worker, `crmq_tasks_total{outcome="succeeded",type="system:ping"}`, 3},
		{worker, `crmq_tasks_total{outcome="succeeded",type="summary:generate"}`, 1},
		{worker, `crmq_tasks_total{outcome="retrying",type="summary:generate"}`, 1},
		{worker, `crmq_tasks_total{outcome="failed",type="summary:generate"}`, 1},
		{worker, `crmq_task_duration_seconds_count{outcome="succeeded",type="system:ping"}`, 3},
		{worker, `crmq_task_duration_seconds_count{outcome="failed",type="summary:generate"}`, 1},
		{worker, `crmq_llm_calls_total{model="gemini-configured",outcome="rate_limited",provider="gemini"}`, 1},
		{worker, `crmq_llm_calls_total{model="gemini-metrics-001",outcome="ok",provider="gemini"}`, 1},
		{worker, `crmq_llm_calls_total{model="gemini-configured",outcome="permanent",provider="gemini"}`, 1},
		{worker, `crmq_llm_tokens_total{kind="prompt",model="gemini-metrics-001",provider="gemini"}`, 700},
		{worker, `crmq_llm_tokens_total{kind="output",model="gemini-metrics-001",provider="gemini"}`, 40},
	}
	for _, w := range want {
		if got, ok := w.from[w.name]; !ok || got < w.min {
			t.Errorf("%s = %v (present %v), want at least %v", w.name, got, ok, w.min)
		}
	}
	if t.Failed() {
		for _, sr := range []series{api, worker} {
			var names []string
			for k := range sr {
				if strings.HasPrefix(k, "crmq_") {
					names = append(names, fmt.Sprintf("%s %v", k, sr[k]))
				}
			}
			sort.Strings(names)
			t.Logf("scraped:\n%s", strings.Join(names, "\n"))
		}
	}
}
