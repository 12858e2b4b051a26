package summary_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

type fakeGraphs struct {
	g     store.SummaryGraph
	err   error
	calls int
}

func (f *fakeGraphs) SummaryGraph(_ context.Context, orgID int64, module, id string) (store.SummaryGraph, error) {
	f.calls++
	if f.err != nil {
		return store.SummaryGraph{}, f.err
	}
	if orgID != 7 || id != f.g.Subject.ID {
		return store.SummaryGraph{}, store.ErrNotFound
	}
	return f.g, nil
}

// fakeProvider answers with a fixed answer and keeps the request.
type fakeProvider struct {
	answer llm.Answer
	err    error
	reqs   []llm.Request
}

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Generate(_ context.Context, req llm.Request) (llm.Response, error) {
	p.reqs = append(p.reqs, req)
	if p.err != nil {
		return llm.Response{}, p.err
	}
	return llm.Response{Answer: p.answer, Usage: llm.Usage{PromptTokens: 10, OutputTokens: 5, TotalTokens: 15}, Model: "fake-1"}, nil
}

func input(module, id string, visible map[string]bool) summary.Input {
	return summary.Input{OrgID: 7, Module: module, ID: id, Visible: visible, Today: today}
}

func sectionKeys(ss []summary.Section) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Key
	}
	return out
}

func TestGenerate(t *testing.T) {
	ctx := context.Background()

	t.Run("the provider's answer is validated and returned with the graph's metadata", func(t *testing.T) {
		graphs := &fakeGraphs{g: dealGraph()}
		p := &fakeProvider{answer: llm.Answer{Sections: []llm.SectionAnswer{
			{Key: llm.PipelineMetrics, Bullets: []llm.Bullet{{Text: "Pipeline 1250000.00.", Sources: []string{"deals/d-1", "deals/d-999"}}}},
			{Key: llm.Overview, Bullets: []llm.Bullet{{Text: "Deal with Northwind.", Sources: []string{"deals/d-1", "accounts/acc-1"}}}},
			{Key: "made_up", Bullets: []llm.Bullet{{Text: "x", Sources: []string{"deals/d-1"}}}},
		}}}
		res, err := summary.Generate(ctx, graphs, p, input("deals", "d-1", nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := sectionKeys(res.Sections); !slices.Equal(got, []string{llm.Overview, llm.DealProgress, llm.DealRisks,
			llm.PipelineMetrics, llm.RecentInteractions}) {
			t.Errorf("sections = %v", got)
		}
		if res.Dropped != 2 || res.Provider != "fake" || res.Model != "fake-1" || res.Usage.TotalTokens != 15 ||
			res.DataHash != "hash-d-1" || !res.DataAsOf.Equal(daysAgo(3)) || len(res.Insufficient) != 0 {
			t.Errorf("result = %+v", res)
		}
		if res.Sections[1].Bullets[0].Text != summary.NoSupportingData || res.Sections[3].Bullets[0].Sources[0] != "deals/d-1" {
			t.Errorf("sections = %+v", res.Sections)
		}
		if len(p.reqs) != 1 || p.reqs[0].OrgID != 7 || p.reqs[0].Facts == nil || len(res.Truncation.Sections) != 3 {
			t.Errorf("request %+v, truncation %+v", p.reqs, res.Truncation)
		}
	})
	t.Run("derived sections with every feeder hidden show the insufficient-data message in place", func(t *testing.T) {
		p := &fakeProvider{}
		hidden := hide(llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers, llm.StrategicValue)
		res, err := summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, p, input("accounts", "acc-1", hidden))
		if err != nil {
			t.Fatal(err)
		}
		if got := sectionKeys(res.Sections); !slices.Equal(got, []string{llm.KeyStakeholders, llm.ExecutiveSummary,
			llm.ExpansionOpportunities, llm.StrategicNextSteps, llm.ImmediateActions}) {
			t.Errorf("sections = %v", got)
		}
		exec := res.Sections[1]
		if exec.Title != "Executive Summary" || len(exec.Bullets) != 1 || exec.Bullets[0].Text != summary.InsufficientData {
			t.Errorf("executive summary = %+v", exec)
		}
		if !slices.Equal(res.Insufficient, []string{llm.ExecutiveSummary}) {
			t.Errorf("insufficient = %v", res.Insufficient)
		}
		if asked := keys(p.reqs[0].Sections); slices.Contains(asked, llm.ExecutiveSummary) {
			t.Errorf("the provider was asked for %v", asked)
		}
	})
	t.Run("when nothing is left to ask the provider is not called", func(t *testing.T) {
		p := &fakeProvider{}
		hidden := hide(llm.AccountHighlights, llm.KeyStakeholders, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers,
			llm.ExpansionOpportunities, llm.StrategicValue, llm.ImmediateActions)
		res, err := summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, p, input("accounts", "acc-1", hidden))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.reqs) != 0 || !slices.Equal(res.Insufficient, []string{llm.ExecutiveSummary, llm.StrategicNextSteps}) ||
			len(res.Sections) != 2 || res.Provider != "fake" || res.DataHash != "hash-acc-1" {
			t.Errorf("calls %d, result %+v", len(p.reqs), res)
		}
	})
	t.Run("errors keep their kind through the wrapping", func(t *testing.T) {
		_, err := summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, &fakeProvider{}, input("accounts", "nope", nil))
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing record: %v", err)
		}
		rl := &llm.RateLimitError{Delay: time.Second, Scope: "provider", Err: errors.New("429")}
		_, err = summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, &fakeProvider{err: rl}, input("accounts", "acc-1", nil))
		var got *llm.RateLimitError
		if !errors.As(err, &got) || got.Delay != time.Second {
			t.Errorf("rate limit: %v", err)
		}
		_, err = summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, &fakeProvider{err: llm.ErrTransient}, input("accounts", "acc-1", nil))
		if !errors.Is(err, llm.ErrTransient) {
			t.Errorf("transient: %v", err)
		}
	})
	t.Run("an unknown module fails before reading anything", func(t *testing.T) {
		graphs := &fakeGraphs{g: accountGraph()}
		_, err := summary.Generate(ctx, graphs, &fakeProvider{}, input("widgets", "acc-1", nil))
		if !errors.Is(err, summary.ErrUnknownModule) || graphs.calls != 0 {
			t.Errorf("err %v after %d reads", err, graphs.calls)
		}
	})
	t.Run("with the offline provider every section is answered and nothing is dropped", func(t *testing.T) {
		for _, fx := range realistic() {
			res, err := summary.Generate(ctx, &fakeGraphs{g: fx.graph}, offline.New(), input(fx.module, fx.graph.Subject.ID, nil))
			if err != nil {
				t.Fatal(err)
			}
			specs, _ := summary.Catalog(fx.module)
			if !slices.Equal(sectionKeys(res.Sections), keys(specs)) || res.Dropped != 0 || res.Model != offline.Model ||
				res.Provider != "offline" || res.Usage.PromptTokens == 0 {
				t.Errorf("%s: %+v", fx.module, res)
			}
		}
	})
	t.Run("the same data gives a byte-identical result", func(t *testing.T) {
		var first []byte
		for range 3 {
			res, err := summary.Generate(ctx, &fakeGraphs{g: accountGraph()}, offline.New(), input("accounts", "acc-1", nil))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(res)
			if first != nil && !bytes.Equal(first, b) {
				t.Fatalf("results differ:\n%s\n%s", first, b)
			}
			first = b
		}
	})
}

func TestResultJSON(t *testing.T) {
	res := summary.Result{
		Sections: []summary.Section{{Key: llm.Overview, Title: "Overview",
			Bullets: []llm.Bullet{{Text: "Globex.", Sources: []string{"custom_competitors/cmp-1"}}}}},
		Insufficient: []string{},
		Truncation:   summary.Truncation{Sections: []summary.SectionCut{}},
		Usage:        llm.Usage{PromptTokens: 120, OutputTokens: 30, TotalTokens: 150},
		Model:        offline.Model, Provider: "offline", DataHash: "h1",
		DataAsOf: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
	}
	want := `{"sections":[{"key":"overview","title":"Overview","bullets":[{"text":"Globex.","sources":["custom_competitors/cmp-1"]}]}],` +
		`"insufficient":[],"truncation":{"sections":[]},"usage":{"prompt_tokens":120,"output_tokens":30,"total_tokens":150},` +
		`"model":"crmq-offline-1","provider":"offline","data_hash":"h1","data_as_of":"2025-06-01T12:00:00Z","dropped":0}`
	t.Run("a result renders in the documented shape", func(t *testing.T) {
		if got := renderJSON(t, res); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}
