package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/segment"
)

func ago(d float64) string {
	return today.Add(-time.Duration(d * float64(24*time.Hour))).Format(time.RFC3339)
}

// act is one activity row.
func act(id, medium, direction, at, who, status, text string) string {
	kind := map[string]string{"email": "email", "call": "call", "facebook": "social", "desk": "ticket", "survey": "survey"}[medium]
	if kind == "" {
		kind = "note"
	}
	row := map[string]any{"external_id": id, "kind": kind, "medium": medium, "direction": direction, "occurred_at": at, "subject": text}
	if strings.HasPrefix(who, "acc:") {
		row["account"] = strings.TrimPrefix(who, "acc:")
	} else {
		row["contact"] = who
	}
	if status != "" {
		row["status"] = status
	}
	b, _ := json.Marshal(row)
	return string(b)
}

func (f *fixture) activate(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, _, err := f.setup.Activate(context.Background(), f.org, n); err != nil {
			t.Fatalf("activate %s: %v", n, err)
		}
	}
}

func (f *fixture) result(t *testing.T, technique, account string) (raw map[string]any, score *int, label string) {
	t.Helper()
	var row struct {
		Raw   []byte  `db:"raw"`
		Score *int    `db:"score"`
		Label *string `db:"label"`
	}
	err := f.db.GetContext(context.Background(), &row, `SELECT l.raw, l.score, l.label FROM account_labels l JOIN accounts a ON a.id = l.account_id
		WHERE l.org_id = $1 AND l.technique = $2 AND a.external_id = $3`, f.org, technique, account)
	if err != nil {
		t.Fatalf("%s result of %s: %v", technique, account, err)
	}
	if err := json.Unmarshal(row.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if row.Label != nil {
		label = *row.Label
	}
	return raw, row.Score, label
}

// Engagement under given weights (email response 6, bounced email -2,
// answered call 6, unattended call -3, every other medium off), worked
// out by hand:
//
//	hot:  5 email responses                              = 30
//	eng:  3 email + 1 call response, 2 unattended calls  = 18 + 6 - 6 = 18
//	      (an email 200 days ago and a Facebook response do not count)
//	cool: 1 email response on the account, 1 bounced     = 6 - 2 = 4
//	neg:  2 unattended calls                             = -6
//	none: nothing                                        = 0
//
// The 95th percentile of the positive raw scores (4, 18, 30) by linear
// interpolation is 18 + 0.9 * (30 - 18) = 28.8, so the scores are
// round(100 * raw / 28.8) capped at 100: hot 100, eng 63 (62.5 rounds
// up), cool 14, neg 0, none 0.
func TestEngagementScoresUnderGivenWeights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "accounts", `{"external_id":"hot","name":"Hot"}`, `{"external_id":"eng","name":"Eng"}`,
		`{"external_id":"cool","name":"Cool"}`, `{"external_id":"neg","name":"Neg"}`, `{"external_id":"none","name":"None"}`)
	f.ingest(t, "contacts", `{"external_id":"c-hot","account":"hot","last_name":"H"}`, `{"external_id":"c-eng","account":"eng","last_name":"E"}`,
		`{"external_id":"c-neg","account":"neg","last_name":"N"}`)
	var acts []string
	n := 0
	add := func(medium, dir, at, who, status string) {
		n++
		acts = append(acts, act(fmt.Sprintf("a%d", n), medium, dir, at, who, status, "Hello"))
	}
	for range 5 {
		add("email", "signal", ago(3), "c-hot", "")
	}
	for range 3 {
		add("email", "signal", ago(10), "c-eng", "")
	}
	// A Tuesday 14:00 UTC call the contact took: the best time.
	add("call", "signal", "2026-06-23T14:05:00Z", "c-eng", "")
	add("call", "follow_up", ago(5), "c-eng", "Unattended")
	add("call", "follow_up", ago(6), "c-eng", " unattended ")
	add("email", "signal", ago(200), "c-eng", "")
	add("facebook", "signal", ago(2), "c-eng", "")
	add("email", "signal", ago(1), "acc:cool", "")
	add("email", "follow_up", ago(1), "acc:cool", "Bounced")
	add("call", "follow_up", ago(1), "c-neg", "Unattended")
	add("call", "follow_up", ago(2), "c-neg", "Unattended")
	f.ingest(t, "activities", acts...)

	s := segment.DefaultEngagement()
	for m, c := range s.Channels {
		c.Enabled = m == "email" || m == "call"
		s.Channels[m] = c
	}
	raw, _ := json.Marshal(s)
	if _, _, err := f.setup.Put(ctx, f.org, "engagement", segment.View{Settings: raw, Labels: segment.DefaultEngagementLabels()}); err != nil {
		t.Fatal(err)
	}
	f.activate(t, "engagement")
	res := f.refresh(t, jobs.SegmentRefreshPayload{Technique: "engagement"})
	if res.Techniques[0].Scored != 5 {
		t.Fatalf("refresh %+v, want 5 accounts scored", res)
	}
	want := map[string]struct {
		raw   float64
		score int
		label string
	}{"hot": {30, 100, "Hot"}, "eng": {18, 63, "Engaged"}, "cool": {4, 14, "Cold"}, "neg": {-6, 0, "Cold"}, "none": {0, 0, "Cold"}}
	for acc, w := range want {
		r, score, label := f.result(t, "engagement", acc)
		if r["raw_points"].(float64) != w.raw || score == nil || *score != w.score || label != w.label {
			t.Errorf("%s: raw %v score %v label %q, want %v %d %q", acc, r["raw_points"], deref(score), label, w.raw, w.score, w.label)
		}
	}
	e, err := f.setup.Explain(ctx, f.org, "eng")
	if err != nil {
		t.Fatal(err)
	}
	var ex segment.TechniqueExplain
	for _, te := range e.Techniques {
		if te.Technique == "engagement" {
			ex = te
		}
	}
	b, _ := json.Marshal(ex)
	for _, part := range []string{`"most_unanswered_channel":"call"`, `"answered_calls":1`, `"unanswered_calls":2`, `{"at":"14:00","calls":1}`,
		`{"at":"Tuesday","calls":1}`, `"call":{"points":0,"signals":1,"unanswered":2}`, `"score":63`, `"index":3`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("explanation lacks %s: %s", part, b)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// The seed's label limits are refused with the field at fault.
func TestBehaviourLabelLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "products", `{"external_id":"p1","name":"P1"}`, `{"external_id":"p2","name":"P2"}`)
	put := func(name string, settings any, labels []segment.Label) error {
		raw, _ := json.Marshal(settings)
		_, _, err := f.setup.Put(ctx, f.org, name, segment.View{Settings: raw, Labels: labels})
		return err
	}
	band := func(name string, from, to int) segment.Label {
		return segment.Label{Name: name, Range: &segment.ScoreRange{From: from, To: to}}
	}
	eng := segment.DefaultEngagement()
	voc := segment.DefaultVoC()
	rec := segment.DefaultRecommendations()
	all := []segment.RecommendType{{Type: "next_buy"}, {Type: "cross_sell"}}
	many := make([]string, 11)
	for i := range many {
		many[i] = "p1"
	}
	for _, tc := range []struct {
		name, technique string
		settings        any
		labels          []segment.Label
		key             string
	}{
		{"four engagement labels", "engagement", eng, segment.DefaultEngagementLabels()[:4], "labels"},
		{"a gap", "engagement", eng, []segment.Label{band("a", 0, 19), band("b", 20, 39), band("c", 41, 59), band("d", 60, 79), band("e", 80, 100)}, "labels"},
		{"an overlap", "engagement", eng, []segment.Label{band("a", 0, 19), band("b", 20, 40), band("c", 40, 59), band("d", 60, 79), band("e", 80, 100)}, "labels"},
		{"short of 100", "engagement", eng, []segment.Label{band("a", 0, 19), band("b", 20, 39), band("c", 40, 59), band("d", 60, 79), band("e", 80, 99)}, "labels"},
		{"a label without a range", "engagement", eng, append(segment.DefaultEngagementLabels(), segment.Label{Name: "x"}), "labels[5].range"},
		{"a VoC label without a preference", "voc", voc, []segment.Label{{Name: "Empty"}}, "labels[0].criteria"},
		{"a VoC keyword that is no keyword", "voc", segment.VoC{VoCSettings: store.VoCSettings{Sources: []string{"email"}, WindowDays: 30, Keywords: []string{"it's"}}}, nil, "settings.keywords[0]"},
		{"a recommendation label with one type", "recommendations", rec, []segment.Label{
			{Name: "a", Recommend: &segment.RecommendPrefs{Types: all[:1]}}, {Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}, "labels[0].preferences.types"},
		{"11 products", "recommendations", rec, []segment.Label{
			{Name: "a", Recommend: &segment.RecommendPrefs{Types: []segment.RecommendType{{Type: "next_buy", Products: many}, {Type: "bundle"}}}},
			{Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}, "labels[0].preferences.types[0].products"},
		{"3 bundles", "recommendations", rec, []segment.Label{
			{Name: "a", Recommend: &segment.RecommendPrefs{Types: []segment.RecommendType{{Type: "next_buy"}, {Type: "bundle"}},
				Bundles: [][]string{{"p1", "p2"}, {"p1", "p2"}, {"p2", "p1"}}}},
			{Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}, "labels[0].preferences.bundles"},
		{"a bundle of three", "recommendations", rec, []segment.Label{
			{Name: "a", Recommend: &segment.RecommendPrefs{Types: []segment.RecommendType{{Type: "next_buy"}, {Type: "bundle"}},
				Bundles: [][]string{{"p1", "p2", "p1"}}}},
			{Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}, "labels[0].preferences.bundles[0]"},
		{"an unknown product", "recommendations", rec, []segment.Label{
			{Name: "a", Recommend: &segment.RecommendPrefs{Types: []segment.RecommendType{{Type: "next_buy", Products: []string{"nope"}}, {Type: "bundle"}}}},
			{Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}, "labels[0].preferences.types[0].products[0]"},
		{"one recommendation label", "recommendations", rec, segment.DefaultRecommendationLabels()[:1], "labels"},
	} {
		err := put(tc.technique, tc.settings, tc.labels)
		var errs segment.Errors
		if !errors.As(err, &errs) || errs[tc.key] == "" {
			t.Errorf("%s: %v, want an error at %s", tc.name, err, tc.key)
		}
	}
	// The defaults pass, and so do 10 products and 2 bundles.
	ten := many[:10]
	ok := []segment.Label{
		{Name: "a", Recommend: &segment.RecommendPrefs{Types: []segment.RecommendType{{Type: "next_buy", Products: ten}, {Type: "bundle"}},
			Bundles: [][]string{{"p1", "p2"}, {"p2", "p1"}}, MinProbability: 50}},
		{Name: "b", Recommend: &segment.RecommendPrefs{Types: all}}}
	for name, labels := range map[string][]segment.Label{"engagement": segment.DefaultEngagementLabels(), "voc": segment.DefaultVoCLabels(), "recommendations": ok} {
		settings := map[string]any{"engagement": eng, "voc": voc, "recommendations": rec}[name]
		if err := put(name, settings, labels); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
