package demo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/export"
)

// checkDemoExport exports a demo segment (TestSeedABM calls it on the
// seeded org, so the demo is seeded once): the ZIP opens, the CSV parses,
// the row count is the segment's, the selected fields come out in the
// order asked, and a member whose name looks like a formula is
// neutralised.
func checkDemoExport(t *testing.T, db *store.DB, orgID int64, seg store.Segment, now time.Time) {
	t.Helper()
	ctx := context.Background()
	var member string
	err := db.GetContext(ctx, &member, `
		UPDATE accounts a SET name = '=1+2' FROM segment_members m
		WHERE a.id = (SELECT min(account_id) FROM segment_members WHERE segment_id = $1) AND m.account_id = a.id AND m.segment_id = $1
		RETURNING a.external_id`, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := export.OpenBucket(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x := export.Exporter{Store: db, Bucket: b, Now: func() time.Time { return now }}
	fields := []string{"label.rfm", "id", "name", "industry", "score.rfm.m"}
	out, err := x.Run(ctx, workers.Job[jobs.ExportSegmentPayload]{ID: "demo-export", Payload: jobs.ExportSegmentPayload{
		OrgID: orgID, SegmentID: seg.ID, Fields: jobs.ExportFields{Names: fields}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.ReadAll(ctx, export.FileKey(orgID, out.ExportID))
	if err != nil {
		t.Fatal(err)
	}
	_, recs, err := export.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"RFM Label", "Account ID", "Account Name", "Industry", "RFM Monetary Score"}; !slices.Equal(recs[0], want) {
		t.Errorf("header %q, want %q", recs[0], want)
	}
	if len(recs)-1 != seg.MemberCount || out.Rows != int64(seg.MemberCount) {
		t.Errorf("%d rows (result %d), the segment has %d members", len(recs)-1, out.Rows, seg.MemberCount)
	}
	for _, r := range recs[1:] {
		if r[1] == member && r[2] != "'=1+2" {
			t.Errorf("formula-like name written as %q", r[2])
		}
		if r[0] == "" {
			t.Errorf("member %s has no RFM label in a segment of RFM labels", r[1])
		}
	}
	t.Logf("segment %q: %d rows, %d bytes", seg.Name, out.Rows, out.Size)
}
