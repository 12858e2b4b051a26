package summary_test

import (
	"reflect"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/workers/summary"
)

func TestValidate(t *testing.T) {
	facts := &llm.Facts{
		Subject:    llm.Record{Ref: "deals/d-1", Fields: map[string]any{"amount": "100.00"}},
		Related:    []llm.Record{{Ref: "contacts/c-1"}, {Ref: "accounts/acc-1", Fields: map[string]any{"name": "Acme"}}},
		Activities: []llm.Record{{Ref: "activities/a-1"}},
	}
	req := llm.Request{Facts: facts, Sections: []llm.SectionSpec{
		{Key: llm.Overview, Title: "Overview"},
		{Key: llm.DealRisks, Title: "Risks"},
		{Key: llm.PipelineMetrics, Title: "Pipeline Metrics"},
	}}
	b := func(text string, sources ...string) llm.Bullet {
		if sources == nil {
			sources = []string{}
		}
		return llm.Bullet{Text: text, Sources: sources}
	}
	noData := b(summary.NoSupportingData)
	tests := []struct {
		name        string
		answer      []llm.SectionAnswer
		want        map[string][]llm.Bullet
		wantDropped int
	}{
		{
			name: "a clean answer is kept as it is, in asked order",
			answer: []llm.SectionAnswer{
				{Key: llm.PipelineMetrics, Bullets: []llm.Bullet{b("Value 100.", "deals/d-1")}},
				{Key: llm.Overview, Bullets: []llm.Bullet{b("Deal for Acme.", "deals/d-1", "accounts/acc-1")}},
				{Key: llm.DealRisks, Bullets: []llm.Bullet{b("Late.", "activities/a-1")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview:        {b("Deal for Acme.", "deals/d-1", "accounts/acc-1")},
				llm.DealRisks:       {b("Late.", "activities/a-1")},
				llm.PipelineMetrics: {b("Value 100.", "deals/d-1")},
			},
		},
		{
			name: "unknown source refs are dropped and counted, known ones stay",
			answer: []llm.SectionAnswer{
				{Key: llm.Overview, Bullets: []llm.Bullet{b("Deal for Acme.", "deals/d-1", "contacts/c-999", "made-up")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview: {b("Deal for Acme.", "deals/d-1")}, llm.DealRisks: {noData}, llm.PipelineMetrics: {noData},
			},
			wantDropped: 2,
		},
		{
			name: "a bullet whose every source is unknown is dropped, even in a search section",
			answer: []llm.SectionAnswer{
				{Key: llm.Overview, Bullets: []llm.Bullet{b("Invented.", "contacts/c-999")}},
				{Key: llm.DealRisks, Bullets: []llm.Bullet{b("Invented risk.", "activities/a-404")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview: {noData}, llm.DealRisks: {noData}, llm.PipelineMetrics: {noData},
			},
			wantDropped: 4, // two refs, two bullets
		},
		{
			name: "a bullet without sources stands in a search section, not elsewhere",
			answer: []llm.SectionAnswer{
				{Key: llm.DealRisks, Bullets: []llm.Bullet{b("No activity notes mention risks.")}},
				{Key: llm.PipelineMetrics, Bullets: []llm.Bullet{b("Pipeline is 5 million."), b("Value 100.", "deals/d-1")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview: {noData}, llm.DealRisks: {b("No activity notes mention risks.")},
				llm.PipelineMetrics: {b("Value 100.", "deals/d-1")},
			},
			wantDropped: 1,
		},
		{
			name: "unknown and repeated section keys are dropped and counted",
			answer: []llm.SectionAnswer{
				{Key: "made_up_section", Bullets: []llm.Bullet{b("Anything.", "deals/d-1")}},
				{Key: llm.KPIProgress, Bullets: []llm.Bullet{b("Not asked.", "deals/d-1")}},
				{Key: llm.Overview, Bullets: []llm.Bullet{b("First.", "deals/d-1")}},
				{Key: llm.Overview, Bullets: []llm.Bullet{b("Second.", "deals/d-1")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview: {b("First.", "deals/d-1")}, llm.DealRisks: {noData}, llm.PipelineMetrics: {noData},
			},
			wantDropped: 3,
		},
		{
			name: "empty texts go, sources are deduplicated and text trimmed",
			answer: []llm.SectionAnswer{
				{Key: llm.Overview, Bullets: []llm.Bullet{b("  ", "deals/d-1"), b(" Deal. ", "deals/d-1", "deals/d-1")}},
			},
			want: map[string][]llm.Bullet{
				llm.Overview: {b("Deal.", "deals/d-1")}, llm.DealRisks: {noData}, llm.PipelineMetrics: {noData},
			},
			wantDropped: 1,
		},
		{
			name:   "an empty answer gives every asked section the no-supporting-data line",
			answer: nil,
			want: map[string][]llm.Bullet{
				llm.Overview: {noData}, llm.DealRisks: {noData}, llm.PipelineMetrics: {noData},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped := summary.Validate(llm.Answer{Sections: tt.answer}, req)
			if dropped != tt.wantDropped {
				t.Errorf("dropped = %d, want %d", dropped, tt.wantDropped)
			}
			if len(got) != len(req.Sections) {
				t.Fatalf("%d sections, want %d", len(got), len(req.Sections))
			}
			for i, s := range got {
				spec := req.Sections[i]
				if s.Key != spec.Key || s.Title != spec.Title {
					t.Errorf("section %d = %s %q, want %s %q", i, s.Key, s.Title, spec.Key, spec.Title)
				}
				if !reflect.DeepEqual(s.Bullets, tt.want[s.Key]) {
					t.Errorf("%s bullets = %#v, want %#v", s.Key, s.Bullets, tt.want[s.Key])
				}
			}
		})
	}
}
