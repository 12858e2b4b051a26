package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/demo"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

// The demo org comes with ABM configured: techniques active and refreshed,
// both demo segments with members, and seeding again changes nothing.
func TestSeedABM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, err := db.CreateOrg(ctx, "demo-abm")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)
	if _, err := demo.Seed(ctx, db, org.ID, now); err != nil {
		t.Fatal(err)
	}
	res, err := demo.SeedABM(ctx, db, org.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refresh %+v", res.Refresh)
	scored := 0
	for _, tr := range res.Refresh.Techniques {
		scored += tr.Scored
	}
	if len(res.Refresh.Techniques) != len(segment.Names) || res.Refresh.Skipped || scored == 0 {
		t.Fatalf("first refresh: %+v", res.Refresh)
	}
	if len(res.Segments) != 2 {
		t.Fatalf("segments: %+v", res.Segments)
	}
	for _, s := range res.Segments {
		t.Logf("segment %q: %d members", s.Name, s.MemberCount)
		if s.MemberCount == 0 {
			t.Errorf("demo segment %q has no members", s.Name)
		}
	}
	if ok, err := db.ABMConfigured(ctx, org.ID); err != nil || !ok {
		t.Fatalf("configured: %v %v", ok, err)
	}
	again, err := demo.SeedABM(ctx, db, org.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Refresh.Skipped || len(again.Segments) != 2 || again.Segments[0].ID != res.Segments[0].ID || again.Segments[0].MemberCount != res.Segments[0].MemberCount {
		t.Fatalf("seeding again: %+v", again)
	}
	checkDemoExport(t, db, org.ID, res.Segments[0], now)
	// The demo gives every technique something to show, and each
	// technique's refresh time on it (forced, the VoC cache warm) is
	// logged for README.
	for _, tr := range res.Refresh.Techniques {
		if tr.Scored+tr.Labelled == 0 {
			t.Errorf("%s labelled no demo account: %+v", tr.Technique, tr)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ref := segment.Refresher{Store: db, Now: func() time.Time { return now }, Log: quiet}
	for _, name := range segment.Names {
		start := time.Now()
		run, err := ref.Run(ctx, workers.Job[jobs.SegmentRefreshPayload]{ID: "timing-" + name, Payload: jobs.SegmentRefreshPayload{OrgID: org.ID, Technique: name, Force: true}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("demo refresh of %s: %v (%+v)", name, time.Since(start).Round(time.Millisecond), run.Techniques[0])
	}
	techs, err := db.Techniques(ctx, org.ID)
	if err != nil || techs["rfm"].State != store.TechniqueActive || techs["firmographics"].State != store.TechniqueActive {
		t.Fatalf("techniques %+v, %v", techs, err)
	}
	checkDemoCompetitors(t, db, org.ID)
}

// VoC's competitor list is the demo's custom_competitors module, and the
// demo's customer texts name them: accounts carry competitor counts.
func checkDemoCompetitors(t *testing.T, db *store.DB, orgID int64) {
	t.Helper()
	ctx := context.Background()
	page, err := db.ListRecords(ctx, orgID, "custom_competitors", store.MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range page.Records {
		names = append(names, r["name"].(string))
	}
	s, ok, err := db.VoCSettingsOf(ctx, orgID)
	if err != nil || !ok {
		t.Fatalf("voc settings: %v %v", ok, err)
	}
	if len(names) == 0 || !slices.Equal(s.Competitors, names) {
		t.Errorf("voc competitors %q, want the custom_competitors records %q", s.Competitors, names)
	}
	fields, err := db.VoCFieldNames(ctx, orgID)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	err = db.GetContext(ctx, &raw, `SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM (
		SELECT k, sum(v::int) AS n FROM account_labels, jsonb_each_text(raw->'competitor') AS c (k, v)
		WHERE org_id = $1 AND technique = 'voc' GROUP BY k) x`, orgID)
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]int
	if err := json.Unmarshal(raw, &counts); err != nil {
		t.Fatal(err)
	}
	t.Logf("competitor mentions over the demo accounts: %v", counts)
	for _, n := range names {
		key := store.VoCKey(n)
		if !slices.Contains(fields, "voc.competitor."+key) {
			t.Errorf("segments cannot name voc.competitor.%s: %q", key, fields)
		}
	}
	if len(counts) < 2 {
		t.Errorf("competitor mentions %v; the demo texts name two competitors", counts)
	}
}
