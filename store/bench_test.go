package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// Enabling statement stats forgets the statements of dropped databases
// (they fill pg_stat_statements.max) and keeps those of live ones.
func TestEnableStatementStatsForgetsDroppedDatabases(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	live, _ := storetest.NewDB(t)
	admin, err := store.Open(ctx, storetest.ServerURL("postgres"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		if strings.Contains(err.Error(), "shared_preload_libraries") {
			t.Skipf("Postgres runs without pg_stat_statements preloaded (deploy/dev/services.sh preloads it): %v", err)
		}
		t.Fatal(err)
	}

	// A database that runs a statement and is dropped (its own cleanup
	// then finds it gone).
	gone, _ := storetest.NewDB(t)
	var name string
	var goneOID, liveOID int64
	if err := gone.QueryRowContext(ctx, `SELECT current_database(), oid FROM pg_database WHERE datname = current_database()`).Scan(&name, &goneOID); err != nil {
		t.Fatal(err)
	}
	if err := live.GetContext(ctx, &liveOID, `SELECT oid FROM pg_database WHERE datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	if _, err := gone.ExecContext(ctx, `SELECT 1 FROM pg_class LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.ExecContext(ctx, `SELECT 1 FROM pg_class LIMIT 1`); err != nil {
		t.Fatal(err)
	}

	entries := func(oid int64) int {
		t.Helper()
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_statements WHERE dbid = $1`, oid); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if entries(goneOID) == 0 || entries(liveOID) == 0 {
		t.Fatalf("pg_stat_statements did not count the statements: dropped database %d, live %d", entries(goneOID), entries(liveOID))
	}
	if err := db.EnableStatementStats(ctx); err != nil {
		t.Fatal(err)
	}
	if n := entries(goneOID); n != 0 {
		t.Errorf("%d statements of the dropped database kept", n)
	}
	if entries(liveOID) == 0 {
		t.Error("the statements of a live database were forgotten")
	}
}
