package store_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestCreateExpansionOpportunityOncePerSummary(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "Acme"}`, `{"external_id": "acc2"}`)
	load(t, db, org, "contacts", `{"external_id": "c1", "account": "acc1"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`)
	t0 := time.Now().UTC()
	save(t, db, newSummary(org, "sum-1", "h", t0))
	save(t, db, newSummary(org, "sum-2", "h", t0))
	contactSummary := newSummary(org, "sum-c", "h", t0)
	contactSummary.Module, contactSummary.RecordExternalID = "contacts", "c1"
	save(t, db, contactSummary)
	save(t, db, newSummary(other, "sum-o", "h", t0))

	// Concurrent clicks create one deal.
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, isNew, err := db.CreateExpansionOpportunity(ctx, org, "sum-1", "acc1", "Analytics add-on", "- Add analytics (activity notes)")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if isNew {
				created++
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d deals created, want 1", created)
	}
	deal, isNew, err := db.CreateExpansionOpportunity(ctx, org, "sum-1", "acc1", "Other name", "other text")
	if err != nil || isNew {
		t.Fatalf("again: %v %v", isNew, err)
	}
	want := map[string]any{
		"id": "exp-sum-1", "state": "active", "deal_type": "expansion", "stage": "Qualification", "account": "acc1",
		"name": "Analytics add-on", "description": "- Add analytics (activity notes)", "contact": nil, "amount": nil,
	}
	for k, v := range want {
		if deal[k] != v {
			t.Errorf("deal[%s] = %#v, want %#v", k, deal[k], v)
		}
	}
	if !reflect.DeepEqual(deal, get(t, db, org, "deals", "exp-sum-1")) {
		t.Errorf("returned deal differs from GetRecord: %v", deal)
	}
	hist, err := db.FieldHistory(ctx, org, "deals", "exp-sum-1")
	if err != nil || len(hist) != 1 || *hist[0].NewValue != "Qualification" || hist[0].OldValue != nil {
		t.Errorf("stage history = %+v %v", hist, err)
	}
	// The new deal is part of the account's graph.
	if d := findRecord(graph(t, db, org, "accounts", "acc1").Related, "deals", "exp-sum-1"); d.Level != 1 {
		t.Errorf("expansion deal not in the account graph")
	}

	if deal, isNew, err := db.CreateExpansionOpportunity(ctx, org, "sum-2", "acc1", "", ""); err != nil || !isNew || deal["name"] != "Expansion: Acme" {
		t.Errorf("default name: %v %v %v", deal, isNew, err)
	}
	for _, tc := range []struct {
		what, summary, account string
		want                   error
	}{
		{"a contact's summary", "sum-c", "c1", store.ErrConflict},
		{"another account than the summary's", "sum-1", "acc2", store.ErrConflict},
		{"another org's summary", "sum-o", "acc1", store.ErrNotFound},
		{"a missing summary", "nope", "acc1", store.ErrNotFound},
	} {
		if _, _, err := db.CreateExpansionOpportunity(ctx, org, tc.summary, tc.account, "n", "d"); !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", tc.what, tc.want, err)
		}
	}
	if _, _, err := db.CreateExpansionOpportunity(ctx, org, "sum-1", "acc1", "bad\x00name", ""); !errors.Is(err, store.ErrInvalidExpansion) {
		t.Errorf("NUL in name: %v", err)
	}
	// The account was deleted after its summary was made.
	save(t, db, newSummary(org, "sum-3", "h", t0))
	if err := db.DeleteRecord(ctx, org, "accounts", "acc1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateExpansionOpportunity(ctx, org, "sum-3", "acc1", "n", "d"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted account: want ErrNotFound, got %v", err)
	}
}
