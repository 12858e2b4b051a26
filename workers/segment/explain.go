package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/crmq/crmq/store"
)

// Explanation says, per technique, why an account carries its label.
type Explanation struct {
	Account    string             `json:"account"`
	InScope    bool               `json:"in_scope"` // inside the global criteria
	Techniques []TechniqueExplain `json:"techniques"`
}

// TechniqueExplain is one technique's verdict on one account: the label,
// the values and scores that decided it, the rule that matched and when it
// was computed. Note says why there is no label or score.
type TechniqueExplain struct {
	Technique  string         `json:"technique"`
	State      string         `json:"state"`
	Label      *string        `json:"label"`
	Rule       *RuleRef       `json:"rule,omitempty"`
	Values     map[string]any `json:"values,omitempty"`
	Scores     map[string]int `json:"scores,omitempty"`
	Scale      int            `json:"scale,omitempty"`
	Mode       string         `json:"mode,omitempty"`
	ComputedAt *time.Time     `json:"computed_at,omitempty"`
	// Details is technique-specific: engagement's call times, VoC's quoted
	// texts, the account's recommendations.
	Details any    `json:"details,omitempty"`
	Note    string `json:"note,omitempty"`
}

// RuleRef is the label rule that matched: its position and its criteria.
type RuleRef struct {
	Index int   `json:"index"` // 0-based, in the order labels are tried
	Label Label `json:"label"`
}

// Explain explains every technique's label of the account (external id).
func (s Setup) Explain(ctx context.Context, orgID int64, account string) (Explanation, error) {
	results, inScope, err := s.DB.AccountResults(ctx, orgID, account, s.Now())
	if err != nil {
		return Explanation{}, err
	}
	byTech := map[string]store.AccountResult{}
	for _, r := range results {
		byTech[r.Technique] = r
	}
	stored, err := s.DB.Techniques(ctx, orgID)
	if err != nil {
		return Explanation{}, err
	}
	out := Explanation{Account: account, InScope: inScope, Techniques: []TechniqueExplain{}}
	for _, name := range Names {
		t := stored[name]
		t.Name = name
		e := TechniqueExplain{Technique: name, State: t.State}
		if e.State == "" {
			e.State = store.TechniqueInactive
		}
		res, ok := byTech[name]
		switch {
		case !ok && !inScope:
			e.Note = "outside the global criteria: not segmented"
		case !ok && name == store.TechniqueRFM && t.RefreshedAt != nil:
			e.Note = "no qualifying deal (by default a won deal): no RFM score"
		case !ok && name == store.TechniqueVoC && t.RefreshedAt != nil:
			e.Note = "no customer text from the chosen sources in the window: no VoC result"
		case !ok && name == store.TechniqueRecommendations && t.RefreshedAt != nil:
			e.Note = "nothing to recommend: no purchase pattern applies to the account"
		case !ok:
			e.Note = "not computed yet: the technique has not refreshed since the account took part"
		}
		if !ok {
			out.Techniques = append(out.Techniques, e)
			continue
		}
		at := res.ComputedAt
		e.Label, e.ComputedAt = res.Label, &at
		var row map[string]any
		var labels []Label
		var rules []store.LabelRule
		switch name {
		case store.TechniqueRFM:
			settings, ls, err := DecodeRFM(t)
			if err != nil {
				return Explanation{}, err
			}
			labels, e.Scale, e.Mode = ls, settings.Scale, settings.Mode
			errs := Errors{}
			if rules = checkLabels(labels, store.RFMLabelFields(), errs); len(errs) > 0 {
				e.Note = "the labels do not check: " + errs.Error()
			}
			dec := json.NewDecoder(bytes.NewReader(res.Raw))
			dec.UseNumber()
			if err := dec.Decode(&e.Values); err != nil {
				return Explanation{}, err
			}
			e.Scores = map[string]int{}
			row = map[string]any{}
			for k, v := range e.Values {
				row[k] = v
			}
			for k, p := range map[string]*int{"r": res.R, "f": res.F, "m": res.M} {
				if p != nil {
					e.Scores[k], row[k] = *p, *p
				}
			}
		case store.TechniqueEngagement, store.TechniqueVoC, store.TechniqueRecommendations:
			if err := s.explainBehaviour(ctx, orgID, account, t, res, &e); err != nil {
				return Explanation{}, err
			}
		default:
			ls, err := DecodeLabels(t, DefaultFirmographicLabels())
			if err != nil {
				return Explanation{}, err
			}
			labels = ls
			fields, err := s.DB.AccountFields(ctx, orgID)
			if err != nil {
				return Explanation{}, err
			}
			rules, err = CheckFirmographics(labels, fields)
			if err != nil {
				e.Note = "the labels no longer check against the mapping: " + err.Error()
				break
			}
			var names []string
			for _, r := range rules {
				names = append(names, r.Rule.Fields()...)
			}
			if row, err = s.DB.AccountValues(ctx, orgID, account, fields, uniq(names)); err != nil {
				return Explanation{}, err
			}
			e.Values = row
		}
		if row != nil {
			e.Rule = matchedRule(rules, labels, row, at)
			if e.Rule == nil && e.Label != nil || e.Rule != nil && (e.Label == nil || *e.Label != e.Rule.Label.Name) {
				e.Note = "the labels changed since this was computed; the next refresh relabels the account"
			}
		}
		out.Techniques = append(out.Techniques, e)
	}
	return out, nil
}

// matchedRule is the first rule whose criteria the values meet.
func matchedRule(rules []store.LabelRule, labels []Label, row map[string]any, at time.Time) *RuleRef {
	for _, r := range rules {
		if r.Rule.Eval(row, at) {
			return &RuleRef{Index: r.Index, Label: labels[r.Index]}
		}
	}
	return nil
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
