package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/crm"
)

// Filter writes a SQL boolean expression over the accounts alias a,
// appending its values to args as parameters numbered after those already
// there. A nil Filter keeps every account.
type Filter func(args *[]any) (string, error)

// RFM settings (seed 004 "RFM"): the deals module feeds it. Which deals
// count is a deal criteria (default: the won stages of store/crm); recency
// is a date field of those deals, frequency their number or the quantity of
// products on them, monetary the sum of a numeric field. Scores run 1..Scale.
type RFMSettings struct {
	Mode          string     `json:"mode"`           // "automatic" (percentiles) or "manual" (bands)
	Scale         int        `json:"scale"`          // k: scores 1..k, 2 <= k <= 5
	RecencyField  string     `json:"recency_field"`  // close_date, created_at or updated_at of deals
	Frequency     string     `json:"frequency"`      // "deals" or "products" (quantity on deal line items)
	MonetaryField string     `json:"monetary_field"` // amount
	Manual        *RFMManual `json:"manual,omitempty"`
}

// RFMManual holds, per metric, a band per score value; bands are tried
// from the highest score down and an account in none scores 1.
type RFMManual struct {
	Recency   []RecencyBand `json:"recency"`
	Frequency []RangeBand   `json:"frequency"`
	Monetary  []RangeBand   `json:"monetary"`
}

// RecencyBand: the last qualifying deal is at most WithinDays days old.
type RecencyBand struct {
	Score      int `json:"score"`
	WithinDays int `json:"within_days"`
}

// RangeBand: Min <= value < Max; an absent end is open.
type RangeBand struct {
	Score int      `json:"score"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// The deal columns RFM may read: an allow-list, so a setting never
// becomes an identifier it does not name here.
var (
	rfmDateColumns   = map[string]string{"close_date": "d.close_date", "created_at": "d.created_at::date", "updated_at": "d.updated_at::date"}
	rfmNumberColumns = map[string]string{"amount": "d.amount"}
)

// RFMDateFields and RFMNumberFields name the deal fields the settings may use.
func RFMDateFields() []string   { return slices.Sorted(maps.Keys(rfmDateColumns)) }
func RFMNumberFields() []string { return slices.Sorted(maps.Keys(rfmNumberColumns)) }

// RFMRun counts what a scoring run did.
type RFMRun struct {
	Scored  int `db:"scored" json:"scored"`   // accounts in scope with a qualifying deal
	Written int `db:"written" json:"written"` // of those, rows that changed and were written
	Removed int `db:"removed" json:"removed"` // earlier scores of accounts that no longer have one
}

// ScoreRFM computes every in-scope account's raw recency (days since its
// last qualifying deal, as of now's UTC day), frequency and monetary
// values and its r, f and m scores, in one set-based statement, and writes
// them to account_labels under runID; scores of accounts that no longer
// qualify are deleted. Nothing is loaded into Go.
//
// Automatic mode is the seed's percentile method: each metric is sorted
// from worst to best (oldest purchase, fewest, least) and an account's
// score is ceil(k * c / n), where c counts the accounts whose value is no
// better than its own and n all of them: the cumulative distribution, in
// integer arithmetic. Equal raw values get the same score, which NTILE
// would not give. Manual mode applies the bands.
//
// Labels are written by LabelAccounts, after scoring.
func (db *DB) ScoreRFM(ctx context.Context, orgID int64, s RFMSettings, scope Filter, now time.Time, runID string) (RFMRun, error) {
	return db.ScoreAndLabelRFM(ctx, orgID, s, nil, scope, now, runID)
}

// ScoreAndLabelRFM is ScoreRFM that also labels each account in the same
// statement: the first of rules (over r, f, m and the raw recency_days,
// frequency and monetary) that matches names its label. A row is written
// only when its values, scores or label changed, so a refresh over data
// that barely moved writes little; rows of accounts that no longer qualify
// are deleted by the same statement.
//
// With a custom accounts module the accounts are its records and a deal
// reaches one through the accounts_deals lookup attribute (the record's
// external id): the same statement, grouping deals by that attribute and
// joining the groups to the module's records by external id.
func (db *DB) ScoreAndLabelRFM(ctx context.Context, orgID int64, s RFMSettings, rules []LabelRule, scope Filter, now time.Time, runID string) (RFMRun, error) {
	src, err := db.accountSource(ctx, orgID)
	if err != nil {
		return RFMRun{}, err
	}
	recency, ok := rfmDateColumns[s.RecencyField]
	if !ok {
		return RFMRun{}, fmt.Errorf("rfm recency field %q: %w", s.RecencyField, ErrInvalidQuery)
	}
	monetary, ok := rfmNumberColumns[s.MonetaryField]
	if !ok {
		return RFMRun{}, fmt.Errorf("rfm monetary field %q: %w", s.MonetaryField, ErrInvalidQuery)
	}
	if s.Scale < 2 || s.Scale > 5 {
		return RFMRun{}, fmt.Errorf("rfm scale %d: %w", s.Scale, ErrInvalidQuery)
	}
	args := []any{orgID, now.UTC().Format(time.DateOnly), runID, pq.StringArray(crm.WonStages()), now}
	dealCond := "d.stage_norm = ANY($4)" // the won stages of store/crm; stage_norm is crm.Norm(stage) (migration 00110)
	if s.Frequency != "deals" && s.Frequency != "products" {
		return RFMRun{}, fmt.Errorf("rfm frequency %q: %w", s.Frequency, ErrInvalidQuery)
	}
	frequency := "count(*)"
	if s.Frequency == "products" {
		frequency = `coalesce(sum((SELECT sum(li.quantity) FROM deal_line_items li WHERE li.deal_id = q.id AND li.state = 'active')), 0)`
	}
	scopeSQL := "true"
	if scope != nil {
		if scopeSQL, err = scope(&args); err != nil {
			return RFMRun{}, fmt.Errorf("rfm scope: %w", err)
		}
	}
	var r, f, m string
	dist, distJoin := "", "" // automatic mode's per-value distributions
	switch s.Mode {
	case "automatic":
		// c counts the accounts ordered at or before this one (peers
		// included: the default RANGE frame); the best value comes last.
		args = append(args, s.Scale)
		k := len(args)
		score := func(c string) string { return fmt.Sprintf("(($%d::bigint * %s + n.n - 1) / n.n)", k, c) }
		// Recency (whole days) and frequency (counts) take few distinct
		// values, so their c comes from a group per value joined back,
		// not from a sort of every account; monetary, nearly unique per
		// account, is a window over the sorted accounts.
		dist = `, rc AS (SELECT recency_days, sum(count(*)) OVER (ORDER BY recency_days DESC)::bigint AS c FROM raw GROUP BY recency_days
		), fc AS (SELECT frequency, sum(count(*)) OVER (ORDER BY frequency)::bigint AS c FROM raw GROUP BY frequency
		)`
		distJoin = " JOIN rc USING (recency_days) JOIN fc USING (frequency)"
		r, f, m = score("rc.c"), score("fc.c"), score("count(*) OVER (ORDER BY monetary)")
	case "manual":
		if s.Manual == nil {
			return RFMRun{}, fmt.Errorf("rfm manual mode without bands: %w", ErrInvalidQuery)
		}
		// Scores index the label array below: one outside 1..Scale would
		// read another combination's label.
		for _, b := range s.Manual.Recency {
			if b.Score < 1 || b.Score > s.Scale {
				return RFMRun{}, fmt.Errorf("rfm recency band score %d outside 1..%d: %w", b.Score, s.Scale, ErrInvalidQuery)
			}
		}
		for _, b := range slices.Concat(s.Manual.Frequency, s.Manual.Monetary) {
			if b.Score < 1 || b.Score > s.Scale {
				return RFMRun{}, fmt.Errorf("rfm band score %d outside 1..%d: %w", b.Score, s.Scale, ErrInvalidQuery)
			}
		}
		r = bandsSQL("recency_days", recencyBands(s.Manual.Recency), &args)
		f = bandsSQL("frequency", s.Manual.Frequency, &args)
		m = bandsSQL("monetary", s.Manual.Monetary, &args)
	default:
		return RFMRun{}, fmt.Errorf("rfm mode %q: %w", s.Mode, ErrInvalidQuery)
	}
	// Labels that read only the scores are decided once per combination
	// of scores (at most 5^3 = 125) and looked up by each account, instead
	// of trying every rule on every account; a rule over the raw values
	// is tried per account.
	grid, label := "", ""
	if scoresOnly(rules) {
		cell, err := labelCase(rules, map[string]string{"r": "g.r", "f": "g.f", "m": "g.m"}, now, &args)
		if err != nil {
			return RFMRun{}, err
		}
		args = append(args, s.Scale)
		k := fmt.Sprintf("$%d::int", len(args))
		// The labels of every (r, f, m) in one array, built once (an
		// InitPlan); an account reads its cell by subscript. A join
		// would let the planner pull the CASE up into the join and try
		// it per account after all.
		grid = `, grid AS (
			SELECT array_agg(` + cell + ` ORDER BY g.r, g.f, g.m) AS labels FROM (
				SELECT r::smallint AS r, f::smallint AS f, m::smallint AS m
				FROM generate_series(1, ` + k + `) r, generate_series(1, ` + k + `) f, generate_series(1, ` + k + `) m) g
		)`
		label = "(SELECT labels FROM grid)[((s.r - 1) * " + k + " + (s.f - 1)) * " + k + " + s.m]"
	} else {
		var err error
		if label, err = labelCase(rules, scoredLabelColumns, now, &args); err != nil {
			return RFMRun{}, err
		}
	}
	query := `
		WITH q AS (
			SELECT d.id, ` + src.dealRef() + ` AS account_id, ` + recency + ` AS at, ` + monetary + ` AS money
			FROM deals d
			WHERE d.org_id = $1 AND ` + src.dealRef() + ` IS NOT NULL AND d.state = 'active' AND ` + dealCond + `
		), agg AS (
			SELECT account_id, max(at) AS last_at, ` + frequency + ` AS frequency, coalesce(sum(money), 0) AS monetary
			FROM q GROUP BY account_id
		), raw AS (
			SELECT a.id AS account_id, ($2::date - agg.last_at) AS recency_days, agg.frequency, agg.monetary, agg.last_at
			FROM ` + src.from("a") + ` JOIN agg ON agg.account_id = ` + src.refCol("a") + `
			WHERE a.org_id = $1` + src.only("a") + ` AND a.state = 'active' AND agg.last_at IS NOT NULL AND (` + scopeSQL + `)
		), n AS (SELECT count(*) AS scored, greatest(count(*), 1) AS n FROM raw
		)` + dist + grid + `, scored AS (
			SELECT raw.*, ` + r + ` AS r, ` + f + ` AS f, ` + m + ` AS m FROM raw` + distJoin + `, n
		), labelled AS (
			SELECT s.account_id, s.recency_days, s.last_at, s.frequency, s.monetary,
				s.r::smallint AS r, s.f::smallint AS f, s.m::smallint AS m, ` + label + ` AS label
			FROM scored s
		), diff AS MATERIALIZED (
			-- the new results against the stored ones in one FULL JOIN,
			-- which Postgres runs as a hash or merge join whatever its
			-- estimates say (an anti-join planned from stale statistics can
			-- turn into a nested loop, quadratic in the accounts): rows
			-- that are new or changed, and stored rows with no new result.
			-- Recency in days is left out: it moves with the calendar,
			-- the last purchase date it derives from does not.
			SELECT x.*, o.account_id AS gone
			FROM labelled x
			FULL JOIN (SELECT ` + src.key + ` AS account_id, last_purchase, frequency, monetary, r, f, m, label
			           FROM account_labels WHERE org_id = $1 AND technique = 'rfm') o
			  ON o.account_id = x.account_id
			WHERE x.account_id IS NULL OR o.account_id IS NULL
			   OR (o.last_purchase, o.frequency, o.monetary, o.r, o.f, o.m, o.label)
			      IS DISTINCT FROM (x.last_at, x.frequency, x.monetary, x.r, x.f, x.m, x.label)
		), written AS (
			INSERT INTO account_labels AS l (org_id, technique, ` + src.key + `, raw, last_purchase, frequency, monetary, r, f, m, label, computed_at, run_id)
			SELECT $1, 'rfm', account_id,
				jsonb_build_object('recency_days', recency_days, 'last_purchase', last_at, 'frequency', frequency, 'monetary', monetary),
				last_at, frequency, monetary, r, f, m, label, $5::timestamptz, $3
			FROM diff WHERE account_id IS NOT NULL
			ON CONFLICT (org_id, technique, ` + src.key + `) DO UPDATE SET
				raw = EXCLUDED.raw, last_purchase = EXCLUDED.last_purchase, frequency = EXCLUDED.frequency,
				monetary = EXCLUDED.monetary, r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m,
				label = EXCLUDED.label, computed_at = EXCLUDED.computed_at, run_id = EXCLUDED.run_id
			WHERE (l.last_purchase, l.frequency, l.monetary, l.r, l.f, l.m, l.label)
			      IS DISTINCT FROM (EXCLUDED.last_purchase, EXCLUDED.frequency, EXCLUDED.monetary, EXCLUDED.r, EXCLUDED.f, EXCLUDED.m, EXCLUDED.label)
			RETURNING 1
		), removed AS (
			DELETE FROM account_labels d USING diff
			WHERE d.org_id = $1 AND d.technique = 'rfm' AND diff.account_id IS NULL AND d.` + src.key + ` = diff.gone
			RETURNING 1
		)
		SELECT (SELECT scored FROM n) AS scored, (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM removed) AS removed`
	var run RFMRun
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := dropOtherKind(ctx, tx, orgID, TechniqueRFM, src); err != nil {
			return err
		}
		// Measured at a million accounts and ten million deals: a small
		// work_mem makes the per-account aggregate spill into partitions
		// whose hash tables stay in the CPU's caches, which beats one
		// in-memory table of a million groups (128MB was about 3 s
		// slower); JIT compiling this statement cost about 1.4 s and
		// saved less. Set here so a server's own settings do not undo it.
		if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '`+refreshWorkMem+`'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return tx.GetContext(ctx, &run, query, args...)
	})
	if err != nil {
		return RFMRun{}, fmt.Errorf("score rfm of org %d: %w", orgID, err)
	}
	return run, nil
}

// refreshWorkMem is the work_mem of the RFM statement.
const refreshWorkMem = "4MB"

// scoredLabelColumns are the RFM label fields over the statement's
// scored rows (alias s).
var scoredLabelColumns = map[string]string{
	"r": "s.r", "f": "s.f", "m": "s.m",
	"recency_days": "s.recency_days::numeric", "frequency": "s.frequency", "monetary": "s.monetary",
}

// scoresOnly tells whether every rule reads only r, f and m.
func scoresOnly(rules []LabelRule) bool {
	for _, r := range rules {
		for _, f := range r.Rule.Fields() {
			if f != "r" && f != "f" && f != "m" {
				return false
			}
		}
	}
	return true
}

// recencyBands turns "within N days" into ranges over recency_days.
func recencyBands(bands []RecencyBand) []RangeBand {
	out := make([]RangeBand, len(bands))
	for i, b := range bands {
		hi := float64(b.WithinDays) + 1 // recency_days <= N
		out[i] = RangeBand{Score: b.Score, Max: &hi}
	}
	return out
}

// bandsSQL is CASE over the bands, highest score first, ELSE 1; every
// bound is a parameter.
func bandsSQL(col string, bands []RangeBand, args *[]any) string {
	sorted := append([]RangeBand(nil), bands...)
	for i := range sorted { // insertion sort, highest score first (at most 4 bands)
		for j := i; j > 0 && sorted[j].Score > sorted[j-1].Score; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	if len(sorted) == 0 {
		return "1" // no band: every account scores 1
	}
	var b strings.Builder
	b.WriteString("CASE")
	for _, band := range sorted {
		conds := []string{}
		if band.Min != nil {
			*args = append(*args, *band.Min)
			conds = append(conds, fmt.Sprintf("%s >= $%d::numeric", col, len(*args)))
		}
		if band.Max != nil {
			*args = append(*args, *band.Max)
			conds = append(conds, fmt.Sprintf("%s < $%d::numeric", col, len(*args)))
		}
		if len(conds) == 0 {
			conds = append(conds, "true")
		}
		*args = append(*args, band.Score)
		fmt.Fprintf(&b, " WHEN %s THEN $%d::int", strings.Join(conds, " AND "), len(*args))
	}
	b.WriteString(" ELSE 1 END")
	return b.String()
}
