package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/crmq/crmq/store"
)

// explainBehaviour fills in the explanation of an engagement, VoC or
// recommendations result: the values that decided, the label that
// matched, and the details the seed asks for.
func (s Setup) explainBehaviour(ctx context.Context, orgID int64, account string, t store.Technique, res store.AccountResult, e *TechniqueExplain) error {
	dec := json.NewDecoder(bytes.NewReader(res.Raw))
	dec.UseNumber()
	if err := dec.Decode(&e.Values); err != nil {
		return err
	}
	var labels []Label
	var rules []store.LabelRule
	row := map[string]any{}
	switch t.Name {
	case store.TechniqueEngagement:
		settings, ls, err := DecodeEngagement(t)
		if err != nil {
			return err
		}
		labels = ls
		if rules, err = CheckEngagement(settings, ls); err != nil {
			e.Note = "the labels do not check: " + err.Error()
		}
		if res.Score != nil {
			e.Scores = map[string]int{"score": *res.Score}
			row["score"] = *res.Score
		}
		times, err := s.DB.EngagementCallTimes(ctx, orgID, account, settings.EngagementSettings, s.Now())
		if err != nil {
			return err
		}
		e.Details = map[string]any{"call_times": times, "most_unanswered_channel": e.Values["most_unanswered_channel"]}
	case store.TechniqueVoC:
		settings, ls, err := DecodeVoC(t)
		if err != nil {
			return err
		}
		labels = ls
		if rules, err = CheckVoC(settings, ls); err != nil {
			e.Note = "the labels do not check: " + err.Error()
		}
		row = vocRow(e.Values, store.VoCLabelColumns(settings.VoCSettings))
		var f store.VoCQuoteFilter
		matched := matchedRule(rules, labels, row, res.ComputedAt)
		if matched != nil {
			for _, c := range matched.Label.Criteria.Conditions {
				section, key, _ := strings.Cut(c.Field, ".")
				switch section {
				case "intent":
					f.Intents = append(f.Intents, key)
				case "sentiment":
					if key != "net" {
						f.Sentiments = append(f.Sentiments, key)
					}
				case "keyword":
					f.Keywords = append(f.Keywords, key)
				case "competitor":
					f.Competitors = append(f.Competitors, key)
				}
			}
		}
		a, err := NewAnalyser(settings.VoCSettings)
		if err != nil {
			return err
		}
		quotes, err := s.DB.VoCQuotes(ctx, orgID, account, settings.VoCSettings, a.Key, f, 3, s.Now())
		if err != nil {
			return err
		}
		makers, err := s.DB.VoCIntentMakers(ctx, orgID, account, settings.VoCSettings, a.Key, s.Now())
		if err != nil {
			return err
		}
		// Which classifier the org chose, and which made the intents of
		// the account's texts: rules, llm, or fallback (the rule table
		// where the model's answer left a text out).
		e.Details = map[string]any{"quotes": quotes, "intent_classifier": settings.IntentClassifier, "intents_by": makers}
	case store.TechniqueRecommendations:
		_, ls, err := DecodeRecommendations(t)
		if err != nil {
			return err
		}
		if res.Score != nil {
			e.Scores = map[string]int{"top_probability": *res.Score}
		}
		recs, err := s.DB.AccountRecommendations(ctx, orgID, account)
		if err != nil {
			return err
		}
		e.Details = map[string]any{"recommendations": recs[:min(len(recs), 10)]}
		if res.Label != nil {
			for i, l := range ls {
				if strings.TrimSpace(l.Name) == *res.Label {
					e.Rule = &RuleRef{Index: i, Label: l}
				}
			}
		}
		return nil
	}
	e.Rule = matchedRule(rules, labels, row, res.ComputedAt)
	if e.Rule == nil && e.Label != nil || e.Rule != nil && (e.Label == nil || *e.Label != e.Rule.Label.Name) {
		e.Note = "the labels changed since this was computed; the next refresh relabels the account"
	}
	return nil
}

// vocRow flattens a VoC result into the fields VoC labels name
// (intent.purchase, sentiment.negative, keyword.price, texts, ...).
func vocRow(values map[string]any, fields map[string]string) map[string]any {
	row := map[string]any{"texts": values["texts"]}
	for _, section := range []string{"intent", "sentiment", "keyword", "competitor"} {
		m, _ := values[section].(map[string]any)
		for k, v := range m {
			row[section+"."+k] = v
		}
	}
	// A share or count the account does not have is 0, as in SQL.
	for name := range fields {
		if _, ok := row[name]; !ok {
			row[name] = 0
		}
	}
	return row
}
