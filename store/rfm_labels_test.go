package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// RFM labels are decided in SQL two ways: rules over the scores alone are
// decided once per combination of scores and joined to each account, and
// rule sets that read raw values are tried per account. Both must give the
// label the criteria language's own evaluator gives, first match winning.
func TestRFMLabelsAreTheFirstMatchingRule(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "rfm-labels")
	rng := rand.New(rand.NewPCG(7, 9))
	var accounts []string
	var deals []rfmDeal
	for i := range 60 {
		a := fmt.Sprintf("acc-%02d", i)
		accounts = append(accounts, a)
		for range 1 + rng.IntN(6) {
			deals = append(deals, rfmDeal{account: a, ageDays: rng.IntN(400), amount: float64(100 * (1 + rng.IntN(30)))})
		}
	}
	ingestRFM(t, db, org.ID, accounts, deals)

	rule := func(s string) *criteria.Checked {
		t.Helper()
		var c criteria.Criteria
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			t.Fatal(err)
		}
		checked, err := criteria.Check(c, store.RFMLabelFields())
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return checked
	}
	scoresOnly := []store.LabelRule{
		{Name: "Top", Rule: rule(`{"conditions": [{"field": "r", "op": "gte", "value": 4}, {"field": "f", "op": "gte", "value": 4}, {"field": "m", "op": "equals", "value": 5}], "pattern": "1 AND (2 OR 3)"}`)},
		{Name: "Recent", Rule: rule(`{"conditions": [{"field": "r", "op": "between", "value": [3, 5]}]}`)},
		{Name: "Not frequent", Rule: rule(`{"conditions": [{"field": "f", "op": "in", "value": [1, 2]}, {"field": "m", "op": "lt", "value": 3}], "pattern": "NOT 1 OR 2"}`)},
		{Name: "Spenders", Rule: rule(`{"conditions": [{"field": "m", "op": "gt", "value": 3}]}`)},
	}
	withRaw := []store.LabelRule{
		{Name: "Big and recent", Rule: rule(`{"conditions": [{"field": "monetary", "op": "gte", "value": 4000}, {"field": "recency_days", "op": "lte", "value": 120}]}`)},
		{Name: "Top", Rule: scoresOnly[0].Rule},
		{Name: "Many deals", Rule: rule(`{"conditions": [{"field": "frequency", "op": "gte", "value": 4}, {"field": "r", "op": "not_equals", "value": 1}]}`)},
		{Name: "Spenders", Rule: scoresOnly[3].Rule},
	}
	for i, rules := range [][]store.LabelRule{scoresOnly, withRaw} {
		run, err := db.ScoreAndLabelRFM(context.Background(), org.ID, autoRFM, rules, nil, rfmToday, fmt.Sprintf("run-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			rfmRow
			Label *string `db:"label"`
		}
		err = db.SelectContext(context.Background(), &rows, `
			SELECT a.external_id, l.r, l.f, l.m, (l.raw->>'recency_days')::int AS recency_days,
			       (l.raw->>'frequency')::float8 AS frequency, (l.raw->>'monetary')::float8 AS monetary, l.label
			FROM account_labels l JOIN accounts a ON a.id = l.account_id
			WHERE l.org_id = $1 AND l.technique = 'rfm'`, org.ID)
		if err != nil || len(rows) != run.Scored || len(rows) != len(accounts) {
			t.Fatalf("rule set %d: %d rows, %d scored (%v); want %d", i, len(rows), run.Scored, err, len(accounts))
		}
		seen := map[string]int{}
		for _, r := range rows {
			values := map[string]any{"r": float64(r.R), "f": float64(r.F), "m": float64(r.M),
				"recency_days": float64(r.Recency), "frequency": r.Freq, "monetary": r.Money}
			want := ""
			for _, lr := range rules {
				if lr.Rule.Eval(values, rfmToday) {
					want = lr.Name
					break
				}
			}
			got := ""
			if r.Label != nil {
				got = *r.Label
			}
			if got != want {
				t.Errorf("rule set %d, %s %+v: label %q, want %q", i, r.Account, values, got, want)
			}
			seen[got]++
		}
		if len(seen) < 3 {
			t.Errorf("rule set %d: labels %v; the dataset should exercise several rules", i, seen)
		}
	}
}
