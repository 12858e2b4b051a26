package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// newSummary is a summary of accounts/acc1 made at created.
func newSummary(org int64, id, hash string, created time.Time) store.Summary {
	return store.Summary{
		ID: id, OrgID: org, UserID: "u1", Module: "accounts", RecordExternalID: "acc1",
		DataHash: hash, DataAsOf: created.Add(-time.Minute), Provider: "offline", Model: "offline-1",
		Sections:     json.RawMessage(`{"sections": [{"key": "executive_summary", "bullets": [{"text": "Healthy", "sources": ["accounts/acc1"]}]}]}`),
		Truncation:   json.RawMessage(`[{"section": "relational_health", "oldest_kept": "2026-01-01"}]`),
		PromptTokens: 1000, OutputTokens: 200, TotalTokens: 1200, DroppedSourceIDs: 1,
		CreatedAt: created,
	}
}

func save(t *testing.T, db *store.DB, s store.Summary) {
	t.Helper()
	if err := db.SaveSummary(context.Background(), s); err != nil {
		t.Fatalf("save summary %s: %v", s.ID, err)
	}
}

func readSummary(t *testing.T, db *store.DB, org int64, id string) store.Summary {
	t.Helper()
	s, err := db.Summary(context.Background(), org, id)
	if err != nil {
		t.Fatalf("summary %s: %v", id, err)
	}
	return s
}

// sameJSON compares JSON texts by value (jsonb reorders keys and drops
// spaces).
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestSaveSummaryUpsertsByJobID(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "Acme"}`, `{"external_id": "acc2"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`, `{"external_id": "theirs"}`)
	created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	in := newSummary(org, "job-1", "h1", created)
	save(t, db, in)
	got := readSummary(t, db, org, "job-1")
	var accID int64
	if err := db.GetContext(ctx, &accID, `SELECT id FROM accounts WHERE org_id = $1 AND external_id = 'acc1'`, org); err != nil {
		t.Fatal(err)
	}
	if got.RecordID != accID || got.OrgID != org || !got.CreatedAt.Equal(created) || !got.DataAsOf.Equal(in.DataAsOf) ||
		got.Saved || got.SavedAt != nil || got.ReusedFrom != nil || got.TotalTokens != 1200 || got.DroppedSourceIDs != 1 ||
		!sameJSON(got.Sections, in.Sections) || !sameJSON(got.Truncation, in.Truncation) || got.Model != "offline-1" {
		t.Errorf("stored summary = %+v", got)
	}

	// The job is retried: same id, new content; one row, first created_at.
	retry := newSummary(org, "job-1", "h2", created.Add(time.Hour))
	retry.Sections, retry.Truncation, retry.TotalTokens, retry.UserID = json.RawMessage(`{"sections": []}`), nil, 5, "u2"
	save(t, db, retry)
	got = readSummary(t, db, org, "job-1")
	if got.DataHash != "h2" || got.TotalTokens != 5 || got.UserID != "u2" || got.Truncation != nil ||
		!sameJSON(got.Sections, retry.Sections) || !got.CreatedAt.Equal(created) {
		t.Errorf("after retry = %+v", got)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM summaries`); err != nil || n != 1 {
		t.Errorf("%d summary rows, want 1", n)
	}

	// JSON of the API: external record id as record_id, no internal ids.
	b, _ := json.Marshal(got)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["record_id"] != "acc1" || m["id"] != "job-1" || m["truncation"] != nil || m["org_id"] != nil {
		t.Errorf("JSON = %s", b)
	}

	for _, tc := range []struct {
		what string
		s    store.Summary
		want error
	}{
		{"the id of another org's summary", newSummary(other, "job-1", "h", created), store.ErrConflict},
		{"the id of another record's summary", func() store.Summary {
			s := newSummary(org, "job-1", "h", created)
			s.RecordExternalID = "acc2"
			return s
		}(), store.ErrConflict},
		{"a missing record", func() store.Summary {
			s := newSummary(org, "job-2", "h", created)
			s.RecordExternalID = "nope"
			return s
		}(), store.ErrNotFound},
		{"another org's record", func() store.Summary {
			s := newSummary(org, "job-2", "h", created)
			s.RecordExternalID = "theirs"
			return s
		}(), store.ErrNotFound},
		{"reuse of another org's summary", func() store.Summary {
			s := newSummary(other, "job-o", "h", created)
			id := "job-1"
			s.ReusedFrom = &id
			return s
		}(), store.ErrNotFound},
		{"no sections", func() store.Summary {
			s := newSummary(org, "job-2", "h", created)
			s.Sections = nil
			return s
		}(), store.ErrInvalidSummary},
		{"sections that are not JSON", func() store.Summary {
			s := newSummary(org, "job-2", "h", created)
			s.Sections = json.RawMessage(`{"a":`)
			return s
		}(), store.ErrInvalidSummary},
		{"no id", newSummary(org, "", "h", created), store.ErrInvalidSummary},
		{"a module without summaries", func() store.Summary {
			s := newSummary(org, "job-2", "h", created)
			s.Module = "products"
			return s
		}(), store.ErrInvalidModule},
	} {
		if err := db.SaveSummary(ctx, tc.s); !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", tc.what, tc.want, err)
		}
	}
	if _, err := db.Summary(ctx, other, "job-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another org reads the summary: %v", err)
	}

	// Custom modules have summaries too.
	load(t, db, org, "custom_widgets", `{"external_id": "w1"}`)
	w := newSummary(org, "job-w", "hw", created)
	w.Module, w.RecordExternalID = "custom_widgets", "w1"
	save(t, db, w)
	if got := readSummary(t, db, org, "job-w"); got.RecordID == 0 || got.Module != "custom_widgets" {
		t.Errorf("custom summary = %+v", got)
	}
}

func TestLatestReuseAndSavedSummaries(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	save(t, db, newSummary(org, "s1", "h1", t0))
	save(t, db, newSummary(org, "s2", "h2", t0.Add(time.Hour)))
	reused := newSummary(org, "s3", "h1", t0.Add(2*time.Hour))
	src := "s1"
	reused.ReusedFrom = &src
	save(t, db, reused)
	save(t, db, newSummary(other, "o1", "h1", t0.Add(5*time.Hour)))

	if s, err := db.LatestSummary(ctx, org, "accounts", "acc1"); err != nil || s.ID != "s3" || *s.ReusedFrom != "s1" {
		t.Errorf("latest = %+v %v", s, err)
	}
	if s, err := db.SummaryByHash(ctx, org, "accounts", "acc1", "h1"); err != nil || s.ID != "s3" {
		t.Errorf("by hash h1 = %s %v", s.ID, err)
	}
	if s, err := db.SummaryByHash(ctx, org, "accounts", "acc1", "h2"); err != nil || s.ID != "s2" {
		t.Errorf("by hash h2 = %s %v", s.ID, err)
	}
	for _, err := range []error{
		func() error { _, err := db.SummaryByHash(ctx, org, "accounts", "acc1", "h9"); return err }(),
		func() error { _, err := db.LatestSummary(ctx, org, "accounts", "acc9"); return err }(),
		func() error { _, err := db.LatestSummary(ctx, org, "contacts", "acc1"); return err }(),
		func() error { _, err := db.MarkSummarySaved(ctx, org, "o1"); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("want ErrNotFound, got %v", err)
		}
	}

	if saved, err := db.SavedSummaries(ctx, org, "accounts", "acc1"); err != nil || len(saved) != 0 || saved == nil {
		t.Errorf("saved before saving = %v %v", saved, err)
	}
	first, err := db.MarkSummarySaved(ctx, org, "s1")
	if err != nil || !first.Saved || first.SavedAt == nil {
		t.Fatalf("save s1 = %+v %v", first, err)
	}
	if _, err := db.MarkSummarySaved(ctx, org, "s2"); err != nil {
		t.Fatal(err)
	}
	again, err := db.MarkSummarySaved(ctx, org, "s1")
	if err != nil || !again.SavedAt.Equal(*first.SavedAt) {
		t.Errorf("saving again moved saved_at: %v -> %v (%v)", first.SavedAt, again.SavedAt, err)
	}
	saved, err := db.SavedSummaries(ctx, org, "accounts", "acc1")
	if err != nil || len(saved) != 2 || saved[0].ID != "s2" || saved[1].ID != "s1" {
		t.Errorf("saved = %v %v", saved, err)
	}
	if theirs, _ := db.SavedSummaries(ctx, other, "accounts", "acc1"); len(theirs) != 0 {
		t.Errorf("other org sees saved summaries %v", theirs)
	}
	// Retrying the job of a saved summary keeps it saved.
	save(t, db, newSummary(org, "s1", "h1", t0))
	if s := readSummary(t, db, org, "s1"); !s.Saved || !s.SavedAt.Equal(*first.SavedAt) {
		t.Errorf("retry unsaved the summary: %+v", s)
	}
}

func TestPruneSummariesKeepsSavedOnes(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`)
	now := time.Now().UTC()
	old, recent := now.Add(-40*24*time.Hour), now.Add(-time.Hour)

	save(t, db, newSummary(org, "old-unsaved", "h", old))
	save(t, db, newSummary(org, "old-saved", "h", old))
	save(t, db, newSummary(other, "old-other", "h", old))
	save(t, db, newSummary(org, "recent", "h", recent))
	copyOf := newSummary(org, "reuses-old", "h", recent)
	src := "old-unsaved"
	copyOf.ReusedFrom = &src
	save(t, db, copyOf)
	if _, err := db.MarkSummarySaved(ctx, org, "old-saved"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSummaryFeedback(ctx, org, "old-unsaved", "u1", store.Feedback{Rating: "positive"}); err != nil {
		t.Fatal(err)
	}

	n, err := db.PruneSummaries(ctx, org, now.Add(-30*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	for _, id := range []string{"old-unsaved"} {
		if _, err := db.Summary(ctx, org, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s survived: %v", id, err)
		}
	}
	// Pruning is per org: the other org's old summary waits for its own run.
	readSummary(t, db, other, "old-other")
	for _, id := range []string{"old-saved", "recent", "reuses-old"} {
		readSummary(t, db, org, id)
	}
	if s := readSummary(t, db, org, "reuses-old"); s.ReusedFrom != nil || !sameJSON(s.Sections, copyOf.Sections) {
		t.Errorf("the copy of a pruned summary: %+v", s)
	}
	var fb int
	if err := db.GetContext(ctx, &fb, `SELECT count(*) FROM summary_feedback`); err != nil || fb != 0 {
		t.Errorf("feedback of a pruned summary remains: %d", fb)
	}
	if n, err := db.PruneSummaries(ctx, org, now.Add(-30*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("second prune: %d %v", n, err)
	}
}
