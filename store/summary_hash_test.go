package store_test

import (
	"context"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// hashStep is one change to the data and whether the graph's data hash
// must move.
type hashStep struct {
	what    string
	do      func(t *testing.T)
	changes bool
}

// runHashSteps applies the steps in order and checks the hash of module/id
// after each, and that SummaryGraph agrees with SummaryDataHash.
func runHashSteps(t *testing.T, db *store.DB, org int64, module, id string, steps []hashStep) {
	t.Helper()
	prev := dataHashOf(t, db, org, module, id)
	for _, s := range steps {
		s.do(t)
		h := dataHashOf(t, db, org, module, id)
		switch {
		case s.changes && h == prev:
			t.Errorf("%s %s: %s did not change the data hash", module, id, s.what)
		case !s.changes && h != prev:
			t.Errorf("%s %s: %s changed the data hash", module, id, s.what)
		}
		if g := graph(t, db, org, module, id); g.DataHash != h {
			t.Errorf("%s %s after %s: graph hash %s, SummaryDataHash %s", module, id, s.what, g.DataHash, h)
		}
		prev = h
	}
}

func upserting(db *store.DB, org int64, module string, texts ...string) func(t *testing.T) {
	return func(t *testing.T) { t.Helper(); load(t, db, org, module, texts...) }
}

func deleting(db *store.DB, org int64, module, id string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		if err := db.DeleteRecord(context.Background(), org, module, id); err != nil {
			t.Fatalf("delete %s %s: %v", module, id, err)
		}
	}
}

// insertUpdateDelete is the three steps every table of a graph gets: a new
// member, a change to it, and its removal.
func insertUpdateDelete(db *store.DB, org int64, module, id, created, updated string) []hashStep {
	return []hashStep{
		{"insert of " + module + "/" + id, upserting(db, org, module, created), true},
		{"the same " + module + "/" + id + " again", upserting(db, org, module, created), false},
		{"update of " + module + "/" + id, upserting(db, org, module, updated), true},
		{"delete of " + module + "/" + id, deleting(db, org, module, id), true},
	}
}

func TestAccountDataHashMovesWithEveryTableOfTheGraph(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	accountFixture(t, db, org)
	accountFixture(t, db, other)

	steps := []hashStep{
		// Nothing changes when the app pushes the same data again.
		{"re-pushing the account unchanged", upserting(db, org, "accounts", `{"external_id": "acc1", "name": "Acme", "industry": "Manufacturing", "annual_revenue": 5000000}`), false},
		{"re-pushing a contact unchanged", upserting(db, org, "contacts", `{"external_id": "c1", "first_name": "Ann", "title": "CTO", "account": "acc1"}`), false},
		{"update of the account", upserting(db, org, "accounts", `{"external_id": "acc1", "name": "Acme Inc", "industry": "Manufacturing"}`), true},
	}
	steps = append(steps, insertUpdateDelete(db, org, "contacts", "c9",
		`{"external_id": "c9", "account": "acc1"}`, `{"external_id": "c9", "account": "acc1", "title": "CFO"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "deals", "d9",
		`{"external_id": "d9", "account": "acc1"}`, `{"external_id": "d9", "account": "acc1", "amount": 5}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "deal_line_items", "li9",
		`{"external_id": "li9", "deal": "d1"}`, `{"external_id": "li9", "deal": "d1", "quantity": 3}`)...)
	steps = append(steps,
		hashStep{"a new product no line item uses", upserting(db, org, "products", `{"external_id": "p9", "name": "New"}`), false},
		hashStep{"a line item starting to use it", upserting(db, org, "deal_line_items", `{"external_id": "li3", "deal": "d2", "product": "p9", "quantity": 5}`), true},
		hashStep{"update of the product", upserting(db, org, "products", `{"external_id": "p9", "name": "Renamed"}`), true},
		hashStep{"delete of the product", deleting(db, org, "products", "p9"), true},
	)
	steps = append(steps, insertUpdateDelete(db, org, "cases", "cs9",
		`{"external_id": "cs9", "account": "acc1"}`, `{"external_id": "cs9", "account": "acc1", "escalated": true}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "success_plans", "sp9",
		`{"external_id": "sp9", "account": "acc1"}`, `{"external_id": "sp9", "account": "acc1", "status": "Active"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "business_challenges", "bc9",
		`{"external_id": "bc9", "account": "acc1"}`, `{"external_id": "bc9", "account": "acc1", "status": "Open"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "objectives", "o9",
		`{"external_id": "o9", "account": "acc1"}`, `{"external_id": "o9", "account": "acc1", "status": "Done"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "kpis", "k9",
		`{"external_id": "k9", "objective": "o1"}`, `{"external_id": "k9", "objective": "o1", "actual": 4}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "kpis", "k8",
		`{"external_id": "k8", "account": "acc1"}`, `{"external_id": "k8", "account": "acc1", "status": "Blocked"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "playbooks", "pb9",
		`{"external_id": "pb9", "account": "acc1"}`, `{"external_id": "pb9", "account": "acc1", "status": "Running"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "playbook_tasks", "pt9",
		`{"external_id": "pt9", "playbook": "pb1"}`, `{"external_id": "pt9", "playbook": "pb1", "status": "Done"}`)...)
	steps = append(steps, insertUpdateDelete(db, org, "projects", "pr9",
		`{"external_id": "pr9", "account": "acc1"}`, `{"external_id": "pr9", "account": "acc1", "health": "green"}`)...)
	// Activities through every link of the graph.
	for _, link := range [][2]string{
		{"account", "acc1"}, {"contact", "c1"}, {"deal", "d1"}, {"case", "cs1"}, {"success_plan", "sp1"},
		{"objective", "o1"}, {"kpi", "k1"}, {"kpi", "k2"}, {"business_challenge", "bc1"}, {"playbook_task", "pt1"},
	} {
		id := "new-" + link[0] + "-" + link[1]
		steps = append(steps, insertUpdateDelete(db, org, "activities", id,
			activity(id, "cs_activity", "follow_up", oneDay, link[0], link[1]),
			activity(id, "cs_activity", "follow_up", 2*oneDay, link[0], link[1]))...)
	}
	steps = append(steps,
		// Records leaving or joining the graph through a lookup.
		hashStep{"a contact moving to another account", upserting(db, org, "contacts", `{"external_id": "c2", "first_name": "Second", "account": "acc2"}`), true},
		hashStep{"a contact moving in", upserting(db, org, "contacts", `{"external_id": "c-else", "first_name": "Other", "account": "acc1"}`), true},
		// Deleting a member whose rows hang off it (line items cascade, activities lose the link).
		hashStep{"delete of a deal with line items", deleting(db, org, "deals", "d2"), true},
		hashStep{"delete of a case with an activity", deleting(db, org, "cases", "cs1"), true},
		// Changes outside the graph leave it alone.
		hashStep{"update of another account", upserting(db, org, "accounts", `{"external_id": "acc2", "name": "Globex 2"}`), false},
		hashStep{"update of another account's deal", upserting(db, org, "deals", `{"external_id": "d3", "name": "Other", "account": "acc2", "stage": "Closed Lost"}`), false},
		hashStep{"an activity of another account", upserting(db, org, "activities", activity("x-acc2", "note", "signal", oneDay, "account", "acc2")), false},
		hashStep{"the same change in another org", upserting(db, other, "accounts", `{"external_id": "acc1", "name": "Changed"}`), false},
		hashStep{"another org's activity", upserting(db, other, "activities", activity("x-other", "note", "signal", oneDay, "account", "acc1")), false},
	)
	runHashSteps(t, db, org, "accounts", "acc1", steps)
}

func TestContactLeadDealAndCustomDataHashes(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	accountFixture(t, db, org)
	load(t, db, org, "leads", `{"external_id": "l1", "lead_status": "New"}`)
	load(t, db, org, "custom_widgets", `{"external_id": "w1", "name": "W"}`)

	t.Run("contacts", func(t *testing.T) {
		steps := []hashStep{
			{"update of the contact's account", upserting(db, org, "accounts", `{"external_id": "acc1", "name": "Acme 2"}`), true},
			{"a lifecycle stage change (history)", upserting(db, org, "contacts", `{"external_id": "c1", "first_name": "Ann", "title": "CTO", "account": "acc1", "lifecycle_stage": "Customer"}`), true},
			{"an activity of another contact", upserting(db, org, "activities", activity("c2-x", "note", "signal", oneDay, "contact", "c2")), false},
			{"a deal of the account without the contact", upserting(db, org, "deals", `{"external_id": "dx", "account": "acc1"}`), false},
		}
		steps = append(steps, insertUpdateDelete(db, org, "deals", "dc", `{"external_id": "dc", "contact": "c1"}`, `{"external_id": "dc", "contact": "c1", "stage": "Won"}`)...)
		steps = append(steps, insertUpdateDelete(db, org, "activities", "ac",
			activity("ac", "email", "signal", oneDay, "contact", "c1"), activity("ac", "email", "signal", 3*oneDay, "contact", "c1"))...)
		runHashSteps(t, db, org, "contacts", "c1", steps)
	})
	t.Run("leads", func(t *testing.T) {
		steps := []hashStep{
			{"a lead status change", upserting(db, org, "leads", `{"external_id": "l1", "lead_status": "Contacted"}`), true},
			{"another lead", upserting(db, org, "leads", `{"external_id": "l2", "lead_status": "New"}`), false},
			{"a back-filled history row", func(t *testing.T) {
				// A milestone the app back-fills without changing the lead: the
				// history alone moves the hash. (The record itself is unchanged,
				// so this row is written in SQL.)
				if _, err := db.ExecContext(ctx, `INSERT INTO field_history (org_id, module, record_id, field, old_value, new_value, changed_at)
					SELECT org_id, 'leads', id, 'lead_status', NULL, 'Imported', '2020-01-01' FROM leads WHERE org_id = $1 AND external_id = 'l1'`, org); err != nil {
					t.Fatal(err)
				}
			}, true},
		}
		steps = append(steps, insertUpdateDelete(db, org, "activities", "al",
			activity("al", "email", "signal", oneDay, "lead", "l1"), activity("al", "call", "signal", oneDay, "lead", "l1"))...)
		runHashSteps(t, db, org, "leads", "l1", steps)
	})
	t.Run("deals", func(t *testing.T) {
		steps := []hashStep{
			{"a stage change", upserting(db, org, "deals", `{"external_id": "d1", "name": "Big", "account": "acc1", "contact": "c1", "stage": "Closed Lost", "amount": 1000}`), true},
			{"update of the deal's contact", upserting(db, org, "contacts", `{"external_id": "c1", "first_name": "Annie", "account": "acc1"}`), true},
			{"update of a product of a line item", upserting(db, org, "products", `{"external_id": "p1", "name": "Widget 2"}`), true},
			{"update of another deal", upserting(db, org, "deals", `{"external_id": "d3", "name": "Other 2", "account": "acc2"}`), false},
			{"an activity of the account, not the deal", upserting(db, org, "activities", activity("acc-only", "note", "signal", oneDay, "account", "acc1")), false},
		}
		steps = append(steps, insertUpdateDelete(db, org, "deal_line_items", "li-d1",
			`{"external_id": "li-d1", "deal": "d1"}`, `{"external_id": "li-d1", "deal": "d1", "total": 7}`)...)
		steps = append(steps, insertUpdateDelete(db, org, "activities", "ad",
			activity("ad", "call", "signal", oneDay, "deal", "d1"), activity("ad", "call", "follow_up", oneDay, "deal", "d1"))...)
		runHashSteps(t, db, org, "deals", "d1", steps)
	})
	t.Run("custom", func(t *testing.T) {
		runHashSteps(t, db, org, "custom_widgets", "w1", []hashStep{
			{"the same record again", upserting(db, org, "custom_widgets", `{"external_id": "w1", "name": "W"}`), false},
			{"an update", upserting(db, org, "custom_widgets", `{"external_id": "w1", "name": "W", "size": 3}`), true},
			{"another record", upserting(db, org, "custom_widgets", `{"external_id": "w2", "name": "W"}`), false},
		})
	})
}
