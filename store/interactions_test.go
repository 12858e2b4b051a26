package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

// trailFixture: lead "lead-1" of org a with this trail (hours from t0):
//
//	-1  milestone  lead_status -> New
//	 0  a1 signal     email  (opened the email)
//	 1  a2 follow_up  call   user-1  Attended
//	 1  milestone  New -> Contacted
//	 2  a3 follow_up  email  user-2    Delivered
//	 3  a7 signal     call   (draft: not a touchpoint)
//	 5  a4 signal     visit  300 s, 4 pages
//	 6  a5 follow_up  call   user-1  Unattended
//	 7  milestone  Contacted -> Qualified
//	30  a6 signal     survey 7 questions
//	31  a8 follow_up  desk   user-3  Open
//
// plus noise that must never show: a contact's activity, another field's
// history, a contacts-module history row with the lead's id, and org b's
// own "lead-1".
func trailFixture(t *testing.T, db *store.DB) (org, other, lead int64) {
	org, other = fixtureOrg(t, db, "a"), fixtureOrg(t, db, "b")
	lead = fixtureRecord(t, db, org, "leads", "lead-1")
	contact := fixtureRecord(t, db, org, "contacts", "contact-1")
	otherLead := fixtureRecord(t, db, other, "leads", "lead-1")
	fixtureActivities(t, db, org, []fixtureActivity{
		{ID: "a1", Lead: lead, Direction: "signal", Medium: "email", Kind: "email", Subject: "Pricing", At: at(0)},
		{ID: "a2", Lead: lead, Direction: "follow_up", Medium: "call", Kind: "call", User: "user-1", Status: "Attended", At: at(1)},
		{ID: "a3", Lead: lead, Direction: "follow_up", Medium: "email", Kind: "email", User: "user-2", Status: "Delivered", At: at(2)},
		{ID: "a7", Lead: lead, Direction: "signal", Medium: "call", Kind: "call", State: "draft", At: at(3)},
		{ID: "a4", Lead: lead, Direction: "signal", Medium: "visit", Kind: "visit", TimeSpent: 300, Pages: 4, At: at(5)},
		{ID: "a5", Lead: lead, Direction: "follow_up", Medium: "call", Kind: "call", User: "user-1", Status: "Unattended", At: at(6)},
		{ID: "a6", Lead: lead, Direction: "signal", Medium: "survey", Kind: "survey", Questions: 7, At: at(30)},
		{ID: "a8", Lead: lead, Direction: "follow_up", Medium: "desk", Kind: "ticket", User: "user-3", Status: "Open", At: at(31)},
		{ID: "c1", Contact: contact, Direction: "signal", Medium: "call", At: at(2.5)},
	})
	fixtureActivities(t, db, other, []fixtureActivity{
		{ID: "a1", Lead: otherLead, Direction: "signal", Medium: "twitter", At: at(4)},
	})
	fixtureMilestone(t, db, org, "leads", lead, "lead_status", "", "New", at(-1))
	fixtureMilestone(t, db, org, "leads", lead, "lead_status", "New", "Contacted", at(1))
	fixtureMilestone(t, db, org, "leads", lead, "lead_status", "Contacted", "Qualified", at(7))
	fixtureMilestone(t, db, org, "leads", lead, "owner", "user-1", "user-2", at(4))
	fixtureMilestone(t, db, org, "contacts", lead, "lead_status", "x", "y", at(4))
	return org, other, lead
}

// describe renders a trail as one line per item, so tests read as the tab.
func describe(tr store.Trail) []string {
	var out []string
	tp := func(p *store.Touchpoint) string {
		if p == nil {
			return "-"
		}
		gap := "null"
		if p.GapSeconds != nil {
			gap = fmt.Sprint(*p.GapSeconds)
		}
		return p.ID + " gap " + gap
	}
	for _, it := range tr.Items {
		switch {
		case it.Type == store.ItemMilestone && tr.View == store.ViewMilestones:
			out = append(out, fmt.Sprintf("milestone %s after %s", *it.Milestone.New, tp(it.LastTouchpoint)))
		case it.Type == store.ItemMilestone:
			out = append(out, "milestone "+*it.Milestone.New)
		case tr.View == store.ViewSignals:
			out = append(out, fmt.Sprintf("%s after %s collapsed %d", tp(it.Touchpoint), tp(it.LastFollowUp), it.CollapsedFollowUps))
		default:
			out = append(out, tp(it.Touchpoint))
		}
	}
	return out
}

func TestInteractionsViews(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _, _ := trailFixture(t, db)
	h := func(hours float64) string { return fmt.Sprint(hours * 3600) }
	from, to := at(4), at(8)

	tests := []struct {
		name      string
		q         store.InteractionQuery
		want      []string
		total     int
		truncated bool
		trailing  int
	}{
		{"all interleaves milestones, a touchpoint first at one instant", store.InteractionQuery{}, []string{
			"milestone New", "a1 gap null", "a2 gap " + h(1), "milestone Contacted", "a3 gap " + h(1),
			"a4 gap " + h(3), "a5 gap " + h(1), "milestone Qualified", "a6 gap " + h(24), "a8 gap " + h(1),
		}, 10, false, 0},
		{"signals shows the last follow-up before each signal and collapses the rest", store.InteractionQuery{View: "signals"}, []string{
			"a1 gap null after - collapsed 0",
			"a4 gap " + h(3) + " after a3 gap " + h(2) + " collapsed 1",
			"a6 gap " + h(24) + " after a5 gap " + h(1) + " collapsed 0",
		}, 3, false, 1},
		{"milestones shows the last touchpoint at or before each", store.InteractionQuery{View: "milestones"}, []string{
			"milestone New after -", "milestone Contacted after a2 gap null", "milestone Qualified after a5 gap " + h(5),
		}, 3, false, 0},
		{"a medium filter narrows touchpoints, gaps follow what is shown", store.InteractionQuery{Mediums: []string{"call"}}, []string{
			"milestone New", "a2 gap null", "milestone Contacted", "a5 gap " + h(5), "milestone Qualified",
		}, 5, false, 0},
		{"a user filter narrows touchpoints", store.InteractionQuery{Users: []string{"user-2", "user-3"}}, []string{
			"milestone New", "milestone Contacted", "a3 gap null", "milestone Qualified", "a8 gap " + h(29),
		}, 5, false, 0},
		{"a time range bounds touchpoints and milestones", store.InteractionQuery{From: &from, To: &to}, []string{
			"a4 gap null", "a5 gap " + h(1), "milestone Qualified",
		}, 3, false, 0},
		{"signals under a medium filter", store.InteractionQuery{View: "signals", Mediums: []string{"call", "visit", "survey"}}, []string{
			"a4 gap " + h(4) + " after a2 gap null collapsed 0",
			"a6 gap " + h(24) + " after a5 gap " + h(1) + " collapsed 0",
		}, 2, false, 0},
		{"milestones under a medium filter", store.InteractionQuery{View: "milestones", Mediums: []string{"email"}}, []string{
			"milestone New after -", "milestone Contacted after a1 gap null", "milestone Qualified after a3 gap " + h(2),
		}, 3, false, 0},
		{"the cap keeps the newest items and restarts gaps", store.InteractionQuery{Limit: 3}, []string{
			"milestone Qualified", "a6 gap null", "a8 gap " + h(1),
		}, 10, true, 0},
		{"the cap counts signals in view signals", store.InteractionQuery{View: "signals", Limit: 1}, []string{
			"a6 gap " + h(24) + " after a5 gap null collapsed 0",
		}, 3, true, 1},
		{"the cap counts milestones in view milestones", store.InteractionQuery{View: "milestones", Limit: 1}, []string{
			"milestone Qualified after a5 gap null",
		}, 3, true, 0},
		{"nothing matches", store.InteractionQuery{View: "signals", Mediums: []string{"webinar"}}, nil, 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := db.Interactions(ctx, org, "leads", "lead-1", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(tr); !slices.Equal(got, tc.want) {
				t.Errorf("trail:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tr.Total != tc.total || tr.Truncated != tc.truncated || tr.TrailingFollowUps != tc.trailing {
				t.Errorf("total %d truncated %v trailing %d, want %d %v %d", tr.Total, tr.Truncated, tr.TrailingFollowUps, tc.total, tc.truncated, tc.trailing)
			}
			for i := 1; i < len(tr.Items); i++ {
				if tr.Items[i].At.Before(tr.Items[i-1].At) {
					t.Errorf("item %d out of time order", i)
				}
			}
		})
	}
}

func TestInteractionsTouchpointFields(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _, _ := trailFixture(t, db)
	tr, err := db.Interactions(ctx, org, "leads", "lead-1", store.InteractionQuery{View: "signals"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Module != "leads" || tr.RecordID != "lead-1" || tr.View != "signals" || tr.MilestoneField != "lead_status" || tr.Limit != store.DefaultTrailLimit {
		t.Errorf("trail header = %+v", tr)
	}
	visit, survey, followUp := tr.Items[1].Touchpoint, tr.Items[2].Touchpoint, tr.Items[1].LastFollowUp
	if visit.Kind != "visit" || visit.Medium != "visit" || visit.Direction != "signal" || !visit.OccurredAt.Equal(at(5)) ||
		visit.Impressions == nil || *visit.Impressions.TimeSpentSeconds != 300 || *visit.Impressions.PagesVisited != 4 || visit.Impressions.QuestionsAnswered != nil {
		t.Errorf("visit = %+v impressions %+v", visit, visit.Impressions)
	}
	if survey.Impressions == nil || *survey.Impressions.QuestionsAnswered != 7 {
		t.Errorf("survey impressions = %+v", survey.Impressions)
	}
	if followUp.ID != "a3" || *followUp.UserID != "user-2" || *followUp.Status != "Delivered" || followUp.Impressions != nil || followUp.Direction != "follow_up" {
		t.Errorf("follow-up = %+v", followUp)
	}
	if tr.Items[0].Touchpoint.Subject == nil || *tr.Items[0].Touchpoint.Subject != "Pricing" || tr.Items[0].Touchpoint.UserID != nil {
		t.Errorf("first signal = %+v", tr.Items[0].Touchpoint)
	}

	raw, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"module", "record_id", "view", "milestone_field", "items", "total", "limit", "truncated", "trailing_follow_ups", "orphan"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, raw)
		}
	}
	item := shape["items"].([]any)[1].(map[string]any)
	tp := item["touchpoint"].(map[string]any)
	for _, k := range []string{"id", "kind", "medium", "direction", "status", "user_id", "occurred_at", "subject", "impressions", "gap_seconds"} {
		if _, ok := tp[k]; !ok {
			t.Errorf("touchpoint JSON has no %q: %v", k, tp)
		}
	}
	if item["type"] != "touchpoint" || item["last_follow_up"] == nil || item["collapsed_follow_ups"] != 1.0 {
		t.Errorf("signal item JSON = %v", item)
	}

	// An empty trail is [] in JSON, not null.
	empty, err := db.Interactions(ctx, org, "contacts", "contact-1", store.InteractionQuery{View: "milestones"})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(empty); !strings.Contains(string(raw), `"items":[]`) {
		t.Errorf("empty trail JSON = %s", raw)
	}
}

func TestInteractionsOfContactsUseLifecycleStage(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := fixtureOrg(t, db, "a")
	contact := fixtureRecord(t, db, org, "contacts", "c-1")
	lead := fixtureRecord(t, db, org, "leads", "c-1") // same external id, other module
	fixtureActivities(t, db, org, []fixtureActivity{
		{ID: "x1", Contact: contact, Direction: "signal", Medium: "webinar", At: at(0)},
		{ID: "x2", Lead: lead, Direction: "signal", Medium: "call", At: at(1)},
	})
	fixtureMilestone(t, db, org, "contacts", contact, "lifecycle_stage", "Lead", "Customer", at(2))
	fixtureMilestone(t, db, org, "contacts", contact, "lead_status", "a", "b", at(3))
	tr, err := db.Interactions(ctx, org, "contacts", "c-1", store.InteractionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(tr); !slices.Equal(got, []string{"x1 gap null", "milestone Customer"}) || tr.MilestoneField != "lifecycle_stage" {
		t.Errorf("contact trail = %v (field %s)", got, tr.MilestoneField)
	}
}

func TestInteractionsCarryOrphanState(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _, lead := trailFixture(t, db)
	tr, err := db.Interactions(ctx, org, "leads", "lead-1", store.InteractionQuery{})
	if err != nil || tr.Orphan != nil {
		t.Fatalf("before any run: orphan %+v, %v; want nil", tr.Orphan, err)
	}
	// a8 (a follow-up) is the last touchpoint: nothing open.
	now := at(48)
	if _, err := db.RecomputeOrphans(ctx, org, "leads", now, "job-9"); err != nil {
		t.Fatal(err)
	}
	tr, err = db.Interactions(ctx, org, "leads", "lead-1", store.InteractionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.OrphanStatus(ctx, org, "leads", lead)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Orphan == nil || tr.Orphan.JobID != "job-9" || tr.Orphan.IsOrphan || tr.Orphan.OpenSince != nil || !tr.Orphan.ComputedAt.Equal(want.ComputedAt) {
		t.Errorf("orphan = %+v, want %+v", tr.Orphan, want)
	}
	// Gaps a1->a2 1h, a4->a5 1h, a6->a8 1h: average 1h.
	if !near(tr.Orphan.AverageGapSeconds, 3600) {
		t.Errorf("average = %v, want 3600", ptr(tr.Orphan.AverageGapSeconds))
	}
}

func TestInteractionsRejects(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, other, _ := trailFixture(t, db)
	from, to := at(5), at(5)
	for _, tc := range []struct {
		name   string
		org    int64
		module string
		id     string
		q      store.InteractionQuery
		want   error
	}{
		{"an unknown record", org, "leads", "nope", store.InteractionQuery{}, store.ErrNotFound},
		{"another org's record", other, "contacts", "contact-1", store.InteractionQuery{}, store.ErrNotFound},
		{"a lead asked for as a contact", org, "contacts", "lead-1", store.InteractionQuery{}, store.ErrNotFound},
		{"a module without interactions", org, "deals", "lead-1", store.InteractionQuery{}, store.ErrInvalidQuery},
		{"an unknown view", org, "leads", "lead-1", store.InteractionQuery{View: "timeline"}, store.ErrInvalidQuery},
		{"an unknown medium", org, "leads", "lead-1", store.InteractionQuery{Mediums: []string{"fax"}}, store.ErrInvalidQuery},
		{"an empty user", org, "leads", "lead-1", store.InteractionQuery{Users: []string{""}}, store.ErrInvalidQuery},
		{"an empty time range", org, "leads", "lead-1", store.InteractionQuery{From: &from, To: &to}, store.ErrInvalidQuery},
		{"a limit over the maximum", org, "leads", "lead-1", store.InteractionQuery{Limit: store.MaxTrailLimit + 1}, store.ErrInvalidQuery},
		{"a negative limit", org, "leads", "lead-1", store.InteractionQuery{Limit: -1}, store.ErrInvalidQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Interactions(ctx, tc.org, tc.module, tc.id, tc.q); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Org b's own lead-1 shows only org b's touchpoint.
	tr, err := db.Interactions(ctx, other, "leads", "lead-1", store.InteractionQuery{})
	if err != nil || !slices.Equal(describe(tr), []string{"a1 gap null"}) || tr.Items[0].Touchpoint.Medium != "twitter" {
		t.Errorf("org b trail = %v, %v", describe(tr), err)
	}
}

func TestInteractionsDefaultCap(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := fixtureOrg(t, db, "a")
	lead := fixtureRecord(t, db, org, "leads", "busy")
	var acts []fixtureActivity
	for i := range 1200 {
		acts = append(acts, fixtureActivity{ID: fmt.Sprintf("b%04d", i), Lead: lead, Direction: []string{"signal", "follow_up", "follow_up"}[i%3],
			Medium: "email", At: t0.Add(time.Duration(i) * time.Minute)})
	}
	fixtureActivities(t, db, org, acts)
	tr, err := db.Interactions(ctx, org, "leads", "busy", store.InteractionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Items) != store.DefaultTrailLimit || !tr.Truncated || tr.Total != 1200 ||
		tr.Items[0].Touchpoint.ID != "b0700" || tr.Items[0].Touchpoint.GapSeconds != nil || *tr.Items[1].Touchpoint.GapSeconds != 60 {
		t.Errorf("default cap: %d items of %d, truncated %v, first %s", len(tr.Items), tr.Total, tr.Truncated, tr.Items[0].Touchpoint.ID)
	}
	sig, err := db.Interactions(ctx, org, "leads", "busy", store.InteractionQuery{View: "signals", Limit: store.MaxTrailLimit})
	if err != nil {
		t.Fatal(err)
	}
	// 400 signals, each after two follow-ups but the first; two after the last.
	if len(sig.Items) != 400 || sig.Truncated || sig.TrailingFollowUps != 2 || sig.Items[0].LastFollowUp != nil ||
		sig.Items[1].LastFollowUp.ID != "b0002" || sig.Items[1].CollapsedFollowUps != 1 || *sig.Items[1].Touchpoint.GapSeconds != 60 {
		t.Errorf("signals: %d items, truncated %v, trailing %d, second %+v", len(sig.Items), sig.Truncated, sig.TrailingFollowUps, sig.Items[1])
	}
}

func TestDatePreset(t *testing.T) {
	// 23:30 in New York on 10 March is 04:30 UTC on 11 March: presets are UTC days.
	ny := time.FixedZone("EDT", -4*3600)
	now := time.Date(2025, 3, 10, 23, 30, 0, 0, ny)
	d := func(month time.Month, day int) time.Time { return time.Date(2025, month, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		preset   string
		from, to time.Time
	}{
		{"today", d(3, 11), d(3, 12)},
		{"yesterday", d(3, 10), d(3, 11)},
		{"last_7_days", d(3, 5), d(3, 12)},
		{"last_30_days", d(2, 10), d(3, 12)},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			from, to, err := store.DatePreset(tc.preset, now)
			if err != nil || !from.Equal(tc.from) || !to.Equal(tc.to) || from.Location() != time.UTC {
				t.Errorf("= [%v, %v), %v; want [%v, %v)", from, to, err, tc.from, tc.to)
			}
		})
	}
	if _, _, err := store.DatePreset("last_week", now); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("unknown preset: %v, want ErrInvalidQuery", err)
	}
}
