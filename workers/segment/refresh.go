package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers"
)

// Segments recomputes the org's segment memberships after a refresh.
type Segments interface {
	RecomputeSegments(ctx context.Context, orgID int64, now time.Time) (int, error)
}

// Refresher is the segment:refresh task. Scores, labels and memberships are
// computed by set-based SQL in Postgres; nothing is loaded into Go.
type Refresher struct {
	Store    *store.DB
	Segments Segments // nil: memberships are not recomputed
	Now      func() time.Time
	Log      *slog.Logger
	// IntentModel is the provider VoC asks for intents when the org
	// chose intent_classifier "llm": the worker's, when
	// CRMQ_LLM_PROVIDER=gemini. nil: the rule table, and the result says
	// so.
	IntentModel llm.Provider
	// IntentBudget is the most texts one refresh sends to the model;
	// <= 0: IntentTextsPerRefresh.
	IntentBudget int
	// RecommendChunk is the accounts per chunk of a recommendations
	// refresh (0: store.DefaultRecommendChunk).
	RecommendChunk int
}

// Run implements workers.Handler. Each requested active technique shows
// refreshing while it runs; one whose inputs (setup, data, version, day)
// did not change since its last refresh is skipped, and says so.
func (r Refresher) Run(ctx context.Context, job workers.Job[jobs.SegmentRefreshPayload]) (jobs.SegmentRefreshResult, error) {
	p := job.Payload
	now := r.Now()
	res := jobs.SegmentRefreshResult{Techniques: []jobs.TechniqueRun{}}
	techs, err := r.Store.BeginRefresh(ctx, p.OrgID, p.Techniques(), job.ID, now)
	if err != nil {
		return res, err
	}
	ended := map[string]bool{}
	defer func() { // a failed refresh leaves the technique active, not refreshing
		for _, t := range techs {
			if !ended[t.Name] {
				if err := r.Store.EndRefresh(context.WithoutCancel(ctx), p.OrgID, t.Name, t.Version, nil, now); err != nil {
					r.Log.WarnContext(ctx, "technique left refreshing", "technique", t.Name, "err", err)
				}
			}
		}
	}()
	if err := r.notBegun(ctx, p, techs, &res); err != nil {
		return res, err
	}
	input, err := r.Store.RefreshInput(ctx, p.OrgID, now)
	if err != nil {
		return res, err
	}
	behaviour := ""
	for _, t := range techs {
		if behavioural(t.Name) {
			if behaviour, err = r.Store.BehaviourInput(ctx, p.OrgID); err != nil {
				return res, err
			}
			break
		}
	}
	res.Skipped = true
	for i, t := range techs {
		run := jobs.TechniqueRun{Technique: t.Name, Version: t.Version}
		stamp := strconv.Itoa(t.Version) + "|" + input
		if behavioural(t.Name) {
			stamp += "|" + behaviour
		}
		if !p.Force && t.RefreshedInput != nil && *t.RefreshedInput == stamp {
			run.Skipped, run.Note = true, "nothing it reads changed since its last refresh"
			ended[t.Name] = true
			if err := r.Store.EndRefresh(ctx, p.OrgID, t.Name, t.Version, nil, now); err != nil {
				return res, err
			}
			res.Techniques = append(res.Techniques, run)
			continue
		}
		if behavioural(t.Name) {
			// Activated before a custom module took the accounts role:
			// skipped, saying why, so RFM and firmographics still refresh.
			if err := (Setup{DB: r.Store}).behaviourReady(ctx, p.OrgID, t.Name); errors.Is(err, store.ErrCustomAccounts) {
				run.Skipped, run.Note = true, err.Error()
				ended[t.Name] = true
				if err := r.Store.EndRefresh(ctx, p.OrgID, t.Name, t.Version, nil, now); err != nil {
					return res, err
				}
				res.Techniques = append(res.Techniques, run)
				continue
			} else if err != nil {
				return res, err
			}
		}
		res.Skipped = false
		// A long technique (recommendations, in chunks) moves the job's
		// progress within its share; a cancelled job stops it.
		progress := func(done, total int) error {
			return job.Progress(ctx, 80*i/max(len(techs), 1)+80*done/(max(total, 1)*max(len(techs), 1)))
		}
		if err := r.refresh(ctx, p.OrgID, t, now, job.ID, &run, progress); err != nil {
			return res, workers.Permanent(fmt.Errorf("%s: %w", t.Name, err))
		}
		ended[t.Name] = true
		if err := r.Store.EndRefresh(ctx, p.OrgID, t.Name, t.Version, &stamp, now); err != nil {
			return res, err
		}
		res.Techniques = append(res.Techniques, run)
		if err := job.Progress(ctx, 80*(i+1)/max(len(techs), 1)); err != nil {
			return res, err
		}
	}
	if res.Skipped {
		return res, nil
	}
	if r.Segments != nil {
		res.Segments, err = r.Segments.RecomputeSegments(ctx, p.OrgID, now)
		switch {
		case errors.Is(err, criteria.ErrInvalid):
			// Segments the mapping broke keep their last membership; the
			// refresh itself succeeded, and its result names them.
			res.SegmentErrors = err.Error()
			r.Log.WarnContext(ctx, "segments not recomputed: their criteria no longer check", "org_id", p.OrgID, "err", err)
		case err != nil:
			return res, fmt.Errorf("recompute segments: %w", err)
		}
		_ = job.Progress(ctx, 100)
	}
	return res, nil
}

// notBegun lists, with the reason, the requested techniques this job does
// not refresh: inactive ones, and ones another job is refreshing (it
// recomputes the segments when it ends).
func (r Refresher) notBegun(ctx context.Context, p jobs.SegmentRefreshPayload, begun []store.Technique, res *jobs.SegmentRefreshResult) error {
	stored, err := r.Store.Techniques(ctx, p.OrgID)
	if err != nil {
		return err
	}
	for _, name := range p.Techniques() {
		if slices.ContainsFunc(begun, func(t store.Technique) bool { return t.Name == name }) {
			continue
		}
		t := stored[name]
		run := jobs.TechniqueRun{Technique: name, Version: t.Version, Skipped: true, Note: "inactive"}
		if t.State == store.TechniqueRefreshing && t.RefreshJob != nil {
			run.Note = "being refreshed by job " + *t.RefreshJob
		}
		res.Techniques = append(res.Techniques, run)
	}
	return nil
}

// refresh computes one technique; progress (done and total steps) is
// reported by the techniques that run in steps.
func (r Refresher) refresh(ctx context.Context, orgID int64, t store.Technique, now time.Time, runID string, run *jobs.TechniqueRun, progress func(done, total int) error) error {
	scope, err := r.Store.ScopeFilter(ctx, orgID, now)
	if err != nil {
		return err
	}
	switch t.Name {
	case store.TechniqueRFM:
		settings, labels, err := DecodeRFM(t)
		if err != nil {
			return err
		}
		rules, err := CheckRFM(settings, labels)
		if err != nil {
			return permanent(err)
		}
		scored, err := r.Store.ScoreAndLabelRFM(ctx, orgID, settings.RFMSettings, rules, scope, now, runID)
		if err != nil {
			return err
		}
		run.Scored, run.Written = scored.Scored, scored.Written
		return nil
	case store.TechniqueFirmographics:
		labels, err := DecodeLabels(t, DefaultFirmographicLabels())
		if err != nil {
			return err
		}
		fields, err := r.Store.AccountFields(ctx, orgID)
		if err != nil {
			return err
		}
		rules, err := CheckFirmographics(labels, fields)
		if err != nil {
			return permanent(err)
		}
		run.Labelled, err = r.Store.LabelFirmographics(ctx, orgID, rules, fields, scope, now, runID)
		return err
	case store.TechniqueEngagement:
		settings, labels, err := DecodeEngagement(t)
		if err != nil {
			return err
		}
		rules, err := CheckEngagement(settings, labels)
		if err != nil {
			return permanent(err)
		}
		lr, err := r.Store.ScoreEngagement(ctx, orgID, settings.EngagementSettings, rules, scope, now, runID)
		run.Scored, run.Written = lr.Scored, lr.Written
		return err
	case store.TechniqueVoC:
		settings, labels, err := DecodeVoC(t)
		if err != nil {
			return err
		}
		rules, err := CheckVoC(settings, labels)
		if err != nil {
			return permanent(err)
		}
		a, err := NewAnalyser(settings.VoCSettings)
		if err != nil {
			return permanent(err)
		}
		vs, m := settings.VoCSettings, (*IntentModel)(nil)
		run.Intents = &jobs.IntentRun{Classifier: store.VoCIntentRules}
		if vs.IntentClassifier == store.VoCIntentLLM {
			if r.IntentModel != nil {
				run.Intents.Classifier = store.VoCIntentLLM
				m = &IntentModel{Provider: r.IntentModel, OrgID: orgID, Budget: r.IntentBudget, Log: r.Log, Run: run.Intents}
			} else {
				// The texts are analysed as under "rules" and cached so:
				// a worker with a model later sends them all.
				vs.IntentClassifier = store.VoCIntentRules
				run.Intents.Asked = store.VoCIntentLLM
				run.Intents.Note = "intent_classifier is llm but this worker has no model for it (CRMQ_LLM_PROVIDER is not gemini): intents from the rule table"
			}
		}
		if run.Analysed, err = AnalyseVoC(ctx, r.Store, orgID, vs, a, m, now); err != nil {
			return err
		}
		lr, err := r.Store.LabelVoC(ctx, orgID, settings.VoCSettings, a.Key, rules, scope, now, runID)
		run.Scored, run.Written = lr.Scored, lr.Written
		return err
	case store.TechniqueRecommendations:
		settings, labels, err := DecodeRecommendations(t)
		if err != nil {
			return err
		}
		if err := CheckRecommendations(settings, labels); err != nil {
			return permanent(err)
		}
		if err := r.recommendable(ctx, orgID); err != nil {
			return permanent(err)
		}
		ids, err := r.Store.ProductIDs(ctx, orgID, RecommendProducts(labels))
		if err != nil {
			return err
		}
		started, last := time.Now(), time.Now()
		opt := store.RecommendRun{ChunkAccounts: r.RecommendChunk, Progress: func(done, total int) error {
			if time.Since(last) >= 30*time.Second { // a heartbeat in the log of a long refresh
				last = time.Now()
				r.Log.InfoContext(ctx, "recommendations refreshing", "org_id", orgID, "step", done, "steps", total,
					"elapsed", time.Since(started).Round(time.Second).String())
			}
			return progress(done, total)
		}}
		lr, n, err := r.Store.Recommend(ctx, orgID, settings.RecommendSettings, resolveRecommendLabels(labels, ids), scope, now, runID, opt)
		run.Scored, run.Written, run.Recommendations = lr.Scored, lr.Written, n
		return err
	}
	return permanent(fmt.Errorf("unknown technique %q", t.Name))
}

// RefreshTechnique computes one stored technique of the org as
// segment:refresh does, without the skip check, the refreshing state or
// the segments: benchmarks time each technique with it.
func (r Refresher) RefreshTechnique(ctx context.Context, orgID int64, name string, now time.Time, runID string) (jobs.TechniqueRun, error) {
	stored, err := r.Store.Techniques(ctx, orgID)
	if err != nil {
		return jobs.TechniqueRun{}, err
	}
	t, ok := stored[name]
	if !ok {
		return jobs.TechniqueRun{}, fmt.Errorf("%q: %w", name, ErrUnknownTechnique)
	}
	t.Name = name
	run := jobs.TechniqueRun{Technique: name, Version: t.Version}
	if err := r.refresh(ctx, orgID, t, now, runID, &run, func(int, int) error { return ctx.Err() }); err != nil {
		return run, fmt.Errorf("%s: %w", name, err)
	}
	return run, nil
}

// behavioural tells whether a technique reads activities, cases or line
// items beyond what RefreshInput covers.
func behavioural(name string) bool {
	return name == store.TechniqueEngagement || name == store.TechniqueVoC || name == store.TechniqueRecommendations
}

// recommendable checks the mapping gives the recommendations technique
// its roles: the built-in products, accounts and deals modules (custom
// modules carry no line items).
func (r Refresher) recommendable(ctx context.Context, orgID int64) error {
	m, err := r.Store.ABMMapping(ctx, orgID)
	if err != nil {
		return err
	}
	for role, module := range map[string]string{store.RoleProducts: "products", store.RoleAccounts: "accounts", store.RoleDeals: "deals"} {
		if got := m.Roles[role].Module; got != module {
			return fmt.Errorf("recommendations need the %s role played by the built-in %s module (deals with line items), not %q", role, module, got)
		}
	}
	return nil
}

// DecodeEngagement reads a stored engagement technique, defaults filled in.
func DecodeEngagement(t store.Technique) (Engagement, []Label, error) {
	s := DefaultEngagement()
	if err := decodeSettings(t, &s); err != nil {
		return s, nil, err
	}
	labels, err := DecodeLabels(t, DefaultEngagementLabels())
	return s, labels, err
}

// DecodeVoC reads a stored VoC technique, defaults filled in.
func DecodeVoC(t store.Technique) (VoC, []Label, error) {
	s := DefaultVoC()
	if err := decodeSettings(t, &s); err != nil {
		return s, nil, err
	}
	labels, err := DecodeLabels(t, DefaultVoCLabels())
	return s, labels, err
}

// DecodeRecommendations reads a stored recommendations technique,
// defaults filled in.
func DecodeRecommendations(t store.Technique) (Recommendations, []Label, error) {
	s := DefaultRecommendations()
	if err := decodeSettings(t, &s); err != nil {
		return s, nil, err
	}
	labels, err := DecodeLabels(t, DefaultRecommendationLabels())
	return s, labels, err
}

func decodeSettings(t store.Technique, dst any) error {
	if len(t.Settings) > 0 && string(t.Settings) != "{}" && string(t.Settings) != "null" {
		if err := json.Unmarshal(t.Settings, dst); err != nil {
			return fmt.Errorf("%s settings: %w", t.Name, err)
		}
	}
	return nil
}

// DecodeRFM reads a stored RFM technique, defaults filled in.
func DecodeRFM(t store.Technique) (RFM, []Label, error) {
	s := DefaultRFM()
	if len(t.Settings) > 0 && string(t.Settings) != "{}" {
		if err := json.Unmarshal(t.Settings, &s); err != nil {
			return s, nil, fmt.Errorf("rfm settings: %w", err)
		}
	}
	labels, err := DecodeLabels(t, DefaultRFMLabels())
	return s, labels, err
}

// DecodeLabels reads a stored technique's labels; a technique never
// saved (no row, or a row without labels) has its defaults.
func DecodeLabels(t store.Technique, defaults []Label) ([]Label, error) {
	if len(t.Labels) == 0 || string(t.Labels) == "null" {
		return defaults, nil
	}
	var labels []Label
	if err := json.Unmarshal(t.Labels, &labels); err != nil {
		return nil, fmt.Errorf("%s labels: %w", t.Name, err)
	}
	return labels, nil
}

// permanent marks a stored setting no retry can fix.
func permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (permanentError) Permanent() bool   { return true }
func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Is(t error) bool { return errors.Is(e.error, t) }
