package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestRecordState(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "a1"}`, `{"external_id": "a2", "state": "draft"}`)
	load(t, db, org, "leads", `{"external_id": "l1", "state": "incomplete"}`)
	load(t, db, org, "custom_jobs", `{"external_id": "j1", "state": "draft"}`)
	load(t, db, other, "accounts", `{"external_id": "theirs"}`)
	for _, tc := range []struct{ module, id, want string }{
		{"accounts", "a1", "active"}, {"accounts", "a2", "draft"}, {"leads", "l1", "incomplete"}, {"custom_jobs", "j1", "draft"},
	} {
		if got, err := db.RecordState(ctx, org, tc.module, tc.id); err != nil || got != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.module, tc.id, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ module, id string }{{"accounts", "theirs"}, {"accounts", "nope"}, {"custom_other", "j1"}, {"leads", ""}} {
		if _, err := db.RecordState(ctx, org, tc.module, tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s %q: want ErrNotFound, got %v", tc.module, tc.id, err)
		}
	}
	if _, err := db.RecordState(ctx, org, "bogus", "a1"); !errors.Is(err, store.ErrInvalidModule) {
		t.Errorf("bogus module: %v", err)
	}
}

func TestAccountHasAssociatedRecords(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "bare"}`)
	load(t, db, org, "objectives", `{"external_id": "o-bare-free"}`)
	if has, err := db.AccountHasAssociatedRecords(ctx, org, "bare"); err != nil || has {
		t.Errorf("bare account: %v %v, want false", has, err)
	}
	// One account per kind of associated record, each with that record alone.
	for _, tc := range []struct{ module, row string }{
		{"contacts", `{"external_id": "x", "account": "%s"}`},
		{"deals", `{"external_id": "x", "account": "%s"}`},
		{"cases", `{"external_id": "x", "account": "%s"}`},
		{"success_plans", `{"external_id": "x", "account": "%s"}`},
		{"business_challenges", `{"external_id": "x", "account": "%s"}`},
		{"objectives", `{"external_id": "x", "account": "%s"}`},
		{"kpis", `{"external_id": "x", "account": "%s"}`},
		{"playbooks", `{"external_id": "x", "account": "%s"}`},
		{"projects", `{"external_id": "x", "account": "%s"}`},
		{"activities", `{"external_id": "x", "account": "%s", "medium": "email", "direction": "signal", "occurred_at": "2026-01-01T00:00:00Z"}`},
	} {
		acc := "with-" + tc.module
		load(t, db, org, "accounts", fmt.Sprintf(`{"external_id": %q}`, acc))
		load(t, db, org, tc.module, fmt.Sprintf(tc.row, acc))
		if has, err := db.AccountHasAssociatedRecords(ctx, org, acc); err != nil || !has {
			t.Errorf("account with one of %s: %v %v, want true", tc.module, has, err)
		}
		// The same record in another org does not count for this one.
		load(t, db, other, "accounts", fmt.Sprintf(`{"external_id": %q}`, acc))
		if has, err := db.AccountHasAssociatedRecords(ctx, other, acc); err != nil || has {
			t.Errorf("other org's bare %s: %v %v, want false", acc, has, err)
		}
	}
	for _, id := range []string{"nope", ""} {
		if _, err := db.AccountHasAssociatedRecords(ctx, org, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%q: want ErrNotFound, got %v", id, err)
		}
	}
	load(t, db, other, "accounts", `{"external_id": "theirs"}`)
	if _, err := db.AccountHasAssociatedRecords(ctx, org, "theirs"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another org's account: want ErrNotFound, got %v", err)
	}
}
