package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/store/storetest"
)

// stageFixture loads account acc1 with one deal per kind of stage the rule
// tells apart, and acc2 with a won and an other-closed deal of its own.
// Amounts are distinct powers of two, so every sum says which deals it took.
func stageFixture(t *testing.T, db *store.DB, org int64) {
	t.Helper()
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "Acme"}`, `{"external_id": "acc2", "name": "Globex"}`)
	load(t, db, org, "deals",
		`{"external_id": "won", "name": "Won", "account": "acc1", "stage": "Closed Won", "amount": 1}`,
		`{"external_id": "won-cased", "name": "Won cased", "account": "acc1", "stage": "  CLOSED won\t", "amount": 2}`,
		`{"external_id": "won-nbsp", "name": "Won nbsp", "account": "acc1", "stage": "\u00a0closed Won\u00a0", "amount": 4}`,
		`{"external_id": "other", "name": "Other", "account": "acc1", "stage": "Closed - Other", "amount": 8}`,
		`{"external_id": "competition", "name": "Competition", "account": "acc1", "stage": "Closed-Lost to Competition", "amount": 16}`,
		`{"external_id": "lost", "name": "Lost", "account": "acc1", "stage": "closed lost ", "amount": 32}`,
		`{"external_id": "nego", "name": "Negotiation", "account": "acc1", "stage": "Negotiation", "amount": 64}`,
		`{"external_id": "nostage", "name": "No stage", "account": "acc1", "amount": 128}`,
		`{"external_id": "wonish", "name": "Wonish", "account": "acc1", "stage": "Won", "amount": 256}`,
		`{"external_id": "else-won", "name": "Else won", "account": "acc2", "stage": "Closed Won", "amount": 512}`,
		`{"external_id": "else-other", "name": "Else other", "account": "acc2", "stage": "Closed - Other", "amount": 1024}`)
}

// A deal's stage means the same in every org figure the store computes as
// in crm.Stage: "Closed - Other" is closed and not won, so it is neither
// open pipeline nor won revenue.
func TestStoreFiguresClassifyStagesAsTheCRMRuleDoes(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	stageFixture(t, db, org)

	// The rule on these stages, as a reader would state it.
	want := map[string]crm.Outcome{
		"won": crm.Won, "won-cased": crm.Won, "won-nbsp": crm.Won,
		"other": crm.Lost, "competition": crm.Lost, "lost": crm.Lost,
		"nego": crm.Open, "nostage": crm.Open, "wonish": crm.Open,
		"else-won": crm.Won, "else-other": crm.Lost,
	}
	// Sums by outcome of the account's deals and of the org's, read from
	// the stored stages through crm.Stage.
	type sums struct{ won, open, n float64 }
	var acc, all sums
	for _, account := range []string{"acc1", "acc2"} {
		g := graph(t, db, org, "accounts", account)
		for _, d := range g.Related {
			if d.Module != "deals" {
				continue
			}
			stage, _ := d.Fields["stage"].(string)
			got := crm.Stage(stage)
			if got != want[d.ID] {
				t.Errorf("deal %s stage %q is %s, want %s", d.ID, stage, got, want[d.ID])
			}
			amount, _ := d.Fields["amount"].(json.Number).Float64()
			add := func(s *sums) {
				switch got {
				case crm.Won:
					s.won += amount
				case crm.Open:
					s.open += amount
					s.n++
				}
			}
			add(&all)
			if account == "acc1" {
				add(&acc)
			}
		}
	}
	if acc != (sums{won: 1 + 2 + 4, open: 64 + 128 + 256, n: 3}) || all.won != 1+2+4+512 {
		t.Fatalf("the Go rule gives account %+v, org %+v", acc, all)
	}

	num := func(v float64) json.Number { return json.Number(fmt.Sprintf("%.2f", v)) }
	g := graph(t, db, org, "accounts", "acc1")
	for k, v := range map[string]json.Number{
		"account_won_revenue": num(acc.won),
		"org_won_revenue":     num(all.won),
		"open_pipeline_value": num(acc.open),
		"open_deals":          json.Number(fmt.Sprint(acc.n)),
	} {
		if g.Org[k] != v {
			t.Errorf("account org[%s] = %v, want %v", k, g.Org[k], v)
		}
	}
	d := graph(t, db, org, "deals", "nego")
	for k, v := range map[string]json.Number{
		"open_pipeline_value":         num(all.open),
		"open_deals":                  json.Number(fmt.Sprint(all.n)),
		"account_open_pipeline_value": num(acc.open),
	} {
		if d.Org[k] != v {
			t.Errorf("deal org[%s] = %v, want %v", k, d.Org[k], v)
		}
	}
}
