package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/llm"
)

var today = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

func account(related []llm.Record, acts []llm.Record) *llm.Facts {
	return &llm.Facts{
		Subject:    llm.Record{Ref: "accounts/acc-1", Module: "accounts", Fields: map[string]any{"name": "Northwind Traders"}},
		Related:    related,
		Activities: acts,
		Today:      today,
	}
}

func kpiRec(id, name, status string, target, actual any) llm.Record {
	return llm.Record{Ref: "kpis/" + id, Module: "kpis", Level: 1, Fields: map[string]any{"name": name, "status": status,
		"target": target, "actual": actual, "unit": "users"}}
}

func note(id, at, text string) llm.Record {
	return llm.Record{Ref: "activities/" + id, Module: "activities", Level: 1, Fields: map[string]any{
		"occurred_at": at, "medium": "email", "direction": "signal", "subject": "Check-in", "notes": text}}
}

func generate(t *testing.T, f *llm.Facts, keys ...string) map[string][]llm.Bullet {
	t.Helper()
	req := llm.Request{System: "s", User: "u", Facts: f}
	for _, k := range keys {
		req.Sections = append(req.Sections, llm.SectionSpec{Key: k})
	}
	resp, err := New().Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]llm.Bullet{}
	for _, s := range resp.Answer.Sections {
		out[s.Key] = s.Bullets
	}
	return out
}

func cited(bs []llm.Bullet) []string {
	var refs []string
	for _, b := range bs {
		for _, s := range b.Sources {
			if !slices.Contains(refs, s) {
				refs = append(refs, s)
			}
		}
	}
	slices.Sort(refs)
	return refs
}

func allText(bs []llm.Bullet) string {
	var b strings.Builder
	for _, x := range bs {
		b.WriteString(x.Text + "\n")
	}
	return b.String()
}

func TestKeyAchievementsUseOnlyKPIsOnTrackOrCompletedWithProgress(t *testing.T) {
	f := account([]llm.Record{
		kpiRec("k-on", "Weekly active users", "On Track", json.Number("500.00"), json.Number("420.00")),
		kpiRec("k-done", "Forecast accuracy", "Completed", json.Number("90.00"), json.Number("95.00")),
		kpiRec("k-off", "Dashboards in use", "Off Track", json.Number("40.00"), json.Number("16.00")),
		kpiRec("k-ns", "Onboarded teams", "Not Started", json.Number("10.00"), json.Number("2.00")),
		kpiRec("k-blk", "Median resolution time", "Blocked", json.Number("24.00"), json.Number("5.00")),
		kpiRec("k-zero", "Open escalations", "On Track", json.Number("10.00"), json.Number("0.00")),
		kpiRec("k-notarget", "Adoption score", "Completed", json.Number("0"), json.Number("7.00")),
		kpiRec("k-lower", "Renewal readiness", "on track", 50.0, 10.0),
	}, nil)
	f.Org = map[string]any{"figures": map[string]any{"kpi_progress_percent": map[string]any{
		"kpis/k-on": json.Number("84"), "kpis/k-done": json.Number("105.6")}}}
	got := generate(t, f, llm.KPIProgress, llm.StrategicValue)
	want := []string{"kpis/k-done", "kpis/k-lower", "kpis/k-on"}
	excluded := []string{"Dashboards in use", "Onboarded teams", "Median resolution time", "Open escalations", "Adoption score"}
	for _, key := range []string{llm.KPIProgress, llm.StrategicValue} {
		t.Run(key+" cites only qualifying KPIs", func(t *testing.T) {
			var kpis []string
			for _, r := range cited(got[key]) {
				if strings.HasPrefix(r, "kpis/") {
					kpis = append(kpis, r)
				}
			}
			if !slices.Equal(kpis, want) {
				t.Errorf("cited KPIs %v, want %v", kpis, want)
			}
			text := allText(got[key])
			for _, name := range excluded {
				if strings.Contains(text, name) {
					t.Errorf("excluded KPI %q is named:\n%s", name, text)
				}
			}
		})
	}
	t.Run("progress is stated as actual/target with the percent from the figures", func(t *testing.T) {
		text := allText(got[llm.KPIProgress])
		for _, s := range []string{"Forecast accuracy: 95.00/90.00 users (105.6% of target), Completed",
			"Weekly active users: 420.00/500.00 users (84% of target), On Track"} {
			if !strings.Contains(text, s) {
				t.Errorf("missing %q in\n%s", s, text)
			}
		}
		if first := got[llm.KPIProgress][0].Sources[0]; first != "kpis/k-done" {
			t.Errorf("Completed KPIs come first; first is %s", first)
		}
	})
	t.Run("with no qualifying KPI the section says so", func(t *testing.T) {
		f := account([]llm.Record{kpiRec("k-off", "Dashboards in use", "Off Track", 40.0, 16.0)}, nil)
		got := generate(t, f, llm.KPIProgress)[llm.KPIProgress]
		if len(got) != 1 || got[0].Text != "No objective KPI is On Track or Completed with recorded progress." {
			t.Errorf("got %+v", got)
		}
	})
}

func TestCuePhrases(t *testing.T) {
	long := "We met the operations team in Leeds to walk through the quarterly numbers and the roadmap for the " +
		"warehouse programme, covering 14 sites and 2,300 users across the northern region. Towards the end the " +
		"director said that they are interested in adding seats for the new support team in Manchester once the " +
		"pilot has finished and the budget for the second half of the year is approved by the board in September."
	tests := []struct {
		name    string
		section string
		facts   *llm.Facts
		want    []string // texts expected among the bullets (substring)
		cites   []string // refs the matching bullet cites
		absent  []string
	}{
		{name: "an expansion cue is quoted with its activity cited", section: llm.ExpansionOpportunities,
			facts: account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "They are interested in adding seats for the support team.")}),
			want:  []string{"“They are interested in adding seats for the support team.” (2025-05-29, email signal)"},
			cites: []string{"activities/a-1"}},
		{name: "without an expansion cue the section says so", section: llm.ExpansionOpportunities,
			facts: account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "Asked for an update on the open request.")}),
			want:  []string{"No activity notes, cases or KPI comments mention expansion signals."}},
		{name: "a risk cue is quoted with a mitigation", section: llm.RisksAndBlockers,
			facts: account(nil, []llm.Record{note("a-2", "2025-05-27T10:00:00.000000Z", "Issue was escalated to management on their side.")}),
			want:  []string{"“Issue was escalated to management on their side.” (2025-05-27, email signal) — mitigation: agree an owner"},
			cites: []string{"activities/a-2"}},
		{name: "without a risk cue the section says so", section: llm.RisksAndBlockers,
			facts: account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "Thanks, all good.")}),
			want:  []string{"No activity notes, cases or KPI comments mention risks."}},
		{name: "a case subject and a KPI comment are searched too", section: llm.RisksAndBlockers,
			facts: account([]llm.Record{
				{Ref: "cases/case-1", Module: "cases", Fields: map[string]any{"subject": "Customer complains about slow exports", "status": "Open"}},
				{Ref: "kpis/k-1", Module: "kpis", Fields: map[string]any{"name": "Adoption", "status": "Off Track", "comment": "Rollout delayed by a month."}},
			}, nil),
			want:  []string{"“Customer complains about slow exports” (case, Open)", "“Rollout delayed by a month.” (KPI comment on Adoption, Off Track)"},
			cites: []string{"cases/case-1", "kpis/k-1"}},
		{name: "unhappy is a risk, not a positive signal", section: llm.RelationalHealth,
			facts:  account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "They are unhappy with response times.")}),
			want:   []string{"No notes of the customer's own signals mention positive relationship signals."},
			absent: []string{"unhappy"}},
		{name: "a negated positive phrase does not count", section: llm.RelationalHealth,
			facts: account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "The sponsor is not happy yet.")}),
			want:  []string{"No notes of the customer's own signals mention positive relationship signals."}},
		{name: "a positive cue is quoted", section: llm.RelationalHealth,
			facts: account(nil, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "Thank you for the quick fix!")}),
			want:  []string{"“Thank you for the quick fix!” (2025-05-29, email signal)"}, cites: []string{"activities/a-1"}},
		{name: "a long note is quoted around the phrase, cut between words", section: llm.ExpansionOpportunities,
			facts: account(nil, []llm.Record{note("a-3", "2025-05-20T10:00:00.000000Z", long)}),
			want:  []string{"interested in adding seats", "…"}, cites: []string{"activities/a-3"},
			absent: []string{"2,300"}},
		{name: "the same sentence in several activities is quoted once, citing all", section: llm.ExpansionOpportunities,
			facts: account(nil, []llm.Record{
				note("a-1", "2025-05-29T10:00:00.000000Z", "They want more licenses."),
				note("a-2", "2025-05-12T10:00:00.000000Z", "They want more licenses."),
			}),
			want:  []string{"“They want more licenses.” (2025-05-29, email signal; also on 2025-05-12)"},
			cites: []string{"activities/a-1", "activities/a-2"}},
		{name: "a deal note naming a risk and a competitor is quoted once with both mitigations", section: llm.DealRisks,
			facts: &llm.Facts{Subject: llm.Record{Ref: "deals/d-1", Module: "deals", Fields: map[string]any{"name": "Big deal", "stage": "Proposal"}},
				Activities: []llm.Record{note("a-1", "2025-05-30T10:00:00.000000Z", "Budget approval delayed; they are also evaluating Globex.")}, Today: today},
			want:  []string{"mitigation: agree a revised timeline with the sponsor; position against the competitor"},
			cites: []string{"activities/a-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := generate(t, tt.facts, tt.section)[tt.section]
			text := allText(got)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in\n%s", w, text)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(text, a) {
					t.Errorf("%q should not appear in\n%s", a, text)
				}
			}
			if tt.cites != nil {
				if c := cited(got); !slices.Equal(c, tt.cites) {
					t.Errorf("cited %v, want %v", c, tt.cites)
				}
			}
			for _, b := range got {
				if strings.Contains(b.Text, "“") && len(b.Sources) == 0 {
					t.Errorf("a quote without its record: %q", b.Text)
				}
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		name, s, phrase, want string
	}{
		{"a short note is quoted whole", "Thanks for the workshop.", "thank", "Thanks for the workshop."},
		{"the sentence with the phrase is quoted", "All fine. They want an upgrade soon. Call me.", "upgrade", "They want an upgrade soon."},
		{"decimals do not end a sentence", "Paid 1.5 times the price. Still interested in more.", "interested in", "Still interested in more."},
		{"a last sentence without a stop runs to the end", "Fine. Interested in the new region", "interested in", "Interested in the new region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := strings.Index(strings.ToLower(tt.s), tt.phrase)
			if got := quote(tt.s, i, len(tt.phrase)); got != tt.want {
				t.Errorf("quote = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("a long sentence is cut to the bound at spaces", func(t *testing.T) {
		s := strings.Repeat("word ", 60) + "escalated " + strings.Repeat("more ", 60)
		i := strings.Index(s, "escalat")
		q := quote(s, i, len("escalat"))
		if len(q) > maxQuote+2*len("…") || !strings.Contains(q, " escalated ") || !strings.HasPrefix(q, "…word") ||
			!strings.HasSuffix(q, "more…") {
			t.Errorf("quote = %q", q)
		}
	})
}

func TestCueTable(t *testing.T) {
	t.Run("the embedded table parses and holds every kind", func(t *testing.T) {
		for _, k := range []string{cueExpansion, cuePositive, cueRisk, cueCompetitor} {
			if len(cues.byKind[k]) == 0 {
				t.Errorf("no %s phrases", k)
			}
		}
		for _, p := range cues.byKind[cueRisk] {
			if p.mitigation == "" {
				t.Errorf("risk phrase %q has no mitigation", p.text)
			}
		}
	})
	t.Run("a phrase in upper case is refused", func(t *testing.T) {
		if _, err := parseCues([]byte(`{"expansion":["Upgrade"]}`)); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("an unknown key is refused", func(t *testing.T) {
		if _, err := parseCues([]byte(`{"expansions":["upgrade"]}`)); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestGenerate(t *testing.T) {
	full := account([]llm.Record{
		kpiRec("k-1", "Weekly active users", "On Track", 500.0, 420.0),
		{Ref: "contacts/c-1", Module: "contacts", Fields: map[string]any{"first_name": "Priya", "last_name": "Raman", "title": "VP Operations"}},
		{Ref: "cases/case-1", Module: "cases", Fields: map[string]any{"subject": "Sync stopped", "status": "Open", "escalated": true}},
	}, []llm.Record{note("a-1", "2025-05-29T10:00:00.000000Z", "They are interested in an upgrade. Thanks!")})
	allKeys := []string{llm.AccountHighlights, llm.KeyStakeholders, llm.ExecutiveSummary, llm.KPIProgress, llm.RelationalHealth,
		llm.RisksAndBlockers, llm.ExpansionOpportunities, llm.StrategicValue, llm.StrategicNextSteps, llm.ImmediateActions}
	specs := func(keys ...string) []llm.SectionSpec {
		var out []llm.SectionSpec
		for _, k := range keys {
			s := llm.SectionSpec{Key: k}
			if k == llm.ExecutiveSummary || k == llm.StrategicNextSteps {
				s.Feeds = allKeys
			}
			out = append(out, s)
		}
		return out
	}

	t.Run("the same facts give a byte-identical answer", func(t *testing.T) {
		var first []byte
		for range 5 {
			resp, err := New().Generate(context.Background(), llm.Request{Facts: full, Sections: specs(allKeys...)})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(resp)
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Fatalf("answers differ:\n%s\n%s", first, b)
			}
		}
	})
	t.Run("every asked section is answered in order and every bullet cites known records or none", func(t *testing.T) {
		resp, err := New().Generate(context.Background(), llm.Request{Facts: full, Sections: specs(allKeys...)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Model != Model || len(resp.Answer.Sections) != len(allKeys) {
			t.Fatalf("model %q, %d sections", resp.Model, len(resp.Answer.Sections))
		}
		known := map[string]bool{"accounts/acc-1": true, "kpis/k-1": true, "contacts/c-1": true, "cases/case-1": true, "activities/a-1": true}
		for i, s := range resp.Answer.Sections {
			if s.Key != allKeys[i] || len(s.Bullets) == 0 || len(s.Bullets) > maxBullets {
				t.Errorf("section %d = %s with %d bullets", i, s.Key, len(s.Bullets))
			}
			for _, b := range s.Bullets {
				if len(b.Sources) > maxSources || b.Sources == nil {
					t.Errorf("%s: %d sources", s.Key, len(b.Sources))
				}
				for _, r := range b.Sources {
					if !known[r] {
						t.Errorf("%s cites unknown %s", s.Key, r)
					}
				}
			}
		}
	})
	t.Run("usage estimates the prompt and the answer's JSON", func(t *testing.T) {
		req := llm.Request{System: strings.Repeat("s", 101), User: strings.Repeat("u", 300), Facts: full, Sections: specs(llm.KPIProgress)}
		resp, err := New().Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(resp.Answer)
		want := llm.Usage{PromptTokens: 101, OutputTokens: llm.EstimateTokens(buf.String())}
		want.TotalTokens = want.PromptTokens + want.OutputTokens
		if resp.Usage != want || want.OutputTokens < 10 {
			t.Errorf("usage = %+v, want %+v", resp.Usage, want)
		}
	})
	t.Run("a derived section uses only its visible feeders", func(t *testing.T) {
		req := llm.Request{Facts: full, Sections: []llm.SectionSpec{{Key: llm.StrategicNextSteps, Feeds: []string{llm.ExpansionOpportunities}}}}
		resp, _ := New().Generate(context.Background(), req)
		text := allText(resp.Answer.Sections[0].Bullets)
		if !strings.Contains(text, "Qualify the expansion signal") || strings.Contains(text, "Resolve the risks") ||
			strings.Contains(text, "KPIs to target") {
			t.Errorf("next steps from expansion only:\n%s", text)
		}
	})
	t.Run("empty facts give every section a no-data bullet", func(t *testing.T) {
		empty := &llm.Facts{Subject: llm.Record{Ref: "custom_things/t-1", Module: "custom_things", Fields: map[string]any{}}, Today: today}
		for _, key := range append(allKeys, llm.Overview, llm.DecisionPower, llm.RecentInteractions, llm.ContactPreferences,
			llm.Qualification, llm.DealProgress, llm.DealRisks, llm.PipelineMetrics, "some_new_section") {
			got := generate(t, empty, key)[key]
			if len(got) == 0 || got[0].Text == "" {
				t.Errorf("%s: %+v", key, got)
			}
		}
		if got := generate(t, empty, "some_new_section")["some_new_section"]; got[0].Text != "No data for this section." {
			t.Errorf("unknown section: %+v", got)
		}
	})
	t.Run("a request without facts is refused for good", func(t *testing.T) {
		_, err := New().Generate(context.Background(), llm.Request{})
		if !errors.Is(err, llm.ErrPermanent) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a cancelled context is a transient error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := New().Generate(ctx, llm.Request{Facts: full})
		if !errors.Is(err, llm.ErrTransient) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the provider is named offline", func(t *testing.T) {
		var p llm.Provider = New()
		if p.Name() != "offline" {
			t.Fatal(p.Name())
		}
	})
}
