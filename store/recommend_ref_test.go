package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/store/crm"
)

// RecRow is one stored recommendation, as the tests compare them.
type RecRow struct {
	AccountID   int64  `db:"account_id"`
	Kind        string `db:"kind"`
	ProductID   int64  `db:"product_id"`
	Basis       *int64 `db:"basis_product_id"`
	Probability int    `db:"probability"`
	Evidence    string `db:"evidence"`
}

// String shows the basis by value.
func (r RecRow) String() string {
	basis := "-"
	if r.Basis != nil {
		basis = fmt.Sprint(*r.Basis)
	}
	return fmt.Sprintf("account %d %s product %d basis %s at %d: %s", r.AccountID, r.Kind, r.ProductID, basis, r.Probability, r.Evidence)
}

// RecommendRows lists the org's stored recommendations in a fixed order.
func (db *DB) RecommendRows(ctx context.Context, orgID int64) ([]RecRow, error) {
	var out []RecRow
	err := db.SelectContext(ctx, &out, `SELECT account_id, kind, product_id, basis_product_id, probability, evidence::text AS evidence
		FROM account_recommendations WHERE org_id = $1 ORDER BY account_id, kind, product_id`, orgID)
	return out, err
}

// RecommendReference computes the recommendations with the one statement
// the chunked refresh replaced (every candidate made and sorted at once),
// in a transaction it rolls back, and returns them: the tests hold the
// chunked refresh to it.
func (db *DB) RecommendReference(ctx context.Context, orgID int64, s RecommendSettings, scope Filter, now time.Time) ([]RecRow, error) {
	today := now.UTC().Format(time.DateOnly)
	args := []any{orgID, today, "reference", pq.StringArray(crm.WonStages()), today, s.MinAccounts, s.PerType}
	where, err := scopeSQL(scope, &args)
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := batchPlan(ctx, tx); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_recommendations WHERE org_id = $1`, orgID); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, recommendReferenceSQL(where), args...); err != nil {
		return nil, fmt.Errorf("reference statement: %w", err)
	}
	var out []RecRow
	err = tx.SelectContext(ctx, &out, `SELECT account_id, kind, product_id, basis_product_id, probability, evidence::text AS evidence
		FROM account_recommendations WHERE org_id = $1 ORDER BY account_id, kind, product_id`, orgID)
	return out, err
}

// recommendReferenceSQL is the statement of the recommendations refresh
// before it ran in chunks (see the model above Recommend): parameters $1
// org, $2 and $5 today, $3 run id, $4 won stages, $6 least support count,
// $7 per type.
func recommendReferenceSQL(scope string) string {
	return `WITH purch AS MATERIALIZED (
			SELECT DISTINCT d.account_id, li.product_id, d.close_date AS day, d.id AS deal_id
			FROM deals d JOIN deal_line_items li ON li.deal_id = d.id
			WHERE d.org_id = $1 AND d.state = 'active' AND d.account_id IS NOT NULL AND d.stage_norm = ANY($4)
			  AND d.close_date IS NOT NULL AND d.close_date <= $2::date
			  AND li.state = 'active' AND li.product_id IS NOT NULL
		), apd AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id, day FROM purch
		), own AS MATERIALIZED (
			SELECT account_id, product_id FROM apd GROUP BY 1, 2
		), buyers AS MATERIALIZED ( -- one row, joined to many: computed once (see p in ScoreEngagement)
			SELECT greatest(count(DISTINCT account_id), 1) AS n FROM own
		), inscope AS MATERIALIZED (
			SELECT a.id AS account_id FROM accounts a WHERE a.org_id = $1 AND a.state = 'active' AND (` + scope + `)
		), days AS MATERIALIZED (
			SELECT account_id, day, dense_rank() OVER (PARTITION BY account_id ORDER BY day) AS k,
				count(*) OVER (PARTITION BY account_id) AS last_k
			FROM (SELECT DISTINCT account_id, day FROM purch) x
		), steps AS MATERIALIZED (
			SELECT p.account_id, p.product_id, d.k, d.last_k FROM apd p JOIN days d USING (account_id, day)
		), fb_rule AS MATERIALIZED (
			SELECT product_id, count(*) AS cnt FROM steps WHERE k = 1 GROUP BY product_id HAVING count(*) >= $6
			ORDER BY count(*) DESC, product_id LIMIT $7
		), fb AS (
			SELECT i.account_id, 'first_buy'::text AS kind, r.product_id, NULL::bigint AS basis,
				round(100.0 * r.cnt / b.n) AS prob
			FROM inscope i CROSS JOIN fb_rule r CROSS JOIN buyers b
			WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.account_id = i.account_id)
		), trans AS (
			SELECT DISTINCT a.account_id, a.product_id AS from_p, b.product_id AS to_p
			FROM steps a JOIN steps b ON b.account_id = a.account_id AND b.k = a.k + 1 AND b.product_id <> a.product_id
		), from_cnt AS (
			SELECT product_id AS from_p, count(DISTINCT account_id) AS cnt FROM steps WHERE k < last_k GROUP BY 1
		), nb_rule AS MATERIALIZED (
			SELECT t.from_p, t.to_p, count(*) AS cnt, f.cnt AS from_cnt
			FROM trans t JOIN from_cnt f USING (from_p) GROUP BY t.from_p, t.to_p, f.cnt HAVING count(*) >= $6
		), nb AS (
			SELECT s.account_id, 'next_buy'::text, r.to_p, s.product_id, round(100.0 * r.cnt / r.from_cnt)
			FROM steps s JOIN inscope USING (account_id) JOIN nb_rule r ON r.from_p = s.product_id
			WHERE s.k = s.last_k AND NOT EXISTS (SELECT 1 FROM own o WHERE o.account_id = s.account_id AND o.product_id = r.to_p)
		), gaps AS (
			SELECT account_id, product_id, day, day - lag(day) OVER (PARTITION BY account_id, product_id ORDER BY day) AS gap FROM apd
		), rep AS MATERIALIZED (
			SELECT account_id, product_id, count(*) + 1 AS purchases, avg(gap)::numeric AS mean_gap,
				coalesce(stddev_pop(gap), 0)::numeric AS sd, max(day) AS last_day
			FROM gaps WHERE gap IS NOT NULL GROUP BY 1, 2 HAVING count(*) >= 2
		), rb AS (
			SELECT r.account_id, 'repeat_buy'::text, r.product_id, r.product_id, round(100 * (1 - r.sd / r.mean_gap))
			FROM rep r JOIN inscope USING (account_id)
			WHERE r.mean_gap > 0 AND r.sd / r.mean_gap <= 0.5
			  AND ($5::date - r.last_day) >= 0.8 * r.mean_gap AND ($5::date - r.last_day) <= 3 * r.mean_gap
		), pc AS (
			SELECT product_id, count(*) AS cnt FROM own GROUP BY 1
		), pairs AS (
			SELECT a.product_id AS x, b.product_id AS y, count(*) AS both_cnt
			FROM own a JOIN own b ON b.account_id = a.account_id AND b.product_id <> a.product_id
			GROUP BY 1, 2 HAVING count(*) >= $6
		), xrule AS MATERIALIZED (
			SELECT * FROM (
				SELECT p.x, p.y, p.both_cnt, px.cnt AS x_cnt, py.cnt AS y_cnt, b.n,
					p.both_cnt::numeric / px.cnt AS conf, (p.both_cnt::numeric / px.cnt) / (py.cnt::numeric / b.n) AS lift
				FROM pairs p JOIN pc px ON px.product_id = p.x JOIN pc py ON py.product_id = p.y CROSS JOIN buyers b) x
			WHERE lift > 1
		), xs AS (
			SELECT o.account_id, 'cross_sell'::text, r.y, r.x, round(100 * r.conf)
			FROM own o JOIN inscope USING (account_id) JOIN xrule r ON r.x = o.product_id
			WHERE NOT EXISTS (SELECT 1 FROM own o2 WHERE o2.account_id = o.account_id AND o2.product_id = r.y)
		), dp AS MATERIALIZED (
			SELECT DISTINCT deal_id, product_id FROM purch
		), dc AS (
			SELECT product_id, count(*) AS cnt FROM dp GROUP BY 1
		), bpair AS (
			SELECT a.product_id AS x, b.product_id AS y, count(*) AS together
			FROM dp a JOIN dp b ON b.deal_id = a.deal_id AND b.product_id <> a.product_id
			GROUP BY 1, 2 HAVING count(*) >= $6
		), brule AS MATERIALIZED (
			SELECT r.x, r.y, r.together, dx.cnt AS x_cnt FROM bpair r JOIN dc dx ON dx.product_id = r.x
		), bd AS (
			SELECT o.account_id, 'bundle'::text, r.y, r.x, round(100.0 * r.together / r.x_cnt)
			FROM own o JOIN inscope USING (account_id) JOIN brule r ON r.x = o.product_id
			WHERE NOT EXISTS (SELECT 1 FROM own o2 WHERE o2.account_id = o.account_id AND o2.product_id = r.y)
		), every AS (
			SELECT * FROM fb UNION ALL SELECT * FROM nb UNION ALL SELECT * FROM rb UNION ALL SELECT * FROM xs UNION ALL SELECT * FROM bd
		), best AS (
			SELECT DISTINCT ON (account_id, kind, product_id) account_id, kind, product_id, basis, prob
			FROM every WHERE prob > 0 ORDER BY account_id, kind, product_id, prob DESC, basis
		), ranked AS (
			SELECT best.*, row_number() OVER (PARTITION BY account_id, kind ORDER BY prob DESC, product_id) AS rn FROM best
		), kept AS (
			SELECT * FROM ranked WHERE rn <= $7
		)
		INSERT INTO account_recommendations (org_id, account_id, kind, product_id, basis_product_id, probability, evidence, run_id)
		SELECT $1, k.account_id, k.kind, k.product_id, k.basis, least(k.prob, 100)::smallint,
			CASE k.kind
			WHEN 'first_buy' THEN jsonb_build_object('rule', 'bought first by buying accounts', 'accounts', f.cnt, 'buying_accounts', b.n,
				'support', round(f.cnt::numeric / b.n, 4))
			WHEN 'next_buy' THEN jsonb_build_object('rule', 'next purchase after the antecedent', 'accounts', n.cnt, 'antecedent_accounts', n.from_cnt,
				'confidence', round(n.cnt::numeric / n.from_cnt, 4))
			WHEN 'repeat_buy' THEN jsonb_build_object('rule', 'bought again at a regular cycle', 'purchases', r.purchases,
				'cycle_days', round(r.mean_gap, 1), 'cv', round(r.sd / r.mean_gap, 3), 'last_purchase', r.last_day,
				'next_due', r.last_day + round(r.mean_gap)::int)
			WHEN 'cross_sell' THEN jsonb_build_object('rule', 'accounts that own the antecedent also own the product', 'support', round(x.both_cnt::numeric / x.n, 4),
				'confidence', round(x.conf, 4), 'lift', round(x.lift, 4), 'accounts_with_both', x.both_cnt,
				'accounts_with_antecedent', x.x_cnt, 'accounts_with_product', x.y_cnt, 'buying_accounts', x.n)
			ELSE jsonb_build_object('rule', 'bought together on the same deal', 'deals_together', d.together,
				'deals_with_owned', d.x_cnt, 'confidence', round(d.together::numeric / d.x_cnt, 4))
			END, $3
		FROM kept k CROSS JOIN buyers b
		LEFT JOIN fb_rule f ON k.kind = 'first_buy' AND f.product_id = k.product_id
		LEFT JOIN nb_rule n ON k.kind = 'next_buy' AND n.from_p = k.basis AND n.to_p = k.product_id
		LEFT JOIN rep r ON k.kind = 'repeat_buy' AND r.account_id = k.account_id AND r.product_id = k.product_id
		LEFT JOIN xrule x ON k.kind = 'cross_sell' AND x.x = k.basis AND x.y = k.product_id
		LEFT JOIN brule d ON k.kind = 'bundle' AND d.x = k.basis AND d.y = k.product_id`
}
