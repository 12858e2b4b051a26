package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/store/storetest"
)

// rfmToday is the day the hand-made datasets are scored on.
var rfmToday = time.Date(2026, 6, 30, 15, 0, 0, 0, time.UTC)

type rfmDeal struct {
	account string
	ageDays int
	amount  float64
	stage   string
	qty     float64 // products on the deal (one line item), 0 for none
}

func ingestRFM(t *testing.T, db *store.DB, orgID int64, accounts []string, deals []rfmDeal) {
	t.Helper()
	ctx := context.Background()
	var rows []json.RawMessage
	for _, a := range accounts {
		rows = append(rows, json.RawMessage(fmt.Sprintf(`{"external_id":%q,"name":%q,"country":"DE"}`, a, a)))
	}
	if res, err := db.UpsertRecords(ctx, orgID, "accounts", rows); err != nil || res.Failed != 0 {
		t.Fatalf("accounts: %+v %v", res, err)
	}
	rows = rows[:0]
	var items []json.RawMessage
	for i, d := range deals {
		stage := d.stage
		if stage == "" {
			stage = "Closed Won"
		}
		day := rfmToday.AddDate(0, 0, -d.ageDays).Format(time.DateOnly)
		rows = append(rows, json.RawMessage(fmt.Sprintf(`{"external_id":"d%d","name":"deal","account":%q,"stage":%q,"amount":%v,"close_date":%q}`, i, d.account, stage, d.amount, day)))
		if d.qty > 0 {
			items = append(items, json.RawMessage(fmt.Sprintf(`{"external_id":"li%d","deal":"d%d","quantity":%v}`, i, i, d.qty)))
		}
	}
	if res, err := db.UpsertRecords(ctx, orgID, "deals", rows); err != nil || res.Failed != 0 {
		t.Fatalf("deals: %+v %v", res, err)
	}
	if len(items) > 0 {
		if res, err := db.UpsertRecords(ctx, orgID, "deal_line_items", items); err != nil || res.Failed != 0 {
			t.Fatalf("line items: %+v %v", res, err)
		}
	}
}

type rfmRow struct {
	Account string  `db:"external_id"`
	R       int     `db:"r"`
	F       int     `db:"f"`
	M       int     `db:"m"`
	Recency int     `db:"recency_days"`
	Freq    float64 `db:"frequency"`
	Money   float64 `db:"monetary"`
}

func rfmScores(t *testing.T, db *store.DB, orgID int64) map[string]rfmRow {
	t.Helper()
	var rows []rfmRow
	err := db.SelectContext(context.Background(), &rows, `
		SELECT a.external_id, l.r, l.f, l.m, (l.raw->>'recency_days')::int AS recency_days,
		       (l.raw->>'frequency')::float8 AS frequency, (l.raw->>'monetary')::float8 AS monetary
		FROM account_labels l JOIN accounts a ON a.id = l.account_id
		WHERE l.org_id = $1 AND l.technique = 'rfm'`, orgID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rfmRow{}
	for _, r := range rows {
		out[r.Account] = r
	}
	return out
}

var autoRFM = store.RFMSettings{Mode: "automatic", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount"}

// Ten accounts, one won deal each, with ties at both ends of recency.
// Sorted worst to best, c/n is the cumulative share and the score is
// ceil(5c/n): I and J (70 days, c = 2) score 1, H 2, G 2, F 3, E 3, D 4,
// C 4, and A and B (1 day, c = 10) both score 5 — NTILE would split them.
func TestRFMQuintilesGiveTiesOneScore(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "rfm")
	ages := map[string]int{"A": 1, "B": 1, "C": 10, "D": 20, "E": 30, "F": 40, "G": 50, "H": 60, "I": 70, "J": 70}
	var deals []rfmDeal
	for a, age := range ages {
		deals = append(deals, rfmDeal{account: a, ageDays: age, amount: 100})
	}
	ingestRFM(t, db, org.ID, []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "none"}, append(deals,
		rfmDeal{account: "none", ageDays: 1, amount: 5000, stage: "Negotiation"},     // open: does not count
		rfmDeal{account: "none", ageDays: 1, amount: 5000, stage: "Closed - Other"})) // lost: does not count
	run, err := db.ScoreRFM(context.Background(), org.ID, autoRFM, nil, rfmToday, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	got := rfmScores(t, db, org.ID)
	if run.Scored != 10 || len(got) != 10 {
		t.Fatalf("scored %d (%d rows), want the 10 accounts with a won deal", run.Scored, len(got))
	}
	if _, ok := got["none"]; ok {
		t.Error("an account without a won deal was scored")
	}
	want := map[string]int{"A": 5, "B": 5, "C": 4, "D": 4, "E": 3, "F": 3, "G": 2, "H": 2, "I": 1, "J": 1}
	for a, r := range want {
		if got[a].R != r || got[a].Recency != ages[a] {
			t.Errorf("%s: r=%d recency=%d, want r=%d recency=%d", a, got[a].R, got[a].Recency, r, ages[a])
		}
		// Every account has one deal of 100: all tie, all score 5.
		if got[a].F != 5 || got[a].M != 5 {
			t.Errorf("%s: f=%d m=%d, want 5 and 5 (all equal)", a, got[a].F, got[a].M)
		}
	}
}

// k = 3, frequency as products bought, monetary summed over several deals.
func TestRFMScaleThreeAndProductFrequency(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "rfm3")
	ingestRFM(t, db, org.ID, []string{"A", "B", "C", "D", "E", "F"}, []rfmDeal{
		{account: "A", ageDays: 5, amount: 10, qty: 1},
		{account: "B", ageDays: 5, amount: 20, qty: 2},
		{account: "C", ageDays: 5, amount: 30, qty: 3},
		{account: "D", ageDays: 5, amount: 40, qty: 4},
		{account: "E", ageDays: 5, amount: 50, qty: 5},
		{account: "F", ageDays: 5, amount: 25, qty: 3}, {account: "F", ageDays: 90, amount: 35, qty: 3},
	})
	s := autoRFM
	s.Scale, s.Frequency = 3, "products"
	if _, err := db.ScoreRFM(context.Background(), org.ID, s, nil, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	got := rfmScores(t, db, org.ID)
	// Frequency (products): A1 B2 C3 D4 E5 F6 -> c = 1..6 of 6 -> ceil(3c/6).
	// Monetary: A10 B20 C30 D40 E50 F60 -> the same order.
	for a, want := range map[string]int{"A": 1, "B": 1, "C": 2, "D": 2, "E": 3, "F": 3} {
		if got[a].F != want || got[a].M != want || got[a].R != 3 {
			t.Errorf("%s: r=%d f=%d m=%d (freq %v, money %v), want r=3 f=m=%d", a, got[a].R, got[a].F, got[a].M, got[a].Freq, got[a].Money, want)
		}
	}
	if got["F"].Freq != 6 || got["F"].Money != 60 || got["F"].Recency != 5 {
		t.Errorf("F raw %+v, want 6 products, 60 spent, last 5 days ago", got["F"])
	}
}

// Manual bands, tried from the highest score down; none matched scores 1.
// A rerun after an account lost its only won deal removes its scores.
func TestRFMManualBandsAndRerun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "manual")
	ingestRFM(t, db, org.ID, []string{"A", "B", "C"}, []rfmDeal{
		{account: "A", ageDays: 3, amount: 2000},
		{account: "B", ageDays: 45, amount: 900}, {account: "B", ageDays: 50, amount: 100},
		{account: "C", ageDays: 400, amount: 10},
	})
	f := func(v float64) *float64 { return &v }
	s := store.RFMSettings{Mode: "manual", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount",
		Manual: &store.RFMManual{
			Recency:   []store.RecencyBand{{Score: 4, WithinDays: 60}, {Score: 5, WithinDays: 7}},
			Frequency: []store.RangeBand{{Score: 5, Min: f(2)}, {Score: 3, Min: f(1), Max: f(2)}},
			Monetary:  []store.RangeBand{{Score: 5, Min: f(1500)}, {Score: 4, Min: f(800), Max: f(1200)}},
		}}
	if _, err := db.ScoreRFM(ctx, org.ID, s, nil, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	got := rfmScores(t, db, org.ID)
	// B spent 900 + 100 = 1000: the 800-1200 band.
	want := map[string][3]int{"A": {5, 3, 5}, "B": {4, 5, 4}, "C": {1, 3, 1}}
	for a, w := range want {
		if g := got[a]; [3]int{g.R, g.F, g.M} != w {
			t.Errorf("%s: r,f,m = %d,%d,%d, want %v (raw %+v)", a, g.R, g.F, g.M, w, g)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE deals SET stage = 'Closed Lost' WHERE org_id = $1 AND account_id = (SELECT id FROM accounts WHERE org_id = $1 AND external_id = 'C')`, org.ID); err != nil {
		t.Fatal(err)
	}
	run, err := db.ScoreRFM(ctx, org.ID, s, nil, rfmToday, "run-2")
	if err != nil || run.Scored != 2 || run.Removed != 1 {
		t.Fatalf("rerun: %+v, %v; want 2 scored and C's scores removed", run, err)
	}
	if _, ok := rfmScores(t, db, org.ID)["C"]; ok {
		t.Error("C still has scores without a won deal")
	}
}

// Settings never become identifiers: an unknown field is refused before
// any SQL runs.
func TestRFMRefusesFieldsOutsideTheAllowList(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	for _, s := range []store.RFMSettings{
		{Mode: "automatic", Scale: 5, RecencyField: "close_date; DROP TABLE deals", Frequency: "deals", MonetaryField: "amount"},
		{Mode: "automatic", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "probability"},
		{Mode: "automatic", Scale: 6, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount"},
		{Mode: "manual", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount"},
		// a band score beyond the scale would index another combination's label
		{Mode: "manual", Scale: 3, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount",
			Manual: &store.RFMManual{Recency: []store.RecencyBand{{Score: 3, WithinDays: 30}}, Monetary: []store.RangeBand{{Score: 4}}}},
	} {
		if _, err := db.ScoreRFM(context.Background(), 1, s, nil, rfmToday, "r"); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

// The stored stage_norm is crm.Norm of the stage, for every kind of
// padding and case the rule trims and folds.
func TestStageNormIsTheCRMRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "norm")
	stages := []string{"Closed Won", " closed WON\t", "\u00a0Closed Won\u0085", "\v\fClosed - Other\r\n", "Negotiation", "", "Proposal/Price Quote"}
	for i, st := range stages {
		if _, err := db.ExecContext(ctx, `INSERT INTO deals (org_id, external_id, stage) VALUES ($1, $2, $3)`, org.ID, fmt.Sprint("d", i), st); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO deals (org_id, external_id, stage) VALUES ($1, 'null', NULL)`, org.ID); err != nil {
		t.Fatal(err)
	}
	for i, st := range append(stages, "") {
		id := fmt.Sprint("d", i)
		if i == len(stages) {
			id = "null"
		}
		var got string
		if err := db.GetContext(ctx, &got, `SELECT stage_norm FROM deals WHERE org_id = $1 AND external_id = $2`, org.ID, id); err != nil {
			t.Fatal(err)
		}
		if want := crm.Norm(st); got != want {
			t.Errorf("stage %q: stage_norm %q, crm.Norm %q", st, got, want)
		}
	}
}

// A refresh writes only what changed, and the calendar alone changes
// nothing stored: recency in days moves every day, the last purchase it is
// derived from does not, and criteria over rfm.recency_days read the days
// as of their own day.
func TestRFMRerunsWriteOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "rerun")
	ingestRFM(t, db, org.ID, []string{"A", "B", "C", "D"}, []rfmDeal{
		{account: "A", ageDays: 3, amount: 2000},
		{account: "B", ageDays: 29, amount: 900},
		{account: "C", ageDays: 100, amount: 50}, {account: "C", ageDays: 120, amount: 70},
		{account: "D", ageDays: 300, amount: 10},
	})
	first, err := db.ScoreRFM(ctx, org.ID, autoRFM, nil, rfmToday, "run-1")
	if err != nil || first.Written != 4 {
		t.Fatalf("first run: %+v, %v; want 4 rows written", first, err)
	}
	for day, run := range map[int]string{0: "run-2", 1: "run-3", 40: "run-4"} {
		again, err := db.ScoreRFM(ctx, org.ID, autoRFM, nil, rfmToday.AddDate(0, 0, day), run)
		if err != nil || again.Scored != 4 || again.Written != 0 || again.Removed != 0 {
			t.Fatalf("%d days later with the same deals: %+v, %v; want 4 scored and nothing written", day, again, err)
		}
	}

	// Criteria read recency as of their own day: B bought 29 days before
	// rfmToday, so 31 days after is 60 days.
	scope := func(day int) []string {
		t.Helper()
		fields, err := db.SegmentFields(ctx, org.ID)
		if err != nil {
			t.Fatal(err)
		}
		filter, err := store.CriteriaFilter(*crit(`{"conditions": [{"field": "rfm.recency_days", "op": "gte", "value": 60}]}`), fields, rfmToday.AddDate(0, 0, day))
		if err != nil {
			t.Fatal(err)
		}
		args := []any{org.ID}
		where, err := filter(&args)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if err := db.SelectContext(ctx, &ids, `SELECT a.external_id FROM accounts a WHERE a.org_id = $1 AND `+where+` ORDER BY 1`, args...); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got := scope(0); fmt.Sprint(got) != "[C D]" {
		t.Errorf("recency >= 60 days on the day scored: %v, want [C D]", got)
	}
	if got := scope(31); fmt.Sprint(got) != "[B C D]" {
		t.Errorf("recency >= 60 days a month later: %v, want [B C D]", got)
	}

	// A new won deal changes A's values only.
	day := rfmToday.AddDate(0, 0, -1).Format(time.DateOnly)
	deal := json.RawMessage(`{"external_id":"new-deal","name":"deal","account":"A","stage":"Closed Won","amount":10,"close_date":"` + day + `"}`)
	if res, err := db.UpsertRecords(ctx, org.ID, "deals", []json.RawMessage{deal}); err != nil || res.Failed != 0 {
		t.Fatalf("new deal: %+v %v", res, err)
	}
	changed, err := db.ScoreRFM(ctx, org.ID, autoRFM, nil, rfmToday, "run-5")
	if err != nil || changed.Written < 1 {
		t.Fatalf("after a new deal: %+v, %v; want A rewritten", changed, err)
	}
	if got := rfmScores(t, db, org.ID)["A"]; got.Freq != 2 || got.Money != 2010 {
		t.Errorf("A after a new deal: %+v, want frequency 2 and monetary 2010", got)
	}
}

// A metric with no manual band scores every account 1.
func TestRFMManualMetricWithoutBandsScoresOne(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "no-bands")
	ingestRFM(t, db, org.ID, []string{"A"}, []rfmDeal{{account: "A", ageDays: 3, amount: 2000}})
	s := store.RFMSettings{Mode: "manual", Scale: 5, RecencyField: "close_date", Frequency: "deals", MonetaryField: "amount",
		Manual: &store.RFMManual{Recency: []store.RecencyBand{{Score: 5, WithinDays: 7}}}}
	if _, err := db.ScoreRFM(context.Background(), org.ID, s, nil, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	if got := rfmScores(t, db, org.ID)["A"]; got.R != 5 || got.F != 1 || got.M != 1 {
		t.Errorf("A: r,f,m = %d,%d,%d, want 5,1,1", got.R, got.F, got.M)
	}
}
