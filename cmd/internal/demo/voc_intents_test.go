package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/demo"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers/segment"
)

// What the model intent classifier would send for the demo's customer
// texts (VoC's default sources and window): requests, and their size in
// llm.EstimateTokens (bytes / 4), for README's cost figures. Every request
// stays far below a model's input limit, and its output bound covers the
// answer.
func TestVoCIntentRequestsOnDemoTexts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, err := db.CreateOrg(ctx, "demo-intents")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)
	if _, err := demo.Seed(ctx, db, org.ID, now); err != nil {
		t.Fatal(err)
	}
	s := segment.DefaultVoC().VoCSettings
	var texts []string
	for _, source := range []string{"activity", "case"} {
		after := int64(0)
		for {
			batch, next, err := db.VoCPending(ctx, org.ID, s, "measure", source, after, 5000, now)
			if err != nil {
				t.Fatal(err)
			}
			if next == 0 {
				break
			}
			for _, tx := range batch {
				texts = append(texts, tx.Text)
			}
			after = next
		}
	}
	if len(texts) < 1000 {
		t.Fatalf("%d demo texts, want the demo's few thousand", len(texts))
	}
	requests, prompt, outBound, largest := 0, 0, 0, 0
	for start := 0; start < len(texts); start += segment.IntentBatch {
		part := texts[start:min(start+segment.IntentBatch, len(texts))]
		req := segment.IntentRequest(org.ID, part)
		p := llm.EstimateTokens(req.System) + llm.EstimateTokens(req.User)
		requests++
		prompt += p
		outBound += req.MaxOutputTokens
		largest = max(largest, p)
		// The answer the schema allows: one {"id":"100","intent":"complaint"} per text.
		if answer := llm.EstimateTokens(`{"id":"100","intent":"complaint"},`) * len(part); answer > req.MaxOutputTokens {
			t.Errorf("a batch of %d: answer of ~%d tokens over its bound %d", len(part), answer, req.MaxOutputTokens)
		}
	}
	if largest > 40000 {
		t.Errorf("largest request ~%d tokens", largest)
	}
	t.Logf("demo VoC texts %d (sources %v): %d requests, prompt ~%d tokens (%.0f a text, largest request %d), output bound %d tokens, answer ~%d tokens (12 a text)",
		len(texts), s.Sources, requests, prompt, float64(prompt)/float64(len(texts)), largest, outBound, 12*len(texts))
}
