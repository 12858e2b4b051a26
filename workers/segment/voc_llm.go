package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// The optional model classifier of VoC intents (setting intent_classifier
// "llm", worker provider gemini). Sentiment, keywords and competitors stay
// the analyser's; only the intent comes from the model. Texts go in
// batches, each text with a short id, and the answer is constrained by a
// response schema: a JSON array of {id, intent}, ids from the batch and
// intents from the six. What the answer does not cover falls back to the
// rule table and is counted.
const (
	// IntentBatch is how many texts one model request classifies.
	IntentBatch = 100
	// IntentTextRunes cuts a text sent to the model (subject and notes of
	// a long email): the intent shows in its first lines.
	IntentTextRunes = 1000
	// IntentTextsPerRefresh bounds the texts one refresh sends to the
	// model by default (CRMQ_VOC_LLM_TEXTS; 100 requests, one after another: at a few seconds each,
	// well inside segment:refresh's 30-minute timeout); the rest keep the
	// rule table's intent for now and go to the model in the next
	// refresh, so a first classification of a large org spreads over
	// nights instead of outlasting the job's timeout and its
	// requests-per-minute budget.
	IntentTextsPerRefresh = 10000
	// Output budget per request: the answer takes about 12 tokens a text
	// ({"id":"37","intent":"complaint"},); 32 leaves room, and thinking
	// is off.
	intentOutPerText = 32
	intentOutBase    = 64
)

const intentSystem = `You classify messages that customers sent to a company (emails, survey answers, support tickets, case subjects) by their intent. The intents:
- request: asks the company to do something (send, set up, call back, change, fix for them);
- query: asks a question or for information;
- complaint: reports a problem, a failure or dissatisfaction, or wants to cancel;
- purchase: wants to buy, order, renew, upgrade or add licences or seats, or asks for a quote or price in order to buy;
- feedback: praise, thanks, suggestions, opinions, survey comments;
- other: none of these.
Choose the one main intent of each message. Answer with one item per message: its id, exactly as given, and its intent. Use only the message text.`

// IntentModel asks a provider for intents, within a budget of texts per
// refresh, and keeps the counts of the refresh's result.
type IntentModel struct {
	Provider llm.Provider
	OrgID    int64
	Budget   int // texts the model may still be asked about; <= 0: IntentTextsPerRefresh
	Log      *slog.Logger
	Run      *jobs.IntentRun // counts; nil: not kept
	used     int
}

// classify gives the analyses of texts (same order) their intent: the
// model's cached intent of the same text when there is one, else the
// model's answer, within the budget. save is called with each part that is
// final, so a failed request leaves the parts saved before it cached.
func (m *IntentModel) classify(ctx context.Context, texts []store.VoCText, batch []store.VoCAnalysis, save func([]store.VoCAnalysis) error) error {
	run := m.Run
	if run == nil {
		run = &jobs.IntentRun{}
	}
	budget := m.Budget
	if budget <= 0 {
		budget = IntentTextsPerRefresh
	}
	var ready []store.VoCAnalysis
	var ask []int
	for i, t := range texts {
		switch {
		case t.CachedIntentBy == store.VoCIntentLLM && slices.Contains(store.VoCIntents(), t.CachedIntent):
			batch[i].Intent, batch[i].IntentBy = t.CachedIntent, store.VoCIntentLLM
			run.Reused++
			ready = append(ready, batch[i])
		case m.used < budget:
			m.used++
			ask = append(ask, i)
		default:
			batch[i].IntentBy = store.VoCIntentRules // sent by a later refresh
			run.Deferred++
			ready = append(ready, batch[i])
		}
	}
	if err := save(ready); err != nil {
		return err
	}
	for start := 0; start < len(ask); start += IntentBatch {
		part := ask[start:min(start+IntentBatch, len(ask))]
		in := make([]string, len(part))
		for j, i := range part {
			in[j] = texts[i].Text
		}
		got, problems, err := m.ask(ctx, in, run)
		if err != nil {
			return err
		}
		out := make([]store.VoCAnalysis, len(part))
		for j, i := range part {
			if got[j] != "" {
				batch[i].Intent, batch[i].IntentBy = got[j], store.VoCIntentLLM
				run.ByModel++
			} else {
				batch[i].IntentBy = store.VoCIntentFallback // the analyser's rule-table intent stays
				run.Fallbacks++
			}
			out[j] = batch[i]
		}
		if len(problems) > 0 {
			log := m.Log
			if log == nil {
				log = slog.Default()
			}
			log.WarnContext(ctx, "voc intent answer did not cover every text; those keep the rule table's intent",
				"org_id", m.OrgID, "texts", len(part), "problems", strings.Join(problems, "; "))
		}
		if err := save(out); err != nil {
			return err
		}
	}
	return nil
}

// ask sends one batch and reads the intent of each text ("" where the
// answer does not give one), with what was wrong with the answer. A
// batch the provider blocked by policy is all fallback; any other error
// is returned (transient ones retry the job; the batches before are
// cached).
func (m *IntentModel) ask(ctx context.Context, texts []string, run *jobs.IntentRun) ([]string, []string, error) {
	resp, err := m.Provider.Generate(ctx, IntentRequest(m.OrgID, texts))
	run.Requests++
	run.PromptTokens += resp.Usage.PromptTokens
	run.OutputTokens += resp.Usage.OutputTokens
	if resp.Model != "" {
		run.Model = resp.Model
	}
	if errors.Is(err, llm.ErrBlocked) {
		return make([]string, len(texts)), []string{err.Error()}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("voc intents: %w", err)
	}
	got, problems := ParseIntents(resp.Raw, len(texts))
	return got, problems, nil
}

// IntentRequest is the model request for a batch of texts: ids "1" to
// "n", the answer's schema an array of {id, intent} with both enums,
// temperature 0 (the provider's), thinking off, and an output budget of
// intentOutPerText tokens a text.
func IntentRequest(orgID int64, texts []string) llm.Request {
	type item struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	items := make([]item, len(texts))
	ids := make([]any, len(texts))
	for i, t := range texts {
		id := strconv.Itoa(i + 1)
		items[i] = item{ID: id, Text: cut(t, IntentTextRunes)}
		ids[i] = id
	}
	b, _ := json.Marshal(items)
	var intents []any
	for _, x := range store.VoCIntents() {
		intents = append(intents, x)
	}
	schema := map[string]any{
		"type":     "array",
		"minItems": len(texts),
		"maxItems": len(texts),
		"items": map[string]any{
			"type":     "object",
			"required": []any{"id", "intent"},
			"properties": map[string]any{
				"id":     map[string]any{"type": "string", "enum": ids},
				"intent": map[string]any{"type": "string", "enum": intents},
			},
		},
	}
	off := 0
	return llm.Request{
		OrgID:           orgID,
		System:          intentSystem,
		User:            fmt.Sprintf("Classify these %d messages:\n%s", len(texts), b),
		Schema:          schema,
		Raw:             true,
		MaxOutputTokens: intentOutBase + intentOutPerText*len(texts),
		ThinkingBudget:  &off,
	}
}

// ParseIntents reads an answer to IntentRequest for n texts: the intent of
// text i at i-1, "" where the answer gives none it may be trusted with,
// and what was wrong: not a JSON array of {id, intent}, an id outside 1..n,
// an id twice with different intents, an intent outside the six, ids left
// out.
func ParseIntents(raw string, n int) ([]string, []string) {
	got := make([]string, n)
	var items []struct {
		ID     json.RawMessage `json:"id"`
		Intent string          `json:"intent"`
	}
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return got, []string{fmt.Sprintf("not a JSON array of {id, intent}: %v (%d bytes)", err, len(raw))}
	}
	var problems []string
	conflict := make([]bool, n)
	for _, it := range items {
		id := strings.Trim(string(it.ID), `"`) // "7", or 7 from a lax model
		i, err := strconv.Atoi(id)
		if err != nil || i < 1 || i > n {
			problems = append(problems, fmt.Sprintf("unknown id %s", it.ID))
			continue
		}
		intent := strings.ToLower(strings.TrimSpace(it.Intent))
		if !slices.Contains(store.VoCIntents(), intent) {
			problems = append(problems, fmt.Sprintf("id %d: unknown intent %q", i, it.Intent))
			continue
		}
		switch prev := got[i-1]; {
		case conflict[i-1]:
		case prev == "":
			got[i-1] = intent
		case prev != intent:
			problems = append(problems, fmt.Sprintf("id %d answered twice (%s, %s)", i, prev, intent))
			got[i-1], conflict[i-1] = "", true
		}
	}
	missing := 0
	for i := range got {
		if got[i] == "" && !conflict[i] {
			missing++
		}
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d ids without a valid answer", missing, n))
	}
	return got, problems
}

// cut keeps the first n runes of s.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
