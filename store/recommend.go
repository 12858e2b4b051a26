package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/crm"
)

// Recommendation types (seed 004 "Recommendations").
const (
	RecFirstBuy  = "first_buy"
	RecNextBuy   = "next_buy"
	RecRepeatBuy = "repeat_buy"
	RecCrossSell = "cross_sell"
	RecBundle    = "bundle"
)

// RecommendationTypes lists the types in the order the API shows them.
func RecommendationTypes() []string {
	return []string{RecFirstBuy, RecNextBuy, RecRepeatBuy, RecCrossSell, RecBundle}
}

// RecommendSettings tune the model; the roles (products recommended to
// accounts, won deals and their line items as transactions, close_date as
// the completion date) come from the mapping and are not settings.
type RecommendSettings struct {
	// MinAccounts is the least number of accounts (for bundles: deals) a
	// pattern must rest on before it recommends anything.
	MinAccounts int `json:"min_support_count"`
	// PerType is how many recommendations of each type an account keeps,
	// the most probable first.
	PerType int `json:"max_per_type"`
}

// RecommendLabel is a recommendation label resolved to product ids: an
// account carries it when one of its recommendations has a type of Types
// (for a product of its list; an empty list: any product) or, for
// bundles, completes one of Bundles (none: any bundle), with a purchase
// probability of at least MinProbability.
type RecommendLabel struct {
	Name           string
	Types          map[string][]int64
	Bundles        [][2]int64
	MinProbability int
}

// ProductIDs resolves product external ids; missing ones are left out.
func (db *DB) ProductIDs(ctx context.Context, orgID int64, external []string) (map[string]int64, error) {
	var rows []struct {
		ID  int64  `db:"id"`
		Ext string `db:"external_id"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT id, external_id FROM products WHERE org_id = $1 AND external_id = ANY($2)`, orgID, pq.StringArray(external)); err != nil {
		return nil, fmt.Errorf("products of org %d: %w", orgID, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Ext] = r.ID
	}
	return out, nil
}

// recommendSQL computes every recommendation of the in-scope accounts
// from the org's purchases, set-based: a purchase is a product on an
// active line item of an active won deal of an account, on the deal's
// close date. Parameters: $1 org, $2 and $5 today, $4 won stages, $6 least
// support count, $7 per type; scope is the compiled global criteria.
//
//   - first buy: products that at least $6 buying accounts bought on their
//     first purchase day; to accounts with no purchase; probability the
//     share of buying accounts that started with it.
//   - next buy: transitions from a product on one purchase day of an
//     account to a different product on its next purchase day, counted
//     once per account; to an account whose last purchase day holds the
//     antecedent, a product it does not own; probability the share of the
//     accounts that bought the antecedent and bought again later whose
//     next purchase held the product.
//   - repeat buy: a product an account bought on at least three days,
//     at a regular cycle (coefficient of variation of the gaps at most
//     0.5), recommended once 80% of the mean gap has passed since the
//     last purchase and until three gaps have (then it lapsed);
//     probability 100 * (1 - cv).
//   - cross-sell: association rules X -> Y over account baskets (every
//     product an account ever bought) with support both/n, confidence
//     both/owners(X) and lift confidence / (owners(Y)/n) above 1, on at
//     least $6 accounts; to owners of X without Y; probability the
//     confidence.
//   - bundle: products on the same deal in at least $6 deals; to an owner
//     of one without the other; probability the share of the deals with
//     the owned product that also held the other.
//
// An account keeps, per type, the $7 most probable products (ties by
// product id), each once with its best basis. The evidence is built for
// the kept recommendations only, from the rule they rest on: built for
// every candidate it cost about 40% of the statement (2,000 accounts, 20,000
// deals: 3.8-5.7 s against 2.4 s).
func recommendSQL(scope string) string {
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

// Recommend recomputes the in-scope accounts' recommendations (replacing
// the org's earlier ones) and labels every account with one: the first
// label whose preferences one of its recommendations meets.
func (db *DB) Recommend(ctx context.Context, orgID int64, s RecommendSettings, labels []RecommendLabel, scope Filter, now time.Time, runID string) (LabelRun, int, error) {
	if s.MinAccounts < 1 || s.PerType < 1 {
		return LabelRun{}, 0, fmt.Errorf("recommend settings %+v: %w", s, ErrInvalidQuery)
	}
	today := now.UTC().Format(time.DateOnly)
	args := []any{orgID, today, runID, pq.StringArray(crm.WonStages()), today, s.MinAccounts, s.PerType}
	where, err := scopeSQL(scope, &args)
	if err != nil {
		return LabelRun{}, 0, err
	}
	recArgs := args
	labelArgs := []any{orgID, now, runID}
	lscope, err := scopeSQL(scope, &labelArgs)
	if err != nil {
		return LabelRun{}, 0, err
	}
	cases := make([]string, 0, len(labels))
	p := func(v any) string { labelArgs = append(labelArgs, v); return "$" + strconv.Itoa(len(labelArgs)) }
	for i, l := range labels {
		var alts []string
		for _, kind := range RecommendationTypes() {
			ids, ok := l.Types[kind]
			if !ok {
				continue
			}
			if kind == RecBundle && len(l.Bundles) > 0 {
				var pairs []string
				for _, b := range l.Bundles {
					pairs = append(pairs, bundleKey(b[0], b[1]))
				}
				alts = append(alts, "(r.kind = 'bundle' AND (least(r.product_id, r.basis_product_id)::text || ':' || greatest(r.product_id, r.basis_product_id)::text) = ANY("+p(pq.StringArray(pairs))+"::text[]))")
				continue
			}
			cond := "r.kind = " + p(kind) + "::text"
			if len(ids) > 0 {
				cond += " AND r.product_id = ANY(" + p(pq.Int64Array(ids)) + "::bigint[])"
			}
			alts = append(alts, "("+cond+")")
		}
		if len(alts) == 0 {
			continue
		}
		cases = append(cases, fmt.Sprintf("WHEN r.probability >= %s::int AND (%s) THEN %d", p(l.MinProbability), strings.Join(alts, " OR "), i+1))
	}
	labelIdx := "NULL::int"
	if len(cases) > 0 {
		labelIdx = "CASE " + strings.Join(cases, " ") + " END"
	}
	allNames := make([]string, len(labels))
	for i, l := range labels {
		allNames[i] = l.Name
	}
	namesParam := p(pq.StringArray(allNames))
	query := `lab AS (
			SELECT r.account_id, count(*) AS n, max(r.probability) AS top, min(` + labelIdx + `) AS li,
				jsonb_object_agg(r.kind, r.cnt) AS by_kind
			FROM (SELECT r.*, count(*) OVER (PARTITION BY r.account_id, r.kind) AS cnt FROM account_recommendations r WHERE r.org_id = $1) r
			JOIN accounts a ON a.id = r.account_id
			WHERE a.org_id = $1 AND a.state = 'active' AND (` + lscope + `)
			GROUP BY r.account_id
		), labelled AS (
			SELECT account_id, jsonb_build_object('recommendations', n, 'top_probability', top, 'by_type', by_kind) AS raw,
				top::smallint AS score, (` + namesParam + `::text[])[li] AS label
			FROM lab
		)`
	var run LabelRun
	var recs int
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := batchPlan(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_recommendations WHERE org_id = $1`, orgID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, recommendSQL(where), recArgs...)
		if err != nil {
			return fmt.Errorf("compute recommendations: %w", err)
		}
		n, _ := res.RowsAffected()
		recs = int(n)
		run, err = writeLabelled(ctx, tx, TechniqueRecommendations, query, labelArgs)
		return err
	})
	if err != nil {
		return LabelRun{}, 0, fmt.Errorf("recommend for org %d: %w", orgID, err)
	}
	return run, recs, nil
}

func bundleKey(a, b int64) string {
	return strconv.FormatInt(min(a, b), 10) + ":" + strconv.FormatInt(max(a, b), 10)
}

// Recommendation is one recommendation as GET
// /v1/accounts/{id}/recommendations shows it.
type Recommendation struct {
	Type        string          `db:"kind" json:"type"`
	Product     string          `db:"product" json:"product"`
	ProductName string          `db:"product_name" json:"product_name"`
	Probability int             `db:"probability" json:"probability"`
	Basis       *string         `db:"basis" json:"basis_product,omitempty"`
	BasisName   *string         `db:"basis_name" json:"basis_product_name,omitempty"`
	Evidence    json.RawMessage `db:"evidence" json:"evidence"`
	// Purchases are the account's purchases of the basis product (deal and
	// close date) the recommendation rests on.
	Purchases json.RawMessage `db:"purchases" json:"purchases"`
}

// AccountRecommendations lists an account's recommendations, most
// probable first. ErrNotFound for an unknown account.
func (db *DB) AccountRecommendations(ctx context.Context, orgID int64, account string) ([]Recommendation, error) {
	id, err := db.accountID(ctx, orgID, account)
	if err != nil {
		return nil, err
	}
	out := []Recommendation{}
	err = db.SelectContext(ctx, &out, `
		SELECT r.kind, p.external_id AS product, p.name AS product_name, r.probability, bp.external_id AS basis, bp.name AS basis_name, r.evidence,
			coalesce((SELECT jsonb_agg(jsonb_build_object('deal', x.external_id, 'close_date', x.close_date) ORDER BY x.close_date, x.external_id)
			          FROM (SELECT DISTINCT d.external_id, d.close_date FROM deals d JOIN deal_line_items li ON li.deal_id = d.id
			                WHERE d.org_id = $1 AND d.account_id = r.account_id AND li.product_id = r.basis_product_id
			                  AND d.state = 'active' AND li.state = 'active' AND d.stage_norm = ANY($3)) x), '[]') AS purchases
		FROM account_recommendations r JOIN products p ON p.id = r.product_id LEFT JOIN products bp ON bp.id = r.basis_product_id
		WHERE r.org_id = $1 AND r.account_id = $2
		ORDER BY r.probability DESC, r.kind, p.external_id`, orgID, id, pq.StringArray(crm.WonStages()))
	if err != nil {
		return nil, fmt.Errorf("recommendations of account %s: %w", account, err)
	}
	return out, nil
}
