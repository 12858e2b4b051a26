package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	db, _ := storetest.NewDB(t)
	if err := store.Migrate(context.Background(), db.DB.DB); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestAPIKeyResolvesOnlyItsOrg(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	a, err := db.CreateOrg(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.CreateOrg(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	keyA, _ := db.CreateAPIKey(ctx, a.ID)
	keyB, _ := db.CreateAPIKey(ctx, b.ID)
	if got, err := db.OrgByKey(ctx, keyA); err != nil || got.ID != a.ID {
		t.Fatalf("key a -> %v, %v", got, err)
	}
	if got, err := db.OrgByKey(ctx, keyB); err != nil || got.ID != b.ID {
		t.Fatalf("key b -> %v, %v", got, err)
	}
	for _, bad := range []string{"", "crmq_nope", keyA + "x", "Bearer " + keyA} {
		if _, err := db.OrgByKey(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key %q: want ErrNotFound, got %v", bad, err)
		}
	}
	if _, err := db.CreateOrg(ctx, "a"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate org name: want ErrConflict, got %v", err)
	}
}
