package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/crmq/crmq/store"
)

func TestUpsertKeepsGoodRowsAndReportsBadOnes(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	body := `[
		{"external_id":"a1","name":"Acme","industry":"Retail"},
		{"external_id":"a2","name":"Bad","colour":"red"},
		{"external_id":"a3","name":"Beta","employees":"many"},
		{"external_id":"a4","name":"Gamma"}
	]`
	r := e.do(t, "PUT", "/v1/modules/accounts/records", e.keyA, body)
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	res := decode[store.UpsertResult](t, r)
	if res.Created != 2 || res.Failed != 2 || len(res.Rows) != 4 {
		t.Fatalf("result %+v", res)
	}
	if res.Rows[1].Status != store.RowError || !strings.Contains(res.Rows[1].Error, `"colour"`) {
		t.Fatalf("row 1 %+v", res.Rows[1])
	}
	again := decode[store.UpsertResult](t, e.do(t, "PUT", "/v1/modules/accounts/records", e.keyA, `[{"external_id":"a1","name":"Acme Inc"}]`))
	if again.Updated != 1 {
		t.Fatalf("re-upsert %+v", again)
	}
	rec := decode[map[string]any](t, e.do(t, "GET", "/v1/modules/accounts/records/a1", e.keyA, ""))
	if rec["name"] != "Acme Inc" || rec["id"] != "a1" {
		t.Fatalf("record %v", rec)
	}
	wantProblem(t, e.do(t, "GET", "/v1/modules/accounts/records/a2", e.keyA, ""), 404, "not-found")
}

func TestNDJSONWithAMalformedLine(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	body := "{\"external_id\":\"p1\",\"name\":\"One\"}\n{\"external_id\":\"p2\",\n{\"external_id\":\"p3\",\"name\":\"Three\"}\n"
	r := e.do(t, "PUT", "/v1/modules/products/records", e.keyA, body, "Content-Type", "application/x-ndjson")
	res := decode[store.UpsertResult](t, r)
	if r.StatusCode != 200 || res.Created != 2 || res.Failed != 1 || res.Rows[1].Status != store.RowError {
		t.Fatalf("%d %+v", r.StatusCode, res)
	}
}

func TestIngestionBadInput(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.s.cfg.MaxBodyBytes = 16 << 20
	e.rebuild(t)
	var big strings.Builder
	big.WriteString("[")
	for i := range 6000 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"external_id":"x%d","name":"n"}`, i)
	}
	big.WriteString("]")
	cases := []struct {
		name, module, body string
		status             int
		slug               string
	}{
		{"6,000 records", "accounts", big.String(), 413, "too-large"},
		{"malformed JSON", "accounts", `[{"external_id":"a1",`, 400, "malformed-json"},
		{"not an array", "accounts", `{"external_id":"a1"}`, 400, "malformed-json"},
		{"empty array", "accounts", `[]`, 400, "validation"},
		{"unknown module", "unicorns", `[{"external_id":"u1"}]`, 404, "unknown-module"},
		{"only row has an unknown field", "contacts", `[{"external_id":"c1","shoe_size":44}]`, 400, "validation"},
		{"lookup to a missing account", "contacts", `[{"external_id":"c1","account":"nope"}]`, 400, "validation"},
	}
	for _, c := range cases {
		t.Run(c.name+" is "+fmt.Sprint(c.status), func(t *testing.T) {
			wantProblem(t, e.do(t, "PUT", "/v1/modules/"+c.module+"/records", e.keyA, c.body), c.status, c.slug)
		})
	}
	counts, err := e.db.CountRows(context.Background(), e.orgA.ID)
	if err != nil {
		t.Fatal(err)
	}
	for m, n := range counts.Modules {
		if n != 0 {
			t.Errorf("rejected requests stored %d %s", n, m)
		}
	}
}

func TestListPagesAndDeleteAndIsolation(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	var rows []string
	for i := range 25 {
		rows = append(rows, fmt.Sprintf(`{"external_id":"l%02d","last_name":"L%d","lead_status":"New"}`, i, i))
	}
	if r := e.do(t, "PUT", "/v1/modules/leads/records", e.keyA, "["+strings.Join(rows, ",")+"]"); r.StatusCode != 200 {
		t.Fatalf("upsert %d", r.StatusCode)
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page := decode[recordList](t, e.do(t, "GET", "/v1/modules/leads/records?limit=10&cursor="+cursor, e.keyA, ""))
		for _, r := range page.Records {
			id := r["id"].(string)
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("listed %d of 25", len(seen))
	}
	wantProblem(t, e.do(t, "GET", "/v1/modules/leads/records?limit=0", e.keyA, ""), 400, "validation")
	wantProblem(t, e.do(t, "GET", "/v1/modules/leads/records?cursor=zzz", e.keyA, ""), 400, "validation")

	// Another org sees nothing and deletes nothing.
	if page := decode[recordList](t, e.do(t, "GET", "/v1/modules/leads/records", e.keyB, "")); len(page.Records) != 0 {
		t.Fatalf("org b lists %d of org a's leads", len(page.Records))
	}
	wantProblem(t, e.do(t, "GET", "/v1/modules/leads/records/l01", e.keyB, ""), 404, "not-found")
	wantProblem(t, e.do(t, "DELETE", "/v1/modules/leads/records/l01", e.keyB, ""), 404, "not-found")

	if r := e.do(t, "DELETE", "/v1/modules/leads/records/l01", e.keyA, ""); r.StatusCode != 204 {
		t.Fatalf("delete %d", r.StatusCode)
	}
	wantProblem(t, e.do(t, "GET", "/v1/modules/leads/records/l01", e.keyA, ""), 404, "not-found")
	wantProblem(t, e.do(t, "DELETE", "/v1/modules/leads/records/l01", e.keyA, ""), 404, "not-found")
}
