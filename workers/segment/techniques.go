// Package segment is ABM segmentation (seed 004): the techniques (RFM and
// firmographics: settings, labels, defaults and the seed's limits), and the
// segment:refresh task that computes scores and labels in Postgres and
// then every segment's membership.
package segment

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
)

// Label is a technique label: a name and the criteria an account must
// meet to carry it. Labels are tried in order; the first match wins.
//
// RFM, firmographics and VoC labels are criteria; an engagement label is a
// score range instead, a recommendation label its preferences.
type Label struct {
	Name      string            `json:"name"`
	Criteria  criteria.Criteria `json:"criteria,omitzero"`
	Range     *ScoreRange       `json:"range,omitempty"`
	Recommend *RecommendPrefs   `json:"preferences,omitempty"`
}

// Label count bounds (seed 004: RFM at most 8; firmographics 2 to 5).
const (
	MaxRFMLabels  = 8
	MinFirmLabels = 2
	MaxFirmLabels = 5
	maxLabelName  = 60
)

// RFM is the RFM technique's settings as a client sees and sends them.
type RFM struct {
	store.RFMSettings
}

// DefaultRFM: automatic percentiles on a 1-5 scale over won deals, by
// close date, number of deals and amount.
func DefaultRFM() RFM {
	return RFM{store.RFMSettings{Mode: "automatic", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount"}}
}

// DefaultRFMLabels are the eight labels for a 1-5 scale, in the order they
// are tried. Scores of 4 and 5 are high, 1 and 2 low:
//
//	Champions            r >= 4, f >= 4, m >= 4  bought recently, often, much
//	Loyal                r >= 3, f >= 4          buy often, not lapsed
//	Potential loyalists  r >= 4, f 2-3           recent, repeat buyers growing
//	New customers        r >= 4, f = 1           recent first purchase
//	At risk              r <= 2, f >= 3, m <= 3  used to buy often, lapsing
//	Can't lose them      r <= 2, f >= 4, m >= 4  big frequent buyers, lapsing
//	Hibernating          r <= 2, f <= 2, m >= 2  long quiet, some value
//	Lost                 r = 1, f <= 2, m = 1    long gone, little value
//
// An account matching none (say r = 3, f = 2) is unlabelled.
func DefaultRFMLabels() []Label {
	c := func(pattern string, conds ...string) criteria.Criteria {
		out := criteria.Criteria{Pattern: pattern}
		for _, s := range conds {
			parts := strings.Fields(s) // "r gte 4"
			out.Conditions = append(out.Conditions, criteria.Condition{Field: parts[0], Op: criteria.Op(parts[1]), Value: json.RawMessage(parts[2])})
		}
		return out
	}
	return []Label{
		{Name: "Champions", Criteria: c("", "r gte 4", "f gte 4", "m gte 4")},
		{Name: "Loyal", Criteria: c("", "r gte 3", "f gte 4")},
		{Name: "Potential loyalists", Criteria: c("", "r gte 4", "f between [2,3]")},
		{Name: "New customers", Criteria: c("", "r gte 4", "f equals 1")},
		{Name: "At risk", Criteria: c("", "r lte 2", "f gte 3", "m lte 3")},
		{Name: "Can't lose them", Criteria: c("", "r lte 2", "f gte 4", "m gte 4")},
		{Name: "Hibernating", Criteria: c("", "r lte 2", "f lte 2", "m gte 2")},
		{Name: "Lost", Criteria: c("", "r equals 1", "f lte 2", "m equals 1")},
	}
}

// DefaultFirmographicLabels group accounts by employee count; an org may
// edit or delete them.
func DefaultFirmographicLabels() []Label {
	between := func(lo, hi int) criteria.Criteria {
		return criteria.Criteria{Conditions: []criteria.Condition{{Field: "employees", Op: criteria.Between, Value: json.RawMessage(fmt.Sprintf("[%d,%d]", lo, hi))}}}
	}
	return []Label{
		{Name: "Enterprise", Criteria: criteria.Criteria{Conditions: []criteria.Condition{{Field: "employees", Op: criteria.Gte, Value: json.RawMessage("1000")}}}},
		{Name: "Mid-market", Criteria: between(100, 999)},
		{Name: "Small business", Criteria: between(1, 99)},
	}
}

// Errors maps a field of a technique's body to what is wrong with it.
type Errors map[string]string

func (e Errors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return "invalid technique: " + strings.Join(parts, "; ")
}

// CheckRFM validates settings and labels and returns the label rules.
func CheckRFM(s RFM, labels []Label) ([]store.LabelRule, error) {
	errs := Errors{}
	switch s.Mode {
	case "automatic":
		if s.Manual != nil {
			errs["settings.manual"] = "only in manual mode"
		}
	case "manual":
		checkManual(s.RFMSettings, errs)
	default:
		errs["settings.mode"] = "automatic or manual"
	}
	if s.Scale < 2 || s.Scale > 5 {
		errs["settings.scale"] = "scores run from 1 to scale, 2 to 5"
	}
	if !slices.Contains(store.RFMDateFields(), s.RecencyField) {
		errs["settings.recency_field"] = "a date field of deals: " + strings.Join(store.RFMDateFields(), ", ")
	}
	if s.Frequency != "deals" && s.Frequency != "products" {
		errs["settings.frequency"] = "deals (number of qualifying deals) or products (quantity bought on them)"
	}
	if !slices.Contains(store.RFMNumberFields(), s.MonetaryField) {
		errs["settings.monetary_field"] = "a number field of deals: " + strings.Join(store.RFMNumberFields(), ", ")
	}
	if len(labels) > MaxRFMLabels {
		errs["labels"] = fmt.Sprintf("at most %d labels", MaxRFMLabels)
	}
	rules := checkLabels(labels, store.RFMLabelFields(), errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return rules, nil
}

// CheckFirmographics validates labels over the org's account fields.
func CheckFirmographics(labels []Label, fields map[string]store.AccountField) ([]store.LabelRule, error) {
	errs := Errors{}
	if len(labels) < MinFirmLabels || len(labels) > MaxFirmLabels {
		errs["labels"] = fmt.Sprintf("%d to %d labels", MinFirmLabels, MaxFirmLabels)
	}
	types := make(map[string]criteria.Type, len(fields))
	for name, f := range fields {
		types[name] = f.Type
	}
	rules := checkLabels(labels, types, errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return rules, nil
}

func checkLabels(labels []Label, fields map[string]criteria.Type, errs Errors) []store.LabelRule {
	rules := make([]store.LabelRule, 0, len(labels))
	seen := map[string]bool{}
	for i, l := range labels {
		key := fmt.Sprintf("labels[%d]", i)
		name := strings.TrimSpace(l.Name)
		switch {
		case name == "" || utf8.RuneCountInString(name) > maxLabelName || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			errs[key+".name"] = fmt.Sprintf("1 to %d printable characters", maxLabelName)
		case seen[strings.ToLower(name)]:
			errs[key+".name"] = "two labels share this name"
		}
		seen[strings.ToLower(name)] = true
		checked, err := criteria.Check(l.Criteria, fields)
		if err != nil {
			if ce, ok := err.(criteria.Errors); ok {
				for k, v := range ce {
					errs[key+".criteria."+k] = v
				}
			} else {
				errs[key+".criteria"] = err.Error()
			}
			continue
		}
		if len(l.Criteria.Conditions) == 0 {
			errs[key+".criteria"] = "at least one condition"
			continue
		}
		rules = append(rules, store.LabelRule{Name: name, Rule: checked, Index: i})
	}
	return rules
}

func checkManual(s store.RFMSettings, errs Errors) {
	if s.Manual == nil {
		errs["settings.manual"] = "manual mode needs bands for recency, frequency and monetary"
		return
	}
	score := func(key string, v int, seen map[int]bool) {
		switch {
		case v < 2 || v > s.Scale:
			errs[key] = fmt.Sprintf("a score from 2 to the scale (%d); 1 is what no band matches", s.Scale)
		case seen[v]:
			errs[key] = "two bands give this score"
		}
		seen[v] = true
	}
	seen := map[int]bool{}
	for i, b := range s.Manual.Recency {
		score(fmt.Sprintf("settings.manual.recency[%d].score", i), b.Score, seen)
		if b.WithinDays < 0 || b.WithinDays > 36500 {
			errs[fmt.Sprintf("settings.manual.recency[%d].within_days", i)] = "0 to 36500 days"
		}
	}
	for name, bands := range map[string][]store.RangeBand{"frequency": s.Manual.Frequency, "monetary": s.Manual.Monetary} {
		seen := map[int]bool{}
		for i, b := range bands {
			key := fmt.Sprintf("settings.manual.%s[%d]", name, i)
			score(key+".score", b.Score, seen)
			switch {
			case b.Min == nil && b.Max == nil:
				errs[key] = "min, max or both"
			case b.Min != nil && b.Max != nil && *b.Min >= *b.Max:
				errs[key] = "min below max"
			}
		}
	}
}
