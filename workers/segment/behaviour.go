package segment

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
)

// ScoreRange is an engagement label's range of scores, both ends included.
type ScoreRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// RecommendPrefs are a recommendation label's preferences (seed 004): two
// or more types, each with at most 10 products (none: any product), at
// most 2 bundles of 2 products each (only with the bundle type), and the
// least purchase probability.
type RecommendPrefs struct {
	Types          []RecommendType `json:"types"`
	Bundles        [][]string      `json:"bundles,omitempty"`
	MinProbability int             `json:"min_probability"`
}

// RecommendType is one chosen type and its products (external ids).
type RecommendType struct {
	Type     string   `json:"type"`
	Products []string `json:"products,omitempty"`
}

// Label bounds of the behavioural techniques (seed 004: engagement at
// least 5 labels; recommendations 2 to 5; VoC labels need a preference).
const (
	MinEngagementLabels = 5
	MaxEngagementLabels = 10
	MaxVoCLabels        = 5
	MinRecLabels        = 2
	MaxRecLabels        = 5
	MaxRecProducts      = 10
	MaxRecBundles       = 2
	maxVoCTerms         = 50
	maxStatuses         = 20
)

// Engagement is the engagement technique's settings.
type Engagement struct {
	store.EngagementSettings
}

// DefaultEngagement: every medium enabled over 90 days. Points follow the
// seed's example (a Facebook response 5, an answered call 6, an email
// response 6); the rest are crmq's choice: a meeting 8 (the customer gave
// an hour), a survey response 5, a desk ticket 3, a Twitter response 4, an
// event (backstage) or webinar attendance 4, a website visit or portal
// use 2. A follow-up that got no response costs points where a medium
// reports it: an unattended call -3, a bounced email -2.
func DefaultEngagement() Engagement {
	ch := func(resp, neg float64) store.EngagementChannel {
		return store.EngagementChannel{Enabled: true, ResponsePoints: resp, NoResponsePoints: neg}
	}
	return Engagement{store.EngagementSettings{
		WindowDays: 90,
		Channels: map[string]store.EngagementChannel{
			"email": ch(6, -2), "call": ch(6, -3), "meeting": ch(8, 0), "survey": ch(5, 0), "desk": ch(3, 0),
			"facebook": ch(5, 0), "twitter": ch(4, 0), "backstage": ch(4, 0), "webinar": ch(4, 0), "visit": ch(2, 0), "portal": ch(2, 0),
		},
		NoResponseStatuses: []string{"Unattended", "Missed", "No answer", "Bounced", "Undelivered"},
	}}
}

// DefaultEngagementLabels are five bands from cold to hot.
func DefaultEngagementLabels() []Label {
	band := func(name string, from, to int) Label { return Label{Name: name, Range: &ScoreRange{from, to}} }
	return []Label{band("Cold", 0, 19), band("Cool", 20, 39), band("Warm", 40, 59), band("Engaged", 60, 79), band("Hot", 80, 100)}
}

// CheckEngagement validates settings and labels and returns the label
// rules over "score".
func CheckEngagement(s Engagement, labels []Label) ([]store.LabelRule, error) {
	errs := Errors{}
	if s.WindowDays < 1 || s.WindowDays > 730 {
		errs["settings.window_days"] = "1 to 730 days"
	}
	enabled := 0
	for m, c := range s.Channels {
		key := "settings.channels." + m
		switch {
		case !slices.Contains(store.Mediums(), m):
			errs[key] = "not a medium: " + strings.Join(store.Mediums(), ", ")
		case c.ResponsePoints < 0 || c.ResponsePoints > 100:
			errs[key+".response_points"] = "0 to 100"
		case c.NoResponsePoints < -100 || c.NoResponsePoints > 0:
			errs[key+".no_response_points"] = "-100 to 0"
		}
		if c.Enabled {
			enabled++
		}
	}
	if enabled == 0 {
		errs["settings.channels"] = "enable at least one medium"
	}
	if len(s.NoResponseStatuses) > maxStatuses {
		errs["settings.no_response_statuses"] = fmt.Sprintf("at most %d statuses", maxStatuses)
	}
	for i, st := range s.NoResponseStatuses {
		if n := len(strings.TrimSpace(st)); n == 0 || n > 40 {
			errs[fmt.Sprintf("settings.no_response_statuses[%d]", i)] = "1 to 40 characters"
		}
	}
	if len(labels) < MinEngagementLabels || len(labels) > MaxEngagementLabels {
		errs["labels"] = fmt.Sprintf("%d to %d labels", MinEngagementLabels, MaxEngagementLabels)
	}
	conv := make([]Label, len(labels))
	var ranges []ScoreRange
	for i, l := range labels {
		key := fmt.Sprintf("labels[%d]", i)
		conv[i] = Label{Name: l.Name}
		switch {
		case l.Recommend != nil || len(l.Criteria.Conditions) > 0:
			errs[key] = "an engagement label is a name and a score range only"
		case l.Range == nil:
			errs[key+".range"] = "required: from and to, 0 to 100"
		case l.Range.From < 0 || l.Range.To > 100 || l.Range.From > l.Range.To:
			errs[key+".range"] = "0 <= from <= to <= 100"
		default:
			ranges = append(ranges, *l.Range)
			conv[i].Criteria = criteria.Criteria{Conditions: []criteria.Condition{{Field: "score", Op: criteria.Between,
				Value: json.RawMessage(fmt.Sprintf("[%d,%d]", l.Range.From, l.Range.To))}}}
		}
	}
	if len(ranges) == len(labels) && len(labels) > 0 {
		sort.Slice(ranges, func(i, j int) bool { return ranges[i].From < ranges[j].From })
		next := 0
		for _, r := range ranges {
			if r.From > next {
				errs["labels"] = fmt.Sprintf("the ranges leave a gap: %d to %d is in no label; together they cover 0 to 100", next, r.From-1)
				break
			}
			if r.From < next {
				errs["labels"] = fmt.Sprintf("the ranges overlap at %d; each score belongs to one label", r.From)
				break
			}
			next = r.To + 1
		}
		if errs["labels"] == "" && next != 101 {
			errs["labels"] = fmt.Sprintf("the ranges end at %d; together they cover 0 to 100", next-1)
		}
	}
	rules := checkLabels(conv, map[string]criteria.Type{"score": criteria.Number}, errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return rules, nil
}

// VoC is the voice-of-the-customer technique's settings.
type VoC struct {
	store.VoCSettings
}

// DefaultVoC: every source over a year, a few keywords, no competitors
// (the org chooses them from its competitor list), intents from the rule
// table.
func DefaultVoC() VoC {
	return VoC{store.VoCSettings{Sources: store.VoCSources(), WindowDays: 365,
		Keywords: []string{"price", "renewal", "support", "invoice", "seats"}, Competitors: []string{},
		IntentClassifier: store.VoCIntentRules}}
}

// DefaultVoCLabels: ready to buy (purchase intent of at least half the
// texts), unhappy (mostly negative) and advocates (mostly positive).
func DefaultVoCLabels() []Label {
	one := func(name, field string, op criteria.Op, v string) Label {
		return Label{Name: name, Criteria: criteria.Criteria{Conditions: []criteria.Condition{{Field: field, Op: op, Value: json.RawMessage(v)}}}}
	}
	return []Label{
		one("Ready to buy", "intent.purchase", criteria.Gte, "50"),
		one("Unhappy", "sentiment.negative", criteria.Gte, "50"),
		one("Advocate", "sentiment.positive", criteria.Gte, "60"),
	}
}

// vocTermRE is what a keyword or competitor may be: it becomes a field
// name (voc.keyword.<key>) and a key in SQL, so no quote or backslash.
var vocTermRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 &.+_-]{0,39}$`)

// CheckVoC validates settings and labels and returns the label rules.
func CheckVoC(s VoC, labels []Label) ([]store.LabelRule, error) {
	errs := Errors{}
	if len(s.Sources) == 0 {
		errs["settings.sources"] = "at least one of " + strings.Join(store.VoCSources(), ", ")
	}
	seen := map[string]bool{}
	for i, src := range s.Sources {
		if !slices.Contains(store.VoCSources(), src) || seen[src] {
			errs[fmt.Sprintf("settings.sources[%d]", i)] = "each once, of " + strings.Join(store.VoCSources(), ", ")
		}
		seen[src] = true
	}
	if s.WindowDays < 1 || s.WindowDays > 1095 {
		errs["settings.window_days"] = "1 to 1095 days"
	}
	terms := func(name string, list []string) {
		if len(list) > maxVoCTerms {
			errs["settings."+name] = fmt.Sprintf("at most %d", maxVoCTerms)
		}
		seen := map[string]bool{}
		for i, t := range list {
			k := store.VoCKey(t)
			switch {
			case !vocTermRE.MatchString(strings.TrimSpace(t)):
				errs[fmt.Sprintf("settings.%s[%d]", name, i)] = "1 to 40 of letters, digits, space and . & + _ - (starting with a letter or digit)"
			case seen[k]:
				errs[fmt.Sprintf("settings.%s[%d]", name, i)] = "listed twice"
			}
			seen[k] = true
		}
	}
	terms("keywords", s.Keywords)
	terms("competitors", s.Competitors)
	if c := s.IntentClassifier; c != "" && !slices.Contains(store.VoCIntentClassifiers(), c) {
		errs["settings.intent_classifier"] = "rules (the rule table, the default) or llm (the model, when the worker's LLM provider is gemini)"
	}
	if len(labels) > MaxVoCLabels {
		errs["labels"] = fmt.Sprintf("at most %d labels", MaxVoCLabels)
	}
	fields := map[string]criteria.Type{}
	for name := range store.VoCLabelColumns(s.VoCSettings) {
		fields[name] = criteria.Number
	}
	for i, l := range labels {
		if l.Range != nil || l.Recommend != nil {
			errs[fmt.Sprintf("labels[%d]", i)] = "a VoC label is a name and criteria over intent, sentiment, keyword and competitor"
		}
		if len(l.Criteria.Conditions) == 0 {
			errs[fmt.Sprintf("labels[%d].criteria", i)] = "at least one preference: an intent share, a sentiment, a keyword or a competitor"
		}
	}
	rules := checkLabels(labels, fields, errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return rules, nil
}

// Recommendations is the recommendations technique's settings; Roles is
// read-only (from the mapping) and ignored on PUT.
type Recommendations struct {
	store.RecommendSettings
	Roles *RecommendRoles `json:"roles,omitempty"`
}

// RecommendRoles are the seed's general configuration, derived from the
// mapping: nothing to set by hand.
type RecommendRoles struct {
	RecommendedModule   string `json:"recommended_module"`
	RecommendedOnModule string `json:"recommended_on_module"`
	TransactionModule   string `json:"transaction_module"`
	CompletionField     string `json:"completion_field"`
}

// DefaultRecommendations: a pattern must rest on at least 2 accounts (or
// deals); an account keeps its 5 most probable products per type.
func DefaultRecommendations() Recommendations {
	return Recommendations{RecommendSettings: store.RecommendSettings{MinAccounts: 2, PerType: 5}}
}

// DefaultRecommendationLabels are the seed's two: Hot prospect (any type,
// probability at least 60) and Cold prospect (any type, any probability).
func DefaultRecommendationLabels() []Label {
	all := func() []RecommendType {
		var out []RecommendType
		for _, t := range store.RecommendationTypes() {
			out = append(out, RecommendType{Type: t})
		}
		return out
	}
	return []Label{
		{Name: "Hot prospect", Recommend: &RecommendPrefs{Types: all(), MinProbability: 60}},
		{Name: "Cold prospect", Recommend: &RecommendPrefs{Types: all(), MinProbability: 1}},
	}
}

// CheckRecommendations validates settings and labels (products are
// checked against the org's products by Setup.Put).
func CheckRecommendations(s Recommendations, labels []Label) error {
	errs := Errors{}
	if s.MinAccounts < 1 || s.MinAccounts > 1000 {
		errs["settings.min_support_count"] = "1 to 1000"
	}
	if s.PerType < 1 || s.PerType > 10 {
		errs["settings.max_per_type"] = "1 to 10"
	}
	if len(labels) < MinRecLabels || len(labels) > MaxRecLabels {
		errs["labels"] = fmt.Sprintf("%d to %d labels", MinRecLabels, MaxRecLabels)
	}
	checkLabelNames(labels, errs)
	for i, l := range labels {
		key := fmt.Sprintf("labels[%d]", i)
		p := l.Recommend
		if l.Range != nil || len(l.Criteria.Conditions) > 0 {
			errs[key] = "a recommendation label is a name and preferences"
		}
		if p == nil {
			errs[key+".preferences"] = "required: two or more types, products, bundles and a purchase probability"
			continue
		}
		if len(p.Types) < 2 {
			errs[key+".preferences.types"] = "choose two or more recommendation types"
		}
		seen := map[string]bool{}
		for j, t := range p.Types {
			tk := fmt.Sprintf("%s.preferences.types[%d]", key, j)
			switch {
			case !slices.Contains(store.RecommendationTypes(), t.Type):
				errs[tk+".type"] = "one of " + strings.Join(store.RecommendationTypes(), ", ")
			case seen[t.Type]:
				errs[tk+".type"] = "chosen twice"
			case t.Type == store.RecBundle && len(t.Products) > 0:
				errs[tk+".products"] = "a bundle names its products in preferences.bundles"
			case len(t.Products) > MaxRecProducts:
				errs[tk+".products"] = fmt.Sprintf("at most %d products per type", MaxRecProducts)
			}
			seen[t.Type] = true
			for k, prod := range t.Products {
				if prod == "" || len(prod) > 255 {
					errs[fmt.Sprintf("%s.products[%d]", tk, k)] = "a product's external id"
				}
			}
		}
		if len(p.Bundles) > 0 && !seen[store.RecBundle] {
			errs[key+".preferences.bundles"] = "bundles need the bundle type"
		}
		if len(p.Bundles) > MaxRecBundles {
			errs[key+".preferences.bundles"] = fmt.Sprintf("at most %d bundles", MaxRecBundles)
		}
		for k, b := range p.Bundles {
			if len(b) != 2 || b[0] == "" || b[1] == "" || b[0] == b[1] {
				errs[fmt.Sprintf("%s.preferences.bundles[%d]", key, k)] = "a bundle is two different products"
			}
		}
		if p.MinProbability < 0 || p.MinProbability > 100 {
			errs[key+".preferences.min_probability"] = "0 to 100"
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// RecommendProducts lists every product external id the labels name.
func RecommendProducts(labels []Label) []string {
	var out []string
	for _, l := range labels {
		if l.Recommend == nil {
			continue
		}
		for _, t := range l.Recommend.Types {
			out = append(out, t.Products...)
		}
		for _, b := range l.Recommend.Bundles {
			out = append(out, b...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveRecommendLabels turns labels into store labels over product ids
// (ids missing from ids are left out: a product deleted since matches
// nothing).
func resolveRecommendLabels(labels []Label, ids map[string]int64) []store.RecommendLabel {
	out := make([]store.RecommendLabel, 0, len(labels))
	for _, l := range labels {
		r := store.RecommendLabel{Name: strings.TrimSpace(l.Name), Types: map[string][]int64{}}
		if l.Recommend == nil {
			out = append(out, r)
			continue
		}
		r.MinProbability = l.Recommend.MinProbability
		for _, t := range l.Recommend.Types {
			list := []int64{}
			for _, p := range t.Products {
				if id, ok := ids[p]; ok {
					list = append(list, id)
				}
			}
			if len(t.Products) > 0 && len(list) == 0 {
				list = []int64{-1} // its products are gone: matches nothing
			}
			r.Types[t.Type] = list
		}
		for _, b := range l.Recommend.Bundles {
			if len(b) == 2 {
				r.Bundles = append(r.Bundles, [2]int64{ids[b[0]], ids[b[1]]})
			}
		}
		out = append(out, r)
	}
	return out
}

// checkLabelNames checks names as checkLabels does, for labels without
// criteria.
func checkLabelNames(labels []Label, errs Errors) {
	conv := make([]Label, len(labels))
	for i, l := range labels {
		conv[i] = Label{Name: l.Name, Criteria: criteria.Criteria{Conditions: []criteria.Condition{{Field: "x", Op: criteria.IsEmpty}}}}
	}
	checkLabels(conv, map[string]criteria.Type{"x": criteria.Number}, errs)
}
