// Package summary makes AI record summaries: the summary:generate task and
// the work behind it.
//
// For a CRM record it reads the record's graph (Graphs, implemented by the
// store), picks the module's sections (Catalog, Sections; seed 000, seed
// 001 for accounts) that the org shows, computes the figures a summary
// states (counts, sums, shares, activity windows) over the whole graph,
// builds the prompt within a token budget and records what the budget cut
// (BuildPrompt), asks an llm.Provider, and keeps of the answer only what
// cites records the prompt held (Validate), counting what it dropped.
// Generate does all of that and stores nothing.
//
// Task.Run is the typed handler of summary:generate (cmd/worker registers
// it through workers.Handle): it reuses a stored summary of the same record
// at the same data hash when the consumption policy allows, otherwise
// generates one, and saves it under the job's id so a retried job
// overwrites its own row; a record deleted meanwhile fails the job at once. The daily quota is counted by the API when it accepts
// the request (the payload says whether it was counted); the rows are
// written by the store.
package summary

import (
	"context"
	"fmt"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// Graphs reads what a summary of one record needs (the store implements it).
type Graphs interface {
	SummaryGraph(ctx context.Context, orgID int64, module, id string) (store.SummaryGraph, error)
}

// Input names the record and how to summarise it.
type Input struct {
	OrgID  int64
	Module string
	ID     string
	// Visible holds false for each section an administrator hid; nil shows all.
	Visible      map[string]bool
	BudgetTokens int       // prompt budget; <= 0 means DefaultBudgetTokens
	Today        time.Time // the clock's now: "recent", "overdue", windows
}

// Result is a generated summary as stored and shown.
type Result struct {
	// Sections in catalog order: those asked for, as validated, and the
	// derived sections with insufficient data, each with one bullet
	// saying InsufficientData.
	Sections     []Section  `json:"sections"`
	Insufficient []string   `json:"insufficient"`
	Truncation   Truncation `json:"truncation"`
	Usage        llm.Usage  `json:"usage"`
	Model        string     `json:"model"`
	Provider     string     `json:"provider"`
	DataHash     string     `json:"data_hash"`
	DataAsOf     time.Time  `json:"data_as_of"`
	// Dropped counts what Validate removed from the answer; Drops says
	// what it was.
	Dropped int   `json:"dropped"`
	Drops   Drops `json:"-"`
}

// Generate reads the record's graph, asks the provider for the visible
// sections and validates the answer. Errors from the graph and the
// provider are wrapped, so errors.Is/As still find store.ErrNotFound,
// llm.ErrTransient, *llm.RateLimitError and the like.
func Generate(ctx context.Context, graphs Graphs, p llm.Provider, in Input) (Result, error) {
	catalog, err := Catalog(in.Module)
	if err != nil {
		return Result{}, err
	}
	g, err := graphs.SummaryGraph(ctx, in.OrgID, in.Module, in.ID)
	if err != nil {
		return Result{}, fmt.Errorf("summary of %s: %w", Ref(in.Module, in.ID), err)
	}
	asked, insufficient := Sections(in.Module, in.Visible)
	res := Result{
		Insufficient: insufficient,
		Provider:     p.Name(),
		DataHash:     g.DataHash,
		DataAsOf:     g.DataAsOf,
		Truncation:   Truncation{Sections: []SectionCut{}},
	}
	if res.Insufficient == nil {
		res.Insufficient = []string{}
	}
	var answered []Section
	if len(asked) > 0 {
		req, trunc, err := BuildPrompt(g, in.Module, asked, in.BudgetTokens, in.Today)
		if err != nil {
			return Result{}, fmt.Errorf("summary of %s: %w", Ref(in.Module, in.ID), err)
		}
		req.OrgID = in.OrgID
		resp, err := p.Generate(ctx, req)
		if err != nil {
			return Result{}, fmt.Errorf("summary of %s by %s: %w", Ref(in.Module, in.ID), p.Name(), err)
		}
		answered, res.Drops = ValidateDrops(resp.Answer, req)
		res.Dropped = res.Drops.Total()
		res.Truncation, res.Usage, res.Model = trunc, resp.Usage, resp.Model
	}

	// Catalog order, the insufficient sections in their places.
	byKey := make(map[string]Section, len(answered))
	for _, s := range answered {
		byKey[s.Key] = s
	}
	for _, k := range insufficient {
		byKey[k] = Section{Key: k, Bullets: []llm.Bullet{{Text: InsufficientData, Sources: []string{}}}}
	}
	res.Sections = make([]Section, 0, len(byKey))
	for _, spec := range catalog {
		if s, ok := byKey[spec.Key]; ok {
			s.Title = spec.Title
			res.Sections = append(res.Sections, s)
		}
	}
	return res, nil
}
