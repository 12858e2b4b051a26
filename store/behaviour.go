package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// The behavioural techniques (seed 004).
const (
	TechniqueEngagement      = "engagement"
	TechniqueVoC             = "voc"
	TechniqueRecommendations = "recommendations"
)

// LabelRun counts what a labelling run of a behavioural technique did.
type LabelRun struct {
	Scored  int `db:"scored" json:"scored"`   // accounts given a result
	Written int `db:"written" json:"written"` // of those, rows that changed and were written
	Removed int `db:"removed" json:"removed"` // results of accounts no longer in the set
}

// writeLabelled runs one set-based statement that writes a technique's
// results: query is a WITH list (without the WITH) that ends in a CTE
// named labelled with columns account_id, raw (jsonb), score (smallint or
// NULL) and label (text or NULL). New or changed rows are upserted, rows of
// accounts missing from labelled are deleted; the comparison is one FULL
// JOIN against the stored rows, as RFM's is. $1 must be the org id, $2
// the run's instant and $3 the run id; technique is bound as a parameter.
func writeLabelled(ctx context.Context, tx *sqlx.Tx, technique, query string, args []any) (LabelRun, error) {
	args = append(args, technique)
	t := fmt.Sprintf("$%d::text", len(args))
	q := `WITH ` + query + `, diff AS MATERIALIZED (
			SELECT x.*, o.account_id AS gone
			FROM labelled x
			FULL JOIN (SELECT account_id, raw, score, label FROM account_labels WHERE org_id = $1 AND technique = ` + t + `) o
			  ON o.account_id = x.account_id
			WHERE x.account_id IS NULL OR o.account_id IS NULL
			   OR (o.raw, o.score, o.label) IS DISTINCT FROM (x.raw, x.score, x.label)
		), written AS (
			INSERT INTO account_labels AS l (org_id, technique, account_id, raw, score, label, computed_at, run_id)
			SELECT $1, ` + t + `, account_id, raw, score, label, $2::timestamptz, $3
			FROM diff WHERE account_id IS NOT NULL
			ON CONFLICT (org_id, technique, account_id) DO UPDATE SET
				raw = EXCLUDED.raw, score = EXCLUDED.score, label = EXCLUDED.label,
				computed_at = EXCLUDED.computed_at, run_id = EXCLUDED.run_id
			RETURNING 1
		), removed AS (
			DELETE FROM account_labels d USING diff
			WHERE d.org_id = $1 AND d.technique = ` + t + ` AND diff.account_id IS NULL AND d.account_id = diff.gone
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM labelled) AS scored, (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM removed) AS removed`
	if err := batchPlan(ctx, tx); err != nil {
		return LabelRun{}, err
	}
	var run LabelRun
	if err := tx.GetContext(ctx, &run, q, args...); err != nil {
		return LabelRun{}, fmt.Errorf("write %s results: %w", technique, err)
	}
	return run, nil
}

// scopeSQL compiles the global criteria (nil: every account).
func scopeSQL(scope Filter, args *[]any) (string, error) {
	if scope == nil {
		return "true", nil
	}
	s, err := scope(args)
	if err != nil {
		return "", fmt.Errorf("scope: %w", err)
	}
	return s, nil
}

// BehaviourInput is what the behavioural techniques read besides what
// RefreshInput covers: the activities, cases, contacts and products, by
// count and newest change, so a refresh over unchanged data is skipped.
func (db *DB) BehaviourInput(ctx context.Context, orgID int64) (string, error) {
	var s string
	err := db.GetContext(ctx, &s, `
		SELECT concat_ws('|',
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM activities WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM cases WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM contacts WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM products WHERE org_id = $1))`, orgID)
	if err != nil {
		return "", fmt.Errorf("behaviour input of org %d: %w", orgID, err)
	}
	return s, nil
}

// accountID resolves an account's external id.
func (db *DB) accountID(ctx context.Context, orgID int64, externalID string) (int64, error) {
	var id int64
	if err := db.GetContext(ctx, &id, `SELECT id FROM accounts WHERE org_id = $1 AND external_id = $2`, orgID, externalID); err != nil {
		return 0, notFound(err, "account "+externalID)
	}
	return id, nil
}

// labelInTx runs writeLabelled for technique in a transaction of its own.
func (db *DB) labelInTx(ctx context.Context, technique, query string, args []any) (LabelRun, error) {
	var run LabelRun
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		run, err = writeLabelled(ctx, tx, technique, query, args)
		return err
	})
	return run, err
}

// batchPlan sets how the behavioural techniques' set-based statements are
// planned, for the rest of the transaction. Their inputs pass through
// materialized CTEs, which carry no statistics (the planner takes one row
// from each), and over tables just loaded and not yet analysed: planned
// from those estimates they became nested loops over CTE scans, quadratic
// in the accounts (12 s for recommendations over 200 demo accounts). With
// nested loops off every join is a hash or merge join, linear in its
// inputs, whatever the estimates; a join that can only be a nested loop
// still gets one. JIT is off as for RFM: compiling costs more than it
// saves at these sizes.
func batchPlan(ctx context.Context, tx *sqlx.Tx) error {
	_, err := tx.ExecContext(ctx, batchPlanSQL)
	return err
}

// batchPlanSQL is batchPlan's settings, for a transaction already begun.
const batchPlanSQL = `SET LOCAL jit = off; SET LOCAL enable_nestloop = off`
