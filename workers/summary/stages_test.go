package summary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/store/storetest"
)

// stagedAccount stores account acc-1 with a deal of every kind of stage
// the rule tells apart, each closing in the past with no next step and no
// activity, and acc-2 with a won and an other-closed deal of its own.
func stagedAccount(t *testing.T) (*store.DB, int64) {
	t.Helper()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "stages")
	load := func(module string, rows ...string) {
		t.Helper()
		batch := make([]json.RawMessage, len(rows))
		for i, r := range rows {
			batch[i] = json.RawMessage(r)
		}
		res, err := db.UpsertRecords(ctx, org.ID, module, batch)
		if err != nil || res.Failed != 0 {
			t.Fatalf("upsert %s: %v %+v", module, err, res)
		}
	}
	deal := func(id, account, stage string, amount int) string {
		b, _ := json.Marshal(map[string]any{"external_id": id, "name": "Deal " + id, "account": account,
			"stage": stage, "amount": amount, "close_date": "2025-01-15"})
		return string(b)
	}
	load("accounts", `{"external_id": "acc-1", "name": "Acme"}`, `{"external_id": "acc-2", "name": "Globex"}`)
	load("deals",
		deal("won", "acc-1", "Closed Won", 1),
		deal("won-cased", "acc-1", " closed WON ", 2),
		deal("other", "acc-1", "Closed - Other", 8),
		deal("competition", "acc-1", "Closed-Lost to Competition", 16),
		deal("lost", "acc-1", "Closed Lost", 32),
		deal("nego", "acc-1", "Negotiation", 64),
		deal("proposal", "acc-1", "Proposal", 128),
		deal("else-won", "acc-2", "Closed Won", 512),
		deal("else-other", "acc-2", "Closed - Other", 1024))
	return db, org.ID
}

func summaryOf(t *testing.T, db *store.DB, org int64, module, id string) (store.SummaryGraph, llm.Request, llm.Response) {
	t.Helper()
	g, err := db.SummaryGraph(context.Background(), org, module, id)
	if err != nil {
		t.Fatal(err)
	}
	req, resp := offlineAnswer(t, g, module, 0)
	return g, req, resp
}

// dealRefs are the deal refs a bullet starting with prefix cites, sorted.
func dealRefs(resp llm.Response, prefix string) []string {
	var out []string
	for _, s := range resp.Answer.Sections {
		for _, b := range s.Bullets {
			if strings.HasPrefix(b.Text, prefix) {
				for _, src := range b.Sources {
					if strings.HasPrefix(src, "deals/") && !slices.Contains(out, src) {
						out = append(out, src)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// A deal at "Closed - Other" is closed and not won for the store's SQL,
// the summary figures and the offline provider alike: none counts it as
// open pipeline or as won revenue, and each agrees with the others on the
// same graph.
func TestStagesMeanTheSameToStoreFiguresAndOfflineProvider(t *testing.T) {
	db, org := stagedAccount(t)
	g, req, resp := summaryOf(t, db, org, "accounts", "acc-1")
	figs := req.Facts.Org[crm.Figures].(map[string]any)

	t.Run("the figures count the same open deals and value as the store", func(t *testing.T) {
		if fmt.Sprint(figs[crm.FigOpenDeals]) != "2" || fmt.Sprint(g.Org["open_deals"]) != "2" {
			t.Errorf("open deals: figure %v, store %v, want 2", figs[crm.FigOpenDeals], g.Org["open_deals"])
		}
		if fmt.Sprint(figs[crm.FigOpenDealValue]) != "192.00" || fmt.Sprint(g.Org["open_pipeline_value"]) != "192.00" {
			t.Errorf("open value: figure %v, store %v, want 192.00", figs[crm.FigOpenDealValue], g.Org["open_pipeline_value"])
		}
	})
	t.Run("the figures count the won deals whose amounts the store sums as won revenue", func(t *testing.T) {
		if fmt.Sprint(figs[crm.FigWonDeals]) != "2" || fmt.Sprint(g.Org["account_won_revenue"]) != "3.00" ||
			fmt.Sprint(g.Org["org_won_revenue"]) != "515.00" || fmt.Sprint(figs[crm.FigWonRevenue]) != "3.00" {
			t.Errorf("won: deals %v, revenue %v, store account %v, org %v", figs[crm.FigWonDeals], figs[crm.FigWonRevenue],
				g.Org["account_won_revenue"], g.Org["org_won_revenue"])
		}
	})
	t.Run("the offline summary lists as open and as won the deals the figures count", func(t *testing.T) {
		if got, want := dealRefs(resp, "Open opportunities: 2 worth USD 192.00"), []string{"deals/nego", "deals/proposal"}; !slices.Equal(got, want) {
			t.Errorf("open opportunities cite %v, want %v", got, want)
		}
		if got, want := dealRefs(resp, "Won revenue: USD 3.00"), []string{"deals/won", "deals/won-cased"}; !slices.Equal(got, want) {
			t.Errorf("won revenue cites %v, want %v", got, want)
		}
		if got, want := dealRefs(resp, "Won deal: "), []string{"deals/won", "deals/won-cased"}; !slices.Equal(got, want) {
			t.Errorf("won deals listed: %v, want %v", got, want)
		}
	})

	// The deal's own summary: closed, so no share of the open pipeline
	// and no risk of a passed close date or a missing next step.
	t.Run("a Closed - Other deal's summary treats it as closed", func(t *testing.T) {
		g, req, resp := summaryOf(t, db, org, "deals", "other")
		figs := req.Facts.Org[crm.Figures].(map[string]any)
		if fmt.Sprint(g.Org["open_deals"]) != "2" || fmt.Sprint(g.Org["open_pipeline_value"]) != "192.00" ||
			fmt.Sprint(g.Org["account_open_pipeline_value"]) != "192.00" {
			t.Errorf("store: %v", g.Org)
		}
		if _, ok := figs[crm.FigPipelineShare]; ok {
			t.Errorf("a closed deal has a share of the open pipeline: %v", figs[crm.FigPipelineShare])
		}
		for _, s := range resp.Answer.Sections {
			for _, b := range s.Bullets {
				if strings.Contains(b.Text, "while the deal is open") || strings.Contains(b.Text, "No next step is recorded") ||
					strings.Contains(b.Text, "this deal is") {
					t.Errorf("%s treats the deal as open: %q", s.Key, b.Text)
				}
			}
		}
	})
	t.Run("an open deal's share of the pipeline is of the store's open value", func(t *testing.T) {
		_, req, _ := summaryOf(t, db, org, "deals", "nego")
		figs := req.Facts.Org[crm.Figures].(map[string]any)
		if fmt.Sprint(figs[crm.FigPipelineShare]) != "33.3" {
			t.Errorf("share %v, want 33.3 (64 of 192)", figs[crm.FigPipelineShare])
		}
	})
}
