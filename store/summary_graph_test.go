package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestAccountGraphFollowsTheLevelTable(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	accountFixture(t, db, org)
	accountFixture(t, db, other) // the same external ids in another org

	g := graph(t, db, org, "accounts", "acc1")
	if node(g.Subject) != "accounts/acc1 L0 <- " || g.Subject.Fields["name"] != "Acme" {
		t.Errorf("subject = %s %v", node(g.Subject), g.Subject.Fields)
	}
	sameStrings(t, "related", nodes(g.Related), []string{
		"contacts/c1 L1 <- accounts/acc1",
		"contacts/c2 L1 <- accounts/acc1",
		"deals/d-lost L1 <- accounts/acc1",
		"deals/d1 L1 <- accounts/acc1",
		"deals/d2 L1 <- accounts/acc1",
		"cases/cs1 L1 <- accounts/acc1",
		"success_plans/sp1 L1 <- accounts/acc1",
		"business_challenges/bc1 L1 <- accounts/acc1",
		"objectives/o1 L1 <- accounts/acc1",
		"kpis/k2 L1 <- accounts/acc1",
		"playbooks/pb1 L1 <- accounts/acc1",
		"projects/pr1 L1 <- accounts/acc1",
		"deal_line_items/li1 L2 <- deals/d1",
		"deal_line_items/li2 L2 <- deals/d1",
		"deal_line_items/li3 L2 <- deals/d2",
		"kpis/k1 L2 <- objectives/o1",
		"playbook_tasks/pt1 L2 <- playbooks/pb1",
		"products/p1 L3 <- deal_line_items/li1",
		"products/p2 L3 <- deal_line_items/li3",
	})
	// Activities of the account and of every associated record, CS
	// activities of KPIs, success plans and playbook tasks included, each
	// under the most specific record it hangs off; newest first.
	sameStrings(t, "activities", nodes(g.Activities), []string{
		"activities/a-acc L1 <- accounts/acc1",
		"activities/a-c1 L2 <- contacts/c1",
		"activities/a-d2 L2 <- deals/d2",
		"activities/a-cs1 L2 <- cases/cs1",
		"activities/a-sp1 L2 <- success_plans/sp1",
		"activities/a-o1 L2 <- objectives/o1",
		"activities/a-k1 L3 <- kpis/k1",
		"activities/a-k2 L2 <- kpis/k2",
		"activities/a-bc1 L2 <- business_challenges/bc1",
		"activities/a-pt1 L3 <- playbook_tasks/pt1",
		"activities/a-multi L3 <- kpis/k1",
	})
	if g.ActivityTotal != 11 {
		t.Errorf("activity total = %d, want 11", g.ActivityTotal)
	}
	if len(g.History) != 0 {
		t.Errorf("accounts have no tracked picklist, history = %v", g.History)
	}

	// Fields are the records as GetRecord renders them, lookups as external ids.
	all := append(append([]store.GraphRecord{g.Subject}, g.Related...), g.Activities...)
	newest := time.Time{}
	for _, r := range all {
		want := get(t, db, org, r.Module, r.ID)
		if !reflect.DeepEqual(r.Fields, want) {
			t.Errorf("%s fields:\n got  %v\n want %v", node(r), r.Fields, want)
		}
		if r.Fields["updated_at"] != r.UpdatedAt.Format("2006-01-02T15:04:05.000000Z") {
			t.Errorf("%s: UpdatedAt %v, fields say %v", node(r), r.UpdatedAt, r.Fields["updated_at"])
		}
		if r.UpdatedAt.After(newest) {
			newest = r.UpdatedAt
		}
	}
	if kpi := findRecord(g.Related, "kpis", "k1"); kpi.Fields["objective"] != "o1" || kpi.Fields["account"] != "acc1" {
		t.Errorf("k1 lookups = %v", kpi.Fields)
	}
	if !g.DataAsOf.Equal(newest) {
		t.Errorf("DataAsOf = %v, newest updated_at read = %v", g.DataAsOf, newest)
	}

	wantOrg := map[string]any{
		"org_won_revenue":       json.Number("1300.00"),
		"account_won_revenue":   json.Number("1000.00"),
		"account_revenue_share": json.Number("0.7692"),
		"open_pipeline_value":   json.Number("500.50"),
		"open_deals":            json.Number("1"),
		"engagement_30d":        json.Number("6"),
	}
	for k, v := range wantOrg {
		if g.Org[k] != v {
			t.Errorf("org[%s] = %#v, want %#v", k, g.Org[k], v)
		}
	}
	months, _ := g.Org["activities_90d_by_month"].([]any)
	if len(months) < 3 || len(months) > 4 {
		t.Fatalf("activities_90d_by_month = %v", g.Org["activities_90d_by_month"])
	}
	sum, prev := 0, ""
	for _, m := range months {
		mo := m.(map[string]any)
		n, _ := mo["activities"].(json.Number).Int64()
		sum += int(n)
		if month := mo["month"].(string); month <= prev {
			t.Errorf("months out of order: %v", months)
		} else {
			prev = month
		}
	}
	if want := time.Now().UTC().Format("2006-01"); prev != want {
		t.Errorf("last month %s, want %s", prev, want)
	}
	if sum != 10 {
		t.Errorf("activities in the last 90 days = %d, want 10", sum)
	}

	h, asOf, err := db.SummaryDataHash(ctx, org, "accounts", "acc1")
	if err != nil || h != g.DataHash || !asOf.Equal(g.DataAsOf) || len(h) != 64 {
		t.Errorf("SummaryDataHash = %q %v %v; graph has %q %v", h, asOf, err, g.DataHash, g.DataAsOf)
	}
}

func findRecord(rs []store.GraphRecord, module, id string) store.GraphRecord {
	for _, r := range rs {
		if r.Module == module && r.ID == id {
			return r
		}
	}
	return store.GraphRecord{}
}

// Rows of another org never enter a graph, not even when a row of that org
// points at this org's record (which ingestion cannot do; written here in
// SQL to prove every table of the graph is filtered by org).
func TestGraphNeverReadsAnotherOrgsRows(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	accountFixture(t, db, org)
	accountFixture(t, db, other)
	before := graph(t, db, org, "accounts", "acc1")
	beforeDeal := graph(t, db, org, "deals", "d1")

	var acc, deal, contact int64
	for q, dst := range map[string]*int64{
		`SELECT id FROM accounts WHERE org_id = $1 AND external_id = 'acc1'`: &acc,
		`SELECT id FROM deals WHERE org_id = $1 AND external_id = 'd1'`:      &deal,
		`SELECT id FROM contacts WHERE org_id = $1 AND external_id = 'c1'`:   &contact,
	} {
		if err := db.GetContext(ctx, dst, q, org); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO contacts (org_id, external_id, account_id) VALUES ($1, 'leak-c', $2)`,
		`INSERT INTO deals (org_id, external_id, account_id, stage, amount) VALUES ($1, 'leak-d', $2, 'Closed Won', 1e6)`,
		`INSERT INTO deals (org_id, external_id, account_id, stage, amount) VALUES ($1, 'leak-open', $2, 'Proposal', 1e6)`,
		`INSERT INTO cases (org_id, external_id, account_id) VALUES ($1, 'leak-case', $2)`,
		`INSERT INTO kpis (org_id, external_id, account_id) VALUES ($1, 'leak-kpi', $2)`,
		`INSERT INTO playbooks (org_id, external_id, account_id) VALUES ($1, 'leak-pb', $2)`,
		`INSERT INTO activities (org_id, external_id, medium, direction, occurred_at, account_id) VALUES ($1, 'leak-a', 'email', 'signal', now(), $2)`,
	} {
		if _, err := db.ExecContext(ctx, q, other, acc); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		`INSERT INTO deal_line_items (org_id, external_id, deal_id) VALUES ($1, 'leak-li', $2)`,
		`INSERT INTO activities (org_id, external_id, medium, direction, occurred_at, deal_id) VALUES ($1, 'leak-da', 'email', 'signal', now(), $2)`,
	} {
		if _, err := db.ExecContext(ctx, q, other, deal); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO activities (org_id, external_id, medium, direction, occurred_at, contact_id)
		VALUES ($1, 'leak-ca', 'email', 'signal', now(), $2)`, other, contact); err != nil {
		t.Fatal(err)
	}

	after := graph(t, db, org, "accounts", "acc1")
	for _, r := range append(after.Related, after.Activities...) {
		if strings.HasPrefix(r.ID, "leak") {
			t.Errorf("another org's %s is in the graph", node(r))
		}
	}
	if !reflect.DeepEqual(nodes(after.Related), nodes(before.Related)) || after.ActivityTotal != before.ActivityTotal ||
		after.DataHash != before.DataHash || !reflect.DeepEqual(after.Org, before.Org) {
		t.Errorf("another org's rows changed the graph: hash %s -> %s, total %d -> %d, org %v -> %v",
			before.DataHash, after.DataHash, before.ActivityTotal, after.ActivityTotal, before.Org, after.Org)
	}
	afterDeal := graph(t, db, org, "deals", "d1")
	if afterDeal.DataHash != beforeDeal.DataHash || !reflect.DeepEqual(nodes(afterDeal.Related), nodes(beforeDeal.Related)) ||
		!reflect.DeepEqual(afterDeal.Org, beforeDeal.Org) || len(afterDeal.Activities) != len(beforeDeal.Activities) {
		t.Errorf("another org's rows changed the deal graph: %v -> %v", nodes(beforeDeal.Related), nodes(afterDeal.Related))
	}
	contactGraph := graph(t, db, org, "contacts", "c1")
	for _, r := range contactGraph.Activities {
		if strings.HasPrefix(r.ID, "leak") {
			t.Errorf("another org's %s is in the contact graph", node(r))
		}
	}

	// Another org's record is not found, whatever the module.
	load(t, db, other, "accounts", `{"external_id": "only-other", "name": "Theirs"}`)
	for _, module := range []string{"accounts", "contacts", "leads", "deals", "custom_things"} {
		if _, err := db.SummaryGraph(ctx, org, module, "only-other"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("graph of %s only-other: want ErrNotFound, got %v", module, err)
		}
		if _, _, err := db.SummaryDataHash(ctx, org, module, "only-other"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("hash of %s only-other: want ErrNotFound, got %v", module, err)
		}
	}
}

func TestGraphCapsActivitiesButCountsThemAll(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	load(t, db, org, "accounts", `{"external_id": "big", "name": "Big"}`)
	load(t, db, org, "contacts", `{"external_id": "bc", "account": "big"}`)
	const n = 2500
	base := time.Now().UTC()
	batch := make([]string, n)
	for i := range batch {
		link := `"account": "big"`
		if i%2 == 1 {
			link = `"contact": "bc"`
		}
		batch[i] = fmt.Sprintf(`{"external_id": "big-%04d", "medium": "email", "direction": "signal", "occurred_at": %q, %s}`,
			i, base.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano), link)
	}
	load(t, db, org, "activities", batch...)

	g := graph(t, db, org, "accounts", "big")
	if g.ActivityTotal != n || len(g.Activities) != store.ActivityCap {
		t.Fatalf("total %d, loaded %d; want %d and %d", g.ActivityTotal, len(g.Activities), n, store.ActivityCap)
	}
	for i, a := range g.Activities {
		if want := fmt.Sprintf("big-%04d", i); a.ID != want {
			t.Fatalf("activity %d is %s, want %s (newest first)", i, a.ID, want)
		}
	}
	if g.Org["engagement_30d"] != json.Number(fmt.Sprint(n)) {
		t.Errorf("engagement_30d = %v, want %d (counted over all, not the loaded ones)", g.Org["engagement_30d"], n)
	}
	// Each contact's count and latest date are over every activity too.
	per, _ := g.Org["activities_by_contact"].(map[string]any)
	bc, _ := per["contacts/bc"].(map[string]any)
	if want := base.Add(-time.Minute).Format(time.DateOnly); bc["activities"] != json.Number(fmt.Sprint(n/2)) || bc["latest"] != want {
		t.Errorf("activities_by_contact = %v, want contacts/bc with %d activities, latest %s", per, n/2, want)
	}
}

// Draft and incomplete deals count in no money figure of the org.
func TestGraphFiguresLeaveDraftDealsOut(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	load(t, db, org, "accounts", `{"external_id": "a1", "name": "A1"}`)
	load(t, db, org, "deals",
		`{"external_id": "d-open", "name": "Open", "stage": "Proposal", "amount": 100, "account": "a1"}`,
		`{"external_id": "d-won", "name": "Won", "stage": "Closed Won", "amount": 40, "account": "a1"}`,
		`{"external_id": "d-draft", "name": "Draft", "stage": "Proposal", "amount": 7000, "account": "a1", "state": "draft"}`,
		`{"external_id": "d-inc", "name": "Incomplete", "stage": "Closed Won", "amount": 900, "account": "a1", "state": "incomplete"}`)
	g := graph(t, db, org, "accounts", "a1")
	for k, want := range map[string]string{"open_pipeline_value": "100.00", "open_deals": "1", "org_won_revenue": "40.00", "account_won_revenue": "40.00"} {
		if got := fmt.Sprint(g.Org[k]); got != want {
			t.Errorf("account %s = %s, want %s (drafts and incomplete deals left out)", k, got, want)
		}
	}
	d := graph(t, db, org, "deals", "d-open")
	for k, want := range map[string]string{"open_pipeline_value": "100.00", "open_deals": "1", "account_open_pipeline_value": "100.00"} {
		if got := fmt.Sprint(d.Org[k]); got != want {
			t.Errorf("deal %s = %s, want %s (drafts and incomplete deals left out)", k, got, want)
		}
	}
}

func TestContactGraph(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "Acme"}`)
	load(t, db, org, "contacts",
		`{"external_id": "c1", "account": "acc1", "title": "VP", "lifecycle_stage": "Lead", "changed_at": "2026-01-01T00:00:00Z"}`,
		`{"external_id": "c2", "account": "acc1"}`)
	load(t, db, org, "contacts",
		`{"external_id": "c1", "account": "acc1", "title": "VP", "lifecycle_stage": "Customer", "changed_at": "2026-02-01T00:00:00Z"}`)
	load(t, db, org, "deals",
		`{"external_id": "d1", "account": "acc1", "contact": "c1", "stage": "Proposal"}`,
		`{"external_id": "d2", "account": "acc1", "stage": "Proposal"}`)
	load(t, db, org, "activities",
		`{"external_id": "s1", "contact": "c1", "medium": "email", "direction": "signal", "occurred_at": "2026-01-05T09:15:00Z"}`,
		`{"external_id": "s2", "contact": "c1", "medium": "email", "direction": "signal", "occurred_at": "2026-01-06T09:45:00Z"}`,
		`{"external_id": "s3", "contact": "c1", "medium": "call", "direction": "signal", "occurred_at": "2026-01-07T14:00:00Z"}`,
		`{"external_id": "f1", "contact": "c1", "medium": "email", "direction": "follow_up", "occurred_at": "2026-01-08T10:00:00Z"}`,
		activity("f-recent", "email", "follow_up", oneHour, "contact", "c1"),
		`{"external_id": "s-c2", "contact": "c2", "medium": "call", "direction": "signal", "occurred_at": "2026-01-07T03:00:00Z"}`,
		activity("a-acc", "note", "follow_up", oneHour, "account", "acc1"))

	g := graph(t, db, org, "contacts", "c1")
	sameStrings(t, "related", nodes(g.Related), []string{
		"accounts/acc1 L1 <- contacts/c1",
		"deals/d1 L1 <- contacts/c1",
	})
	sameStrings(t, "activities", nodes(g.Activities), []string{
		"activities/f-recent L1 <- contacts/c1",
		"activities/f1 L1 <- contacts/c1",
		"activities/s3 L1 <- contacts/c1",
		"activities/s2 L1 <- contacts/c1",
		"activities/s1 L1 <- contacts/c1",
	})
	if len(g.History) != 2 || *g.History[1].NewValue != "Customer" || g.History[0].OldValue != nil || *g.History[1].OldValue != "Lead" {
		t.Errorf("history = %+v", g.History)
	}
	if h, err := db.FieldHistory(context.Background(), org, "contacts", "c1"); err != nil || !reflect.DeepEqual(g.History, h) {
		t.Errorf("graph history %+v, want the record's own %+v (%v)", g.History, h, err)
	}
	hours := make([]any, 24)
	for i := range hours {
		hours[i] = json.Number("0")
	}
	hours[9], hours[14] = json.Number("2"), json.Number("1")
	want := map[string]any{
		"signals":             json.Number("3"),
		"follow_ups":          json.Number("2"),
		"signal_hours_utc":    hours,
		"signal_weekdays_utc": []any{json.Number("1"), json.Number("1"), json.Number("1"), json.Number("0"), json.Number("0"), json.Number("0"), json.Number("0")},
		"signal_mediums":      map[string]any{"call": json.Number("1"), "email": json.Number("2")},
		"engagement_30d":      json.Number("1"),
	}
	if !reflect.DeepEqual(g.Org, want) {
		t.Errorf("org figures:\n got  %v\n want %v", g.Org, want)
	}
	// DataAsOf covers the history too.
	if g.DataAsOf.Before(g.History[1].ChangedAt) || g.DataAsOf.Before(g.Subject.UpdatedAt) {
		t.Errorf("DataAsOf %v before what was read", g.DataAsOf)
	}
}

func TestLeadGraph(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "leads",
		`{"external_id": "l1", "lead_source": "Web", "lead_status": "New", "changed_at": "2026-01-01T00:00:00Z"}`,
		`{"external_id": "l2", "lead_source": "Web", "converted": true}`,
		`{"external_id": "l3", "lead_source": "Web", "converted": true}`,
		`{"external_id": "l4", "lead_source": "Referral", "converted": true}`,
		`{"external_id": "l-nosource"}`)
	load(t, db, org, "leads",
		`{"external_id": "l1", "lead_source": "Web", "lead_status": "Contacted", "changed_at": "2026-01-03T00:00:00Z"}`)
	load(t, db, other, "leads",
		`{"external_id": "x1", "lead_source": "Web"}`, `{"external_id": "x2", "lead_source": "Web"}`)
	load(t, db, org, "activities",
		activity("la1", "email", "signal", 2*oneDay, "lead", "l1"),
		activity("la2", "call", "follow_up", 40*oneDay, "lead", "l1"),
		activity("la-other", "call", "follow_up", oneDay, "lead", "l2"))

	g := graph(t, db, org, "leads", "l1")
	if len(g.Related) != 0 {
		t.Errorf("related = %v", nodes(g.Related))
	}
	sameStrings(t, "activities", nodes(g.Activities), []string{
		"activities/la1 L1 <- leads/l1",
		"activities/la2 L1 <- leads/l1",
	})
	if len(g.History) != 2 || *g.History[0].NewValue != "New" || *g.History[1].NewValue != "Contacted" || g.History[1].Field != "lead_status" {
		t.Errorf("history = %+v", g.History)
	}
	want := map[string]any{
		"lead_source":                 "Web",
		"lead_source_leads":           json.Number("3"),
		"lead_source_converted":       json.Number("2"),
		"lead_source_conversion_rate": json.Number("0.6667"),
		"engagement_30d":              json.Number("1"),
	}
	if !reflect.DeepEqual(g.Org, want) {
		t.Errorf("org figures:\n got  %v\n want %v", g.Org, want)
	}
	noSource := graph(t, db, org, "leads", "l-nosource")
	if want := map[string]any{"lead_source": nil, "lead_source_leads": nil, "lead_source_converted": nil,
		"lead_source_conversion_rate": nil, "engagement_30d": json.Number("0")}; !reflect.DeepEqual(noSource.Org, want) {
		t.Errorf("lead without source: %v", noSource.Org)
	}
}

func TestDealGraph(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	accountFixture(t, db, org)
	accountFixture(t, db, other)

	d1 := graph(t, db, org, "deals", "d1")
	sameStrings(t, "related of d1", nodes(d1.Related), []string{
		"accounts/acc1 L1 <- deals/d1",
		"contacts/c1 L1 <- deals/d1",
		"deal_line_items/li1 L1 <- deals/d1",
		"deal_line_items/li2 L1 <- deals/d1",
		"products/p1 L2 <- deal_line_items/li1",
	})
	if len(d1.Activities) != 0 || d1.ActivityTotal != 0 {
		t.Errorf("d1 activities = %v", nodes(d1.Activities))
	}
	if len(d1.History) != 1 || d1.History[0].Field != "stage" || *d1.History[0].NewValue != "Closed Won" {
		t.Errorf("d1 history = %+v", d1.History)
	}

	d2 := graph(t, db, org, "deals", "d2")
	sameStrings(t, "related of d2", nodes(d2.Related), []string{
		"accounts/acc1 L1 <- deals/d2",
		"deal_line_items/li3 L1 <- deals/d2",
		"products/p2 L2 <- deal_line_items/li3",
	})
	sameStrings(t, "activities of d2", nodes(d2.Activities), []string{"activities/a-d2 L1 <- deals/d2"})
	want := map[string]any{
		"open_pipeline_value":         json.Number("500.50"),
		"open_deals":                  json.Number("1"),
		"account_open_pipeline_value": json.Number("500.50"),
		"engagement_30d":              json.Number("1"),
	}
	if !reflect.DeepEqual(d2.Org, want) {
		t.Errorf("org figures:\n got  %v\n want %v", d2.Org, want)
	}
	if d1.DataHash == d2.DataHash {
		t.Error("two deals have the same data hash")
	}
}

func TestCustomModuleGraphIsTheRecord(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	load(t, db, org, "custom_widgets", `{"external_id": "w1", "name": "Widget", "colour": "red"}`)
	load(t, db, org, "custom_gadgets", `{"external_id": "g1", "name": "Gadget"}`)

	g := graph(t, db, org, "custom_widgets", "w1")
	if node(g.Subject) != "custom_widgets/w1 L0 <- " || len(g.Related) != 0 || len(g.Activities) != 0 || len(g.Org) != 0 {
		t.Errorf("graph = %+v", g)
	}
	if !reflect.DeepEqual(g.Subject.Fields, get(t, db, org, "custom_widgets", "w1")) {
		t.Errorf("fields = %v", g.Subject.Fields)
	}
	if g.DataHash != dataHashOf(t, db, org, "custom_widgets", "w1") || !g.DataAsOf.Equal(g.Subject.UpdatedAt) {
		t.Errorf("hash %s, as of %v", g.DataHash, g.DataAsOf)
	}
	if _, err := db.SummaryGraph(ctx, org, "custom_widgets", "g1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of another custom module: want ErrNotFound, got %v", err)
	}
	for _, module := range []string{"products", "activities", "kpis", "nope", "custom_"} {
		if _, err := db.SummaryGraph(ctx, org, module, "w1"); !errors.Is(err, store.ErrInvalidModule) {
			t.Errorf("graph of module %s: want ErrInvalidModule, got %v", module, err)
		}
		if _, _, err := db.SummaryDataHash(ctx, org, module, "w1"); !errors.Is(err, store.ErrInvalidModule) {
			t.Errorf("hash of module %s: want ErrInvalidModule, got %v", module, err)
		}
	}
	for _, id := range []string{"missing", "", "a\x00b", strings.Repeat("x", 300)} {
		if _, err := db.SummaryGraph(ctx, org, "accounts", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("graph of %q: want ErrNotFound, got %v", id, err)
		}
	}
}

// A graph of any module carries the org's summary locale, USD and UTC
// until set (read in the same statement as the org figures and history).
func TestGraphCarriesTheSummaryLocale(t *testing.T) {
	db, _ := storetest.NewDB(t)
	org := newOrg(t, db, "acme")
	other := newOrg(t, db, "other")
	load(t, db, org, "leads", `{"external_id": "l1", "company": "C1"}`)
	load(t, db, org, "accounts", `{"external_id": "acc1", "name": "A1"}`)
	load(t, db, org, "contacts", `{"external_id": "c1", "last_name": "L1", "account": "acc1"}`)
	load(t, db, org, "deals", `{"external_id": "d1", "name": "D1", "account": "acc1", "stage": "Proposal"}`)
	load(t, db, org, "custom_widgets", `{"external_id": "w1", "name": "Widget"}`)
	records := [][2]string{{"leads", "l1"}, {"accounts", "acc1"}, {"contacts", "c1"}, {"deals", "d1"}, {"custom_widgets", "w1"}}
	for _, r := range records {
		if g := graph(t, db, org, r[0], r[1]); g.Locale != store.DefaultSummaryLocale {
			t.Errorf("%s: default locale %+v", r[0], g.Locale)
		}
	}
	ctx := context.Background()
	if err := db.SetSummaryLocale(ctx, org, store.SummaryLocale{Currency: "eur", TimeZone: "UTC"}); !errors.Is(err, store.ErrInvalidLocale) {
		t.Errorf("a lower-case currency: %v, want ErrInvalidLocale", err)
	}
	want := store.SummaryLocale{Currency: "EUR", TimeZone: "Europe/Berlin"}
	if err := db.SetSummaryLocale(ctx, org, want); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSummaryLocale(ctx, other, store.SummaryLocale{Currency: "JPY", TimeZone: "Asia/Tokyo"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if g := graph(t, db, org, r[0], r[1]); g.Locale != want {
			t.Errorf("%s: locale %+v, want %+v", r[0], g.Locale, want)
		}
	}
}
