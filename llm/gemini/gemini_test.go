package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/crmq/crmq/llm"
)

const testKey = "test-key-123"

// fakeGemini speaks the Gemini REST protocol's generateContent: it records
// each request and answers with the status, headers and body a test sets.
type fakeGemini struct {
	srv *httptest.Server

	mu       sync.Mutex
	hits     int
	path     string
	apiKey   string
	body     map[string]any
	status   int
	header   http.Header
	response string
	delay    time.Duration
}

func newFake(t *testing.T, status int, response string) *fakeGemini {
	t.Helper()
	f := &fakeGemini{status: status, response: response, header: http.Header{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGemini) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.hits++
	f.path = r.Method + " " + r.URL.Path
	f.apiKey = r.Header.Get("x-goog-api-key")
	f.body = nil
	_ = json.Unmarshal(b, &f.body)
	status, response, delay := f.status, f.response, f.delay
	for k, v := range f.header {
		w.Header()[k] = v
	}
	f.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, response)
}

// set changes how the fake answers; under the lock, because the server's
// goroutines read it.
func (f *fakeGemini) set(fn func(f *fakeGemini)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeGemini) provider(t *testing.T, model string) *Provider {
	t.Helper()
	p, err := New(context.Background(), Config{APIKey: testKey, Model: model, BaseURL: f.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

var testSections = []llm.SectionSpec{
	{Key: llm.Overview, Title: "Overview", Instruction: "Key details of the contact."},
	{Key: llm.RecentInteractions, Title: "Recent interactions", Instruction: "The latest calls and emails.", UsesActivities: true},
}

func testRequest() llm.Request {
	return llm.Request{
		OrgID:    7,
		System:   "You summarise CRM records. Cite every bullet's records by ref.",
		User:     `Summarise this contact. Facts: {"subject":{"ref":"contacts/c-42"}}`,
		Schema:   llm.AnswerSchema(testSections),
		Sections: testSections,
	}
}

// candidate builds a generateContent response whose only candidate carries
// text, as Gemini sends it.
func candidate(text, finishReason, extra string) string {
	t, _ := json.Marshal(text)
	fr := ""
	if finishReason != "" {
		fr = `,"finishReason":"` + finishReason + `"`
	}
	return `{"candidates":[{"content":{"parts":[{"text":` + string(t) + `}],"role":"model"}` + fr + `,"index":0` + extra + `}],` +
		`"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":300,"thoughtsTokenCount":50,"totalTokenCount":1550,` +
		`"promptTokensDetails":[{"modality":"TEXT","tokenCount":1200}]},` +
		`"modelVersion":"gemini-2.5-flash-preview-09-2025","responseId":"mAkfaKy0DqGVz7IPnsm58Qg"}`
}

const goodAnswer = `{"sections":[` +
	`{"key":"overview","bullets":[{"text":"Ana Ruiz is VP Sales at Acme.","sources":["contacts/c-42","accounts/a-1"]}]},` +
	`{"key":"recent_interactions","bullets":[{"text":"Call on 3 Nov about renewal.","sources":["calls/k-9"]}]}]}`

func TestGenerateSendsStructuredRequestAndParsesAnswer(t *testing.T) {
	f := newFake(t, http.StatusOK, candidate(goodAnswer, "STOP", ""))
	p := f.provider(t, "gemini-2.5-flash")
	req := testRequest()

	resp, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.path != "POST /v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("request went to %q", f.path)
	}
	if f.apiKey != testKey {
		t.Errorf("x-goog-api-key = %q", f.apiKey)
	}
	if got := dig(f.body, "systemInstruction", "parts", 0, "text"); got != req.System {
		t.Errorf("systemInstruction text = %v, want %q", got, req.System)
	}
	if got := dig(f.body, "contents", 0, "parts", 0, "text"); got != req.User {
		t.Errorf("user content = %v, want %q", got, req.User)
	}
	if got := dig(f.body, "contents", 0, "role"); got != "user" {
		t.Errorf("content role = %v", got)
	}
	if got := dig(f.body, "generationConfig", "responseMimeType"); got != "application/json" {
		t.Errorf("responseMimeType = %v", got)
	}
	gc, _ := f.body["generationConfig"].(map[string]any)
	if temp, ok := gc["temperature"]; !ok || temp != float64(0) {
		t.Errorf("temperature = %v (present %v), want 0 sent explicitly", temp, ok)
	}
	var wantSchema any
	b, _ := json.Marshal(req.Schema)
	_ = json.Unmarshal(b, &wantSchema)
	if !reflect.DeepEqual(gc["responseJsonSchema"], wantSchema) {
		t.Errorf("responseJsonSchema = %v\nwant %v", gc["responseJsonSchema"], wantSchema)
	}
	if _, ok := gc["responseSchema"]; ok {
		t.Errorf("responseSchema sent as well as responseJsonSchema")
	}

	var want llm.Answer
	if err := json.Unmarshal([]byte(goodAnswer), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Answer, want) {
		t.Errorf("answer = %+v\nwant %+v", resp.Answer, want)
	}
	if resp.Usage != (llm.Usage{PromptTokens: 1200, OutputTokens: 350, TotalTokens: 1550}) {
		t.Errorf("usage = %+v, want prompt 1200, output 300+50 thoughts, total 1550", resp.Usage)
	}
	if resp.Model != "gemini-2.5-flash-preview-09-2025" {
		t.Errorf("model = %q, want the response's modelVersion", resp.Model)
	}
	if p.Name() != "gemini" {
		t.Errorf("Name() = %q", p.Name())
	}
}

func TestGenerateNamesConfiguredModelWhenResponseHasNone(t *testing.T) {
	body := strings.Replace(candidate(goodAnswer, "STOP", ""), `"modelVersion":"gemini-2.5-flash-preview-09-2025",`, "", 1)
	f := newFake(t, http.StatusOK, body)
	resp, err := f.provider(t, "gemini-2.5-pro").Generate(context.Background(), testRequest())
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if resp.Model != "gemini-2.5-pro" {
		t.Errorf("model = %q, want the configured gemini-2.5-pro", resp.Model)
	}
}

func TestGenerateIgnoresVertexEnvironment(t *testing.T) {
	t.Setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "some-project")
	t.Setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
	f := newFake(t, http.StatusOK, candidate(goodAnswer, "STOP", ""))
	if _, err := f.provider(t, "gemini-2.5-flash").Generate(context.Background(), testRequest()); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.path != "POST /v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("request went to %q, want the Gemini API path", f.path)
	}
}

const (
	body429 = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"10"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}`
	body429NoRetryInfo = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`
	body400            = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	body403            = `{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}`
	body500            = `{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}`
	body503            = `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`
	blocked            = `{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[` +
		`{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"HIGH"},` +
		`{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"NEGLIGIBLE"}]},` +
		`"usageMetadata":{"promptTokenCount":812,"totalTokenCount":812},"modelVersion":"gemini-2.5-flash","responseId":"x1"}`
)

func TestGenerateClassifiesFailures(t *testing.T) {
	type want struct {
		kind       error         // llm.ErrTransient or llm.ErrPermanent; nil for a RateLimitError
		retryAfter time.Duration // for a RateLimitError
		text       string        // the error message contains this
	}
	cases := []struct {
		name     string
		status   int
		header   http.Header
		response string
		want     want
	}{
		{"a 429 waits for the RetryInfo delay, not the Retry-After header", 429, http.Header{"Retry-After": {"60"}}, body429,
			want{retryAfter: 17 * time.Second, text: "You exceeded your current quota"}},
		{"a 429 without RetryInfo waits for the Retry-After header", 429, http.Header{"Retry-After": {"5"}}, body429NoRetryInfo,
			want{retryAfter: 5 * time.Second}},
		{"a 429 naming no delay waits the default 30s", 429, nil, body429NoRetryInfo,
			want{retryAfter: DefaultRetryAfter}},
		{"a 500 is transient", 500, nil, body500, want{kind: llm.ErrTransient, text: "500 INTERNAL"}},
		{"a 503 overload is transient", 503, nil, body503, want{kind: llm.ErrTransient, text: "overloaded"}},
		{"a 408 is transient", 408, nil, `{"error":{"code":408,"message":"Request timed out.","status":"DEADLINE_EXCEEDED"}}`, want{kind: llm.ErrTransient}},
		{"a 502 from a proxy with an HTML body is transient", 502, nil, `<html><body>Bad Gateway</body></html>`, want{kind: llm.ErrTransient, text: "Bad Gateway"}},
		{"a 400 INVALID_ARGUMENT is permanent with the provider's message", 400, nil, body400,
			want{kind: llm.ErrPermanent, text: "400 INVALID_ARGUMENT: API key not valid. Please pass a valid API key."}},
		{"a 403 is permanent", 403, nil, body403, want{kind: llm.ErrPermanent, text: "PERMISSION_DENIED"}},
		{"a proxy's 429 status without a code is a rate limit", 429, nil, `{"error":{"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`,
			want{retryAfter: DefaultRetryAfter}},
		{"a blocked prompt is permanent", 200, nil, blocked, want{kind: llm.ErrPermanent, text: "prompt blocked: SAFETY"}},
		{"an answer blocked for safety is permanent", 200, nil, candidate("", "SAFETY", ""), want{kind: llm.ErrPermanent, text: "SAFETY"}},
		{"an answer stopped for recitation is permanent", 200, nil, candidate("", "RECITATION", ""), want{kind: llm.ErrPermanent, text: "RECITATION"}},
		{"an answer cut at MAX_TOKENS is transient", 200, nil, candidate(goodAnswer[:80], "MAX_TOKENS", ""), want{kind: llm.ErrTransient, text: "MAX_TOKENS"}},
		{"candidate text that is not JSON is transient", 200, nil, candidate("Here is the summary: Ana is VP Sales.", "STOP", ""),
			want{kind: llm.ErrTransient, text: "not the JSON asked for"}},
		{"JSON without sections is transient", 200, nil, candidate(`{"summary":"Ana is VP Sales."}`, "STOP", ""),
			want{kind: llm.ErrTransient, text: `no "sections"`}},
		{"a section not asked for is transient", 200, nil, candidate(`{"sections":[{"key":"pipeline_metrics","bullets":[]}]}`, "STOP", ""),
			want{kind: llm.ErrTransient, text: `"pipeline_metrics"`}},
		{"a response without candidates is transient", 200, nil, `{"usageMetadata":{"promptTokenCount":10,"totalTokenCount":10},"modelVersion":"gemini-2.5-flash"}`,
			want{kind: llm.ErrTransient, text: "no candidates"}},
		{"a partial answer with a continuation token is transient and not continued", 200, nil, candidate(`{"sections":[`, "", `,"continuationToken":"Y29udGludWU="`),
			want{kind: llm.ErrTransient, text: "continuation"}},
		{"a 200 whose body is not JSON is transient", 200, nil, `<html>captive portal</html>`, want{kind: llm.ErrTransient}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.status, tc.response)
			f.set(func(f *fakeGemini) { f.header = tc.header })
			_, err := f.provider(t, "gemini-2.5-flash").Generate(context.Background(), testRequest())
			if err == nil {
				t.Fatal("Generate succeeded")
			}
			if tc.want.text != "" && !strings.Contains(err.Error(), tc.want.text) {
				t.Errorf("error %q does not mention %q", err, tc.want.text)
			}
			var rl *llm.RateLimitError
			isRL := errors.As(err, &rl)
			switch {
			case tc.want.kind == nil:
				if !isRL {
					t.Fatalf("error %v is not a RateLimitError", err)
				}
				if rl.Scope != "provider" || rl.Delay != tc.want.retryAfter {
					t.Errorf("RateLimitError{Scope %q, RetryAfter %s}, want provider, %s", rl.Scope, rl.Delay, tc.want.retryAfter)
				}
				var ae genai.APIError
				if !errors.As(err, &ae) || ae.Code != 429 && ae.Status != "RESOURCE_EXHAUSTED" {
					t.Errorf("the genai.APIError is not in the chain of %v", err)
				}
			default:
				if isRL {
					t.Errorf("error %v is a RateLimitError", err)
				}
				if !errors.Is(err, tc.want.kind) {
					t.Errorf("error %v is not %v", err, tc.want.kind)
				}
				other := llm.ErrPermanent
				if tc.want.kind == llm.ErrPermanent {
					other = llm.ErrTransient
				}
				if errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.hits != 1 {
				t.Errorf("the server was asked %d times; the SDK must not retry or continue", f.hits)
			}
		})
	}
}

func TestGenerateTimeoutIsTransient(t *testing.T) {
	f := newFake(t, http.StatusOK, candidate(goodAnswer, "STOP", ""))
	f.set(func(f *fakeGemini) { f.delay = 5 * time.Second })
	p, err := New(context.Background(), Config{APIKey: testKey, BaseURL: f.srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = p.Generate(context.Background(), testRequest())
	if !errors.Is(err, llm.ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want transient with context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Generate took %s with a 100ms timeout", d)
	}
}

func TestGenerateUnreachableServerIsTransient(t *testing.T) {
	f := newFake(t, http.StatusOK, "")
	p := f.provider(t, "")
	f.srv.Close()
	_, err := p.Generate(context.Background(), testRequest())
	if !errors.Is(err, llm.ErrTransient) {
		t.Fatalf("error %v, want transient", err)
	}
}

func TestNewRequiresAPIKey(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "from-the-environment")
	t.Setenv("GOOGLE_API_KEY", "")
	if _, err := New(context.Background(), Config{Model: "gemini-2.5-flash"}); err == nil {
		t.Fatal("New without an API key succeeded (genai would have read the environment)")
	}
}

func TestNewLeavesCallersHTTPClientAlone(t *testing.T) {
	rt := http.DefaultTransport
	hc := &http.Client{Transport: rt, Timeout: time.Minute}
	if _, err := New(context.Background(), Config{APIKey: testKey, HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != rt {
		t.Errorf("New replaced the caller's transport")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"99999999999":                   24 * time.Hour,
		"Tue, 24 Nov 2026 15:00:20 GMT": 20 * time.Second,
		"Tue, 24 Nov 2026 14:59:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// dig walks decoded JSON by object keys and array indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// The output-token and thinking budgets go out as configured; unset, the
// request carries neither.
func TestGenerateSendsTheTokenBudgets(t *testing.T) {
	f := newFake(t, http.StatusOK, candidate(goodAnswer, "STOP", ""))
	off := 0
	p, err := New(context.Background(), Config{APIKey: testKey, Model: "m", BaseURL: f.srv.URL, Timeout: 5 * time.Second,
		MaxOutputTokens: 4096, ThinkingBudget: &off})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Generate(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	gc, _ := f.body["generationConfig"].(map[string]any)
	f.mu.Unlock()
	if gc["maxOutputTokens"] != float64(4096) || dig(gc, "thinkingConfig", "thinkingBudget") != float64(0) {
		t.Errorf("generationConfig = %v; want maxOutputTokens 4096 and thinkingBudget 0", gc)
	}
	if _, err := f.provider(t, "m").Generate(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	gc, _ = f.body["generationConfig"].(map[string]any)
	f.mu.Unlock()
	if _, ok := gc["maxOutputTokens"]; ok {
		t.Errorf("an unset output budget is sent: %v", gc)
	}
	if _, ok := gc["thinkingConfig"]; ok {
		t.Errorf("an unset thinking budget is sent: %v", gc)
	}
}
