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

// DefaultRecommendChunk is how many of the org's accounts one step of a
// recommendations refresh reads: each step's sorts and hashes are over
// that many accounts' purchases, whatever the org's size.
const DefaultRecommendChunk = 20000

// RecommendRun tunes how a recommendations refresh runs, not what it
// computes.
type RecommendRun struct {
	// ChunkAccounts is the accounts per chunk (0: DefaultRecommendChunk).
	ChunkAccounts int
	// Progress, when set, is called after each step with the steps done
	// and their total; an error it returns stops the refresh.
	Progress func(done, total int) error
}

// The recommendations model, computed set-based from the org's purchases:
// a purchase is a product on an active line item of an active won deal of
// an account, on the deal's close date. n is the number of buying
// accounts; "least support" is min_support_count, "per type"
// max_per_type.
//
//   - first buy: products that at least least-support buying accounts
//     bought on their first purchase day (the per-type most often bought
//     first); to accounts with no purchase; probability the share of
//     buying accounts that started with it.
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
//     least least-support accounts; to owners of X without Y; probability
//     the confidence.
//   - bundle: products on the same deal in at least least-support deals;
//     to an owner of one without the other; probability the share of the
//     deals with the owned product that also held the other.
//
// An account keeps, per type, the per-type most probable products (ties
// by product id), each once with its best basis (ties by basis id), and a
// probability above 0.
//
// How it runs (issue 12: one statement over every candidate of a million
// accounts sorted 17 GB on disk): the purchases are copied once into a
// temporary table partitioned by account id modulo the number of chunks.
// A first pass over the chunks adds up the counts the rules rest on
// (every count is of accounts or of deals, and a deal belongs to one
// account, so the chunks' counts add up); the rules are then built once,
// small tables of product pairs. A second pass makes each chunk's
// candidates, keeps the best and writes them with their evidence, and
// sums each account's recommendations for the labels. Two things keep the
// candidates few:
//   - cross-sell and bundle candidates depend only on the products an
//     account owns, so they are made once per distinct basket of the chunk
//     and handed to the accounts with that basket;
//   - an antecedent's rules are ranked (probability, then product); a
//     rule ranked below per type + |basket| - 1 cannot be kept: at least
//     per type products ahead of it are not owned (at most |basket| - 1
//     of them are, the antecedent itself being no rule's product), each at
//     least as probable for the account through that same antecedent, so
//     its product ranks below per type others whatever its best basis.
//     Dropping it changes no kept row.

// recTempTables creates the refresh's temporary tables (dropped at the
// transaction's end): the purchases and in-scope accounts, each
// partitioned into k chunks, the chunks' counts and the accounts' label
// inputs.
func recTempTables(k int) string {
	var b strings.Builder
	b.WriteString(`CREATE TEMP TABLE rec_purch (chunk int NOT NULL, account_id bigint NOT NULL, product_id bigint NOT NULL,
			day date NOT NULL, deal_id bigint NOT NULL) PARTITION BY LIST (chunk) ON COMMIT DROP;
		CREATE TEMP TABLE rec_scope (chunk int NOT NULL, account_id bigint NOT NULL) PARTITION BY LIST (chunk) ON COMMIT DROP;
		CREATE TEMP TABLE rec_cnt (kind text NOT NULL, x bigint NOT NULL, y bigint NOT NULL, cnt bigint NOT NULL) ON COMMIT DROP;
		CREATE TEMP TABLE rec_lab (account_id bigint NOT NULL, n bigint NOT NULL, top smallint NOT NULL, li int, by_kind jsonb NOT NULL) ON COMMIT DROP;
`)
	for c := range k {
		fmt.Fprintf(&b, "CREATE TEMP TABLE rec_purch_%[1]d PARTITION OF rec_purch FOR VALUES IN (%[1]d) ON COMMIT DROP;\n", c)
		fmt.Fprintf(&b, "CREATE TEMP TABLE rec_scope_%[1]d PARTITION OF rec_scope FOR VALUES IN (%[1]d) ON COMMIT DROP;\n", c)
	}
	return b.String()
}

// recPurchSQL copies the purchases into their chunks. $1 org, $2 today,
// $3 won stages, $4 chunks.
const recPurchSQL = `INSERT INTO rec_purch (chunk, account_id, product_id, day, deal_id)
	SELECT (d.account_id % $4::int)::int, d.account_id, li.product_id, d.close_date, d.id
	FROM deals d JOIN deal_line_items li ON li.deal_id = d.id
	WHERE d.org_id = $1 AND d.state = 'active' AND d.account_id IS NOT NULL AND d.stage_norm = ANY($3)
	  AND d.close_date IS NOT NULL AND d.close_date <= $2::date
	  AND li.state = 'active' AND li.product_id IS NOT NULL`

// recCountSQL adds chunk c's counts to rec_cnt: buying accounts (n),
// accounts by first-day product (fb), accounts by transition (nb) and by
// antecedent bought again later (nbf), owners by product (pc) and by pair
// (xp), deals by product (dc) and by pair (bp).
func recCountSQL(c int) string {
	return fmt.Sprintf(`WITH p AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id, day, deal_id FROM rec_purch_%d
		), apd AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id, day FROM p
		), own AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id FROM apd
		), days AS (
			SELECT account_id, day, dense_rank() OVER (PARTITION BY account_id ORDER BY day) AS k,
				count(*) OVER (PARTITION BY account_id) AS last_k
			FROM (SELECT DISTINCT account_id, day FROM apd) x
		), steps AS MATERIALIZED (
			SELECT p.account_id, p.product_id, d.k, d.last_k FROM apd p JOIN days d USING (account_id, day)
		), dp AS MATERIALIZED (
			SELECT DISTINCT deal_id, product_id FROM p
		)
		INSERT INTO rec_cnt (kind, x, y, cnt)
		SELECT 'n', 0, 0, count(DISTINCT account_id) FROM own
		UNION ALL SELECT 'fb', product_id, 0, count(*) FROM steps WHERE k = 1 GROUP BY 2
		UNION ALL SELECT 'nb', from_p, to_p, count(*) FROM (
			SELECT DISTINCT a.account_id, a.product_id AS from_p, b.product_id AS to_p
			FROM steps a JOIN steps b ON b.account_id = a.account_id AND b.k = a.k + 1 AND b.product_id <> a.product_id) t GROUP BY 2, 3
		UNION ALL SELECT 'nbf', product_id, 0, count(DISTINCT account_id) FROM steps WHERE k < last_k GROUP BY 2
		UNION ALL SELECT 'pc', product_id, 0, count(*) FROM own GROUP BY 2
		UNION ALL SELECT 'xp', a.product_id, b.product_id, count(*)
			FROM own a JOIN own b ON b.account_id = a.account_id AND b.product_id <> a.product_id GROUP BY 2, 3
		UNION ALL SELECT 'dc', product_id, 0, count(*) FROM dp GROUP BY 2
		UNION ALL SELECT 'bp', a.product_id, b.product_id, count(*)
			FROM dp a JOIN dp b ON b.deal_id = a.deal_id AND b.product_id <> a.product_id GROUP BY 2, 3`, c)
}

// recRulesSQL builds the rules from the summed counts, once: rec_n (n),
// rec_fb (the per-type products most often bought first), rec_nb, rec_xs
// and rec_bd with each rule's rounded probability and, for cross-sell and
// bundles, its rank among its antecedent's rules. Rules of probability 0
// are left out (nothing at 0 is kept).
func recRulesSQL(minAccounts, perType int) string {
	least, per := strconv.Itoa(minAccounts), strconv.Itoa(perType)
	return `CREATE TEMP TABLE rec_n ON COMMIT DROP AS
			SELECT greatest(coalesce(sum(cnt), 0), 1)::bigint AS n FROM rec_cnt WHERE kind = 'n';
		CREATE TEMP TABLE rec_fb ON COMMIT DROP AS
			SELECT x AS product_id, sum(cnt)::bigint AS cnt FROM rec_cnt WHERE kind = 'fb'
			GROUP BY x HAVING sum(cnt) >= ` + least + ` ORDER BY sum(cnt) DESC, x LIMIT ` + per + `;
		CREATE TEMP TABLE rec_nb ON COMMIT DROP AS
			SELECT t.x AS from_p, t.y AS to_p, t.cnt, f.cnt AS from_cnt, round(100.0 * t.cnt / f.cnt) AS prob
			FROM (SELECT x, y, sum(cnt)::bigint AS cnt FROM rec_cnt WHERE kind = 'nb' GROUP BY x, y HAVING sum(cnt) >= ` + least + `) t
			JOIN (SELECT x, sum(cnt)::bigint AS cnt FROM rec_cnt WHERE kind = 'nbf' GROUP BY x) f ON f.x = t.x;
		CREATE TEMP TABLE rec_pc ON COMMIT DROP AS
			SELECT x AS product_id, sum(cnt)::bigint AS cnt FROM rec_cnt WHERE kind = 'pc' GROUP BY x;
		CREATE TEMP TABLE rec_xs ON COMMIT DROP AS
			SELECT r.*, round(100 * r.conf) AS prob, row_number() OVER (PARTITION BY r.x ORDER BY round(100 * r.conf) DESC, r.y) AS rn
			FROM (
				SELECT p.x, p.y, p.both_cnt, px.cnt AS x_cnt, py.cnt AS y_cnt, b.n,
					p.both_cnt::numeric / px.cnt AS conf, (p.both_cnt::numeric / px.cnt) / (py.cnt::numeric / b.n) AS lift
				FROM (SELECT x, y, sum(cnt)::bigint AS both_cnt FROM rec_cnt WHERE kind = 'xp' GROUP BY x, y HAVING sum(cnt) >= ` + least + `) p
				JOIN rec_pc px ON px.product_id = p.x JOIN rec_pc py ON py.product_id = p.y CROSS JOIN rec_n b) r
			WHERE r.lift > 1 AND round(100 * r.conf) > 0;
		CREATE TEMP TABLE rec_bd ON COMMIT DROP AS
			SELECT r.x, r.y, r.together, d.cnt AS x_cnt, round(100.0 * r.together / d.cnt) AS prob,
				row_number() OVER (PARTITION BY r.x ORDER BY round(100.0 * r.together / d.cnt) DESC, r.y) AS rn
			FROM (SELECT x, y, sum(cnt)::bigint AS together FROM rec_cnt WHERE kind = 'bp' GROUP BY x, y HAVING sum(cnt) >= ` + least + `) r
			JOIN (SELECT x, sum(cnt)::bigint AS cnt FROM rec_cnt WHERE kind = 'dc' GROUP BY x) d ON d.x = r.x
			WHERE round(100.0 * r.together / d.cnt) > 0;
		ANALYZE rec_n, rec_fb, rec_nb, rec_xs, rec_bd`
}

// recChunkSQL makes chunk c's candidates, keeps each in-scope account's
// best perType of each type, writes them with the evidence of the rule
// they rest on, and adds each account's count, top probability, first
// label met (labelIdx over the written row r) and counts by type to
// rec_lab. $1 org, $2 today, $3 run id; labelIdx's parameters follow.
// The evidence is built for the kept recommendations only: built for
// every candidate it cost about 40% of the statement.
func recChunkSQL(c, perType int, labelIdx string) string {
	per := strconv.Itoa(perType)
	return fmt.Sprintf(`WITH apd AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id, day FROM rec_purch_%[1]d
		), inscope AS MATERIALIZED (
			SELECT account_id FROM rec_scope_%[1]d
		), own AS MATERIALIZED (
			SELECT DISTINCT account_id, product_id FROM apd
		), bk AS MATERIALIZED (
			SELECT o.account_id, array_agg(o.product_id ORDER BY o.product_id) AS basket
			FROM own o JOIN inscope USING (account_id) GROUP BY o.account_id
		), ub AS MATERIALIZED (
			SELECT DISTINCT basket FROM bk
		), bc AS (
			SELECT u.basket, 'cross_sell'::text AS kind, r.y AS product_id, r.x AS basis, r.prob
			FROM ub u CROSS JOIN LATERAL unnest(u.basket) AS o(product_id) JOIN rec_xs r ON r.x = o.product_id
			WHERE r.rn <= `+per+` + cardinality(u.basket) - 1 AND r.y <> ALL (u.basket)
			UNION ALL
			SELECT u.basket, 'bundle'::text, r.y, r.x, r.prob
			FROM ub u CROSS JOIN LATERAL unnest(u.basket) AS o(product_id) JOIN rec_bd r ON r.x = o.product_id
			WHERE r.rn <= `+per+` + cardinality(u.basket) - 1 AND r.y <> ALL (u.basket)
		), bbest AS (
			SELECT DISTINCT ON (basket, kind, product_id) basket, kind, product_id, basis, prob
			FROM bc ORDER BY basket, kind, product_id, prob DESC, basis
		), bkept AS (
			SELECT * FROM (SELECT bbest.*, row_number() OVER (PARTITION BY basket, kind ORDER BY prob DESC, product_id) AS rn FROM bbest) x
			WHERE rn <= `+per+`
		), lastp AS (
			SELECT account_id, product_id FROM (
				SELECT account_id, product_id, day, max(day) OVER (PARTITION BY account_id) AS last_day FROM apd) x
			WHERE day = last_day
		), gaps AS (
			SELECT account_id, product_id, day, day - lag(day) OVER (PARTITION BY account_id, product_id ORDER BY day) AS gap FROM apd
		), rep AS MATERIALIZED (
			SELECT account_id, product_id, count(*) + 1 AS purchases, avg(gap)::numeric AS mean_gap,
				coalesce(stddev_pop(gap), 0)::numeric AS sd, max(day) AS last_day
			FROM gaps WHERE gap IS NOT NULL GROUP BY 1, 2 HAVING count(*) >= 2
		), ac AS (
			SELECT i.account_id, 'first_buy'::text AS kind, r.product_id, NULL::bigint AS basis, round(100.0 * r.cnt / b.n) AS prob
			FROM inscope i CROSS JOIN rec_fb r CROSS JOIN rec_n b
			WHERE NOT EXISTS (SELECT 1 FROM bk WHERE bk.account_id = i.account_id)
			UNION ALL
			SELECT s.account_id, 'next_buy'::text, r.to_p, r.from_p, r.prob
			FROM lastp s JOIN inscope USING (account_id) JOIN rec_nb r ON r.from_p = s.product_id
			WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.account_id = s.account_id AND o.product_id = r.to_p)
			UNION ALL
			SELECT r.account_id, 'repeat_buy'::text, r.product_id, r.product_id, round(100 * (1 - r.sd / r.mean_gap))
			FROM rep r JOIN inscope USING (account_id)
			WHERE r.mean_gap > 0 AND r.sd / r.mean_gap <= 0.5
			  AND ($2::date - r.last_day) >= 0.8 * r.mean_gap AND ($2::date - r.last_day) <= 3 * r.mean_gap
		), abest AS (
			SELECT DISTINCT ON (account_id, kind, product_id) account_id, kind, product_id, basis, prob
			FROM ac WHERE prob > 0 ORDER BY account_id, kind, product_id, prob DESC, basis
		), kept AS (
			SELECT account_id, kind, product_id, basis, prob FROM (
				SELECT abest.*, row_number() OVER (PARTITION BY account_id, kind ORDER BY prob DESC, product_id) AS rn FROM abest) x
			WHERE rn <= `+per+`
			UNION ALL
			SELECT bk.account_id, k.kind, k.product_id, k.basis, k.prob FROM bkept k JOIN bk ON bk.basket = k.basket
		), ins AS (
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
			FROM kept k CROSS JOIN rec_n b
			LEFT JOIN rec_fb f ON k.kind = 'first_buy' AND f.product_id = k.product_id
			LEFT JOIN rec_nb n ON k.kind = 'next_buy' AND n.from_p = k.basis AND n.to_p = k.product_id
			LEFT JOIN rep r ON k.kind = 'repeat_buy' AND r.account_id = k.account_id AND r.product_id = k.product_id
			LEFT JOIN rec_xs x ON k.kind = 'cross_sell' AND x.x = k.basis AND x.y = k.product_id
			LEFT JOIN rec_bd d ON k.kind = 'bundle' AND d.x = k.basis AND d.y = k.product_id
			RETURNING account_id, kind, product_id, basis_product_id, probability
		)
		INSERT INTO rec_lab (account_id, n, top, li, by_kind)
		SELECT account_id, sum(cnt)::bigint, max(top), min(li), jsonb_object_agg(kind, cnt)
		FROM (SELECT r.account_id, r.kind, count(*) AS cnt, max(r.probability) AS top, min(%[2]s) AS li
		      FROM ins r GROUP BY r.account_id, r.kind) g
		GROUP BY account_id`, c, labelIdx)
}

// Recommend recomputes the in-scope accounts' recommendations (replacing
// the org's earlier ones) and labels every account with one: the first
// label whose preferences one of its recommendations meets. It returns
// the labelling and the number of recommendations written.
func (db *DB) Recommend(ctx context.Context, orgID int64, s RecommendSettings, labels []RecommendLabel, scope Filter, now time.Time, runID string, opt RecommendRun) (LabelRun, int, error) {
	if s.MinAccounts < 1 || s.PerType < 1 {
		return LabelRun{}, 0, fmt.Errorf("recommend settings %+v: %w", s, ErrInvalidQuery)
	}
	chunk := opt.ChunkAccounts
	if chunk < 1 {
		chunk = DefaultRecommendChunk
	}
	today := now.UTC().Format(time.DateOnly)
	scopeArgs := []any{orgID, 0}
	where, err := scopeSQL(scope, &scopeArgs)
	if err != nil {
		return LabelRun{}, 0, err
	}
	chunkArgs := []any{orgID, today, runID}
	cases := make([]string, 0, len(labels))
	p := func(v any) string { chunkArgs = append(chunkArgs, v); return "$" + strconv.Itoa(len(chunkArgs)) }
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
	labelArgs := []any{orgID, now, runID, pq.StringArray(allNames)}
	query := `labelled AS (
			SELECT account_id, jsonb_build_object('recommendations', n, 'top_probability', top, 'by_type', by_kind) AS raw,
				top AS score, ($4::text[])[li] AS label
			FROM rec_lab
		)`
	var run LabelRun
	var recs int
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := batchPlan(ctx, tx); err != nil {
			return err
		}
		// A chunk's sorts fit in this; the chunks bound it.
		if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '32MB'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_recommendations WHERE org_id = $1`, orgID); err != nil {
			return err
		}
		var accounts int
		if err := tx.GetContext(ctx, &accounts, `SELECT count(*) FROM accounts WHERE org_id = $1`, orgID); err != nil {
			return err
		}
		k := max(1, (accounts+chunk-1)/chunk)
		done, total := 0, 2*k+2
		step := func() error {
			done++
			if opt.Progress == nil {
				return nil
			}
			return opt.Progress(done, total)
		}
		if _, err := tx.ExecContext(ctx, recTempTables(k)); err != nil {
			return fmt.Errorf("recommendation tables: %w", err)
		}
		if _, err := tx.ExecContext(ctx, recPurchSQL, orgID, today, pq.StringArray(crm.WonStages()), k); err != nil {
			return fmt.Errorf("purchases: %w", err)
		}
		scopeArgs[1] = k
		if _, err := tx.ExecContext(ctx, `INSERT INTO rec_scope (chunk, account_id)
			SELECT (a.id % $2::int)::int, a.id FROM accounts a WHERE a.org_id = $1 AND a.state = 'active' AND (`+where+`)`, scopeArgs...); err != nil {
			return fmt.Errorf("accounts in scope: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `ANALYZE rec_purch, rec_scope`); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
		for c := range k {
			if _, err := tx.ExecContext(ctx, recCountSQL(c)); err != nil {
				return fmt.Errorf("counts of chunk %d of %d: %w", c+1, k, err)
			}
			if err := step(); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, recRulesSQL(s.MinAccounts, s.PerType)); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for c := range k {
			if _, err := tx.ExecContext(ctx, recChunkSQL(c, s.PerType, labelIdx), chunkArgs...); err != nil {
				return fmt.Errorf("compute recommendations of chunk %d of %d: %w", c+1, k, err)
			}
			if err := step(); err != nil {
				return err
			}
		}
		if err := tx.GetContext(ctx, &recs, `SELECT coalesce(sum(n), 0)::bigint FROM rec_lab`); err != nil {
			return err
		}
		run, err = writeLabelled(ctx, tx, TechniqueRecommendations, query, labelArgs)
		if err != nil {
			return err
		}
		return step()
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
