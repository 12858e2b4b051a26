package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var quotaDay = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func consume(t *testing.T, db *store.DB, org int64, user, record, hash string, day time.Time, limit int) (bool, int) {
	t.Helper()
	counted, used, err := db.ConsumeSummary(context.Background(), org, user, "accounts", record, hash, day, limit)
	if err != nil {
		t.Fatalf("consume %s %s %s: %v", user, record, hash, err)
	}
	return counted, used
}

func usedBy(t *testing.T, db *store.DB, org int64, user string, day time.Time) int {
	t.Helper()
	u, err := db.SummaryUsageOf(context.Background(), org, user, day, 100)
	if err != nil {
		t.Fatal(err)
	}
	return u.Used
}

func TestConsumeSummaryNeverOverrunsTheLimit(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")

	const n, limit = 200, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	var other []error
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counted, _, err := db.ConsumeSummary(ctx, org, "u1", "accounts", fmt.Sprintf("r%03d", i), "h", quotaDay, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && counted:
				ok++
			case errors.Is(err, store.ErrQuotaExceeded):
				over++
			default:
				other = append(other, fmt.Errorf("record %d: counted %v, %w", i, counted, err))
			}
		}()
	}
	wg.Wait()
	if ok != limit || over != n-limit || len(other) > 0 {
		t.Fatalf("%d counted, %d over the limit, others %v; want %d and %d", ok, over, other, limit, n-limit)
	}
	u, err := db.SummaryUsageOf(ctx, org, "u1", quotaDay, limit)
	if err != nil || u != (store.SummaryUsage{Day: "2026-03-10", Used: limit, Limit: limit, Remaining: 0}) {
		t.Errorf("usage = %+v, %v", u, err)
	}
	// A refused generation leaves no consumption behind.
	var rowsLeft int
	if err := db.GetContext(ctx, &rowsLeft, `SELECT count(*) FROM summary_consumptions WHERE org_id = $1`, org); err != nil || rowsLeft != limit {
		t.Errorf("%d consumption rows (%v), want %d", rowsLeft, err, limit)
	}
	// Over the limit, a record already counted today with the same data is
	// still free (whichever records won the race); a new one is refused
	// with the count.
	var first string
	if err := db.GetContext(ctx, &first, `SELECT min(record_external_id) FROM summary_consumptions WHERE org_id = $1`, org); err != nil {
		t.Fatal(err)
	}
	if counted, used := consume(t, db, org, "u1", first, "h", quotaDay, limit); counted || used != limit {
		t.Errorf("repeat at the limit: counted %v used %d", counted, used)
	}
	if _, used, err := db.ConsumeSummary(ctx, org, "u1", "accounts", "new", "h", quotaDay, limit); !errors.Is(err, store.ErrQuotaExceeded) || used != limit {
		t.Errorf("new record at the limit: used %d, %v", used, err)
	}
}

func TestConsumptionPolicy(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	otherOrg := newOrg(t, db, "other")

	steps := []struct {
		what               string
		org                int64
		user, record, hash string
		day                time.Time
		wantCounted        bool
		wantUsed           int
	}{
		{"first summary of a record", org, "u1", "r1", "h1", quotaDay, true, 1},
		{"the same record, unchanged", org, "u1", "r1", "h1", quotaDay, false, 1},
		{"again, an hour later", org, "u1", "r1", "h1", quotaDay.Add(time.Hour), false, 1},
		{"the record after a change", org, "u1", "r1", "h2", quotaDay, true, 2},
		{"another record with the same hash", org, "u1", "r2", "h1", quotaDay, true, 3},
		{"another user, same record", org, "u2", "r1", "h1", quotaDay, true, 1},
		{"the same user and record in another org", otherOrg, "u1", "r1", "h1", quotaDay, true, 1},
		{"the next day", org, "u1", "r1", "h1", quotaDay.AddDate(0, 0, 1), true, 1},
	}
	for _, s := range steps {
		counted, used, err := db.ConsumeSummary(ctx, s.org, s.user, "accounts", s.record, s.hash, s.day, 100)
		if err != nil || counted != s.wantCounted || used != s.wantUsed {
			t.Errorf("%s: counted %v used %d err %v; want %v %d", s.what, counted, used, err, s.wantCounted, s.wantUsed)
		}
	}
	if got := usedBy(t, db, org, "u1", quotaDay); got != 3 {
		t.Errorf("u1 used %d on day 1, want 3", got)
	}

	// Concurrent requests for one unchanged record count once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	countedN := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counted, _, err := db.ConsumeSummary(ctx, org, "u3", "accounts", "r1", "h1", quotaDay, 100)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if counted {
				countedN++
			}
		}()
	}
	wg.Wait()
	if countedN != 1 || usedBy(t, db, org, "u3", quotaDay) != 1 {
		t.Errorf("20 concurrent repeats counted %d times, used %d", countedN, usedBy(t, db, org, "u3", quotaDay))
	}

	// The day is the calendar day of the time given, in its location.
	est := time.FixedZone("EST", -5*3600)
	late := time.Date(2026, 3, 10, 23, 30, 0, 0, est) // 04:30 UTC on the 11th
	if u, err := db.SummaryUsageOf(ctx, org, "u1", late, 100); err != nil || u.Day != "2026-03-10" || u.Used != 3 || u.Remaining != 97 {
		t.Errorf("usage at 23:30 EST = %+v %v", u, err)
	}

	for _, bad := range [][4]string{{"", "accounts", "r", "h"}, {"u", "nope", "r", "h"}, {"u", "accounts", "", "h"}, {"u", "accounts", "r", ""}} {
		if _, _, err := db.ConsumeSummary(ctx, org, bad[0], bad[1], bad[2], bad[3], quotaDay, 100); !errors.Is(err, store.ErrInvalidConsumption) {
			t.Errorf("consume %q: want ErrInvalidConsumption, got %v", bad, err)
		}
	}
	if _, _, err := db.ConsumeSummary(ctx, org, "u9", "accounts", "r", "h", quotaDay, 0); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Errorf("limit 0: want ErrQuotaExceeded, got %v", err)
	}
}

func TestReleaseSummaryConsumption(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	const limit = 2
	consume(t, db, org, "u1", "r1", "h", quotaDay, limit)
	consume(t, db, org, "u1", "r2", "h", quotaDay, limit)
	if _, _, err := db.ConsumeSummary(ctx, org, "u1", "accounts", "r3", "h", quotaDay, limit); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("third: %v", err)
	}

	// The enqueue after r2's consumption failed: release it.
	released, err := db.ReleaseSummaryConsumption(ctx, org, "u1", "accounts", "r2", "h", quotaDay)
	if err != nil || !released || usedBy(t, db, org, "u1", quotaDay) != 1 {
		t.Fatalf("release: %v %v, used %d", released, err, usedBy(t, db, org, "u1", quotaDay))
	}
	// Releasing twice, or what was never counted, changes nothing.
	for _, rec := range []string{"r2", "r3", "never"} {
		if released, err := db.ReleaseSummaryConsumption(ctx, org, "u1", "accounts", rec, "h", quotaDay); err != nil || released {
			t.Errorf("release %s: %v %v", rec, released, err)
		}
	}
	// Another org or day is not touched.
	if released, _ := db.ReleaseSummaryConsumption(ctx, org+1, "u1", "accounts", "r1", "h", quotaDay); released {
		t.Error("released another org's consumption")
	}
	if released, _ := db.ReleaseSummaryConsumption(ctx, org, "u1", "accounts", "r1", "h", quotaDay.AddDate(0, 0, -1)); released {
		t.Error("released another day's consumption")
	}
	if got := usedBy(t, db, org, "u1", quotaDay); got != 1 {
		t.Errorf("used %d, want 1", got)
	}
	// The freed slot can be used, and r2 counts again when retried.
	if counted, used := consume(t, db, org, "u1", "r2", "h", quotaDay, limit); !counted || used != 2 {
		t.Errorf("retry of r2: counted %v used %d", counted, used)
	}
}

func TestPruneSummaryUsage(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	consume(t, db, org, "u1", "r1", "h", quotaDay.AddDate(0, 0, -2), 100)
	consume(t, db, org, "u1", "r1", "h", quotaDay.AddDate(0, 0, -1), 100)
	consume(t, db, org, "u1", "r1", "h", quotaDay, 100)
	n, err := db.PruneSummaryUsage(ctx, org, quotaDay)
	if err != nil || n != 4 { // two days, a usage row and a consumption each
		t.Fatalf("pruned %d, %v; want 4", n, err)
	}
	if usedBy(t, db, org, "u1", quotaDay) != 1 || usedBy(t, db, org, "u1", quotaDay.AddDate(0, 0, -1)) != 0 {
		t.Error("prune removed today's count or kept yesterday's")
	}
	if counted, _ := consume(t, db, org, "u1", "r1", "h", quotaDay, 100); counted {
		t.Error("today's consumption was pruned")
	}
}
