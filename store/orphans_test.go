package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var day1 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// day returns midnight of the n-th day of the fixture month plus h hours.
func day(n int, h float64) time.Time {
	return day1.AddDate(0, 0, n-1).Add(time.Duration(h * float64(time.Hour)))
}

const hour = 3600.0

// handFixture builds records whose orphan state is worked out by hand in
// TestRecomputeOrphansByHand; it returns the record ids by external id.
func handFixture(t *testing.T, db *store.DB, org, other int64) map[string]int64 {
	ids := map[string]int64{}
	for _, ext := range []string{"L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"} {
		ids[ext] = fixtureRecord(t, db, org, "leads", ext)
	}
	for _, ext := range []string{"C1", "C2", "C3"} {
		ids[ext] = fixtureRecord(t, db, org, "contacts", ext)
	}
	ids["B1"] = fixtureRecord(t, db, other, "leads", "L1")
	n := 0
	sig := func(rec string, at time.Time) fixtureActivity {
		n++
		a := fixtureActivity{ID: fmt.Sprintf("a%d", n), Direction: "signal", Medium: "email", At: at}
		if rec[0] == 'C' {
			a.Contact = ids[rec]
		} else {
			a.Lead = ids[rec]
		}
		return a
	}
	fu := func(rec string, at time.Time) fixtureActivity {
		a := sig(rec, at)
		a.Direction = "follow_up"
		return a
	}
	draft := sig("L6", day(8, 0))
	draft.State = "draft"
	fixtureActivities(t, db, org, []fixtureActivity{
		// L1: answered in 2h and 4h; nothing open.
		sig("L1", day(1, 0)), fu("L1", day(1, 2)), sig("L1", day(2, 0)), fu("L1", day(2, 4)),
		// L2: two signals answered by one follow-up (3h, 2h), then two unanswered.
		sig("L2", day(3, 0)), sig("L2", day(3, 1)), fu("L2", day(3, 3)), sig("L2", day(9, 0)), sig("L2", day(9, 6)),
		// L3: no activities. L4: only follow-ups.
		fu("L4", day(4, 0)), fu("L4", day(5, 0)),
		// L5: one unanswered signal 6h before now.
		sig("L5", day(10, 6)),
		// L6: answered in 1h; a later draft signal is not a touchpoint.
		sig("L6", day(5, 0)), fu("L6", day(5, 1)), draft,
		// L7: a follow-up at the very instant of the signal does not answer it.
		sig("L7", day(6, 0)), fu("L7", day(6, 0)),
		// L8: unanswered for 1h only, shorter than the average.
		sig("L8", day(10, 11)),
		// Contacts: C1 answered in 100h, C2 open 12h, C3 open 204h.
		sig("C1", day(1, 0)), fu("C1", day(5, 4)), sig("C2", day(10, 0)), sig("C3", day(2, 0)),
	})
	// The other org: a slow answer and an open signal that must not count.
	fixtureActivities(t, db, other, []fixtureActivity{
		{ID: "b1", Lead: ids["B1"], Direction: "signal", Medium: "call", At: day(1, 0)},
		{ID: "b2", Lead: ids["B1"], Direction: "follow_up", Medium: "call", At: day(9, 0)},
		{ID: "b3", Lead: ids["B1"], Direction: "signal", Medium: "call", At: day(9, 1)},
	})
	return ids
}

func TestRecomputeOrphansByHand(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, other := fixtureOrg(t, db, "a"), fixtureOrg(t, db, "b")
	ids := handFixture(t, db, org, other)
	now := day(10, 12)

	leads, err := db.RecomputeOrphans(ctx, org, "leads", now, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	leadAvg := (2 + 4 + 3 + 2 + 1) / 5.0 * hour
	if leads.Module != "leads" || leads.Records != 8 || leads.Orphans != 3 || !near(leads.AverageGapSeconds, leadAvg) ||
		!leads.ComputedAt.Equal(now) || leads.JobID != "job-1" {
		t.Errorf("leads run = %+v (average %v), want 8 records, 3 orphans, average %v", leads, ptr(leads.AverageGapSeconds), leadAvg)
	}
	contacts, err := db.RecomputeOrphans(ctx, org, "contacts", now, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if contacts.Records != 3 || contacts.Orphans != 1 || !near(contacts.AverageGapSeconds, 100*hour) {
		t.Errorf("contacts run = %+v (average %v), want 3 records, 1 orphan, average 100h", contacts, ptr(contacts.AverageGapSeconds))
	}

	type want struct {
		rec       string
		module    string
		orphan    bool
		openSince time.Time // zero: no open gap
	}
	for _, w := range []want{
		{"L1", "leads", false, time.Time{}},
		{"L2", "leads", true, day(9, 0)},
		{"L3", "leads", false, time.Time{}},
		{"L4", "leads", false, time.Time{}},
		{"L5", "leads", true, day(10, 6)},
		{"L6", "leads", false, time.Time{}},
		{"L7", "leads", true, day(6, 0)},
		{"L8", "leads", false, day(10, 11)},
		{"C1", "contacts", false, time.Time{}},
		{"C2", "contacts", false, day(10, 0)},
		{"C3", "contacts", true, day(2, 0)},
	} {
		t.Run(w.rec+" is orphan "+fmt.Sprint(w.orphan), func(t *testing.T) {
			s, err := db.OrphanStatus(ctx, org, w.module, ids[w.rec])
			if err != nil {
				t.Fatal(err)
			}
			if s.IsOrphan != w.orphan {
				t.Errorf("is_orphan = %v, want %v", s.IsOrphan, w.orphan)
			}
			if w.openSince.IsZero() {
				if s.OpenSince != nil || s.CurrentGapSeconds != nil {
					t.Errorf("open gap %v / %v, want none", s.OpenSince, ptr(s.CurrentGapSeconds))
				}
			} else if s.OpenSince == nil || !s.OpenSince.Equal(w.openSince) || !near(s.CurrentGapSeconds, now.Sub(w.openSince).Seconds()) {
				t.Errorf("open since %v gap %v, want %v gap %v", s.OpenSince, ptr(s.CurrentGapSeconds), w.openSince, now.Sub(w.openSince).Seconds())
			}
			avg := leadAvg
			if w.module == "contacts" {
				avg = 100 * hour
			}
			if !near(s.AverageGapSeconds, avg) || !s.ComputedAt.Equal(now) || s.JobID != "job-1" || s.Module != w.module {
				t.Errorf("state = %+v", s)
			}
		})
	}

	// The other org is computed on its own and sees nothing of org a.
	if _, err := db.OrphanStatus(ctx, other, "leads", ids["L1"]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("org b reading org a's lead: %v, want ErrNotFound", err)
	}
	if _, err := db.LastOrphanRun(ctx, other, "leads"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("org b has no run yet: %v, want ErrNotFound", err)
	}
	b, err := db.RecomputeOrphans(ctx, other, "leads", now, "job-b")
	if err != nil {
		t.Fatal(err)
	}
	if b.Records != 1 || b.Orphans != 0 || !near(b.AverageGapSeconds, 8*24*hour) {
		t.Errorf("org b run = %+v, want 1 record, average 8 days, no orphan (open 35h)", b)
	}
	if last, err := db.LastOrphanRun(ctx, org, "leads"); err != nil || !reflect.DeepEqual(last, leads) {
		t.Errorf("last run of org a = %+v, %v; want %+v", last, err, leads)
	}

	// Actionable: a follow-up ends L2's open gap at the next recompute.
	fixtureActivities(t, db, org, []fixtureActivity{{ID: "late", Lead: ids["L2"], Direction: "follow_up", Medium: "call", At: day(10, 12)}})
	if _, err := db.RecomputeOrphans(ctx, org, "leads", day(10, 13), "job-2"); err != nil {
		t.Fatal(err)
	}
	s, err := db.OrphanStatus(ctx, org, "leads", ids["L2"])
	if err != nil || s.IsOrphan || s.OpenSince != nil || s.JobID != "job-2" {
		t.Errorf("L2 after its follow-up = %+v, %v; want not orphan, no open gap", s, err)
	}
}

func TestRecomputeOrphansWithoutAnswersHasNoAverage(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := fixtureOrg(t, db, "a")
	lead := fixtureRecord(t, db, org, "leads", "L1")
	fixtureActivities(t, db, org, []fixtureActivity{{ID: "s", Lead: lead, Direction: "signal", Medium: "call", At: day(1, 0)}})
	run, err := db.RecomputeOrphans(ctx, org, "leads", day(30, 0), "j")
	if err != nil {
		t.Fatal(err)
	}
	if run.AverageGapSeconds != nil || run.Records != 1 || run.Orphans != 0 {
		t.Errorf("run = %+v, want no average, 1 record, no orphan", run)
	}
	s, err := db.OrphanStatus(ctx, org, "leads", lead)
	if err != nil || s.IsOrphan || s.OpenSince == nil || s.AverageGapSeconds != nil {
		t.Errorf("state = %+v, %v; want open gap but not orphan without an average", s, err)
	}
	empty, err := db.RecomputeOrphans(ctx, org, "contacts", day(30, 0), "j")
	if err != nil || empty.Records != 0 || empty.AverageGapSeconds != nil {
		t.Errorf("no contacts: %+v, %v", empty, err)
	}
	if _, err := db.RecomputeOrphans(ctx, org, "deals", day(30, 0), "j"); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("module deals: %v, want ErrInvalidQuery", err)
	}
}

// orphanRows reads every orphan_state row of the org, for comparisons.
func orphanRows(t *testing.T, db *store.DB, org int64) []map[string]any {
	t.Helper()
	rows, err := db.QueryxContext(context.Background(), `SELECT * FROM orphan_state WHERE org_id = $1 ORDER BY module, record_id`, org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		m := map[string]any{}
		if err := rows.MapScan(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRecomputeOrphansIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, other := fixtureOrg(t, db, "a"), fixtureOrg(t, db, "b")
	handFixture(t, db, org, other)
	now := day(10, 12)

	first, err := db.RecomputeOrphans(ctx, org, "leads", now, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	before := orphanRows(t, db, org)
	again, err := db.RecomputeOrphans(ctx, org, "leads", now, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("rerun = %+v, want %+v", again, first)
	}
	if after := orphanRows(t, db, org); fmt.Sprint(after) != fmt.Sprint(before) || len(after) != 8 {
		t.Errorf("rerun changed rows:\nbefore %v\nafter  %v", before, after)
	}

	// A late retry of an older tick leaves the newer results alone.
	stale, err := db.RecomputeOrphans(ctx, org, "leads", now.Add(-time.Hour), "job-0")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stale, first) {
		t.Errorf("stale run returned %+v, want the stored %+v", stale, first)
	}
	if after := orphanRows(t, db, org); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("stale run changed rows")
	}

	// Concurrent runs (two workers, one tick) are serialised, not deadlocked.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := db.RecomputeOrphans(ctx, org, "leads", now.Add(time.Hour), "job-2")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent run: %v", err)
		}
	}
}

func TestDeletingARecordDeletesItsOrphanState(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, other := fixtureOrg(t, db, "a"), fixtureOrg(t, db, "b")
	ids := handFixture(t, db, org, other)
	if _, err := db.RecomputeOrphans(ctx, org, "contacts", day(10, 12), "j"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OrphanStatus(ctx, org, "contacts", ids["C3"]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM contacts WHERE id = $1`, ids["C3"]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OrphanStatus(ctx, org, "contacts", ids["C3"]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted contact's state: %v, want ErrNotFound", err)
	}
	if _, err := db.OrphanStatus(ctx, org, "contacts", ids["C1"]); err != nil {
		t.Errorf("other contact's state: %v", err)
	}
	run, err := db.RecomputeOrphans(ctx, org, "contacts", day(10, 13), "j2")
	if err != nil || run.Records != 2 || run.Orphans != 0 {
		t.Errorf("after delete: %+v, %v; want 2 records, no orphan", run, err)
	}
}

func near(got *float64, want float64) bool {
	return got != nil && math.Abs(*got-want) <= 1e-6*math.Max(1, math.Abs(want))
}

func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
