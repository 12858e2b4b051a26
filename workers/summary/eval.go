package summary

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// The evaluation set of summaries: hand-made records, each with the facts
// a manager must see in its summary (the unanswered renewal email, the
// single-threaded pipeline, the overdue objective...). Evaluate scores any
// provider on it; `crmq eval summaries` prints the scores and fails below
// the thresholds.

//go:embed testdata/eval_summaries.json
var evalSetJSON []byte

// EvalCase is one record of the set.
type EvalCase struct {
	Name   string             `json:"name"`
	Module string             `json:"module"`
	Today  time.Time          `json:"today"`
	Graph  store.SummaryGraph `json:"graph"`
	// MustMention are phrases the summary must say (case-insensitive;
	// amounts compared as written, currency and separators included).
	MustMention []string `json:"must_mention"`
}

// EvalSet is the embedded evaluation set, or the set in data when given.
func EvalSet(data []byte) ([]EvalCase, error) {
	if data == nil {
		data = evalSetJSON
	}
	var set struct {
		Cases []EvalCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("summary eval set: %w", err)
	}
	for i, c := range set.Cases {
		if c.Name == "" || c.Module == "" || c.Graph.Subject.ID == "" || len(c.MustMention) == 0 || c.Today.IsZero() {
			return nil, fmt.Errorf("summary eval set: case %d (%q) needs a name, module, today, subject and must_mention", i, c.Name)
		}
	}
	return set.Cases, nil
}

// EvalResult is one case's score.
type EvalResult struct {
	Name     string   `json:"name"`
	Module   string   `json:"module"`
	Missing  []string `json:"missing,omitempty"` // must-mention phrases the summary does not say
	Wanted   int      `json:"wanted"`
	Invented int      `json:"invented"` // what validation dropped: unknown refs, numbers and names the facts do not hold...
	// Of Invented: bullets dropped for a number or date, and for a name,
	// the facts do not hold.
	InventedNumbers int    `json:"invented_numbers"`
	InventedNames   int    `json:"invented_names"`
	Repeats         int    `json:"repeats"` // bullets saying a sentence another bullet already said
	Words           int    `json:"words"`
	Error           string `json:"error,omitempty"`
}

// EvalReport adds the cases up.
type EvalReport struct {
	Provider string       `json:"provider"`
	Model    string       `json:"model"`
	Cases    []EvalResult `json:"cases"`
	Coverage float64      `json:"coverage_percent"` // must-mention phrases said, of all
	Invented int          `json:"invented"`
	// Of Invented: bullets with a number or date, and with a name, the
	// facts do not hold.
	InventedNumbers int `json:"invented_numbers"`
	InventedNames   int `json:"invented_names"`
	Repeats         int `json:"repeats"`
	Words           int `json:"words_per_summary"`
	Errors          int `json:"errors"`
}

// Thresholds an evaluation must meet (the offline provider's, checked in
// make test).
const (
	EvalMinCoverage = 90.0
	EvalMaxInvented = 0
)

// Passed tells whether the report meets the thresholds.
func (r EvalReport) Passed() bool {
	return r.Errors == 0 && r.Coverage >= EvalMinCoverage && r.Invented <= EvalMaxInvented
}

var spaceRE = regexp.MustCompile(`\s+`)

// Evaluate summarises every case with p and scores it: must-mention
// coverage, invented facts (what Validate drops, with the bullets dropped
// for an invented number or date and for an invented name counted apart),
// repeated bullets and length in words.
func Evaluate(ctx context.Context, p llm.Provider, cases []EvalCase) EvalReport {
	rep := EvalReport{Provider: p.Name()}
	wanted, said, words := 0, 0, 0
	for _, c := range cases {
		r := EvalResult{Name: c.Name, Module: c.Module, Wanted: len(c.MustMention)}
		wanted += len(c.MustMention)
		g := c.Graph
		if g.Org == nil {
			g.Org = map[string]any{}
		}
		g.Subject.Module = c.Module
		res, err := Generate(ctx, evalGraphs{g}, p, Input{OrgID: 1, Module: c.Module, ID: g.Subject.ID, Today: c.Today})
		if err != nil {
			r.Error = err.Error()
			r.Missing = c.MustMention
			rep.Errors++
			rep.Cases = append(rep.Cases, r)
			continue
		}
		if res.Model != "" {
			rep.Model = res.Model
		}
		var all strings.Builder
		seen := map[string]bool{}
		for _, s := range res.Sections {
			for _, b := range s.Bullets {
				all.WriteString(b.Text + "\n")
				r.Words += len(strings.Fields(b.Text))
				key := strings.ToLower(spaceRE.ReplaceAllString(strings.TrimSpace(b.Text), " "))
				if seen[key] {
					r.Repeats++
				}
				seen[key] = true
			}
		}
		text := strings.ToLower(all.String())
		for _, m := range c.MustMention {
			if strings.Contains(text, strings.ToLower(m)) {
				said++
			} else {
				r.Missing = append(r.Missing, m)
			}
		}
		r.Invented, r.InventedNumbers, r.InventedNames = res.Dropped, res.Drops.Numbers, res.Drops.Names
		rep.Invented += r.Invented
		rep.InventedNumbers += r.InventedNumbers
		rep.InventedNames += r.InventedNames
		rep.Repeats += r.Repeats
		words += r.Words
		rep.Cases = append(rep.Cases, r)
	}
	if wanted > 0 {
		rep.Coverage = float64(said*1000/wanted) / 10
	}
	if len(cases) > 0 {
		rep.Words = words / len(cases)
	}
	return rep
}

// evalGraphs serves the case's graph.
type evalGraphs struct{ g store.SummaryGraph }

func (e evalGraphs) SummaryGraph(_ context.Context, _ int64, module, id string) (store.SummaryGraph, error) {
	if module != e.g.Subject.Module || id != e.g.Subject.ID {
		return store.SummaryGraph{}, store.ErrNotFound
	}
	return e.g, nil
}
