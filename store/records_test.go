package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func newOrg(t *testing.T, db *store.DB, name string) int64 {
	t.Helper()
	o, err := db.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// rows turns JSON texts into a batch.
func rows(texts ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(texts))
	for i, s := range texts {
		out[i] = json.RawMessage(s)
	}
	return out
}

func upsert(t *testing.T, db *store.DB, org int64, module string, batch []json.RawMessage) store.UpsertResult {
	t.Helper()
	res, err := db.UpsertRecords(context.Background(), org, module, batch)
	if err != nil {
		t.Fatalf("upsert %s: %v", module, err)
	}
	if len(res.Rows) != len(batch) {
		t.Fatalf("upsert %s: %d results for %d rows", module, len(res.Rows), len(batch))
	}
	return res
}

// mustOK fails unless every row was stored.
func mustOK(t *testing.T, res store.UpsertResult) {
	t.Helper()
	for _, r := range res.Rows {
		if r.Status == store.RowError {
			t.Fatalf("row %d (%s): %s", r.Index, r.ExternalID, r.Error)
		}
	}
}

func get(t *testing.T, db *store.DB, org int64, module, id string) store.Record {
	t.Helper()
	rec, err := db.GetRecord(context.Background(), org, module, id)
	if err != nil {
		t.Fatalf("get %s %s: %v", module, id, err)
	}
	return rec
}

func TestUpsertCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")

	res := upsert(t, db, org, "accounts", rows(
		`{"external_id": "a1", "name": "Acme", "employees": 120, "annual_revenue": 1234567.891, "city": "Lyon"}`,
		`{"external_id": "a2", "name": "Globex", "state": "draft", "attributes": {"tier": "gold", "score": 1.50}}`,
	))
	if res.Created != 2 || res.Updated != 0 || res.Failed != 0 {
		t.Fatalf("first batch: %+v", res)
	}
	for i, r := range res.Rows {
		if r.Status != store.RowCreated || r.Index != i {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	a1 := get(t, db, org, "accounts", "a1")
	want := map[string]any{
		"id": "a1", "state": "active", "name": "Acme", "employees": json.Number("120"),
		"annual_revenue": json.Number("1234567.89"), "city": "Lyon", "industry": nil,
	}
	for k, v := range want {
		if a1[k] != v {
			t.Errorf("a1[%s] = %#v, want %#v", k, a1[k], v)
		}
	}
	a2 := get(t, db, org, "accounts", "a2")
	if a2["state"] != "draft" || a2["name"] != "Globex" {
		t.Errorf("a2 = %v", a2)
	}
	if attrs, _ := a2["attributes"].(map[string]any); attrs["tier"] != "gold" || attrs["score"] != json.Number("1.50") {
		t.Errorf("a2 attributes = %v", a2["attributes"])
	}
	created, _ := time.Parse(time.RFC3339Nano, a1["created_at"].(string))
	if time.Since(created) > time.Minute || time.Since(created) < -time.Minute {
		t.Errorf("created_at = %v", a1["created_at"])
	}

	// The same rows again, one changed: both are updates; a row is the whole
	// record, so the field left out (city) is cleared.
	res = upsert(t, db, org, "accounts", rows(
		`{"external_id": "a1", "name": "Acme Corp", "employees": 120, "annual_revenue": 1234567.891}`,
		`{"external_id": "a2", "name": "Globex", "state": "draft", "attributes": {"score": 1.5, "tier": "gold"}}`,
		`{"external_id": "a3", "name": "Initech"}`,
	))
	if res.Created != 1 || res.Updated != 2 || res.Failed != 0 {
		t.Fatalf("second batch: %+v", res)
	}
	if got := []string{res.Rows[0].Status, res.Rows[1].Status, res.Rows[2].Status}; strings.Join(got, ",") != "updated,updated,created" {
		t.Errorf("statuses %v", got)
	}
	a1 = get(t, db, org, "accounts", "a1")
	if a1["name"] != "Acme Corp" || a1["city"] != nil {
		t.Errorf("a1 after update = %v", a1)
	}
	if a1["updated_at"] == a1["created_at"] {
		t.Errorf("a1 changed but updated_at = created_at = %v", a1["updated_at"])
	}
	// a2 did not change, so its updated_at stays.
	if again := get(t, db, org, "accounts", "a2"); again["updated_at"] != a2["updated_at"] {
		t.Errorf("a2 unchanged but updated_at moved from %v to %v", a2["updated_at"], again["updated_at"])
	}

	if _, err := db.GetRecord(ctx, org, "accounts", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing record: want ErrNotFound, got %v", err)
	}
	// Ids from a URL that no record can have are not found, not a database error.
	for _, id := range []string{"", "a\x00", "\xff\xfe", strings.Repeat("a", 300)} {
		if _, err := db.GetRecord(ctx, org, "accounts", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get %q: want ErrNotFound, got %v", id, err)
		}
		if err := db.DeleteRecord(ctx, org, "accounts", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete %q: want ErrNotFound, got %v", id, err)
		}
		if _, err := db.FieldHistory(ctx, org, "deals", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("history %q: want ErrNotFound, got %v", id, err)
		}
	}
}

func TestUpsertReportsBadRowsAndStoresGoodOnes(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	mustOK(t, upsert(t, db, org, "accounts", rows(`{"external_id": "a1", "name": "Acme"}`)))

	res := upsert(t, db, org, "contacts", rows(
		`{"external_id": "c1", "first_name": "Ann", "account": "a1"}`, // 0 good
		`{"external_id": "c2", "foo": 1}`,                             // 1 unknown field
		`{"external_id": "c3", "first_name": 42}`,                     // 2 wrong type
		`{"external_id": "c4", "account": "a404"}`,                    // 3 missing lookup
		`{"external_id": "c1", "first_name": "Again"}`,                // 4 duplicate
		`[1, 2]`,                   // 5 not an object
		`{"first_name": "Nobody"}`, // 6 no external_id
		`{"external_id": "c5", "state": "archived"}`,                         // 7 bad state
		`{"external_id": "", "first_name": "Empty"}`,                         // 8 empty id
		`{"external_id": "c6", "last_name": "Bo", "attributes": {"x": [1]}}`, // 9 good
		`"c7"`, // 10 not an object
		`{"external_id": "c8", "attributes": [1]}`,   // 11 attributes not an object
		`{"external_id": "c9", "email": "a\u0000b"}`, // 12 NUL
		`null`, // 13 not an object
	))
	wantErr := map[int]string{
		1:  `unknown field "foo" for module contacts`,
		2:  `field "first_name": want a string, got a number`,
		3:  `account "a404" not found in accounts`,
		4:  `duplicate external_id "c1" (first at row 0)`,
		5:  `row is not a JSON object`,
		6:  `missing external_id`,
		7:  `field "state": "archived" is not one of active, draft, incomplete`,
		8:  `external_id: must not be empty`,
		10: `row is not a JSON object`,
		11: `attributes: want an object, got an array`,
		12: `field "email": contains a NUL character`,
		13: `row is not a JSON object`,
	}
	for i, r := range res.Rows {
		want, bad := wantErr[i]
		switch {
		case bad && (r.Status != store.RowError || !strings.Contains(r.Error, want)):
			t.Errorf("row %d: want error %q, got %+v", i, want, r)
		case !bad && r.Status != store.RowCreated:
			t.Errorf("row %d: want created, got %+v", i, r)
		}
	}
	if res.Created != 2 || res.Failed != len(wantErr) {
		t.Errorf("created %d failed %d", res.Created, res.Failed)
	}
	if c1 := get(t, db, org, "contacts", "c1"); c1["first_name"] != "Ann" || c1["account"] != "a1" {
		t.Errorf("c1 = %v", c1)
	}
	get(t, db, org, "contacts", "c6")
	for _, id := range []string{"c2", "c3", "c4", "c5", "c8", "c9"} {
		if _, err := db.GetRecord(context.Background(), org, "contacts", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("bad row %s was stored (err %v)", id, err)
		}
	}
}

func TestUpsertValidatesTypesAndChecks(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	activity := `"external_id": "x", "medium": "call", "direction": "signal", "occurred_at": "2025-01-02T03:04:05Z"`
	for _, tc := range []struct {
		module, row, wantErr string
	}{
		{"activities", `{` + activity + `, "medium": "fax"}`, `field "medium": "fax" is not one of email, call`},
		{"activities", `{"external_id": "x", "direction": "signal", "occurred_at": "2025-01-02T03:04:05Z"}`, `missing required field "medium"`},
		{"activities", `{` + activity + `, "direction": null}`, `missing required field "direction"`},
		{"activities", `{` + activity + `, "occurred_at": "2025-01-02 03:04"}`, `field "occurred_at": want an RFC 3339 timestamp`},
		{"activities", `{` + activity + `, "kind": "fax"}`, `field "kind": "fax" is not one of`},
		{"activities", `{` + activity + `, "pages_visited": -1}`, `field "pages_visited": -1 is out of range`},
		{"activities", `{` + activity + `, "pages_visited": 1.5}`, `field "pages_visited": want an integer, got 1.5`},
		{"activities", `{` + activity + `, "contact": 7}`, `lookup "contact": want a string, got a number`},
		{"activities", `{` + activity + `, "changed_at": "2025-01-02T03:04:05Z"}`, `unknown field "changed_at" for module activities`},
		{"kpis", `{"external_id": "x", "status": "Done"}`, `field "status": "Done" is not one of Not Started, On Track, Off Track, Blocked, Completed`},
		{"projects", `{"external_id": "x", "health": "yellow"}`, `field "health": "yellow" is not one of green, amber, red`},
		{"deals", `{"external_id": "x", "probability": 101}`, `field "probability": 101 is out of range [0, 100]`},
		{"deals", `{"external_id": "x", "amount": 1e16}`, `field "amount": 1e16 does not fit numeric(18,2)`},
		{"deals", `{"external_id": "x", "amount": "12"}`, `field "amount": want a number, got a string`},
		{"deals", `{"external_id": "x", "amount": 1e999999999}`, `field "amount": 1e999999999 is out of range`},
		{"deals", `{"external_id": "x", "close_date": "2025-02-30"}`, `field "close_date": want a date (YYYY-MM-DD), got "2025-02-30"`},
		{"deals", `{"external_id": "x", "changed_at": "yesterday"}`, `changed_at: want an RFC 3339 timestamp`},
		{"accounts", `{"external_id": "x", "employees": 3000000000}`, `field "employees": 3000000000 is out of range`},
		{"leads", `{"external_id": "x", "converted": "yes"}`, `field "converted": want true or false, got a string`},
		{"accounts", `{"external_id": "` + strings.Repeat("x", 256) + `"}`, `external_id: longer than 255 bytes`},
		{"accounts", `{"external_id": 12}`, `external_id: want a string, got a number`},
		{"accounts", `{"external_id": "x", "attributes": {"a": "\u0000"}}`, `attributes: contains a NUL character`},
		{"accounts", `{"external_id": "x", "attributes": {"a": 1e5000}}`, `attributes: number 1e5000 is out of range`},
		{"accounts", `{"external_id": "x", "attributes": ` + strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70) + `}`, `nested deeper than 64 levels`},
		{"custom_widgets", `{"external_id": "x", "name": 5}`, `field "name": want a string, got a number`},
		{"custom_widgets", `{"external_id": "x", "a\u0000b": 1}`, `key contains a NUL character`},
		{"accounts", `{"external_id": "x"} {"name": "y"}`, `row has data after its JSON object`},
		{"custom_widgets", `{"external_id": "x", "color": "red", "attributes": {"color": "blue"}}`, `field "color" is given both at the top level and in attributes`},
	} {
		t.Run(tc.module+" "+tc.wantErr, func(t *testing.T) {
			// A good row rides along to show the bad one does not sink it.
			good := `{"external_id": "good"}`
			if tc.module == "activities" {
				good = `{` + strings.Replace(activity, `"x"`, `"good"`, 1) + `}`
			}
			res := upsert(t, db, org, tc.module, rows(tc.row, good))
			if r := res.Rows[0]; r.Status != store.RowError || !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("got %+v, want error containing %q", r, tc.wantErr)
			}
			if r := res.Rows[1]; r.Status == store.RowError {
				t.Errorf("good row: %+v", r)
			}
		})
	}
}

func TestUpsertStoresTypedValues(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	mustOK(t, upsert(t, db, org, "deals", rows(
		`{"external_id": "d1", "name": "Big", "amount": -10.005, "probability": 40, "close_date": "2025-03-31"}`,
	)))
	d := get(t, db, org, "deals", "d1")
	if d["amount"] != json.Number("-10.01") || d["probability"] != json.Number("40") || d["close_date"] != "2025-03-31" {
		t.Errorf("d1 = %v", d)
	}
	mustOK(t, upsert(t, db, org, "cases", rows(
		`{"external_id": "k1", "escalated": true, "opened_at": "2025-01-02T10:00:00+02:00"}`,
		`{"external_id": "k2"}`,
	)))
	k1 := get(t, db, org, "cases", "k1")
	if k1["escalated"] != true || k1["opened_at"] != "2025-01-02T08:00:00.000000Z" || k1["subject"] != "" {
		t.Errorf("k1 = %v", k1)
	}
	if k2 := get(t, db, org, "cases", "k2"); k2["escalated"] != false || k2["opened_at"] != nil {
		t.Errorf("k2 = %v", k2)
	}
	mustOK(t, upsert(t, db, org, "activities", rows(
		`{"external_id": "v1", "medium": "visit", "direction": "signal", "occurred_at": "2025-01-02T03:04:05.123Z", "time_spent_seconds": 90, "pages_visited": 4, "notes": "quote \" and \\ backslash, {braces}, NULL"}`,
	)))
	v1 := get(t, db, org, "activities", "v1")
	if v1["kind"] != "note" || v1["pages_visited"] != json.Number("4") || v1["occurred_at"] != "2025-01-02T03:04:05.123000Z" ||
		v1["notes"] != `quote " and \ backslash, {braces}, NULL` {
		t.Errorf("v1 = %v", v1)
	}
}

func TestLookupsResolveByExternalID(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	mustOK(t, upsert(t, db, org, "accounts", rows(`{"external_id": "a1"}`, `{"external_id": "a2"}`)))
	mustOK(t, upsert(t, db, org, "contacts", rows(
		`{"external_id": "c1", "account": "a1"}`, `{"external_id": "c2", "account": "a2"}`, `{"external_id": "c3"}`)))
	mustOK(t, upsert(t, db, org, "deals", rows(
		`{"external_id": "d1", "account": "a1", "contact": "c1"}`, `{"external_id": "d2", "account": "a2", "contact": null}`)))
	mustOK(t, upsert(t, db, org, "products", rows(`{"external_id": "p1", "name": "Seat"}`)))
	mustOK(t, upsert(t, db, org, "deal_line_items", rows(
		`{"external_id": "li1", "deal": "d1", "product": "p1", "quantity": 2.5, "unit_price": 10, "total": 25}`)))

	for _, tc := range []struct{ module, id, key, want string }{
		{"contacts", "c1", "account", "a1"},
		{"contacts", "c2", "account", "a2"},
		{"deals", "d1", "account", "a1"},
		{"deals", "d1", "contact", "c1"},
		{"deals", "d2", "account", "a2"},
		{"deal_line_items", "li1", "deal", "d1"},
		{"deal_line_items", "li1", "product", "p1"},
	} {
		if got := get(t, db, org, tc.module, tc.id)[tc.key]; got != tc.want {
			t.Errorf("%s %s %s = %v, want %s", tc.module, tc.id, tc.key, got, tc.want)
		}
	}
	if got := get(t, db, org, "deals", "d2")["contact"]; got != nil {
		t.Errorf("d2 contact = %v, want null", got)
	}
	if got := get(t, db, org, "deal_line_items", "li1")["quantity"]; got != json.Number("2.5000") {
		t.Errorf("quantity = %v", got)
	}
	// Re-pointing a lookup, and dropping one by leaving it out.
	mustOK(t, upsert(t, db, org, "contacts", rows(`{"external_id": "c1", "account": "a2"}`, `{"external_id": "c2"}`)))
	if got := get(t, db, org, "contacts", "c1")["account"]; got != "a2" {
		t.Errorf("c1 account = %v", got)
	}
	if got := get(t, db, org, "contacts", "c2")["account"]; got != nil {
		t.Errorf("c2 account = %v", got)
	}
}

func TestFieldHistory(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	history := func(module, id string) []string {
		t.Helper()
		changes, err := db.FieldHistory(ctx, org, module, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range changes {
			s := func(p *string) string {
				if p == nil {
					return "NULL"
				}
				return *p
			}
			out = append(out, fmt.Sprintf("%s:%s>%s", c.Field, s(c.OldValue), s(c.NewValue)))
		}
		return out
	}

	mustOK(t, upsert(t, db, org, "leads", rows(
		`{"external_id": "l1", "lead_status": "New", "changed_at": "2024-01-01T00:00:00Z"}`,
		`{"external_id": "l2"}`)))
	if got := history("leads", "l1"); strings.Join(got, " ") != "lead_status:NULL>New" {
		t.Errorf("after insert: %v", got)
	}
	if got := history("leads", "l2"); len(got) != 0 {
		t.Errorf("insert without a status: %v", got)
	}
	changes, _ := db.FieldHistory(ctx, org, "leads", "l1")
	if want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); !changes[0].ChangedAt.Equal(want) {
		t.Errorf("changed_at = %v, want %v", changes[0].ChangedAt, want)
	}

	// Unchanged status: no new row, even when other fields change.
	mustOK(t, upsert(t, db, org, "leads", rows(`{"external_id": "l1", "lead_status": "New", "company": "X"}`)))
	if got := history("leads", "l1"); len(got) != 1 {
		t.Errorf("unchanged status wrote history: %v", got)
	}
	before := time.Now()
	mustOK(t, upsert(t, db, org, "leads", rows(
		`{"external_id": "l1", "lead_status": "Working"}`, `{"external_id": "l2", "lead_status": "New"}`)))
	if got := history("leads", "l1"); strings.Join(got, " ") != "lead_status:NULL>New lead_status:New>Working" {
		t.Errorf("after change: %v", got)
	}
	changes, _ = db.FieldHistory(ctx, org, "leads", "l1")
	if at := changes[1].ChangedAt; at.Before(before.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
		t.Errorf("changed_at without input = %v, want about now", at)
	}
	if got := history("leads", "l2"); strings.Join(got, " ") != "lead_status:NULL>New" {
		t.Errorf("l2: %v", got)
	}
	// Clearing is a change too.
	mustOK(t, upsert(t, db, org, "leads", rows(`{"external_id": "l1"}`)))
	if got := history("leads", "l1"); len(got) != 3 || got[2] != "lead_status:Working>NULL" {
		t.Errorf("after clearing: %v", got)
	}

	// Deals and contacts track their own picklists; a back-fill replayed is
	// recorded once.
	mustOK(t, upsert(t, db, org, "contacts", rows(`{"external_id": "c1", "lifecycle_stage": "lead", "changed_at": "2024-01-01T00:00:00Z"}`)))
	for range 2 {
		for i, stage := range []string{"Qualification", "Proposal", "Closed Won"} {
			mustOK(t, upsert(t, db, org, "deals", rows(fmt.Sprintf(
				`{"external_id": "d1", "stage": %q, "changed_at": "2024-0%d-01T00:00:00Z"}`, stage, i+1))))
		}
	}
	if got := history("contacts", "c1"); strings.Join(got, " ") != "lifecycle_stage:NULL>lead" {
		t.Errorf("contact: %v", got)
	}
	want := "stage:NULL>Qualification stage:Qualification>Proposal stage:Proposal>Closed Won"
	if got := history("deals", "d1"); strings.Join(got, " ") != want {
		t.Errorf("deal: %v, want %s", got, want)
	}
}

func TestFieldHistoryOfMissingRecordIsNotFound(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	if _, err := db.FieldHistory(context.Background(), org, "deals", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
}

// Concurrent batches over the same records neither deadlock nor lose a
// step of the history: each change's old value is the previous new value.
func TestConcurrentUpsertsKeepHistoryConsistent(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	const workers, rounds, deals = 4, 5, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				batch := make([]json.RawMessage, deals)
				for d := range deals {
					// Workers walk the deals in opposite orders to invite deadlocks.
					id := d
					if w%2 == 1 {
						id = deals - 1 - d
					}
					batch[d] = json.RawMessage(fmt.Sprintf(`{"external_id": "d%d", "stage": "w%d-r%d"}`, id, w, r))
				}
				if _, err := db.UpsertRecords(ctx, org, "deals", batch); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for d := range deals {
		changes, err := db.FieldHistory(ctx, org, "deals", fmt.Sprintf("d%d", d))
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 || changes[0].OldValue != nil {
			t.Fatalf("d%d: history does not start with an insert: %+v", d, changes)
		}
		for i := 1; i < len(changes); i++ {
			if *changes[i].OldValue != *changes[i-1].NewValue {
				t.Fatalf("d%d: change %d old %q, previous new %q", d, i, *changes[i].OldValue, *changes[i-1].NewValue)
			}
		}
		last := get(t, db, org, "deals", fmt.Sprintf("d%d", d))["stage"]
		if *changes[len(changes)-1].NewValue != last {
			t.Fatalf("d%d: history ends at %q, record is %v", d, *changes[len(changes)-1].NewValue, last)
		}
	}
}

func TestListRecordsPaginatesOverEveryRowOnce(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	const n = 250
	batch := make([]json.RawMessage, n)
	for i := range batch {
		batch[i] = json.RawMessage(fmt.Sprintf(`{"external_id": "p%03d", "name": "Product %d"}`, i, i))
	}
	mustOK(t, upsert(t, db, org, "products", batch))
	mustOK(t, upsert(t, db, other, "products", rows(`{"external_id": "p000"}`, `{"external_id": "theirs"}`)))

	for _, limit := range []int{1, 7, 100, 250, 1000} {
		seen := map[string]bool{}
		var order []string
		cursor, pages := "", 0
		for {
			page, err := db.ListRecords(ctx, org, "products", limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page.Records) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page.Records))
			}
			for _, r := range page.Records {
				id := r["id"].(string)
				if seen[id] {
					t.Fatalf("limit %d: %s twice", limit, id)
				}
				seen[id] = true
				order = append(order, id)
			}
			if page.NextCursor == "" {
				break
			}
			if len(page.Records) != limit {
				t.Fatalf("limit %d: short page %d with a next cursor", limit, len(page.Records))
			}
			cursor = page.NextCursor
		}
		if len(seen) != n || seen["theirs"] {
			t.Fatalf("limit %d: saw %d rows", limit, len(seen))
		}
		if order[0] != "p000" || order[n-1] != fmt.Sprintf("p%03d", n-1) {
			t.Errorf("limit %d: not in insertion order: %s..%s", limit, order[0], order[n-1])
		}
		if wantPages := (n + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	page, err := db.ListRecords(ctx, org, "products", 0, "")
	if err != nil || len(page.Records) != store.DefaultPageSize {
		t.Errorf("limit 0: %d records, %v", len(page.Records), err)
	}
	page, err = db.ListRecords(ctx, org, "custom_widgets", 10, "")
	if err != nil || len(page.Records) != 0 || page.NextCursor != "" {
		t.Errorf("empty custom module: %+v, %v", page, err)
	}
	for _, bad := range []string{"garbage!", "MTIz", "cjE6eA"} { // not base64, "123", "r1:x"
		if _, err := db.ListRecords(ctx, org, "products", 10, bad); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("cursor %q: want ErrInvalidCursor, got %v", bad, err)
		}
	}
	if _, err := db.ListRecords(ctx, org, "Products", 10, ""); !errors.Is(err, store.ErrInvalidModule) {
		t.Errorf("bad module: want ErrInvalidModule, got %v", err)
	}
}

func TestOtherOrgCannotReadWriteOrDelete(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	a := newOrg(t, db, "a")
	b := newOrg(t, db, "b")
	mustOK(t, upsert(t, db, a, "accounts", rows(`{"external_id": "acc", "name": "A's"}`)))
	mustOK(t, upsert(t, db, a, "custom_widgets", rows(`{"external_id": "w", "name": "A's widget"}`)))

	for _, module := range []string{"accounts", "custom_widgets"} {
		id := map[string]string{"accounts": "acc", "custom_widgets": "w"}[module]
		if _, err := db.GetRecord(ctx, b, module, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("b reads a's %s: %v", module, err)
		}
		if err := db.DeleteRecord(ctx, b, module, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("b deletes a's %s: %v", module, err)
		}
		get(t, db, a, module, id)
	}
	// b cannot point at a's account, and b's own "acc" is a different record.
	res := upsert(t, db, b, "contacts", rows(`{"external_id": "c", "account": "acc"}`))
	if res.Rows[0].Status != store.RowError || !strings.Contains(res.Rows[0].Error, `account "acc" not found`) {
		t.Errorf("cross-org lookup: %+v", res.Rows[0])
	}
	mustOK(t, upsert(t, db, b, "accounts", rows(`{"external_id": "acc", "name": "B's"}`)))
	if got := get(t, db, a, "accounts", "acc")["name"]; got != "A's" {
		t.Errorf("a's account became %v", got)
	}
	if got := get(t, db, b, "accounts", "acc")["name"]; got != "B's" {
		t.Errorf("b's account is %v", got)
	}
}

func TestDeleteRemovesDerivedRows(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	mustOK(t, upsert(t, db, org, "accounts", rows(`{"external_id": "a1"}`)))
	mustOK(t, upsert(t, db, org, "contacts", rows(
		`{"external_id": "c1", "account": "a1", "lifecycle_stage": "lead"}`,
		`{"external_id": "c2", "account": "a1", "lifecycle_stage": "customer"}`)))
	mustOK(t, upsert(t, db, org, "contacts", rows(`{"external_id": "c1", "account": "a1", "lifecycle_stage": "customer"}`)))
	act := func(id, contact string) string {
		return fmt.Sprintf(`{"external_id": %q, "medium": "email", "direction": "signal", "occurred_at": "2025-01-01T00:00:00Z", "contact": %q, "account": "a1"}`, id, contact)
	}
	mustOK(t, upsert(t, db, org, "activities", rows(act("e1", "c1"), act("e2", "c1"), act("e3", "c2"))))
	counts, err := db.CountRows(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if counts.FieldHistory != 3 || counts.Modules["activities"] != 3 {
		t.Fatalf("before delete: %+v", counts)
	}

	if err := db.DeleteRecord(ctx, org, "contacts", "c1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2"} {
		if _, err := db.GetRecord(ctx, org, "activities", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("activity %s of the deleted contact: %v", id, err)
		}
	}
	get(t, db, org, "activities", "e3")
	get(t, db, org, "accounts", "a1")
	counts, _ = db.CountRows(ctx, org)
	if counts.FieldHistory != 1 || counts.Modules["contacts"] != 1 || counts.Modules["activities"] != 1 {
		t.Errorf("after delete: %+v", counts)
	}
	if err := db.DeleteRecord(ctx, org, "contacts", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: want ErrNotFound, got %v", err)
	}
	// A record created again under the same id starts a fresh history.
	mustOK(t, upsert(t, db, org, "contacts", rows(`{"external_id": "c1", "lifecycle_stage": "lead"}`)))
	if h, _ := db.FieldHistory(ctx, org, "contacts", "c1"); len(h) != 1 || h[0].OldValue != nil {
		t.Errorf("history of the re-created contact: %+v", h)
	}
	// Deleting an account clears the lookups that pointed at it.
	if err := db.DeleteRecord(ctx, org, "accounts", "a1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, org, "contacts", "c2")["account"]; got != nil {
		t.Errorf("c2 account after deleting it = %v", got)
	}
}

func TestCustomModuleRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	res := upsert(t, db, org, "custom_widgets", rows(
		`{"external_id": "w1", "name": "Sprocket", "state": "draft", "color": "red", "attributes": {"size": 3}}`,
		`{"external_id": "w2"}`))
	mustOK(t, res)
	w1 := get(t, db, org, "custom_widgets", "w1")
	attrs, _ := w1["attributes"].(map[string]any)
	if w1["id"] != "w1" || w1["name"] != "Sprocket" || w1["state"] != "draft" || attrs["color"] != "red" || attrs["size"] != json.Number("3") {
		t.Errorf("w1 = %v", w1)
	}
	// Same external id in another custom module is another record.
	mustOK(t, upsert(t, db, org, "custom_gadgets", rows(`{"external_id": "w1", "name": "Other"}`)))
	if got := get(t, db, org, "custom_widgets", "w1")["name"]; got != "Sprocket" {
		t.Errorf("gadgets w1 overwrote widgets w1: %v", got)
	}
	res = upsert(t, db, org, "custom_widgets", rows(`{"external_id": "w1", "name": "Sprocket 2"}`))
	if res.Rows[0].Status != store.RowUpdated {
		t.Errorf("re-upsert: %+v", res.Rows[0])
	}
	page, err := db.ListRecords(ctx, org, "custom_widgets", 10, "")
	if err != nil || len(page.Records) != 2 {
		t.Fatalf("list: %+v %v", page, err)
	}
	if err := db.DeleteRecord(ctx, org, "custom_widgets", "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetRecord(ctx, org, "custom_widgets", "w1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	get(t, db, org, "custom_gadgets", "w1")
	counts, _ := db.CountRows(ctx, org)
	if counts.Modules["custom_widgets"] != 1 || counts.Modules["custom_gadgets"] != 1 {
		t.Errorf("counts %+v", counts.Modules)
	}
	for _, bad := range []string{"Widgets", "9lives", "a-b", ""} {
		if _, err := db.UpsertRecords(ctx, org, bad, rows(`{"external_id": "x"}`)); !errors.Is(err, store.ErrInvalidModule) {
			t.Errorf("module %q: want ErrInvalidModule, got %v", bad, err)
		}
	}
}

func TestUpsertFullBatch(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	mustOK(t, upsert(t, db, org, "accounts", rows(`{"external_id": "a1"}`)))
	contacts := make([]json.RawMessage, 100)
	for i := range contacts {
		contacts[i] = json.RawMessage(fmt.Sprintf(`{"external_id": "c%d", "account": "a1"}`, i))
	}
	mustOK(t, upsert(t, db, org, "contacts", contacts))

	batch := make([]json.RawMessage, store.MaxBatchRows)
	for i := range batch {
		batch[i] = json.RawMessage(fmt.Sprintf(
			`{"external_id": "act%d", "medium": "email", "direction": "signal", "occurred_at": "2025-01-01T00:00:00Z", "contact": "c%d", "account": "a1", "notes": "note %d"}`,
			i, i%100, i))
	}
	start := time.Now()
	res := upsert(t, db, org, "activities", batch)
	t.Logf("%d activities with 2 lookups created in %v", len(batch), time.Since(start))
	if res.Created != store.MaxBatchRows {
		t.Fatalf("created %d, failed %d", res.Created, res.Failed)
	}
	res = upsert(t, db, org, "activities", batch)
	if res.Updated != store.MaxBatchRows {
		t.Fatalf("second run: updated %d", res.Updated)
	}
	if got := get(t, db, org, "activities", "act4999")["contact"]; got != "c99" {
		t.Errorf("act4999 contact = %v", got)
	}
	_, err := db.UpsertRecords(ctx, org, "activities", append(batch, batch[0]))
	if !errors.Is(err, store.ErrBatchTooLarge) {
		t.Errorf("batch of %d: want ErrBatchTooLarge, got %v", len(batch)+1, err)
	}
}
