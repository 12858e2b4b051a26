package store_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestSummaryFeedbackValidates(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	load(t, db, org, "accounts", `{"external_id": "acc1"}`)
	save(t, db, newSummary(org, "s1", "h", time.Now()))

	for _, tc := range []struct {
		what string
		user string
		f    store.Feedback
		bad  []string // fields named in the error
	}{
		{"no rating", "u1", store.Feedback{}, []string{"rating"}},
		{"an unknown rating", "u1", store.Feedback{Rating: "meh"}, []string{"rating"}},
		{"reasons on positive feedback", "u1", store.Feedback{Rating: "positive", Reasons: []string{"unclear"}}, []string{"reasons"}},
		{"areas on positive feedback", "u1", store.Feedback{Rating: "positive", Areas: []string{"clarity"}}, []string{"areas"}},
		{"unknown reasons and areas", "u1", store.Feedback{Rating: "negative", Reasons: []string{"unclear", "boring"}, Areas: []string{"speed"}}, []string{"areas", "reasons"}},
		{"a comment too long", "u1", store.Feedback{Rating: "negative", Comment: strings.Repeat("é", store.MaxFeedbackComment+1)}, []string{"comment"}},
		{"a NUL in the comment", "u1", store.Feedback{Rating: "positive", Comment: "a\x00"}, []string{"comment"}},
		{"no user", "", store.Feedback{Rating: "positive"}, []string{"user_id"}},
	} {
		err := db.PutSummaryFeedback(ctx, org, "s1", tc.user, tc.f)
		var fe store.FeedbackErrors
		if !errors.Is(err, store.ErrInvalidFeedback) || !errors.As(err, &fe) {
			t.Errorf("%s: want FeedbackErrors, got %v", tc.what, err)
			continue
		}
		if got := slices.Sorted(maps.Keys(fe)); !reflect.DeepEqual(got, tc.bad) {
			t.Errorf("%s: fields %v, want %v (%v)", tc.what, got, tc.bad, err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM summary_feedback`); err != nil || n != 0 {
		t.Errorf("invalid feedback stored: %d rows", n)
	}
}

func TestSummaryFeedbackIsOnePerUserAndSummary(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`)
	save(t, db, newSummary(org, "s1", "h", time.Now()))
	save(t, db, newSummary(other, "o1", "h", time.Now()))

	neg := store.Feedback{Rating: "negative", Reasons: []string{"unclear", "factual_error", "unclear"}, Areas: []string{"clarity"}, Comment: "Wrong revenue"}
	if err := db.PutSummaryFeedback(ctx, org, "s1", "u1", neg); err != nil {
		t.Fatal(err)
	}
	got, err := db.SummaryFeedback(ctx, org, "s1", "u1")
	if err != nil || got.Rating != "negative" || !reflect.DeepEqual(got.Reasons, []string{"unclear", "factual_error"}) ||
		!reflect.DeepEqual(got.Areas, []string{"clarity"}) || got.Comment != "Wrong revenue" {
		t.Errorf("stored = %+v %v", got, err)
	}
	// Rating again replaces it.
	if err := db.PutSummaryFeedback(ctx, org, "s1", "u1", store.Feedback{Rating: "positive"}); err != nil {
		t.Fatal(err)
	}
	again, err := db.SummaryFeedback(ctx, org, "s1", "u1")
	if err != nil || again.Rating != "positive" || len(again.Reasons) != 0 || again.Comment != "" ||
		!again.CreatedAt.Equal(got.CreatedAt) || again.UpdatedAt.Before(got.UpdatedAt) {
		t.Errorf("replaced = %+v %v", again, err)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM summary_feedback`); err != nil || n != 1 {
		t.Errorf("%d feedback rows, want 1", n)
	}
	for _, id := range []string{"o1", "nope"} {
		if err := db.PutSummaryFeedback(ctx, org, id, "u1", store.Feedback{Rating: "positive"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("feedback on %s: want ErrNotFound, got %v", id, err)
		}
	}
	if _, err := db.SummaryFeedback(ctx, other, "s1", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another org reads the feedback: %v", err)
	}
}

func TestSummaryFeedbackStats(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "accounts", `{"external_id": "acc1"}`)
	load(t, db, org, "contacts", `{"external_id": "c1"}`)
	load(t, db, other, "accounts", `{"external_id": "acc1"}`)

	empty, err := db.SummaryFeedbackStats(ctx, org)
	if err != nil || empty.Total.Positive != 0 || len(empty.Total.Reasons) != 4 || len(empty.Total.Areas) != 4 ||
		len(empty.ByModule) != 0 || len(empty.ByModel) != 0 {
		t.Errorf("no feedback: %+v %v", empty, err)
	}

	now := time.Now()
	s1 := newSummary(org, "s1", "h", now) // accounts, model m1
	s1.Model = "m1"
	s2 := newSummary(org, "s2", "h", now) // contacts, model m1
	s2.Model, s2.Module, s2.RecordExternalID = "m1", "contacts", "c1"
	s3 := newSummary(org, "s3", "h", now) // accounts, model m2
	s3.Model = "m2"
	o1 := newSummary(other, "o1", "h", now)
	o1.Model = "m1"
	for _, s := range []store.Summary{s1, s2, s3, o1} {
		save(t, db, s)
	}
	for _, fb := range []struct {
		org           int64
		summary, user string
		f             store.Feedback
	}{
		{org, "s1", "u1", store.Feedback{Rating: "positive"}},
		{org, "s1", "u2", store.Feedback{Rating: "negative", Reasons: []string{"factual_error", "unclear"}, Areas: []string{"accuracy"}}},
		{org, "s2", "u1", store.Feedback{Rating: "negative", Reasons: []string{"unclear"}}},
		{org, "s3", "u1", store.Feedback{Rating: "positive", Comment: "great"}},
		{org, "s3", "u2", store.Feedback{Rating: "negative", Reasons: []string{"missing_context"}, Areas: []string{"completeness", "clarity"}}},
		{other, "o1", "u1", store.Feedback{Rating: "negative", Reasons: []string{"irrelevant"}, Areas: []string{"conciseness"}}},
	} {
		if err := db.PutSummaryFeedback(ctx, fb.org, fb.summary, fb.user, fb.f); err != nil {
			t.Fatal(err)
		}
	}

	counts := func(pos, neg int, reasons, areas map[string]int) store.FeedbackCounts {
		c := store.FeedbackCounts{Positive: pos, Negative: neg, Reasons: map[string]int{}, Areas: map[string]int{}}
		for _, r := range store.FeedbackReasons() {
			c.Reasons[r] = reasons[r]
		}
		for _, a := range store.FeedbackAreas() {
			c.Areas[a] = areas[a]
		}
		return c
	}
	want := store.FeedbackStats{
		Total: counts(2, 3, map[string]int{"factual_error": 1, "unclear": 2, "missing_context": 1},
			map[string]int{"accuracy": 1, "completeness": 1, "clarity": 1}),
		ByModule: map[string]store.FeedbackCounts{
			"accounts": counts(2, 2, map[string]int{"factual_error": 1, "unclear": 1, "missing_context": 1},
				map[string]int{"accuracy": 1, "completeness": 1, "clarity": 1}),
			"contacts": counts(0, 1, map[string]int{"unclear": 1}, nil),
		},
		ByModel: map[string]store.FeedbackCounts{
			"m1": counts(1, 2, map[string]int{"factual_error": 1, "unclear": 2}, map[string]int{"accuracy": 1}),
			"m2": counts(1, 1, map[string]int{"missing_context": 1}, map[string]int{"completeness": 1, "clarity": 1}),
		},
	}
	got, err := db.SummaryFeedbackStats(ctx, org)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("stats:\n got  %+v\n want %+v\n (%v)", got, want, err)
	}
}

func TestSummarySectionVisibility(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")

	if v, err := db.SummarySectionVisibility(ctx, org); err != nil || len(v) != 0 || v == nil {
		t.Errorf("before any setting: %v %v", v, err)
	}
	if err := db.SetSummarySectionVisibility(ctx, org, map[string]bool{"kpi_progress": false, "key_stakeholders": true}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSummarySectionVisibility(ctx, org, map[string]bool{"kpi_progress": true, "risks_and_blockers": false}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"kpi_progress": true, "key_stakeholders": true, "risks_and_blockers": false}
	if v, err := db.SummarySectionVisibility(ctx, org); err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("settings = %v %v, want %v", v, err, want)
	}
	// A bad key fails the whole call.
	if err := db.SetSummarySectionVisibility(ctx, org, map[string]bool{"overview": false, "Bad Key": true}); !errors.Is(err, store.ErrInvalidSectionKey) {
		t.Errorf("bad key: %v", err)
	}
	if v, _ := db.SummarySectionVisibility(ctx, org); !reflect.DeepEqual(v, want) {
		t.Errorf("a failed call changed the settings: %v", v)
	}
	if v, _ := db.SummarySectionVisibility(ctx, other); len(v) != 0 {
		t.Errorf("another org sees the settings: %v", v)
	}
	if err := db.SetSummarySectionVisibility(ctx, org, nil); err != nil {
		t.Errorf("nothing to set: %v", err)
	}
}
