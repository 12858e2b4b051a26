package maintenance_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/maintenance"
)

func TestPruneKeepsSavedAndRecentSummaries(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	if _, err := db.UpsertRecords(ctx, org.ID, "accounts", []json.RawMessage{json.RawMessage(`{"external_id":"a1","name":"A"}`)}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		id  string
		age time.Duration
	}{{"old", 100 * 24 * time.Hour}, {"old-saved", 100 * 24 * time.Hour}, {"recent", 24 * time.Hour}} {
		err := db.SaveSummary(ctx, store.Summary{ID: s.id, OrgID: org.ID, UserID: "u", Module: "accounts", RecordExternalID: "a1",
			DataHash: "h", DataAsOf: now, Provider: "offline", Model: "m", Sections: json.RawMessage(`[]`), CreatedAt: now.Add(-s.age)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.MarkSummarySaved(ctx, org.ID, "old-saved"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ConsumeSummary(ctx, org.ID, "u", "accounts", "a1", "h", now.AddDate(0, 0, -3), 100); err != nil {
		t.Fatal(err)
	}
	run := maintenance.Prune{Store: db, Retention: 90 * 24 * time.Hour, Now: func() time.Time { return now }}.Run
	res, err := run(ctx, workers.Job[jobs.OrgPayload]{ID: "j", Payload: jobs.OrgPayload{OrgID: org.ID}})
	if err != nil || res.SummariesDeleted != 1 || res.UsageRowsDeleted != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := db.Summary(ctx, org.ID, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old unsaved summary survived: %v", err)
	}
	for _, id := range []string{"old-saved", "recent"} {
		if _, err := db.Summary(ctx, org.ID, id); err != nil {
			t.Fatalf("%s was pruned: %v", id, err)
		}
	}
}
