package summary_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/workers/summary"
)

// The offline provider meets the evaluation thresholds: at least 90% of
// what a manager must see, and no invented fact.
func TestEvalOfflineMeetsThresholds(t *testing.T) {
	cases, err := summary.EvalSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("%d cases in the evaluation set, want about 20", len(cases))
	}
	rep := summary.Evaluate(context.Background(), offline.New(), cases)
	for _, c := range rep.Cases {
		if len(c.Missing) > 0 || c.Invented > 0 || c.Error != "" {
			t.Logf("%s: missing %q, invented %d, error %s", c.Name, c.Missing, c.Invented, c.Error)
		}
	}
	if !rep.Passed() {
		t.Errorf("coverage %.1f%%, invented %d, errors %d; want >= %.0f%%, 0, 0", rep.Coverage, rep.Invented, rep.Errors, summary.EvalMinCoverage)
	}
}

// inventor answers every section with a bullet stating an amount no fact
// holds and nothing a manager must see: the scores say so.
type inventor struct{}

func (inventor) Name() string { return "inventor" }

func (inventor) Generate(_ context.Context, req llm.Request) (llm.Response, error) {
	var ans llm.Answer
	for _, s := range req.Sections {
		ans.Sections = append(ans.Sections, llm.SectionAnswer{Key: s.Key, Bullets: []llm.Bullet{
			{Text: "Worth USD 987,654.32.", Sources: []string{req.Facts.Subject.Ref}},
			{Text: "All is well.", Sources: []string{req.Facts.Subject.Ref}},
			{Text: "All is well.", Sources: []string{req.Facts.Subject.Ref}},
		}})
	}
	return llm.Response{Answer: ans, Model: "inventor-1"}, nil
}

func TestEvalScoresAnInventingProviderDown(t *testing.T) {
	cases, err := summary.EvalSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := summary.Evaluate(context.Background(), inventor{}, cases)
	if rep.Passed() || rep.Coverage > 10 || rep.Invented == 0 || rep.Repeats == 0 {
		t.Errorf("an inventing provider scores coverage %.1f%%, invented %d, repeats %d, passed %v",
			rep.Coverage, rep.Invented, rep.Repeats, rep.Passed())
	}
	if _, err := summary.EvalSet([]byte(`{"cases":[{"name":"x"}]}`)); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("an incomplete case loads: %v", err)
	}
}
