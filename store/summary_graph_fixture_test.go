package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// Fixtures of the summary graph tests, written through UpsertRecords as an
// app would push them.

// load upserts JSON rows into module and fails on any rejected row.
func load(t *testing.T, db *store.DB, org int64, module string, texts ...string) {
	t.Helper()
	mustOK(t, upsert(t, db, org, module, rows(texts...)))
}

// ago renders the time d before now as RFC 3339 for fixture rows.
func ago(d time.Duration) string {
	return time.Now().Add(-d).UTC().Format(time.RFC3339Nano)
}

// activity renders one activity row; links are lookup key/value pairs
// ("contact", "c1", ...).
func activity(id, kind, direction string, age time.Duration, links ...string) string {
	row := map[string]any{
		"external_id": id, "kind": kind, "medium": "email", "direction": direction,
		"occurred_at": ago(age), "subject": "about " + id,
	}
	if kind == "cs_activity" || kind == "meeting" {
		row["medium"] = "meeting"
	}
	for i := 0; i+1 < len(links); i += 2 {
		row[links[i]] = links[i+1]
	}
	b, err := json.Marshal(row)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const (
	oneDay  = 24 * time.Hour
	oneHour = time.Hour
)

// accountFixture loads account acc1 with every kind of associated record of
// seed 001's level table and seed 000's sales records, account acc2 with a
// few of its own, and activities linked through every link column.
func accountFixture(t *testing.T, db *store.DB, org int64) {
	t.Helper()
	load(t, db, org, "accounts",
		`{"external_id": "acc1", "name": "Acme", "industry": "Manufacturing", "annual_revenue": 5000000}`,
		`{"external_id": "acc2", "name": "Globex"}`)
	load(t, db, org, "contacts",
		`{"external_id": "c1", "first_name": "Ann", "title": "CTO", "account": "acc1"}`,
		`{"external_id": "c2", "first_name": "Second", "account": "acc1"}`,
		`{"external_id": "c-else", "first_name": "Other", "account": "acc2"}`)
	load(t, db, org, "products",
		`{"external_id": "p1", "name": "Widget", "family": "Core"}`,
		`{"external_id": "p2", "name": "Gadget", "family": "Addons"}`,
		`{"external_id": "p-unused", "name": "Spare"}`)
	load(t, db, org, "deals",
		`{"external_id": "d1", "name": "Big", "account": "acc1", "contact": "c1", "stage": "Closed Won", "amount": 1000}`,
		`{"external_id": "d2", "name": "Next", "account": "acc1", "stage": "Negotiation", "amount": 500.50}`,
		`{"external_id": "d-lost", "name": "Gone", "account": "acc1", "stage": "Closed Lost", "amount": 99}`,
		`{"external_id": "d3", "name": "Other", "account": "acc2", "stage": "Closed Won", "amount": 300}`)
	load(t, db, org, "deal_line_items",
		`{"external_id": "li1", "deal": "d1", "product": "p1", "quantity": 2}`,
		`{"external_id": "li2", "deal": "d1", "product": "p1", "quantity": 1}`,
		`{"external_id": "li3", "deal": "d2", "product": "p2", "quantity": 5}`,
		`{"external_id": "li-else", "deal": "d3", "product": "p-unused"}`)
	load(t, db, org, "cases", `{"external_id": "cs1", "subject": "Outage", "account": "acc1", "escalated": true}`)
	load(t, db, org, "success_plans", `{"external_id": "sp1", "name": "Onboarding", "account": "acc1"}`)
	load(t, db, org, "business_challenges", `{"external_id": "bc1", "name": "Scale", "account": "acc1", "success_plan": "sp1"}`)
	load(t, db, org, "objectives",
		`{"external_id": "o1", "name": "Cut costs", "account": "acc1", "success_plan": "sp1"}`,
		`{"external_id": "o-else", "name": "Other", "account": "acc2"}`)
	load(t, db, org, "kpis",
		`{"external_id": "k1", "name": "Cost per unit", "objective": "o1", "account": "acc1", "status": "On Track"}`,
		`{"external_id": "k2", "name": "NPS", "account": "acc1", "status": "Completed"}`,
		`{"external_id": "k-else", "name": "Other", "objective": "o-else"}`)
	load(t, db, org, "playbooks", `{"external_id": "pb1", "name": "Renewal", "account": "acc1"}`)
	load(t, db, org, "playbook_tasks", `{"external_id": "pt1", "name": "Call sponsor", "playbook": "pb1"}`)
	load(t, db, org, "projects", `{"external_id": "pr1", "name": "Rollout", "account": "acc1", "health": "red"}`)
	load(t, db, org, "activities",
		activity("a-acc", "meeting", "follow_up", 1*oneDay, "account", "acc1"),
		activity("a-c1", "email", "signal", 2*oneDay, "contact", "c1"),
		activity("a-d2", "call", "follow_up", 3*oneDay, "deal", "d2"),
		activity("a-cs1", "note", "follow_up", 4*oneDay, "case", "cs1"),
		activity("a-sp1", "cs_activity", "follow_up", 5*oneDay, "success_plan", "sp1"),
		activity("a-o1", "cs_activity", "follow_up", 6*oneDay, "objective", "o1"),
		activity("a-k1", "cs_activity", "follow_up", 40*oneDay, "kpi", "k1"),
		activity("a-k2", "cs_activity", "follow_up", 50*oneDay, "kpi", "k2"),
		activity("a-bc1", "note", "follow_up", 60*oneDay, "business_challenge", "bc1"),
		activity("a-pt1", "cs_activity", "follow_up", 70*oneDay, "playbook_task", "pt1"),
		activity("a-multi", "cs_activity", "follow_up", 200*oneDay, "account", "acc1", "contact", "c1", "kpi", "k1"),
		activity("a-else", "email", "signal", 1*oneHour, "contact", "c-else"),
		activity("a-acc2", "email", "signal", 1*oneHour, "account", "acc2"),
		activity("a-k-else", "cs_activity", "follow_up", 1*oneHour, "kpi", "k-else"))
}

// node describes a GraphRecord by its module/id, level and parent.
func node(r store.GraphRecord) string {
	return fmt.Sprintf("%s/%s L%d <- %s", r.Module, r.ID, r.Level, r.Parent)
}

func nodes(rs []store.GraphRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = node(r)
	}
	return out
}

func graph(t *testing.T, db *store.DB, org int64, module, id string) store.SummaryGraph {
	t.Helper()
	g, err := db.SummaryGraph(context.Background(), org, module, id)
	if err != nil {
		t.Fatalf("graph of %s %s: %v", module, id, err)
	}
	return g
}

func dataHashOf(t *testing.T, db *store.DB, org int64, module, id string) string {
	t.Helper()
	h, _, err := db.SummaryDataHash(context.Background(), org, module, id)
	if err != nil {
		t.Fatalf("data hash of %s %s: %v", module, id, err)
	}
	return h
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
