package summary_test

import (
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/workers/summary"
)

// The prompt spends its budget on what matters: no per-record updated_at
// or state, each figure once in one unit, an account's line items and
// products only through the purchase figures, and the derived sections
// asked for after the sections that feed them, with maxItems in the schema.
func TestPromptBudgetIsSpentOnWhatMatters(t *testing.T) {
	g := accountGraph()
	g.Org["account_revenue_share"] = n("0.05")
	asked, _ := summary.Sections("accounts", nil)
	req, _, err := summary.BuildPrompt(g, "accounts", asked, 0, today)
	if err != nil {
		t.Fatal(err)
	}
	js := renderJSON(t, req.Facts)
	for _, gone := range []string{`"updated_at"`, `"state"`, `"account_revenue_share"`, `"account_won_revenue"`, `deal_line_items/`, `products/`} {
		if strings.Contains(js, gone) {
			t.Errorf("the facts still hold %s", gone)
		}
	}
	figs := figures(t, req)
	if figs[crm.FigWonShare] == nil || figs[crm.FigPurchases] == nil {
		t.Errorf("the figures that replace them are missing: share %v, purchases %v", figs[crm.FigWonShare], figs[crm.FigPurchases])
	}

	var order []string
	for _, s := range req.Sections {
		order = append(order, s.Key)
	}
	last := order[len(order)-2:]
	if last[0] != llm.ExecutiveSummary || last[1] != llm.StrategicNextSteps {
		t.Errorf("sections asked in order %v; the derived ones come last", order)
	}
	if strings.Index(req.User, "- "+llm.ImmediateActions) > strings.Index(req.User, "- "+llm.StrategicNextSteps) {
		t.Error("the task text asks for Strategic Next Steps before Immediate Actions, which feeds it")
	}
	secs := req.Schema["properties"].(map[string]any)["sections"].(map[string]any)
	bullets := secs["items"].(map[string]any)["properties"].(map[string]any)["bullets"].(map[string]any)
	if secs["maxItems"] != len(asked) || bullets["maxItems"] != llm.MaxBullets {
		t.Errorf("schema maxItems: sections %v, bullets %v", secs["maxItems"], bullets["maxItems"])
	}

	// The summary still shows the sections in catalog order.
	res, err := summary.Generate(t.Context(), &fakeGraphs{g: g}, offline.New(), input("accounts", "acc-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := sectionKeys(res.Sections); got[2] != llm.ExecutiveSummary || got[8] != llm.StrategicNextSteps {
		t.Errorf("shown in order %v", got)
	}
}
