package maintenance_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers/maintenance"
)

// The computation itself is tested in store (by hand and against a Go
// recomputation); here: both modules, the result's shape, reruns, and
// cancellation, on a real database.
func TestRecomputeOrphansCoversBothModules(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, err := db.CreateOrg(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	res, err := maintenance.RecomputeOrphans(ctx, db, org.ID, now, "orphans:1:1741608000", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OrgID != org.ID || len(res.Modules) != 2 || res.Modules[0].Module != "leads" || res.Modules[1].Module != "contacts" {
		t.Fatalf("result = %+v", res)
	}
	for _, m := range res.Modules {
		if m.Records != 0 || m.Orphans != 0 || m.AverageGapSeconds != nil || !m.ComputedAt.Equal(now) || m.JobID != "orphans:1:1741608000" {
			t.Errorf("%s = %+v", m.Module, m)
		}
		last, err := db.LastOrphanRun(ctx, org.ID, m.Module)
		if err != nil || !last.ComputedAt.Equal(now) {
			t.Errorf("stored run of %s = %+v, %v", m.Module, last, err)
		}
	}

	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var shape struct {
		OrgID   int64            `json:"org_id"`
		Modules []map[string]any `json:"modules"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"module", "average_gap_seconds", "records", "orphans", "computed_at", "job_id"} {
		if _, ok := shape.Modules[0][k]; !ok {
			t.Errorf("result JSON has no %q: %s", k, raw)
		}
	}

	again, err := maintenance.RecomputeOrphans(ctx, db, org.ID, now, "orphans:1:1741608000", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := json.Marshal(again); string(a) != string(raw) {
		t.Errorf("rerun result %s, first %s", a, raw)
	}
}

func TestRecomputeOrphansHonoursCancellation(t *testing.T) {
	db, _ := storetest.NewDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := maintenance.RecomputeOrphans(ctx, db, 1, time.Now(), "j", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

var _ maintenance.OrphanStore = (*store.DB)(nil)
