package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestEnrichmentSettingsHoldOneToThirteenCatalogFields(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	st, err := db.EnrichmentSettings(ctx, org)
	if err != nil || !st.Default || len(st.Fields) != store.MaxEnrichFields {
		t.Fatalf("default settings %+v %v", st, err)
	}
	keys := make([]string, 0, len(store.EnrichFields))
	for _, f := range store.EnrichFields {
		keys = append(keys, f.Key)
	}
	var fe store.EnrichmentErrors
	for _, bad := range [][]string{{}, keys[:14], {"industry", "nope"}, {"city", "city"}} {
		if _, err := db.PutEnrichmentSettings(ctx, org, bad, time.Now()); !errors.As(err, &fe) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	for _, good := range [][]string{keys[:1], keys[:13]} {
		if _, err := db.PutEnrichmentSettings(ctx, org, good, time.Now()); err != nil {
			t.Fatalf("%v: %v", good, err)
		}
	}
	if st, _ := db.EnrichmentSettings(ctx, org); st.Default || len(st.Fields) != 13 {
		t.Fatalf("stored %+v", st)
	}
}

func TestTheDailyCountIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	day := time.Date(2026, 7, 1, 23, 59, 0, 0, time.UTC)
	var q *store.EnrichQuotaError
	if _, err := db.ReserveEnrichments(ctx, org, day, 11, 10); !errors.As(err, &q) || q.Remaining != 10 {
		t.Fatalf("11 of 10 on a fresh day: %v", err)
	}
	if left, err := db.ReserveEnrichments(ctx, org, day, 7, 10); err != nil || left != 3 {
		t.Fatalf("7 of 10: %d %v", left, err)
	}
	if _, err := db.ReserveEnrichments(ctx, org, day, 4, 10); !errors.As(err, &q) || q.Remaining != 3 {
		t.Fatalf("4 more: %v", err)
	}
	if err := db.ReleaseEnrichments(ctx, org, day, 2); err != nil {
		t.Fatal(err)
	}
	if left, err := db.ReserveEnrichments(ctx, org, day, 5, 10); err != nil || left != 0 {
		t.Fatalf("5 after 2 given back: %d %v", left, err)
	}
	if left, err := db.ReserveEnrichments(ctx, org, day.Add(time.Minute), 10, 10); err != nil || left != 0 {
		t.Fatalf("the next UTC day: %d %v", left, err)
	}
}

// Enriched fields kept in attributes are what segment criteria read once
// the ABM mapping names them: text, numbers, and the technologies list
// (a text condition such as contains reads it).
func TestSegmentsReadEnrichedAttributes(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.SetABMMapping(ctx, org, mappingOf(t, `{"roles": {"accounts": {"fields": {
		"size_band": {"org_field": "attributes.size_band", "type": "text"},
		"founded_year": {"org_field": "attributes.founded_year", "type": "number"},
		"technologies": {"org_field": "attributes.technologies", "type": "text"}}}}}`)); err != nil {
		t.Fatal(err)
	}
	load(t, db, org, "accounts", `{"external_id": "a1", "name": "A"}`, `{"external_id": "a2", "name": "B"}`)
	ids, err := db.EnrichAccountIDs(ctx, org, []string{"a1", "a2"})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]store.EnrichProposal{
		{{Field: "size_band", Proposed: "201-500", Found: true}, {Field: "founded_year", Proposed: float64(1994), Found: true},
			{Field: "technologies", Proposed: []any{"WordPress 6.4.2", "HubSpot"}, Found: true}},
		{{Field: "size_band", Proposed: "201-500", Found: true}, {Field: "founded_year", Proposed: float64(2015), Found: true}},
	} {
		if _, err := db.WriteEmptyFields(ctx, org, ids[i], p, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	seg, err := db.CreateSegment(ctx, org, store.SegmentInput{Name: "old HubSpot users", Criteria: crit(`{"conditions": [
		{"field": "size_band", "op": "equals", "value": "201-500"},
		{"field": "founded_year", "op": "lt", "value": 2000},
		{"field": "technologies", "op": "contains", "value": "hubspot"}]}`)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if seg.MemberCount != 1 {
		t.Fatalf("%d members, want a1 alone", seg.MemberCount)
	}
}
