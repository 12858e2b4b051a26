package demo_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/demo"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func listAll(t *testing.T, db *store.DB, org int64, module string) []store.Record {
	t.Helper()
	var all []store.Record
	cursor := ""
	for {
		page, err := db.ListRecords(context.Background(), org, module, store.MaxPageSize, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Records...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	orgA, err := db.CreateOrg(ctx, "demo-a")
	if err != nil {
		t.Fatal(err)
	}
	orgB, err := db.CreateOrg(ctx, "demo-b")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)

	start := time.Now()
	first, err := demo.Seed(ctx, db, orgA.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first seed in %v: %+v", time.Since(start), first)
	digestsFirst, err := db.Digests(ctx, orgA.ID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("counts are about what was asked for", func(t *testing.T) {
		m := first.Modules
		for module, want := range map[string][2]int64{
			"accounts": {200, 200}, "products": {20, 20}, "leads": {300, 300}, "deals": {3000, 3000},
			"contacts": {800, 1200}, "activities": {18000, 23000}, "deal_line_items": {3000, 9000},
		} {
			if m[module] < want[0] || m[module] > want[1] {
				t.Errorf("%s: %d rows, want %d..%d", module, m[module], want[0], want[1])
			}
		}
		for _, module := range store.BuiltinModules() {
			if m[module] == 0 {
				t.Errorf("%s: no rows", module)
			}
		}
		if first.FieldHistory < 1300+3000 {
			t.Errorf("field history: %d rows", first.FieldHistory)
		}
	})

	t.Run("seeding again changes nothing", func(t *testing.T) {
		// Later the same day: the data depend on the day only.
		start := time.Now()
		again, err := demo.Seed(ctx, db, orgA.ID, now.Add(5*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("second seed in %v", time.Since(start))
		if !reflect.DeepEqual(first, again) {
			t.Errorf("counts changed:\nfirst  %+v\nsecond %+v", first, again)
		}
		digests, err := db.Digests(ctx, orgA.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(digestsFirst, digests) {
			t.Errorf("row contents changed:\nfirst  %v\nsecond %v", digestsFirst, digests)
		}
	})

	t.Run("another org gets the same data", func(t *testing.T) {
		if _, err := demo.Seed(ctx, db, orgB.ID, now); err != nil {
			t.Fatal(err)
		}
		digests, err := db.Digests(ctx, orgB.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(digestsFirst, digests) {
			t.Errorf("org b differs:\na %v\nb %v", digestsFirst, digests)
		}
	})

	t.Run("a different day moves the activities", func(t *testing.T) {
		orgC, err := db.CreateOrg(ctx, "demo-c")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := demo.Seed(ctx, db, orgC.ID, now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		digests, err := db.Digests(ctx, orgC.ID)
		if err != nil {
			t.Fatal(err)
		}
		if digests.Modules["activities"] == digestsFirst.Modules["activities"] {
			t.Error("activities of the next day are the same as today's")
		}
		if digests.Modules["accounts"] != digestsFirst.Modules["accounts"] {
			t.Error("accounts depend on the day")
		}
	})

	activities := listAll(t, db, orgA.ID, "activities")

	t.Run("activities cover every medium, direction, status and impression", func(t *testing.T) {
		mediums := map[string]bool{}
		statuses := map[string]map[string]bool{"call": {}, "email": {}, "desk": {}}
		var surveys, visits, csLinked, oldest int
		directions := map[string]bool{}
		cues := map[string]bool{}
		earliest := now.AddDate(0, -18, -1)
		for _, a := range activities {
			medium := a["medium"].(string)
			mediums[medium] = true
			directions[a["direction"].(string)] = true
			if s, ok := a["status"].(string); ok && statuses[medium] != nil && a["kind"] != "cs_activity" {
				statuses[medium][s] = true
			}
			if medium == "survey" && a["questions_answered"] != nil {
				surveys++
			}
			if medium == "visit" && a["time_spent_seconds"] != nil && a["pages_visited"] != nil {
				visits++
			}
			if a["kind"] == "cs_activity" && a["success_plan"] != nil && a["objective"] != nil && a["kpi"] != nil {
				csLinked++
			}
			if a["direction"] == "follow_up" && !strings.HasPrefix(a["user_id"].(string), "user-") {
				t.Errorf("follow-up %v by %v", a["id"], a["user_id"])
			}
			if a["direction"] == "signal" && a["user_id"] != nil {
				t.Errorf("signal %v has a user %v", a["id"], a["user_id"])
			}
			at, err := time.Parse(time.RFC3339, a["occurred_at"].(string))
			if err != nil || at.After(now) || at.Before(earliest) {
				oldest++
			}
			if notes, ok := a["notes"].(string); ok {
				for _, cue := range []string{"interested in adding seats", "considering a new region",
					"unhappy with response time", "escalated to management", "churn risk"} {
					if strings.Contains(notes, cue) {
						cues[cue] = true
					}
				}
			}
		}
		if len(mediums) != 11 {
			t.Errorf("mediums: %v", mediums)
		}
		for _, m := range store.Mediums() {
			if !mediums[m] {
				t.Errorf("no activity through %s", m)
			}
		}
		if !directions["signal"] || !directions["follow_up"] {
			t.Errorf("directions: %v", directions)
		}
		for medium, want := range map[string][]string{
			"call": {"Attended", "Unattended"}, "email": {"Delivered", "Bounced"},
			"desk": {"Open", "Closed", "On Hold", "Escalated"},
		} {
			got := make([]string, 0, len(statuses[medium]))
			for s := range statuses[medium] {
				got = append(got, s)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s statuses %v, want %v", medium, got, want)
			}
		}
		if surveys == 0 || visits == 0 || csLinked == 0 {
			t.Errorf("surveys with answers %d, visits with impressions %d, linked CS activities %d", surveys, visits, csLinked)
		}
		if oldest > 0 {
			t.Errorf("%d activities outside the last 18 months", oldest)
		}
		if len(cues) != 5 {
			t.Errorf("cue phrases found: %v", cues)
		}
	})

	t.Run("some signals wait long for a follow-up and others are answered fast", func(t *testing.T) {
		type trail struct {
			lastSignal   time.Time
			answeredWith time.Duration // first follow-up after the last signal; 0 if none
		}
		trails := map[string]*trail{}
		person := func(a store.Record) string {
			if c, ok := a["contact"].(string); ok {
				return c
			}
			if l, ok := a["lead"].(string); ok {
				return l
			}
			return ""
		}
		for _, a := range activities {
			if p := person(a); p != "" && a["direction"] == "signal" {
				at, _ := time.Parse(time.RFC3339, a["occurred_at"].(string))
				if trails[p] == nil || at.After(trails[p].lastSignal) {
					trails[p] = &trail{lastSignal: at}
				}
			}
		}
		for _, a := range activities {
			if p := person(a); p != "" && a["direction"] == "follow_up" {
				at, _ := time.Parse(time.RFC3339, a["occurred_at"].(string))
				tr := trails[p]
				if tr == nil {
					continue
				}
				if d := at.Sub(tr.lastSignal); d > 0 && (tr.answeredWith == 0 || d < tr.answeredWith) {
					tr.answeredWith = d
				}
			}
		}
		var orphans, quick int
		for _, tr := range trails {
			switch {
			case tr.answeredWith == 0 && now.Sub(tr.lastSignal) > 14*24*time.Hour:
				orphans++
			case tr.answeredWith > 0 && tr.answeredWith <= 4*time.Hour:
				quick++
			}
		}
		t.Logf("%d people signalled; %d left unanswered for over two weeks, %d answered within 4 h", len(trails), orphans, quick)
		if orphans < 100 || quick < 500 {
			t.Errorf("orphans %d, quickly answered %d", orphans, quick)
		}
	})

	t.Run("every KPI status is used", func(t *testing.T) {
		seen := map[string]bool{}
		for _, k := range listAll(t, db, orgA.ID, "kpis") {
			if s, ok := k["status"].(string); ok {
				seen[s] = true
			}
		}
		for _, s := range store.KPIStatuses() {
			if !seen[s] {
				t.Errorf("no KPI %s", s)
			}
		}
	})

	t.Run("projects use every health", func(t *testing.T) {
		seen := map[string]bool{}
		for _, p := range listAll(t, db, orgA.ID, "projects") {
			if h, ok := p["health"].(string); ok {
				seen[h] = true
			}
		}
		if !seen["green"] || !seen["amber"] || !seen["red"] {
			t.Errorf("health: %v", seen)
		}
	})

	t.Run("drafts, incomplete records and an untouched account exist", func(t *testing.T) {
		states := map[string]map[string]bool{}
		referenced := map[string]bool{}
		for _, module := range store.BuiltinModules() {
			for _, r := range listAll(t, db, orgA.ID, module) {
				s := r["state"].(string)
				if states[s] == nil {
					states[s] = map[string]bool{}
				}
				states[s][module] = true
				if a, ok := r["account"].(string); ok {
					referenced[a] = true
				}
			}
		}
		if len(states["draft"]) < 3 || len(states["incomplete"]) < 3 {
			t.Errorf("modules with drafts %v, with incomplete records %v", states["draft"], states["incomplete"])
		}
		var untouched []string
		for _, a := range listAll(t, db, orgA.ID, "accounts") {
			if !referenced[a["id"].(string)] {
				untouched = append(untouched, a["id"].(string))
			}
		}
		if len(untouched) == 0 {
			t.Error("every account has associated records")
		}
		t.Logf("%d accounts with no associated records", len(untouched))
	})

	t.Run("histories were back-filled", func(t *testing.T) {
		for _, tc := range []struct{ module, field string }{
			{"contacts", "lifecycle_stage"}, {"leads", "lead_status"}, {"deals", "stage"},
		} {
			recs := listAll(t, db, orgA.ID, tc.module)
			multi := 0
			for _, r := range recs[:100] {
				h, err := db.FieldHistory(ctx, orgA.ID, tc.module, r["id"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if len(h) == 0 || h[0].OldValue != nil || *h[len(h)-1].NewValue != r[tc.field] {
					t.Fatalf("%s %v: history %+v does not end at %v", tc.module, r["id"], h, r[tc.field])
				}
				if len(h) > 1 {
					multi++
				}
				for _, c := range h {
					if !c.ChangedAt.Before(now) {
						t.Errorf("%s %v: change at %v is not in the past", tc.module, r["id"], c.ChangedAt)
					}
				}
			}
			if multi < 20 {
				t.Errorf("%s: only %d of 100 records changed more than once", tc.module, multi)
			}
		}
	})
}
