package store_test

import (
	"context"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// An attempt a stopping worker abandoned may write its outcome after
// another worker started the task again; that late write changes nothing.
func TestStaleAttemptCannotOverwriteTheCurrentOne(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	if _, _, err := db.InsertJob(ctx, store.Job{ID: "j1", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartJob(ctx, "j1", 1, "run-a"); err != nil {
		t.Fatal(err)
	}
	// The task was handed back and another worker runs it now.
	if _, err := db.StartJob(ctx, "j1", 1, "run-b"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishJob(ctx, "j1", "run-a", store.JobQueued, nil, "worker stopped"); err != nil {
		t.Fatal(err)
	}
	if j, _ := db.Job(ctx, org.ID, "j1"); j.State != store.JobRunning {
		t.Fatalf("stale attempt changed the job to %q", j.State)
	}
	if err := db.FinishJob(ctx, "j1", "run-b", store.JobSucceeded, []byte(`{"ok":true}`), ""); err != nil {
		t.Fatal(err)
	}
	if j, _ := db.Job(ctx, org.ID, "j1"); j.State != store.JobSucceeded || j.Result == nil {
		t.Fatalf("current attempt not recorded: %+v", j)
	}
}
