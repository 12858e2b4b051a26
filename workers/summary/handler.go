package summary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// Store is what the summary task needs of Postgres.
type Store interface {
	Graphs
	SummaryDataHash(ctx context.Context, orgID int64, module, externalID string) (string, time.Time, error)
	SummarySectionVisibility(ctx context.Context, orgID int64) (map[string]bool, error)
	SummaryByHash(ctx context.Context, orgID int64, module, recordExternalID, dataHash string) (store.Summary, error)
	SaveSummary(ctx context.Context, s store.Summary) error
}

// Summarizer is the summary:generate task.
type Summarizer struct {
	Store    Store
	Provider llm.Provider
	Budget   int              // prompt budget in estimated tokens
	Now      func() time.Time // the clock
	// Dropped is told how many source ids a model cited that were not in
	// its prompt (a metric); may be nil.
	Dropped func(module string, n int)
}

// Run generates, or reuses, the summary and stores it under the job's id,
// so a retried job overwrites its own row and never adds a second one.
//
// Reuse (seed 000's consumption policy): without regenerate, a summary of
// the same record at the same data hash is reused whoever made it; with
// regenerate, only when the request was not counted (the user already had
// this record at this data counted today). Reuse never calls the model.
func (t Summarizer) Run(ctx context.Context, job workers.Job[jobs.SummaryPayload]) (jobs.SummaryResult, error) {
	p := job.Payload
	vis, err := t.Store.SummarySectionVisibility(ctx, p.OrgID)
	if err != nil {
		return jobs.SummaryResult{}, err
	}
	hash, _, err := t.Store.SummaryDataHash(ctx, p.OrgID, p.Module, p.RecordID)
	if err != nil {
		return jobs.SummaryResult{}, permanentIfGone(err)
	}
	if !p.Regenerate || !p.Counted {
		prev, err := t.Store.SummaryByHash(ctx, p.OrgID, p.Module, p.RecordID, hash)
		switch {
		case err == nil && sameSections(prev, p.Module, vis):
			return t.reuse(ctx, job, prev)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return jobs.SummaryResult{}, err
		}
	}

	res, err := Generate(ctx, t.Store, t.Provider, Input{
		OrgID: p.OrgID, Module: p.Module, ID: p.RecordID, Visible: vis,
		BudgetTokens: t.Budget, Today: t.Now(),
	})
	if err != nil {
		return jobs.SummaryResult{}, workers.Permanent(permanentIfGone(err))
	}
	sections, err := json.Marshal(res.Sections)
	if err != nil {
		return jobs.SummaryResult{}, err
	}
	trunc, err := json.Marshal(res.Truncation)
	if err != nil {
		return jobs.SummaryResult{}, err
	}
	s := store.Summary{
		ID: job.ID, OrgID: p.OrgID, UserID: p.UserID, Module: p.Module, RecordExternalID: p.RecordID,
		DataHash: res.DataHash, DataAsOf: res.DataAsOf, Provider: res.Provider, Model: res.Model,
		Sections: sections, Truncation: trunc,
		PromptTokens: res.Usage.PromptTokens, OutputTokens: res.Usage.OutputTokens, TotalTokens: res.Usage.TotalTokens,
		DroppedSourceIDs: res.Dropped,
	}
	if err := t.Store.SaveSummary(ctx, s); err != nil {
		return jobs.SummaryResult{}, permanentIfGone(err)
	}
	if t.Dropped != nil && res.Dropped > 0 {
		t.Dropped(p.Module, res.Dropped)
	}
	return jobs.SummaryResult{
		SummaryID: job.ID, URL: "/v1/summaries/" + job.ID, Provider: res.Provider, Model: res.Model,
		Usage: res.Usage, DroppedSourceIDs: res.Dropped,
	}, nil
}

// reuse stores a copy of prev under the job's id; the copy cost no tokens.
func (t Summarizer) reuse(ctx context.Context, job workers.Job[jobs.SummaryPayload], prev store.Summary) (jobs.SummaryResult, error) {
	p := job.Payload
	origin := prev.ID
	if prev.ReusedFrom != nil {
		origin = *prev.ReusedFrom
	}
	s := prev
	s.ID, s.UserID, s.ReusedFrom = job.ID, p.UserID, &origin
	s.PromptTokens, s.OutputTokens, s.TotalTokens = 0, 0, 0
	s.Saved, s.SavedAt, s.CreatedAt = false, nil, time.Time{}
	if err := t.Store.SaveSummary(ctx, s); err != nil {
		return jobs.SummaryResult{}, permanentIfGone(err)
	}
	return jobs.SummaryResult{
		SummaryID: job.ID, URL: "/v1/summaries/" + job.ID, ReusedFrom: &origin,
		Provider: prev.Provider, Model: prev.Model, DroppedSourceIDs: prev.DroppedSourceIDs,
	}, nil
}

// sameSections tells whether prev shows the sections the org's current
// visibility asks for, so a reused summary never shows a hidden section.
func sameSections(prev store.Summary, module string, vis map[string]bool) bool {
	var stored []struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(prev.Sections, &stored) != nil {
		return false
	}
	asked, insufficient := Sections(module, vis)
	want := append([]string{}, insufficient...)
	for _, s := range asked {
		want = append(want, s.Key)
	}
	got := make([]string, len(stored))
	for i, s := range stored {
		got[i] = s.Key
	}
	slices.Sort(want)
	slices.Sort(got)
	return slices.Equal(want, got)
}

// permanentIfGone fails the job at once when the record was deleted after
// the request was accepted: no retry can bring it back.
func permanentIfGone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}
