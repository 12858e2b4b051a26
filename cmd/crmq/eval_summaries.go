package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/gemini"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/workers/summary"
)

// runEvalSummaries scores a provider on the summary evaluation set.
func runEvalSummaries(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	provider := fs.String("provider", "offline", "offline, or gemini (needs GEMINI_API_KEY; CRMQ_GEMINI_MODEL and CRMQ_GEMINI_BASE_URL apply)")
	setPath := fs.String("set", "", "a JSON evaluation set to use instead of the built-in one (workers/summary/testdata/eval_summaries.json)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	c.detail = "Summarises every record of the evaluation set (about 20 hand-made records, each with the facts a\n" +
		"manager must see) with the provider and prints, per record and in all: must-mention coverage,\n" +
		"invented facts (bullets or refs validation dropped: unknown refs, numbers, dates and names the facts\n" +
		"do not hold; the bullets dropped for a number and for a name are also counted apart),\n" +
		"repeated bullets and words. Exit 1 below the thresholds: coverage under 90% or any invented fact."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	var data []byte
	if *setPath != "" {
		b, err := os.ReadFile(*setPath)
		if err != nil {
			return fmt.Errorf("eval summaries: %w", err)
		}
		data = b
	}
	cases, err := summary.EvalSet(data)
	if err != nil {
		return err
	}
	var p llm.Provider
	switch *provider {
	case "offline":
		p = offline.New()
	case "gemini":
		cfg, err := c.config()
		if err != nil {
			return err
		}
		if cfg.GeminiAPIKey == "" {
			return usagef(c.cmd, "--provider gemini needs GEMINI_API_KEY")
		}
		p, err = gemini.New(ctx, gemini.Config{APIKey: cfg.GeminiAPIKey, Model: cfg.GeminiModel, BaseURL: cfg.GeminiBaseURL,
			Timeout: cfg.LLMTimeout, MaxOutputTokens: cfg.GeminiMaxOut, ThinkingBudget: &cfg.GeminiThink})
		if err != nil {
			return err
		}
	default:
		return usagef(c.cmd, "--provider must be offline or gemini")
	}
	rep := summary.Evaluate(ctx, p, cases)
	if *asJSON {
		err = printJSON(c.stdout, rep)
	} else {
		err = printEvalReport(c, rep)
	}
	if err != nil {
		return err
	}
	if !rep.Passed() {
		return fmt.Errorf("eval summaries: coverage %.1f%% (at least %.0f%%), invented %d (at most %d), errors %d",
			rep.Coverage, summary.EvalMinCoverage, rep.Invented, summary.EvalMaxInvented, rep.Errors)
	}
	return nil
}

func printEvalReport(c *cli, rep summary.EvalReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "crmq eval summaries: provider %s, model %s, %d records\n\n", rep.Provider, rep.Model, len(rep.Cases))
	fmt.Fprintf(&b, "%-58s %7s %8s %7s %5s %7s %5s  %s\n", "record", "said", "invented", "numbers", "names", "repeats", "words", "missing")
	for _, r := range rep.Cases {
		missing := strings.Join(r.Missing, "; ")
		if r.Error != "" {
			missing = "error: " + r.Error
		}
		fmt.Fprintf(&b, "%-58s %3d/%-3d %8d %7d %5d %7d %5d  %s\n", r.Name, r.Wanted-len(r.Missing), r.Wanted, r.Invented,
			r.InventedNumbers, r.InventedNames, r.Repeats, r.Words, missing)
	}
	fmt.Fprintf(&b, "\ncoverage %.1f%% (threshold %.0f%%), invented %d (threshold %d; invented numbers %d, invented names %d), "+
		"repeats %d, words per summary %d, errors %d\n",
		rep.Coverage, summary.EvalMinCoverage, rep.Invented, summary.EvalMaxInvented, rep.InventedNumbers, rep.InventedNames,
		rep.Repeats, rep.Words, rep.Errors)
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}
