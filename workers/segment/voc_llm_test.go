package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/gemini"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

// intentFake speaks the Gemini REST protocol's generateContent as the VoC
// intent classifier uses it: it reads the batch of {id, text} from the
// prompt and answers with what answer makes of it (by default the intent
// of the first phrase of intents found in the text, else "other"), or
// with the status and body fail sets for the next requests.
type intentFake struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	texts    int            // texts sent, over every request
	body     map[string]any // the last request
	answer   func([]fakeItem) string
	fail     []func() (int, string) // the next requests' answers, in turn
}

type fakeItem struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// modelIntents is how the fake model reads texts: words the rule table
// does not know (so its answer can be told from the table's).
var modelIntents = []struct{ phrase, intent string }{
	{"evaluating", "purchase"}, {"board met", "feedback"}, {"timeline", "query"},
}

func modelAnswer(items []fakeItem) string {
	var out []map[string]string
	for _, it := range items {
		intent := "other"
		for _, m := range modelIntents {
			if strings.Contains(strings.ToLower(it.Text), m.phrase) {
				intent = m.intent
				break
			}
		}
		out = append(out, map[string]string{"id": it.ID, "intent": intent})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func newIntentFake(t *testing.T) *intentFake {
	t.Helper()
	f := &intentFake{answer: modelAnswer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *intentFake) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	prompt, _ := dig(body, "contents", 0, "parts", 0, "text").(string)
	var items []fakeItem
	if _, list, ok := strings.Cut(prompt, "\n"); ok {
		_ = json.Unmarshal([]byte(list), &items)
	}
	f.mu.Lock()
	f.requests++
	f.texts += len(items)
	f.body = body
	var fail func() (int, string)
	if len(f.fail) > 0 {
		fail, f.fail = f.fail[0], f.fail[1:]
	}
	answer := f.answer
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fail != nil {
		status, resp := fail()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
		return
	}
	text, _ := json.Marshal(answer(items))
	_, _ = fmt.Fprintf(w, `{"candidates":[{"content":{"role":"model","parts":[{"text":%s}]},"finishReason":"STOP"}],`+
		`"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d},"modelVersion":"gemini-fake-intents"}`,
		text, 300+40*len(items), 12*len(items), 300+52*len(items))
}

func (f *intentFake) counts() (requests, texts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.texts
}

func (f *intentFake) provider(t *testing.T) llm.Provider {
	t.Helper()
	p, err := gemini.New(context.Background(), gemini.Config{APIKey: "test-key", Model: "gemini-fake", BaseURL: f.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dig walks decoded JSON by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// putVoC saves the VoC technique with settings and the default labels.
func (f *fixture) putVoC(t *testing.T, s store.VoCSettings) {
	t.Helper()
	raw, _ := json.Marshal(s)
	if _, _, err := f.setup.Put(context.Background(), f.org, "voc", segment.View{Settings: raw, Labels: segment.DefaultVoCLabels()}); err != nil {
		t.Fatal(err)
	}
}

// intentMakers reads what the cache holds: per text (activity external
// id), its intent and who made it.
func (f *fixture) intentMakers(t *testing.T) map[string][2]string {
	t.Helper()
	var rows []struct {
		ID       string `db:"external_id"`
		Intent   string `db:"intent"`
		IntentBy string `db:"intent_by"`
	}
	if err := f.db.SelectContext(context.Background(), &rows, `SELECT x.external_id, v.intent, v.intent_by
		FROM voc_texts v JOIN activities x ON x.id = v.source_id AND v.source = 'activity' WHERE v.org_id = $1`, f.org); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, r := range rows {
		out[r.ID] = [2]string{r.Intent, r.IntentBy}
	}
	return out
}

func vocRun(t *testing.T, res jobs.SegmentRefreshResult) jobs.TechniqueRun {
	t.Helper()
	for _, r := range res.Techniques {
		if r.Technique == "voc" {
			if r.Intents == nil {
				t.Fatalf("voc run without intents: %+v", r)
			}
			return r
		}
	}
	t.Fatalf("no voc run in %+v", res)
	return jobs.TechniqueRun{}
}

// With intent_classifier "llm" and a model, a batch of texts is
// classified by the model in one request whose schema allows only the
// batch's ids and the six intents; the model's intents land in the cache
// (recorded as the model's) and in the account's intent shares. A second
// refresh sends nothing; other keywords re-analyse the texts but keep the
// model's intents without a request; switching back to the rule table
// re-analyses every text with it.
func TestVoCIntentsFromTheModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	fake := newIntentFake(t)
	f.ref.IntentModel = fake.provider(t)
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	var acts []string
	for i := range 10 {
		text := "We are evaluating options for next year" // the rule table: other; the model: purchase
		if i >= 4 {
			text = "Our board met on Tuesday about the rollout" // the rule table: other; the model: feedback
		}
		acts = append(acts, act(fmt.Sprintf("e%d", i), "email", "signal", ago(float64(i+1)), "acc:acme", "", text))
	}
	f.ingest(t, "activities", acts...)
	s := segment.DefaultVoC().VoCSettings
	s.IntentClassifier = store.VoCIntentLLM
	f.putVoC(t, s)
	f.activate(t, "voc")

	run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"}))
	in := run.Intents
	if run.Analysed != 10 || in.Classifier != "llm" || in.Requests != 1 || in.ByModel != 10 || in.Fallbacks != 0 || in.Model != "gemini-fake-intents" || in.PromptTokens != 700 {
		t.Fatalf("first refresh %+v intents %+v, want 10 texts classified by the model in one request", run, in)
	}
	got, _, _ := f.result(t, "voc", "acme")
	if shares := got["intent"].(map[string]any); shares["purchase"] != 40.0 || shares["feedback"] != 60.0 || len(shares) != 2 {
		t.Errorf("acme intent shares %v, want purchase 40 and feedback 60 (the model's)", shares)
	}
	for id, m := range f.intentMakers(t) {
		if m[1] != "llm" {
			t.Errorf("text %s cached as %v, want made by llm", id, m)
		}
	}
	// The request: the batch's ids and the six intents as enums, one item
	// per text, temperature 0, thinking off, an output budget per text.
	fake.mu.Lock()
	gc, _ := fake.body["generationConfig"].(map[string]any)
	fake.mu.Unlock()
	schema, _ := gc["responseJsonSchema"].(map[string]any)
	var enum []string
	for _, e := range dig(schema, "items", "properties", "intent", "enum").([]any) {
		enum = append(enum, e.(string))
	}
	ids, _ := dig(schema, "items", "properties", "id", "enum").([]any)
	if schema["type"] != "array" || schema["minItems"] != 10.0 || schema["maxItems"] != 10.0 || len(ids) != 10 ||
		!slices.Equal(enum, store.VoCIntents()) {
		t.Errorf("response schema %v", schema)
	}
	if gc["temperature"] != 0.0 || gc["maxOutputTokens"] != float64(64+32*10) || dig(gc, "thinkingConfig", "thinkingBudget") != 0.0 {
		t.Errorf("generation config %v, want temperature 0, 384 output tokens, thinking off", gc)
	}

	// The cache: a second refresh sends nothing.
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc", Force: true})); run.Analysed != 0 || run.Intents.Requests != 0 {
		t.Errorf("second refresh %+v %+v, want nothing analysed or sent", run, run.Intents)
	}
	if n, texts := fake.counts(); n != 1 || texts != 10 {
		t.Errorf("the model got %d requests with %d texts, want 1 with 10", n, texts)
	}
	// One changed text: one text sent.
	f.ingest(t, "activities", act("e0", "email", "signal", ago(1), "acc:acme", "", "What is the timeline for the fix"))
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 1 || run.Intents.ByModel != 1 {
		t.Errorf("after one changed text %+v %+v, want it alone sent", run, run.Intents)
	}
	if _, texts := fake.counts(); texts != 11 {
		t.Errorf("the model got %d texts, want 11", texts)
	}
	// Other keywords: every text analysed again, the intents kept.
	s.Keywords = []string{"board"}
	f.putVoC(t, s)
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 10 || run.Intents.Reused != 10 || run.Intents.Requests != 0 {
		t.Errorf("after a keyword change %+v %+v, want 10 re-analysed keeping the model's intents", run, run.Intents)
	}
	if m := f.intentMakers(t)["e0"]; m != [2]string{"query", "llm"} {
		t.Errorf("e0 cached %v after a keyword change, want the model's query", m)
	}
	e, err := f.setup.Explain(ctx, f.org, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, te := range e.Techniques {
		if te.Technique == "voc" {
			d := te.Details.(map[string]any)
			if by := d["intents_by"].(map[string]int); by["llm"] != 10 || len(by) != 1 || d["intent_classifier"] != "llm" {
				t.Errorf("explanation details %v, want 10 intents by llm", d)
			}
		}
	}
	// Back to the rule table: every text analysed again, no request.
	s.IntentClassifier = store.VoCIntentRules
	f.putVoC(t, s)
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 10 || run.Intents.Classifier != "rules" {
		t.Errorf("after switching to rules %+v %+v, want 10 re-analysed by the rule table", run, run.Intents)
	}
	if n, _ := fake.counts(); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
	got, _, _ = f.result(t, "voc", "acme")
	if shares := got["intent"].(map[string]any); shares["other"] != 90.0 {
		t.Errorf("acme intent shares under the rule table %v, want other 90", shares)
	}
}

// An answer that breaks the schema does not fail the refresh: the texts
// it covers take the model's intent, the others (an unknown intent, an id
// left out, an id answered twice differently) keep the rule table's and
// are counted as fallbacks, and recorded so; unknown ids are ignored. A
// fallback is not sent again by the next refresh. A blocked batch falls
// back whole.
func TestVoCIntentAnswerBreakingTheSchemaFallsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fake := newIntentFake(t)
	f.ref.IntentModel = fake.provider(t)
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	texts := []string{
		"We are evaluating options for next year",        // 1: purchase, answered
		"We want to buy the add-on, evaluating now",      // 2: answered "upsell": falls back to the table's purchase
		"The export is broken again",                     // 3: left out: the table's complaint
		"Our board met on Tuesday",                       // 4: feedback, answered
		"How do we add a new user? What is the timeline", // 5: answered twice, query and request: the table's query
	}
	var acts []string
	for i, tx := range texts {
		acts = append(acts, act(fmt.Sprintf("e%d", i+1), "email", "signal", ago(float64(i+1)), "acc:acme", "", tx))
	}
	f.ingest(t, "activities", acts...)
	fake.answer = func(items []fakeItem) string {
		byText := map[string]string{}
		for _, it := range items {
			byText[it.Text] = it.ID
		}
		return fmt.Sprintf(`[{"id":%q,"intent":"purchase"},{"id":%q,"intent":"upsell"},{"id":%q,"intent":"feedback"},`+
			`{"id":%q,"intent":"query"},{"id":%q,"intent":"request"},{"id":"77","intent":"complaint"}]`,
			byText[texts[0]], byText[texts[1]], byText[texts[3]], byText[texts[4]], byText[texts[4]])
	}
	s := segment.DefaultVoC().VoCSettings
	s.IntentClassifier = store.VoCIntentLLM
	f.putVoC(t, s)
	f.activate(t, "voc")
	run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"}))
	if in := run.Intents; run.Analysed != 5 || in.Requests != 1 || in.ByModel != 2 || in.Fallbacks != 3 {
		t.Fatalf("refresh %+v intents %+v, want 2 by the model and 3 fallbacks", run, in)
	}
	want := map[string][2]string{
		"e1": {"purchase", "llm"}, "e2": {"purchase", "fallback"}, "e3": {"complaint", "fallback"},
		"e4": {"feedback", "llm"}, "e5": {"query", "fallback"},
	}
	if got := f.intentMakers(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cache %v, want %v", got, want)
	}
	got, _, _ := f.result(t, "voc", "acme")
	if shares := got["intent"].(map[string]any); shares["purchase"] != 40.0 || shares["complaint"] != 20.0 || shares["feedback"] != 20.0 || shares["query"] != 20.0 {
		t.Errorf("acme intent shares %v", shares)
	}
	// Fallbacks are not sent again.
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc", Force: true})); run.Analysed != 0 || run.Intents.Requests != 0 {
		t.Errorf("second refresh %+v %+v, want nothing sent", run, run.Intents)
	}
	// A batch the provider blocks falls back whole; so does an answer
	// that is no JSON array.
	fake.mu.Lock()
	fake.fail = []func() (int, string){func() (int, string) {
		return 200, `{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":90,"totalTokenCount":90}}`
	}}
	fake.answer = func([]fakeItem) string { return `{"intent":"purchase"}` }
	fake.mu.Unlock()
	f.ingest(t, "activities", act("e6", "email", "signal", ago(1), "acc:acme", "", "Please call me back"))
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 1 || run.Intents.Fallbacks != 1 || run.Intents.ByModel != 0 {
		t.Errorf("blocked batch: %+v %+v, want 1 fallback", run, run.Intents)
	}
	f.ingest(t, "activities", act("e7", "email", "signal", ago(1), "acc:acme", "", "Please call me back today"))
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 1 || run.Intents.Fallbacks != 1 {
		t.Errorf("an answer that is no array: %+v %+v, want 1 fallback", run, run.Intents)
	}
	if m := f.intentMakers(t); m["e6"] != [2]string{"request", "fallback"} || m["e7"] != [2]string{"request", "fallback"} {
		t.Errorf("cache %v, want e6 and e7 the table's request, as fallbacks", m)
	}
}

// A Gemini error fails the refresh so asynq retries it: a 503 and a 429
// (with the delay Gemini names) are retried, not SkipRetry; the batches
// answered before the error stay cached, so the retry sends only the rest.
func TestVoCIntentModelErrorsRetryTheRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fake := newIntentFake(t)
	f.ref.IntentModel = fake.provider(t)
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	var acts []string
	for i := range 150 {
		acts = append(acts, act(fmt.Sprintf("e%d", i), "email", "signal", ago(float64(i%300)+0.5), "acc:acme", "", fmt.Sprintf("Timeline question number %d", i)))
	}
	f.ingest(t, "activities", acts...)
	s := segment.DefaultVoC().VoCSettings
	s.IntentClassifier = store.VoCIntentLLM
	f.putVoC(t, s)
	fake.mu.Lock()
	fake.fail = []func() (int, string){nil, func() (int, string) {
		return 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`
	}}
	fake.mu.Unlock()
	refresh := func() (jobs.SegmentRefreshResult, error) {
		return f.ref.Run(context.Background(), workers.Job[jobs.SegmentRefreshPayload]{ID: fmt.Sprintf("job-%d", time.Now().UnixNano()),
			Payload: jobs.SegmentRefreshPayload{OrgID: f.org, Technique: "voc"}})
	}
	f.activate(t, "voc") // runs no refresh: the fixture's Setup has no Enqueuer
	_, err := refresh()
	if err == nil || errors.Is(err, asynq.SkipRetry) || !errors.Is(err, llm.ErrTransient) {
		t.Fatalf("refresh with a 503 on the second batch: %v, want a transient error asynq retries", err)
	}
	if n, texts := fake.counts(); n != 2 || texts != 150 {
		t.Fatalf("%d requests with %d texts, want 2 with 150", n, texts)
	}
	if got := len(f.intentMakers(t)); got != 100 {
		t.Errorf("%d texts cached after the failed batch, want the first batch's 100", got)
	}
	// A 429 names its delay; the retry after it sends the last 50 texts.
	fake.mu.Lock()
	fake.fail = []func() (int, string){func() (int, string) {
		return 429, `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}`
	}}
	fake.mu.Unlock()
	_, err = refresh()
	var ra workers.RetryAfterError
	if !errors.As(err, &ra) || ra.RetryAfter() != 17*time.Second || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("refresh on a 429: %v, want a retry after 17s", err)
	}
	res, err := refresh()
	if err != nil {
		t.Fatal(err)
	}
	if run := vocRun(t, res); run.Analysed != 50 || run.Intents.ByModel != 50 || run.Intents.Requests != 1 {
		t.Errorf("the retry %+v %+v, want the last 50 texts in one request", run, run.Intents)
	}
	if n, texts := fake.counts(); n != 4 || texts != 250 {
		t.Errorf("%d requests with %d texts in all, want 4 with 250", n, texts)
	}
}

// The setting is validated, defaults to the rule table, and without a
// model (the offline provider) falls back to the rule table, saying so in
// the result; a worker with a model then sends every text.
func TestVoCIntentClassifierSetting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	views, err := f.setup.Views(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if v.Technique == "voc" && !strings.Contains(string(v.Settings), `"intent_classifier":"rules"`) {
			t.Errorf("default voc settings %s, want intent_classifier rules", v.Settings)
		}
	}
	for _, bad := range []string{"gemini", "LLM", "model"} {
		s := segment.DefaultVoC().VoCSettings
		s.IntentClassifier = bad
		raw, _ := json.Marshal(s)
		_, _, err := f.setup.Put(ctx, f.org, "voc", segment.View{Settings: raw, Labels: segment.DefaultVoCLabels()})
		var errs segment.Errors
		if !errors.As(err, &errs) || errs["settings.intent_classifier"] == "" {
			t.Errorf("intent_classifier %q: %v, want an error at settings.intent_classifier", bad, err)
		}
	}
	// Left out, it is the rule table.
	raw := []byte(`{"sources":["email"],"window_days":30,"keywords":[],"competitors":[]}`)
	v, _, err := f.setup.Put(ctx, f.org, "voc", segment.View{Settings: raw, Labels: segment.DefaultVoCLabels()})
	if err != nil || !strings.Contains(string(v.Settings), `"intent_classifier":"rules"`) {
		t.Fatalf("settings without intent_classifier: %s %v", v.Settings, err)
	}

	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	f.ingest(t, "activities", act("e1", "email", "signal", ago(1), "acc:acme", "", "We are evaluating options"),
		act("e2", "email", "signal", ago(2), "acc:acme", "", "The export is broken"))
	s := segment.DefaultVoC().VoCSettings
	s.IntentClassifier = store.VoCIntentLLM
	f.putVoC(t, s)
	f.activate(t, "voc")
	run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"}))
	if in := run.Intents; run.Analysed != 2 || in.Classifier != "rules" || in.Asked != "llm" || !strings.Contains(in.Note, "CRMQ_LLM_PROVIDER") {
		t.Errorf("without a model: %+v %+v, want the rule table, saying why", run, in)
	}
	if m := f.intentMakers(t); m["e1"] != [2]string{"other", "rules"} || m["e2"] != [2]string{"complaint", "rules"} {
		t.Errorf("cache %v, want the rule table's intents", m)
	}
	fake := newIntentFake(t)
	f.ref.IntentModel = fake.provider(t)
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc", Force: true})); run.Analysed != 2 || run.Intents.ByModel != 2 {
		t.Errorf("with a model: %+v %+v, want both texts sent", run, run.Intents)
	}
	if m := f.intentMakers(t); m["e1"] != [2]string{"purchase", "llm"} {
		t.Errorf("e1 cached %v, want the model's purchase", m["e1"])
	}
}

// Over the refresh's budget of model texts, the rest keep the rule
// table's intent for now, and the next refresh sends them.
func TestVoCIntentBudgetDefersTheRest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fake := newIntentFake(t)
	f.ref.IntentModel, f.ref.IntentBudget = fake.provider(t), 3
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	var acts []string
	for i := range 5 {
		acts = append(acts, act(fmt.Sprintf("e%d", i), "email", "signal", ago(float64(i+1)), "acc:acme", "", "We are evaluating options"))
	}
	f.ingest(t, "activities", acts...)
	s := segment.DefaultVoC().VoCSettings
	s.IntentClassifier = store.VoCIntentLLM
	f.putVoC(t, s)
	f.activate(t, "voc")
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})); run.Analysed != 5 || run.Intents.ByModel != 3 || run.Intents.Deferred != 2 {
		t.Fatalf("first refresh %+v %+v, want 3 by the model and 2 deferred", run, run.Intents)
	}
	makers := map[string]int{}
	for _, m := range f.intentMakers(t) {
		makers[m[0]+"/"+m[1]]++
	}
	if makers["purchase/llm"] != 3 || makers["other/rules"] != 2 {
		t.Errorf("cache %v, want 3 purchase by llm and 2 other by rules", makers)
	}
	if run := vocRun(t, f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc", Force: true})); run.Analysed != 2 || run.Intents.ByModel != 2 || run.Intents.Deferred != 0 {
		t.Errorf("next refresh %+v %+v, want the 2 deferred sent", run, run.Intents)
	}
	if _, texts := fake.counts(); texts != 5 {
		t.Errorf("the model got %d texts, want 5", texts)
	}
}

// ParseIntents keeps what an answer may be trusted with.
func TestParseIntents(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		want     []string
		problems int
	}{
		{`[{"id":"1","intent":"query"},{"id":"2","intent":"complaint"}]`, []string{"query", "complaint"}, 0},
		{`[{"id":"2","intent":"Purchase "},{"id":1,"intent":"other"}]`, []string{"other", "purchase"}, 0},
		{`[{"id":"1","intent":"query"}]`, []string{"query", ""}, 1},
		{`[{"id":"1","intent":"query"},{"id":"3","intent":"query"},{"id":"2","intent":"upsell"}]`, []string{"query", ""}, 3},
		{`[{"id":"1","intent":"query"},{"id":"1","intent":"query"},{"id":"2","intent":"other"}]`, []string{"query", "other"}, 0},
		{`[{"id":"1","intent":"query"},{"id":"1","intent":"request"},{"id":"2","intent":"other"}]`, []string{"", "other"}, 1},
		{`{"id":"1","intent":"query"}`, []string{"", ""}, 1},
		{`[{"id":"1","intent":"que`, []string{"", ""}, 1},
	} {
		got, problems := segment.ParseIntents(tc.raw, 2)
		if !slices.Equal(got, tc.want) || len(problems) != tc.problems {
			t.Errorf("%s: %q %q, want %q and %d problems", tc.raw, got, problems, tc.want, tc.problems)
		}
	}
}
