package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// An export writes every column as the column's text: types whose output
// is their text go out as Postgres writes them, and the others (a boolean
// writes t) are cast, so a boolean column reads true or false.
func TestExportWritesEachColumnAsItsText(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "export-text")
	var seg int64
	err := db.QueryRowxContext(ctx, `WITH a AS (
		INSERT INTO accounts (org_id, external_id, name, employees, annual_revenue, created_at)
		VALUES ($1, 'x1', 'Small', 5, 1047.5, '2026-03-02 10:00:00.7+00'), ($1, 'x2', 'Big', 50, NULL, '2026-03-02 23:59:59+00')
		RETURNING id), s AS (
		INSERT INTO segments (org_id, name, criteria) VALUES ($1, 's', '{}') RETURNING id)
		INSERT INTO segment_members (org_id, segment_id, account_id) SELECT $1, s.id, a.id FROM s, a RETURNING segment_id`,
		org.ID).Scan(&seg)
	if err != nil {
		t.Fatal(err)
	}
	fields := []store.ExportField{
		store.ExportExprField("id", "a.external_id"),
		store.ExportExprField("employees", "a.employees"),
		store.ExportExprField("revenue", "a.annual_revenue"),
		store.ExportExprField("big", "a.employees > 10"),
		store.ExportExprField("created", "(a.created_at AT TIME ZONE 'UTC')::timestamp(0)"),
		store.ExportExprField("ratio", "a.employees / 4.0::float8"),
		store.ExportExprField("names", "ARRAY[a.name, 'b']"),
	}
	var out bytes.Buffer
	n, err := db.ExportCSV(ctx, org.ID, seg, fields, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "x1,5,1047.50,false,2026-03-02 10:00:01,1.25,\"{Small,b}\"\n" +
		"x2,50,,true,2026-03-02 23:59:59,12.5,\"{Big,b}\"\n"
	if n != 2 || out.String() != want {
		t.Errorf("exported %d rows:\n%s\nwant 2:\n%s", n, out.String(), want)
	}
}
