package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store"
)

// The demo dataset's proportions (cmd/internal/demo, 204 accounts, 3,000
// deals): contacts, activities and cases per account, line items per deal.
// bench behaviour multiplies each by --scale.
const (
	demoContactsPerAccount   = 4.7  // 965 / 204
	demoActivitiesPerAccount = 99.0 // 20,265 / 204, over 540 days
	demoCasesPerAccount      = 1.6  // 326 / 204
	demoItemsPerDeal         = 2.0  // 6,015 / 3,000
	demoContactShare         = 0.8  // activities linked to a contact (the rest to the account only)
	benchActivityDays        = 540
	benchProducts            = 20
)

// activityMix is the demo's mix of medium, direction and follow-up status,
// by count (seed 003's eleven mediums).
var activityMix = []struct {
	medium, direction, status string
	n                         int
}{
	{"email", "signal", "", 2326}, {"email", "follow_up", "Delivered", 4607}, {"email", "follow_up", "Bounced", 238},
	{"call", "signal", "", 924}, {"call", "follow_up", "Attended", 2156}, {"call", "follow_up", "Unattended", 948},
	{"meeting", "signal", "", 458}, {"meeting", "follow_up", "", 1081},
	{"desk", "signal", "Open", 700}, {"desk", "signal", "Closed", 682},
	{"desk", "follow_up", "On Hold", 189}, {"desk", "follow_up", "Escalated", 171}, {"desk", "follow_up", "Closed", 571},
	{"survey", "signal", "", 470}, {"facebook", "signal", "", 505}, {"twitter", "signal", "", 442},
	{"backstage", "signal", "", 464}, {"webinar", "signal", "", 970}, {"visit", "signal", "", 1432}, {"portal", "signal", "", 931},
}

// benchTexts are the customer texts of signals and cases: requests,
// questions, complaints, purchases and feedback, naming the VoC keywords
// and the bench's competitors now and then.
var benchTexts = []string{
	"Please send us a quote for 20 more seats.",
	"We are unhappy with the support response time; Brightline answers faster.",
	"How do we export the invoice as a PDF?",
	"Great onboarding, the team loves the new dashboards.",
	"We want to buy the premium plan before the renewal.",
	"The price increase is too high, we are evaluating Acumen CRM.",
	"Thanks for the quick fix, support was excellent.",
	"The sync keeps failing and nobody replies. This is frustrating.",
	"Can you explain the renewal terms?",
	"We are comparing you with CoreDesk and Dynamo Suite on price.",
	"We would like to order another license for the finance team.",
	"Shared feedback on the latest release: the reports are much faster.",
	"Is there a way to merge duplicate contacts?",
	"The invoice was wrong again, this is not acceptable.",
	"Happy with the service so far, no complaints.",
	"Dynamo Suite offered us a discount; can you match the price?",
}

var benchCompetitors = []string{"Acumen CRM", "Brightline", "CoreDesk", "Dynamo Suite"}

// behaviourFill is the bench org's behavioural data as last filled.
type behaviourFill struct {
	Scale        float64 `db:"scale"`
	ItemsPerDeal float64 `db:"items_per_deal"`
	Accounts     int     `db:"accounts"`
	Deals        int     `db:"deals"`
	FirstAcct    int64   `db:"first_account"`
	Products     int     `db:"products"`
	Items        int     `db:"items"`
	Contacts     int     `db:"contacts"`
	Activities   int     `db:"activities"`
	Cases        int     `db:"cases"`
}

// fillBehaviourBench adds products, line items, contacts, activities and
// cases to the bench org in the demo's proportions times scale, in SQL,
// once: a table bench_behaviour_fill remembers what was filled for which
// accounts, and a later run at the same scale over the same accounts
// reuses it. Every value comes from a hash of the row's position, so a
// fill is the same every time.
func fillBehaviourBench(ctx context.Context, c *cli, db *store.DB, org int64, accounts, deals int, scale, itemsPerDeal float64) (behaviourFill, error) {
	var first int64
	if err := db.GetContext(ctx, &first, `SELECT min(id) FROM accounts WHERE org_id = $1`, org); err != nil {
		return behaviourFill{}, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_behaviour_fill (
		org_id bigint PRIMARY KEY, scale float8, items_per_deal float8, accounts int, deals int, first_account bigint,
		products int, items int, contacts int, activities int, cases int, filled_at timestamptz)`); err != nil {
		return behaviourFill{}, err
	}
	var have behaviourFill
	err := db.GetContext(ctx, &have, `SELECT scale, items_per_deal, accounts, deals, first_account, products, items, contacts, activities, cases
		FROM bench_behaviour_fill WHERE org_id = $1`, org)
	if err == nil && have.Scale == scale && have.ItemsPerDeal == itemsPerDeal && have.Accounts == accounts && have.Deals == deals && have.FirstAcct == first {
		return have, nil
	}
	log := c.logger()
	log.InfoContext(ctx, "filling the bench org's behavioural data", "scale", scale, "items_per_deal", itemsPerDeal)
	mix := mixSlots(1000)
	now := time.Now().UTC()
	frac := func(rate float64) (int, float64) { w := math.Floor(rate); return int(w), rate - w }
	itemsW, itemsF := frac(itemsPerDeal)
	contW, contF := frac(demoContactsPerAccount * scale)
	// Activities: a share through contacts (per contact, so the rate per
	// account holds), the rest on the account alone.
	perContact := demoActivitiesPerAccount * demoContactShare / demoContactsPerAccount
	actCW, actCF := frac(perContact)
	actAW, actAF := frac(demoActivitiesPerAccount * (1 - demoContactShare) * scale)
	caseW, caseF := frac(demoCasesPerAccount * scale)
	// u(x, seed) is uniform in [0, 1) from a hash; n(x, seed, w, f) is w,
	// plus one with probability f.
	const u = `((hashint8extended(%s, %d) & 9007199254740991)::float8 / 9007199254740992.0)`
	uf := func(x string, seed int) string { return fmt.Sprintf(u, x, seed) }
	n := func(x string, seed, w int, f float64) string {
		return fmt.Sprintf("(%d + CASE WHEN %s < %g THEN 1 ELSE 0 END)", w, uf(x, seed), f)
	}
	steps := []struct {
		what string
		q    string
		args []any
	}{
		{"clear", `DELETE FROM voc_texts WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM account_recommendations WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM account_labels WHERE org_id = $1 AND technique IN ('engagement', 'voc', 'recommendations')`, nil},
		{"clear", `DELETE FROM activities WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM cases WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM contacts WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM deal_line_items WHERE org_id = $1`, nil},
		{"clear", `DELETE FROM products WHERE org_id = $1`, nil},
		{"products", `INSERT INTO products (org_id, external_id, name, code, family, unit_price)
			SELECT $1, 'p' || g, 'Product ' || g, 'P-' || g, (ARRAY['Core','Add-on','Service'])[1 + g % 3], 100 * g
			FROM generate_series(1, $2::int) g`, []any{benchProducts}},
		// A deal's first product follows its account's path through the
		// catalogue (one step about every 180 days: next-buy sequences and
		// repeat cycles), or, one deal in three, a product drawn with a
		// skew; a second item is the next product (bundles, cross-sell).
		{"line items", `INSERT INTO deal_line_items (org_id, external_id, deal_id, product_id, quantity, unit_price, total)
			SELECT $1, 'li' || d.id || '-' || j, d.id, p0.first + (x.base + j - 1) % $2::int, 1 + j, 100, 100 * (1 + j)
			FROM deals d
			CROSS JOIN (SELECT min(id) AS first FROM products WHERE org_id = $1) p0
			CROSS JOIN LATERAL (SELECT CASE WHEN ` + uf("d.id", 11) + ` < 0.67
					THEN ((hashint8extended(d.account_id, 12) & 1023) + (d.close_date - date '2000-01-01') / 180)::int % $2::int
					ELSE floor($2::int * ` + uf("d.id", 13) + `^2)::int END AS base) x
			CROSS JOIN LATERAL generate_series(1, ` + n("d.id", 14, itemsW, itemsF) + `) j
			WHERE d.org_id = $1`, []any{benchProducts}},
		{"contacts", `INSERT INTO contacts (org_id, external_id, account_id, first_name, last_name, email)
			SELECT $1, 'c' || a.id || '-' || j, a.id, 'First' || j, 'Last' || a.id, 'c' || a.id || '-' || j || '@bench.example'
			FROM accounts a CROSS JOIN LATERAL generate_series(1, ` + n("a.id", 21, contW, contF) + `) j
			WHERE a.org_id = $1`, nil},
		// Activities of contacts: half carry the account too (the rest
		// reach it through the contact), as the demo's do.
		{"activities of contacts", `INSERT INTO activities (org_id, external_id, medium, direction, status, occurred_at, subject, notes, contact_id, account_id)
			SELECT $1, 'xc' || k.id || '-' || j, ($2::text[])[1 + s.i], ($3::text[])[1 + s.i], nullif(($4::text[])[1 + s.i], ''),
				$5::timestamptz - make_interval(secs => ` + uf("k.id * 1000 + j", 33) + ` * 86400 * $6::int),
				CASE WHEN ($3::text[])[1 + s.i] = 'signal' THEN ($7::text[])[1 + (hashint8extended(k.id * 1000 + j, 34) & 1023)::int % $8::int] ELSE 'Follow-up' END,
				CASE WHEN ($3::text[])[1 + s.i] = 'signal' THEN ($7::text[])[1 + (hashint8extended(k.id * 1000 + j, 35) & 1023)::int % $8::int] END,
				k.id, CASE WHEN ` + uf("k.id * 1000 + j", 36) + ` < 0.5 THEN k.account_id END
			FROM contacts k CROSS JOIN LATERAL generate_series(1, ` + n("k.id", 31, actCW, actCF) + `) j
			CROSS JOIN LATERAL (SELECT (hashint8extended(k.id * 1000 + j, 32) & 1023)::int % 1000 AS i) s
			WHERE k.org_id = $1`, nil},
		{"activities of accounts", `INSERT INTO activities (org_id, external_id, medium, direction, status, occurred_at, subject, notes, account_id)
			SELECT $1, 'xa' || a.id || '-' || j, ($2::text[])[1 + s.i], ($3::text[])[1 + s.i], nullif(($4::text[])[1 + s.i], ''),
				$5::timestamptz - make_interval(secs => ` + uf("a.id * 1000 + j", 43) + ` * 86400 * $6::int),
				CASE WHEN ($3::text[])[1 + s.i] = 'signal' THEN ($7::text[])[1 + (hashint8extended(a.id * 1000 + j, 44) & 1023)::int % $8::int] ELSE 'Follow-up' END,
				CASE WHEN ($3::text[])[1 + s.i] = 'signal' THEN ($7::text[])[1 + (hashint8extended(a.id * 1000 + j, 45) & 1023)::int % $8::int] END,
				a.id
			FROM accounts a CROSS JOIN LATERAL generate_series(1, ` + n("a.id", 41, actAW, actAF) + `) j
			CROSS JOIN LATERAL (SELECT (hashint8extended(a.id * 1000 + j, 42) & 1023)::int % 1000 AS i) s
			WHERE a.org_id = $1`, nil},
		{"cases", `INSERT INTO cases (org_id, external_id, account_id, subject, status, opened_at)
			SELECT $1, 'k' || a.id || '-' || j, a.id, ($4::text[])[1 + (hashint8extended(a.id * 1000 + j, 52) & 1023)::int % $5::int],
				'Open', $2::timestamptz - make_interval(secs => ` + uf("a.id * 1000 + j", 53) + ` * 86400 * $3::int)
			FROM accounts a CROSS JOIN LATERAL generate_series(1, ` + n("a.id", 51, caseW, caseF) + `) j
			WHERE a.org_id = $1`, []any{now, benchActivityDays, pq.StringArray(benchTexts), len(benchTexts)}},
	}
	var fast bool
	if err := db.GetContext(ctx, &fast, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`); err != nil {
		return behaviourFill{}, err
	}
	for _, st := range steps {
		args := []any{org}
		switch {
		case st.what == "clear" || st.what == "contacts":
		case st.args != nil:
			args = append(args, st.args...)
		default:
			args = append(args, pq.StringArray(mix.medium), pq.StringArray(mix.direction), pq.StringArray(mix.status),
				now, benchActivityDays, pq.StringArray(benchTexts), len(benchTexts))
		}
		if st.what == "contacts" && contW == 0 && contF == 0 {
			continue
		}
		t0 := time.Now()
		var rows int64
		err := db.InTx(ctx, func(tx *sqlx.Tx) error {
			if st.what != "clear" && fast {
				// The rows reference what the statement reads: skipping the
				// foreign-key triggers halves the fill (a superuser may).
				if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, st.q, args...)
			if err == nil {
				rows, _ = res.RowsAffected()
			}
			return err
		})
		if err != nil {
			return behaviourFill{}, fmt.Errorf("fill bench org (%s): %w", st.what, err)
		}
		if st.what != "clear" {
			log.InfoContext(ctx, "filled", "what", st.what, "rows", rows, "seconds", time.Since(t0).Seconds())
		}
	}
	for _, t := range []string{"products", "deal_line_items", "contacts", "activities", "cases"} {
		if _, err := db.ExecContext(ctx, `ANALYZE `+t); err != nil {
			return behaviourFill{}, err
		}
	}
	var got behaviourFill
	err = db.GetContext(ctx, &got, `
		INSERT INTO bench_behaviour_fill (org_id, scale, items_per_deal, accounts, deals, first_account, products, items, contacts, activities, cases, filled_at)
		SELECT $1, $2, $6, $3, $4, $5,
			(SELECT count(*) FROM products WHERE org_id = $1), (SELECT count(*) FROM deal_line_items WHERE org_id = $1),
			(SELECT count(*) FROM contacts WHERE org_id = $1), (SELECT count(*) FROM activities WHERE org_id = $1),
			(SELECT count(*) FROM cases WHERE org_id = $1), now()
		ON CONFLICT (org_id) DO UPDATE SET scale = EXCLUDED.scale, items_per_deal = EXCLUDED.items_per_deal, accounts = EXCLUDED.accounts, deals = EXCLUDED.deals,
			first_account = EXCLUDED.first_account, products = EXCLUDED.products, items = EXCLUDED.items,
			contacts = EXCLUDED.contacts, activities = EXCLUDED.activities, cases = EXCLUDED.cases, filled_at = EXCLUDED.filled_at
		RETURNING scale, items_per_deal, accounts, deals, first_account, products, items, contacts, activities, cases`,
		org, scale, accounts, deals, first, itemsPerDeal)
	if err != nil {
		return behaviourFill{}, fmt.Errorf("fill bench org: %w", err)
	}
	return got, nil
}

// slots are n draws of activityMix in proportion to its counts, indexed
// by a hash of the activity.
type slots struct{ medium, direction, status []string }

func mixSlots(n int) slots {
	total := 0
	for _, m := range activityMix {
		total += m.n
	}
	var s slots
	acc := 0
	for _, m := range activityMix {
		acc += m.n
		for len(s.medium) < n*acc/total {
			s.medium, s.direction, s.status = append(s.medium, m.medium), append(s.direction, m.direction), append(s.status, m.status)
		}
	}
	return s
}
