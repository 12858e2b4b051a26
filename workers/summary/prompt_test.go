package summary_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

func promptTokens(req llm.Request) int {
	return llm.EstimateTokens(req.System) + llm.EstimateTokens(req.User)
}

func build(t *testing.T, g store.SummaryGraph, module string, budget int) (llm.Request, summary.Truncation) {
	t.Helper()
	asked, _ := summary.Sections(module, nil)
	req, tr, err := summary.BuildPrompt(g, module, asked, budget, today)
	if err != nil {
		t.Fatalf("BuildPrompt(%s, budget %d): %v", module, budget, err)
	}
	return req, tr
}

func renderJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func figures(t *testing.T, req llm.Request) map[string]any {
	t.Helper()
	f, ok := req.Facts.Org["figures"].(map[string]any)
	if !ok {
		t.Fatalf("facts carry no org.figures: %v", req.Facts.Org)
	}
	return f
}

func TestBuildPromptFacts(t *testing.T) {
	req, _ := build(t, accountGraph(), "accounts", 0)
	f := req.Facts

	t.Run("every record is cited by module/external_id", func(t *testing.T) {
		if f.Subject.Ref != "accounts/acc-1" || f.Subject.Level != 0 {
			t.Errorf("subject = %s level %d", f.Subject.Ref, f.Subject.Level)
		}
		g := accountGraph()
		related := promptRelated(g)
		if len(f.Related) != len(related) || len(f.Activities) != len(g.Activities) {
			t.Fatalf("related %d activities %d, want %d and %d", len(f.Related), len(f.Activities), len(related), len(g.Activities))
		}
		for i, r := range related {
			got := f.Related[i]
			if got.Ref != r.Module+"/"+r.ID || got.Level != r.Level || got.Parent != r.Parent || got.Module != r.Module {
				t.Errorf("related %d = %s level %d parent %q", i, got.Ref, got.Level, got.Parent)
			}
		}
		if f.Activities[0].Ref != "activities/a-1" || f.Activities[8].Ref != "activities/a-9" {
			t.Errorf("activities are not newest first: %s ... %s", f.Activities[0].Ref, f.Activities[8].Ref)
		}
	})
	t.Run("fields leave out the id, created_at and empty values", func(t *testing.T) {
		for _, r := range append([]llm.Record{f.Subject}, f.Related...) {
			if _, ok := r.Fields["id"]; ok {
				t.Errorf("%s keeps its id field", r.Ref)
			}
			if _, ok := r.Fields["created_at"]; ok {
				t.Errorf("%s keeps created_at", r.Ref)
			}
		}
		if f.Subject.Fields["name"] != "Northwind Traders" || f.Subject.Fields["employees"] != json.Number("1200") {
			t.Errorf("subject fields = %v", f.Subject.Fields)
		}
	})
	t.Run("the user prompt is the task and the facts as compact JSON", func(t *testing.T) {
		js := renderJSON(t, f)
		if !strings.HasSuffix(req.User, js) {
			t.Fatal("the user prompt does not end with the facts' JSON")
		}
		task := strings.TrimSuffix(req.User, js)
		for _, s := range req.Sections {
			if !strings.Contains(task, s.Key) || !strings.Contains(task, s.Instruction) {
				t.Errorf("the task text does not ask for %s with its instruction", s.Key)
			}
		}
		if strings.Contains(js, "\n") || strings.Contains(js, "  ") {
			t.Error("the facts' JSON is not compact")
		}
		if !strings.Contains(js, "Thanks for the great workshop") || strings.Contains(js, `\u0026`) {
			t.Error("notes are not rendered as written")
		}
	})
	t.Run("the system prompt states the rules", func(t *testing.T) {
		for _, rule := range []string{"Use only the facts", `cites in "sources"`, "Never invent", "no supporting facts"} {
			if !strings.Contains(req.System, rule) {
				t.Errorf("system prompt lacks %q", rule)
			}
		}
	})
	t.Run("the schema and sections are the asked ones", func(t *testing.T) {
		if len(req.Sections) != 10 || req.Schema == nil {
			t.Fatalf("sections %d, schema %v", len(req.Sections), req.Schema != nil)
		}
	})
	t.Run("org figures are computed from the graph", func(t *testing.T) {
		figs := figures(t, req)
		want := map[string]string{
			"won_revenue": "52000.00", "org_won_revenue": "1040000.00", "won_revenue_share_percent": "5",
			"open_cases": "2", "escalated_cases": "1", "active_projects": "1", "red_projects": "1",
			"open_deals": "1", "open_deal_value": "36000.00", "open_expansion_deals": "1", "won_deals": "1",
			"open_playbook_tasks": "2", "overdue_playbook_tasks": "1",
			"activities_total": "9", "activity_window_days": "30", "activities_in_window": "6",
			"activities_in_previous_window": "2", "activity_trend": "rising", "engagement_level": "medium",
			"last_activity_date": date(daysAgo(1)),
		}
		for k, w := range want {
			if got := fmt.Sprint(figs[k]); got != w {
				t.Errorf("figure %s = %s, want %s", k, got, w)
			}
		}
		pct := figs["kpi_progress_percent"].(map[string]any)
		for ref, w := range map[string]string{"kpis/k-1": "84", "kpis/k-2": "105.6", "kpis/k-3": "40", "kpis/k-6": "0"} {
			if got := fmt.Sprint(pct[ref]); got != w {
				t.Errorf("kpi percent %s = %s, want %s", ref, got, w)
			}
		}
		byStatus := figs["kpis_by_status"].(map[string]any)
		if byStatus["On Track"] != 2 || byStatus["Blocked"] != 1 || len(byStatus) != 5 {
			t.Errorf("kpis by status = %v", byStatus)
		}
		purchases := renderJSON(t, figs["purchases_by_product_family"])
		if purchases != `{"Analytics":{"amount":30000.00,"line_items":1},"Logistics Suite":{"amount":22000.00,"line_items":1}}` {
			t.Errorf("purchases = %s", purchases)
		}
	})
	t.Run("deal milestones travel in the subject's field_history", func(t *testing.T) {
		req, _ := build(t, dealGraph(), "deals", 0)
		h, _ := req.Facts.Subject.Fields["field_history"].([]any)
		if len(h) != 4 || h[3].(map[string]any)["new_value"] != "Negotiation" {
			t.Fatalf("field_history = %v", h)
		}
		figs := figures(t, req)
		if figs["days_in_stage"] != 14 || figs["days_to_close"] != 43 || fmt.Sprint(figs["deal_share_of_pipeline_percent"]) != "2.9" {
			t.Errorf("deal figures = %v", figs)
		}
	})
	t.Run("a lead's source rate is stated as a percent", func(t *testing.T) {
		req, _ := build(t, leadGraph(), "leads", 0)
		figs := figures(t, req)
		if fmt.Sprint(figs["source_conversion_percent"]) != "23.5" || figs["source_leads"] != 200 {
			t.Errorf("lead figures = %v", figs)
		}
	})
	t.Run("a contact's signals give channel and timing counts", func(t *testing.T) {
		req, _ := build(t, contactGraph(), "contacts", 0)
		figs := figures(t, req)
		if figs["preferred_channel"] != "email" || figs["preferred_part_of_day"] != "morning" || figs["signals_total"] != 5 {
			t.Errorf("contact figures = %v", figs)
		}
		if got := renderJSON(t, figs["signals_by_weekday"]); got != `{"Friday":1,"Thursday":1,"Tuesday":3}` {
			t.Errorf("signals by weekday = %s", got)
		}
	})
	t.Run("no window counts are given when the cap cut into the window", func(t *testing.T) {
		req, _ := build(t, bigAccountGraph(50000), "accounts", 0)
		figs := figures(t, req)
		if _, ok := figs["activities_in_window"]; ok {
			t.Errorf("window counted over a cut history: %v", figs)
		}
		if figs["activities_total"] != 50000 {
			t.Errorf("activities_total = %v", figs["activities_total"])
		}
	})
}

func TestBuildPromptErrors(t *testing.T) {
	asked, _ := summary.Sections("accounts", nil)
	tests := []struct {
		name   string
		g      store.SummaryGraph
		module string
		asked  []llm.SectionSpec
		budget int
		want   error
	}{
		{"nothing asked is an error", accountGraph(), "accounts", nil, 0, summary.ErrNothingAsked},
		{"a budget too small for the subject is an error", accountGraph(), "accounts", asked, 600, summary.ErrBudgetTooSmall},
		{"a graph of another module is an error", leadGraph(), "accounts", asked, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := summary.BuildPrompt(tt.g, tt.module, tt.asked, tt.budget, today)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestTruncation walks the budget down from "everything fits" to "no
// activity fits" and checks at each step: the prompt is within budget, the
// activities kept are the newest, as many as fit, and every section that
// reads activities says whether it was cut and from which date.
func TestTruncation(t *testing.T) {
	g := accountGraph()
	full, fullTr := build(t, g, "accounts", 100000)
	all := full.Facts.Activities

	t.Run("with room for everything no section is cut", func(t *testing.T) {
		for _, c := range fullTr.Sections {
			if c.Cut || c.ActivitiesIncluded != 9 || c.ActivitiesTotal != 9 || c.IncludedFrom != "" || c.Note != "" {
				t.Errorf("section %+v", c)
			}
		}
		if fullTr.Related != nil {
			t.Errorf("related cut: %+v", fullTr.Related)
		}
	})
	t.Run("only sections that read activities get an entry", func(t *testing.T) {
		got := map[string]bool{}
		for _, c := range fullTr.Sections {
			got[c.Section] = true
		}
		for _, s := range full.Sections {
			if got[s.Key] != s.UsesActivities {
				t.Errorf("section %s: entry %v, uses activities %v", s.Key, got[s.Key], s.UsesActivities)
			}
		}
	})

	seen := map[int]bool{}
	for budget := promptTokens(full); budget > 0; budget -= 7 {
		asked, _ := summary.Sections("accounts", nil)
		req, tr, err := summary.BuildPrompt(g, "accounts", asked, budget, today)
		if errors.Is(err, summary.ErrBudgetTooSmall) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := len(req.Facts.Activities)
		if seen[n] {
			continue
		}
		seen[n] = true
		t.Run(fmt.Sprintf("a budget of %d tokens keeps the newest %d activities", budget, n), func(t *testing.T) {
			if got := promptTokens(req); got > budget {
				t.Fatalf("prompt of %d tokens over the budget of %d", got, budget)
			}
			for i, a := range req.Facts.Activities {
				if a.Ref != all[i].Ref {
					t.Fatalf("activity %d is %s, want %s", i, a.Ref, all[i].Ref)
				}
			}
			if n < len(all) { // one more would not have fitted
				more := *req.Facts
				more.Activities = all[:n+1]
				user := strings.TrimSuffix(req.User, renderJSON(t, req.Facts)) + renderJSON(t, more)
				if llm.EstimateTokens(req.System)+llm.EstimateTokens(user) <= budget {
					t.Errorf("activity %d would have fitted", n+1)
				}
			}
			for _, c := range tr.Sections {
				want := summary.SectionCut{Section: c.Section, Cut: n < 9, ActivitiesIncluded: n, ActivitiesTotal: 9}
				switch {
				case n == 0:
					want.Note = summary.NoActivitiesNote
				case n < 9:
					want.IncludedFrom = all[n-1].Fields["occurred_at"].(string)[:10]
				}
				if c != want {
					t.Errorf("cut = %+v, want %+v", c, want)
				}
			}
			// Associated records are left out only to keep the activities'
			// share of the budget (a quarter), never beyond it.
			if tr.Related != nil {
				if acts := len(renderJSON(t, req.Facts.Activities)); acts > budget+400 { // a quarter of 4 bytes per token
					t.Errorf("related records trimmed while activities took %d bytes of a %d-token budget: %+v", acts, budget, tr.Related)
				}
			}
		})
	}
	if !seen[0] || !seen[9] || len(seen) < 5 {
		t.Errorf("the walk saw only these activity counts: %v", seen)
	}

	t.Run("activities beyond the graph's cap count as cut", func(t *testing.T) {
		g := accountGraph()
		g.ActivityTotal = 5000
		_, tr := build(t, g, "accounts", 100000)
		for _, c := range tr.Sections {
			if !c.Cut || c.ActivitiesIncluded != 9 || c.ActivitiesTotal != 5000 || c.IncludedFrom != date(daysAgo(75)) {
				t.Errorf("cut = %+v", c)
			}
		}
	})
	t.Run("the truncation JSON has the documented shape", func(t *testing.T) {
		tr := summary.Truncation{Sections: []summary.SectionCut{
			{Section: llm.KeyStakeholders, Cut: true, ActivitiesIncluded: 180, ActivitiesTotal: 50000, IncludedFrom: "2025-04-01"},
			{Section: llm.RisksAndBlockers, Cut: true, ActivitiesTotal: 50000, Note: summary.NoActivitiesNote},
		}}
		want := `{"sections":[{"section":"key_stakeholders","cut":true,"activities_included":180,"activities_total":50000,` +
			`"included_from":"2025-04-01"},{"section":"risks_and_blockers","cut":true,"activities_included":0,` +
			`"activities_total":50000,"note":"no activities were included in this section"}]}`
		if got := renderJSON(t, tr); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

// promptRelated are the associated records an account's prompt holds: its
// line items and products feed the purchase figures only.
func promptRelated(g store.SummaryGraph) []store.GraphRecord {
	var out []store.GraphRecord
	for _, r := range g.Related {
		if r.Module != "deal_line_items" && r.Module != "products" {
			out = append(out, r)
		}
	}
	return out
}

func TestRelatedTrimming(t *testing.T) {
	g := bigAccountGraph(50000)
	asked, _ := summary.Sections("accounts", nil)
	// The smallest budget that keeps every related record.
	lo, hi := 1000, 200000
	for lo < hi {
		mid := (lo + hi) / 2
		_, tr, err := summary.BuildPrompt(g, "accounts", asked, mid, today)
		if err == nil && tr.Related == nil {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	levelOf := map[string]int{}
	for _, r := range promptRelated(g) {
		levelOf[r.Module+"/"+r.ID] = r.Level
	}
	for _, short := range []int{1, 40, 400, 4000} {
		budget := lo - short
		t.Run(fmt.Sprintf("%d tokens short, the deepest associated records go first", short), func(t *testing.T) {
			req, tr, err := summary.BuildPrompt(g, "accounts", asked, budget, today)
			if err != nil {
				t.Fatal(err)
			}
			if got := promptTokens(req); got > budget {
				t.Fatalf("prompt of %d tokens over the budget of %d", got, budget)
			}
			if tr.Related == nil || tr.Related.Total != len(promptRelated(g)) || tr.Related.Included != len(req.Facts.Related) {
				t.Fatalf("related cut = %+v", tr.Related)
			}
			kept := map[string]bool{}
			maxKept := 0
			for _, r := range req.Facts.Related {
				kept[r.Ref] = true
				maxKept = max(maxKept, r.Level)
			}
			left := 0
			for ref, lvl := range levelOf {
				if !kept[ref] {
					left++
					if lvl < maxKept {
						t.Errorf("%s of level %d left out while level %d records stayed", ref, lvl, maxKept)
					}
				}
			}
			sum := 0
			for i, lc := range tr.Related.LeftOut {
				sum += lc.Count
				if i > 0 && lc.Level >= tr.Related.LeftOut[i-1].Level {
					t.Errorf("left_out not deepest first: %+v", tr.Related.LeftOut)
				}
			}
			if sum != left || left == 0 || !strings.Contains(tr.Related.Note, "left out") {
				t.Errorf("left_out %+v counts %d, %d were left out; note %q", tr.Related.LeftOut, sum, left, tr.Related.Note)
			}
			// The activities keep their quarter of the budget.
			acts := len(renderJSON(t, req.Facts.Activities))
			if acts < budget-2000 || acts > budget+2000 { // a quarter of 4 bytes per token
				t.Errorf("activities take %d bytes of a %d-token budget, want about a quarter", acts, budget)
			}
			for _, c := range tr.Sections {
				if c.ActivitiesIncluded == 0 || !c.Cut {
					t.Errorf("cut = %+v", c)
				}
			}
			pct, _ := figures(t, req)["kpi_progress_percent"].(map[string]any)
			for ref := range pct {
				if !kept[ref] {
					t.Errorf("figure kept for %s, which was left out", ref)
				}
			}
		})
	}
}

func TestFiftyThousandActivities(t *testing.T) {
	g := bigAccountGraph(50000)
	if len(g.Activities) != store.ActivityCap {
		t.Fatalf("fixture holds %d activities", len(g.Activities))
	}
	asked, _ := summary.Sections("accounts", nil)
	for _, budget := range []int{summary.DefaultBudgetTokens, 60000, 24000} {
		t.Run(fmt.Sprintf("an account with 50,000 activities fits a budget of %d tokens", budget), func(t *testing.T) {
			req, tr, err := summary.BuildPrompt(g, "accounts", asked, budget, today)
			if err != nil {
				t.Fatal(err)
			}
			if got := promptTokens(req); got > budget {
				t.Fatalf("prompt of %d tokens over the budget of %d", got, budget)
			}
			n := len(req.Facts.Activities)
			if n == 0 || n >= store.ActivityCap {
				t.Fatalf("%d activities included", n)
			}
			oldest := req.Facts.Activities[n-1].Fields["occurred_at"].(string)[:10]
			if want := date(today.Add(-time.Duration(n-1) * 37 * time.Minute)); oldest != want {
				t.Fatalf("oldest included %s, want %s", oldest, want)
			}
			usesActivities := 0
			for _, s := range asked {
				if s.UsesActivities {
					usesActivities++
				}
			}
			if len(tr.Sections) != usesActivities {
				t.Fatalf("%d truncation entries, %d sections read activities", len(tr.Sections), usesActivities)
			}
			for _, c := range tr.Sections {
				if !c.Cut || c.ActivitiesIncluded != n || c.ActivitiesTotal != 50000 || c.IncludedFrom != oldest || c.Note != "" {
					t.Errorf("cut = %+v", c)
				}
			}
		})
	}
}

// The prompt's JSON is put together from parts rendered once each; it is
// byte for byte the facts rendered whole, trimmed or not, whatever the
// module and the number of activities.
func TestPromptJSONIsTheFactsRenderedWhole(t *testing.T) {
	type tc struct {
		name   string
		g      store.SummaryGraph
		module string
		budget int
	}
	cases := []tc{{"big account", bigAccountGraph(50000), "accounts", 0}, {"big account, trimmed", bigAccountGraph(50000), "accounts", 4000}}
	for _, fx := range realistic() {
		cases = append(cases, tc{fx.module, fx.graph, fx.module, 0}, tc{fx.module + ", small budget", fx.graph, fx.module, 1500})
	}
	trimmed := 0
	for _, c := range cases {
		asked, _ := summary.Sections(c.module, nil)
		req, tr, err := summary.BuildPrompt(c.g, c.module, asked, c.budget, today)
		if errors.Is(err, summary.ErrBudgetTooSmall) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tr.Related != nil {
			trimmed++
		}
		if js := renderJSON(t, req.Facts); !strings.HasSuffix(req.User, js) {
			t.Errorf("%s: the user prompt does not end with the facts rendered whole", c.name)
		}
		if budget := cmp.Or(c.budget, summary.DefaultBudgetTokens); promptTokens(req) > budget {
			t.Errorf("%s: prompt of %d tokens over its budget of %d", c.name, promptTokens(req), budget)
		}
	}
	if trimmed == 0 {
		t.Error("no case trimmed associated records")
	}
}
