package summary_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/workers/summary"
)

func keys(specs []llm.SectionSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Key
	}
	return out
}

func TestCatalog(t *testing.T) {
	tests := []struct {
		name   string
		module string
		want   []string
	}{
		{"accounts have the ten Certinia sections in order", "accounts", []string{llm.AccountHighlights, llm.KeyStakeholders,
			llm.ExecutiveSummary, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers, llm.ExpansionOpportunities,
			llm.StrategicValue, llm.StrategicNextSteps, llm.ImmediateActions}},
		{"contacts have overview, decision power, interactions and preferences", "contacts",
			[]string{llm.Overview, llm.DecisionPower, llm.RecentInteractions, llm.ContactPreferences}},
		{"leads have overview, qualification and interactions", "leads",
			[]string{llm.Overview, llm.Qualification, llm.RecentInteractions}},
		{"deals have overview, progress, risks, pipeline metrics and interactions", "deals",
			[]string{llm.Overview, llm.DealProgress, llm.DealRisks, llm.PipelineMetrics, llm.RecentInteractions}},
		{"custom modules have an overview", "custom_vendors", []string{llm.Overview}},
		{"other built-in modules have an overview", "cases", []string{llm.Overview}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := summary.Catalog(tt.module)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(specs); !slices.Equal(got, tt.want) {
				t.Fatalf("keys = %v, want %v", got, tt.want)
			}
			for _, s := range specs {
				if s.Title == "" || len(s.Instruction) < 40 {
					t.Errorf("section %s has title %q and a thin instruction %q", s.Key, s.Title, s.Instruction)
				}
			}
		})
	}
	t.Run("an invalid module name is an error", func(t *testing.T) {
		if _, err := summary.Catalog("widgets"); !errors.Is(err, summary.ErrUnknownModule) {
			t.Fatalf("err = %v, want ErrUnknownModule", err)
		}
	})
	t.Run("derived account sections feed from the documented sections", func(t *testing.T) {
		specs, _ := summary.Catalog("accounts")
		feeds := map[string][]string{}
		for _, s := range specs {
			if len(s.Feeds) > 0 {
				feeds[s.Key] = s.Feeds
			}
		}
		want := map[string][]string{
			llm.ExecutiveSummary:   {llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers, llm.StrategicValue},
			llm.StrategicNextSteps: {llm.RisksAndBlockers, llm.ExpansionOpportunities, llm.KPIProgress, llm.ImmediateActions},
		}
		if len(feeds) != len(want) {
			t.Fatalf("feeds = %v", feeds)
		}
		for k, w := range want {
			if !slices.Equal(feeds[k], w) {
				t.Errorf("%s feeds = %v, want %v", k, feeds[k], w)
			}
		}
	})
	t.Run("changing a returned spec does not change the catalog", func(t *testing.T) {
		a, _ := summary.Catalog("accounts")
		a[2].Feeds[0] = "mangled"
		b, _ := summary.Catalog("accounts")
		if b[2].Feeds[0] == "mangled" {
			t.Fatal("Catalog hands out its own slices")
		}
	})
}

func hide(ks ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k] = false
	}
	return m
}

func TestSections(t *testing.T) {
	tests := []struct {
		name             string
		module           string
		visible          map[string]bool
		wantAsked        []string
		wantInsufficient []string
		wantFeeds        map[string][]string
	}{
		{name: "everything is asked when nothing is hidden", module: "accounts", visible: nil,
			wantAsked: []string{llm.AccountHighlights, llm.KeyStakeholders, llm.ExecutiveSummary, llm.KPIProgress,
				llm.RelationalHealth, llm.RisksAndBlockers, llm.ExpansionOpportunities, llm.StrategicValue,
				llm.StrategicNextSteps, llm.ImmediateActions}},
		{name: "a hidden section is not asked for", module: "contacts", visible: hide(llm.DecisionPower),
			wantAsked: []string{llm.Overview, llm.RecentInteractions, llm.ContactPreferences}},
		{name: "a true entry shows the section and unknown keys change nothing", module: "leads",
			visible:   map[string]bool{llm.Overview: true, "nonsense": false},
			wantAsked: []string{llm.Overview, llm.Qualification, llm.RecentInteractions}},
		{name: "the executive summary has insufficient data when all five feeders are hidden", module: "accounts",
			visible: hide(llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers, llm.StrategicValue),
			wantAsked: []string{llm.KeyStakeholders, llm.ExpansionOpportunities, llm.StrategicNextSteps,
				llm.ImmediateActions},
			wantInsufficient: []string{llm.ExecutiveSummary},
			wantFeeds:        map[string][]string{llm.StrategicNextSteps: {llm.ExpansionOpportunities, llm.ImmediateActions}}},
		{name: "the executive summary is asked for when one feeder remains, fed by it alone", module: "accounts",
			visible: hide(llm.AccountHighlights, llm.KPIProgress, llm.RisksAndBlockers, llm.StrategicValue),
			wantAsked: []string{llm.KeyStakeholders, llm.ExecutiveSummary, llm.RelationalHealth, llm.ExpansionOpportunities,
				llm.StrategicNextSteps, llm.ImmediateActions},
			wantFeeds: map[string][]string{llm.ExecutiveSummary: {llm.RelationalHealth},
				llm.StrategicNextSteps: {llm.ExpansionOpportunities, llm.ImmediateActions}}},
		{name: "strategic next steps has insufficient data when its four feeders are hidden", module: "accounts",
			visible: hide(llm.RisksAndBlockers, llm.ExpansionOpportunities, llm.KPIProgress, llm.ImmediateActions),
			wantAsked: []string{llm.AccountHighlights, llm.KeyStakeholders, llm.ExecutiveSummary, llm.RelationalHealth,
				llm.StrategicValue},
			wantInsufficient: []string{llm.StrategicNextSteps}},
		{name: "both derived sections report insufficient data when every feeder is hidden", module: "accounts",
			visible: hide(llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth, llm.RisksAndBlockers,
				llm.StrategicValue, llm.ExpansionOpportunities, llm.ImmediateActions),
			wantAsked:        []string{llm.KeyStakeholders},
			wantInsufficient: []string{llm.ExecutiveSummary, llm.StrategicNextSteps}},
		{name: "a hidden derived section is neither asked for nor insufficient", module: "accounts",
			visible: hide(llm.ExecutiveSummary, llm.AccountHighlights, llm.KPIProgress, llm.RelationalHealth,
				llm.RisksAndBlockers, llm.StrategicValue),
			wantAsked: []string{llm.KeyStakeholders, llm.ExpansionOpportunities, llm.StrategicNextSteps, llm.ImmediateActions}},
		{name: "an unknown module asks for nothing", module: "widgets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked, insufficient := summary.Sections(tt.module, tt.visible)
			if got := keys(asked); !slices.Equal(got, tt.wantAsked) {
				t.Errorf("asked = %v, want %v", got, tt.wantAsked)
			}
			if !slices.Equal(insufficient, tt.wantInsufficient) {
				t.Errorf("insufficient = %v, want %v", insufficient, tt.wantInsufficient)
			}
			for _, s := range asked {
				if w, ok := tt.wantFeeds[s.Key]; ok && !slices.Equal(s.Feeds, w) {
					t.Errorf("%s feeds = %v, want %v", s.Key, s.Feeds, w)
				}
			}
		})
	}
}
