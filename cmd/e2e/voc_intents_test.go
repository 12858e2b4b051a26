package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// With CRMQ_LLM_PROVIDER=gemini a worker gives VoC texts the model's
// intent when the org chose intent_classifier llm: the refresh that
// activation starts sends the texts (at most CRMQ_VOC_LLM_TEXTS, the rest
// deferred) to a server speaking the Gemini REST protocol, and the
// account's explanation counts its texts by who classified them.
func TestVoCIntentsThroughGeminiWorker(t *testing.T) {
	t.Parallel()
	var texts atomic.Int32
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct {
			Contents []struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"contents"`
		}
		var items []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		}
		if json.Unmarshal(b, &req) == nil && len(req.Contents) > 0 && len(req.Contents[0].Parts) > 0 {
			if _, list, ok := strings.Cut(req.Contents[0].Parts[0].Text, "\n"); ok {
				_ = json.Unmarshal([]byte(list), &items)
			}
		}
		texts.Add(int32(len(items)))
		var answer []map[string]string
		for _, it := range items {
			answer = append(answer, map[string]string{"id": it.ID, "intent": "purchase"})
		}
		a, _ := json.Marshal(answer)
		text, _ := json.Marshal(string(a))
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"candidates":[{"content":{"role":"model","parts":[{"text":%s}]},"finishReason":"STOP"}],`+
			`"usageMetadata":{"promptTokenCount":400,"candidatesTokenCount":40,"totalTokenCount":440},"modelVersion":"gemini-fake-intents"}`, text)
	}))
	t.Cleanup(model.Close)
	s := newSystem(t, "CRMQ_LLM_PROVIDER=gemini", "GEMINI_API_KEY=test-key", "CRMQ_GEMINI_BASE_URL="+model.URL, "CRMQ_VOC_LLM_TEXTS=3")
	s.startAPI()
	s.start("worker")
	key := s.newOrg("voc-intents")
	put := func(path, body string) {
		t.Helper()
		var v any
		if r := s.call("PUT", path, key, json.RawMessage(body), &v); r.StatusCode != 200 {
			t.Fatalf("PUT %s: %d %v", path, r.StatusCode, v)
		}
	}
	put("/v1/modules/accounts/records", `[{"external_id":"acme","name":"Acme"}]`)
	var acts []string
	for i := range 4 {
		acts = append(acts, fmt.Sprintf(`{"external_id":"e%d","kind":"email","medium":"email","direction":"signal","account":"acme","occurred_at":%q,"subject":"Our board met on Tuesday %d"}`,
			i, time.Now().Add(-time.Duration(i+1)*time.Hour).UTC().Format(time.RFC3339), i))
	}
	put("/v1/modules/activities/records", "["+strings.Join(acts, ",")+"]")
	put("/v1/abm/techniques/voc", `{"settings":{"sources":["email"],"window_days":30,"keywords":[],"competitors":[],"intent_classifier":"llm"},
		"labels":[{"name":"Ready to buy","criteria":{"conditions":[{"field":"intent.purchase","op":"gte","value":50}]}}]}`)
	var v struct {
		Job *accepted `json:"refresh_job"`
	}
	if r := s.call("POST", "/v1/abm/techniques/voc/activate", key, nil, &v); r.StatusCode != 200 || v.Job == nil {
		t.Fatalf("activate voc: %d %+v", r.StatusCode, v)
	}
	j := s.waitJob(key, v.Job.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	var res jobs.SegmentRefreshResult
	if j.State != store.JobSucceeded || j.Result == nil || json.Unmarshal(*j.Result, &res) != nil || len(res.Techniques) != 1 {
		t.Fatalf("voc refresh: %+v", j)
	}
	run := res.Techniques[0]
	if in := run.Intents; in == nil || in.Classifier != "llm" || in.ByModel != 3 || in.Deferred != 1 || in.Requests != 1 || in.Model != "gemini-fake-intents" {
		t.Fatalf("voc run %+v intents %+v, want 3 texts by the model and 1 deferred (CRMQ_VOC_LLM_TEXTS=3)", run, run.Intents)
	}
	if texts.Load() != 3 {
		t.Errorf("the model got %d texts, want 3", texts.Load())
	}
	var e struct {
		Techniques []struct {
			Technique string `json:"technique"`
			Label     *string
			Details   struct {
				Classifier string         `json:"intent_classifier"`
				By         map[string]int `json:"intents_by"`
			} `json:"details"`
		} `json:"techniques"`
	}
	if r := s.call("GET", "/v1/accounts/acme/labels", key, nil, &e); r.StatusCode != 200 {
		t.Fatalf("labels: %d", r.StatusCode)
	}
	found := false
	for _, te := range e.Techniques {
		if te.Technique == "voc" {
			found = true
			if te.Details.Classifier != "llm" || te.Details.By["llm"] != 3 || te.Details.By["rules"] != 1 || te.Label == nil || *te.Label != "Ready to buy" {
				t.Errorf("voc explanation %+v, want 3 intents by llm and 1 by rules, labelled Ready to buy", te)
			}
		}
	}
	if !found {
		t.Errorf("no voc explanation in %+v", e)
	}
}
