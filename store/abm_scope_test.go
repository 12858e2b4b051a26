package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// The global criteria decides which accounts RFM scores: the seed's Zylker
// example, billing country is not empty.
func TestGlobalCriteriaScopesScoring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "scope")
	ingestRFM(t, db, org.ID, []string{"A", "B"}, []rfmDeal{{account: "A", ageDays: 1, amount: 10}, {account: "B", ageDays: 1, amount: 10}})
	if _, err := db.ExecContext(ctx, `UPDATE accounts SET country = NULL WHERE org_id = $1 AND external_id = 'B'`, org.ID); err != nil {
		t.Fatal(err)
	}
	if c, err := db.GlobalCriteria(ctx, org.ID); err != nil || len(c.Conditions) != 0 {
		t.Fatalf("default global criteria: %+v, %v; want none (all accounts)", c, err)
	}
	bad := criteria.Criteria{Conditions: []criteria.Condition{{Field: "billing_country", Op: criteria.IsNotEmpty}}}
	if err := db.SetGlobalCriteria(ctx, org.ID, bad); !errors.Is(err, criteria.ErrInvalid) {
		t.Fatalf("unknown field: %v, want a criteria error", err)
	}
	zylker := criteria.Criteria{Conditions: []criteria.Condition{{Field: "country", Op: criteria.IsNotEmpty}}}
	if err := db.SetGlobalCriteria(ctx, org.ID, zylker); err != nil {
		t.Fatal(err)
	}
	scope, err := db.ScopeFilter(ctx, org.ID, rfmToday)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ScoreRFM(ctx, org.ID, autoRFM, scope, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	got := rfmScores(t, db, org.ID)
	if _, ok := got["B"]; ok || len(got) != 1 {
		t.Fatalf("scored %v, want only A: B has no country", got)
	}
}

// Segment criteria may name what the techniques computed.
func TestSegmentFieldsReadTechniqueResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "fields")
	ingestRFM(t, db, org.ID, []string{"A", "B", "C"}, []rfmDeal{{account: "A", ageDays: 1, amount: 10}, {account: "B", ageDays: 90, amount: 10}})
	if _, err := db.ScoreRFM(ctx, org.ID, autoRFM, nil, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	fields, err := db.SegmentFields(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A (1 day) scores r = 5, B (90 days) r = ceil(5 * 1/2) = 3; C has no deal.
	f, err := store.CriteriaFilter(criteria.Criteria{Conditions: []criteria.Condition{
		{Field: "score.rfm.r", Op: criteria.Gte, Value: []byte(`4`)},
		{Field: "rfm.recency_days", Op: criteria.Lt, Value: []byte(`30`)},
		{Field: "label.rfm", Op: criteria.IsEmpty}}}, fields, rfmToday)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{org.ID}
	where, err := f(&args)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := db.SelectContext(ctx, &ids, `SELECT a.external_id FROM accounts a WHERE a.org_id = $1 AND `+where+` ORDER BY 1`, args...); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "A" {
		t.Fatalf("r >= 4 and recency < 30 and no label: %v, want [A]", ids)
	}
}
