package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Orphans (seed 003: "Orphan state will indicate a longer-than-average gap
// between signals and followups"). The definitions below are the contract
// that RecomputeOrphans implements in SQL and that tests recompute
// independently:
//
//   - Touchpoints of a lead or contact are its activities (activities.lead_id
//     or activities.contact_id) in state 'active'. Direction 'signal' comes
//     from the customer, 'follow_up' from a CRM user.
//   - Response gap: for each signal that has a follow-up on the same record
//     strictly later than it (occurred_at greater), the time from the signal
//     to the first such follow-up. Several signals before one follow-up each
//     have their own gap.
//   - Module average: the mean of every response gap of every record of that
//     module in the org; NULL when there is none.
//   - Unanswered signals: a record's signals with no strictly later
//     follow-up, i.e. those at or after its last follow-up, or all of its
//     signals when it has none. A follow-up at the very same instant as a
//     signal does not answer it. Every signal is thus either answered (it
//     has a response gap) or unanswered.
//   - Open gap: open_since is the earliest unanswered signal; current gap =
//     now - open_since. A record with no unanswered signal has no open gap.
//   - is_orphan: current gap > module average; false when either is NULL.
//   - Every lead or contact of the org gets a row, also one without
//     activities (not orphan). Rows of deleted records go with them (FK).
//
// The orphan flag is about the current gap, not a record's history: it is
// actionable, since a record stops being orphan as soon as someone follows
// up on it.

// OrphanState is the orphan computation of one lead or contact.
type OrphanState struct {
	Module            string     `db:"module" json:"module"`
	RecordID          int64      `db:"record_id" json:"-"`
	IsOrphan          bool       `db:"is_orphan" json:"is_orphan"`
	OpenSince         *time.Time `db:"open_since" json:"open_since"`
	CurrentGapSeconds *float64   `db:"current_gap_seconds" json:"current_gap_seconds"`
	AverageGapSeconds *float64   `db:"average_gap_seconds" json:"average_gap_seconds"`
	ComputedAt        time.Time  `db:"computed_at" json:"computed_at"`
	JobID             string     `db:"job_id" json:"job_id"`
}

// OrphanRun is the latest recomputation of a module in an org: the
// average it used and what it found.
type OrphanRun struct {
	Module            string    `db:"module" json:"module"`
	AverageGapSeconds *float64  `db:"average_gap_seconds" json:"average_gap_seconds"`
	Records           int       `db:"records" json:"records"`
	Orphans           int       `db:"orphans" json:"orphans"`
	ComputedAt        time.Time `db:"computed_at" json:"computed_at"`
	JobID             string    `db:"job_id" json:"job_id"`
}

func (r OrphanRun) utc() OrphanRun {
	r.ComputedAt = r.ComputedAt.UTC()
	return r
}

// recomputeOrphansSQL computes the definitions above for one module in one
// statement. %[1]s is the record table, %[2]s its column in activities and
// orphan_state; both come from trailModules, never from input.
//
// touch folds activities to one row per record and instant, so that "the
// next strictly later follow-up" is the nearest later row with a
// follow-up: a window whose frame start never moves, which Postgres
// aggregates incrementally (linear in the activities of a record).
const recomputeOrphansSQL = `
WITH touch AS (
    SELECT a.%[2]s AS record_id, a.occurred_at,
           count(*) FILTER (WHERE a.direction = 'signal') AS signals,
           bool_or(a.direction = 'follow_up') AS followed_up
    FROM activities a
    JOIN %[1]s r ON r.id = a.%[2]s AND r.org_id = $1
    WHERE a.org_id = $1 AND a.state = 'active'
    GROUP BY a.%[2]s, a.occurred_at
), answered AS (
    SELECT record_id, occurred_at, signals,
           min(occurred_at) FILTER (WHERE followed_up) OVER (
               PARTITION BY record_id ORDER BY occurred_at DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS next_follow_up
    FROM touch
), average AS MATERIALIZED ( -- one row joined to every record: computed once, whatever the plan
    SELECT (sum(signals * extract(epoch FROM next_follow_up - occurred_at)) / sum(signals))::float8 AS seconds
    FROM answered
    WHERE signals > 0 AND next_follow_up IS NOT NULL
), open AS (
    SELECT record_id, min(occurred_at) AS open_since
    FROM answered
    WHERE signals > 0 AND next_follow_up IS NULL
    GROUP BY record_id
), computed AS (
    SELECT r.id, o.open_since,
           extract(epoch FROM $2::timestamptz - o.open_since)::float8 AS current_gap,
           avg.seconds AS average
    FROM %[1]s r
    CROSS JOIN average avg
    LEFT JOIN open o ON o.record_id = r.id
    WHERE r.org_id = $1
), written AS (
    INSERT INTO orphan_state
        (org_id, module, %[2]s, is_orphan, open_since, current_gap_seconds, average_gap_seconds, computed_at, job_id)
    SELECT $1, $4, id, coalesce(current_gap > average, false), open_since, current_gap, average, $2, $3
    FROM computed
    ORDER BY id
    ON CONFLICT (org_id, module, record_id) DO UPDATE SET
        is_orphan = EXCLUDED.is_orphan,
        open_since = EXCLUDED.open_since,
        current_gap_seconds = EXCLUDED.current_gap_seconds,
        average_gap_seconds = EXCLUDED.average_gap_seconds,
        computed_at = EXCLUDED.computed_at,
        job_id = EXCLUDED.job_id
    RETURNING is_orphan
)
INSERT INTO orphan_runs (org_id, module, average_gap_seconds, records, orphans, computed_at, job_id)
SELECT $1, $4, (SELECT seconds FROM average), count(*), count(*) FILTER (WHERE is_orphan), $2, $3
FROM written
ON CONFLICT (org_id, module) DO UPDATE SET
    average_gap_seconds = EXCLUDED.average_gap_seconds,
    records = EXCLUDED.records,
    orphans = EXCLUDED.orphans,
    computed_at = EXCLUDED.computed_at,
    job_id = EXCLUDED.job_id
RETURNING module, average_gap_seconds, records, orphans, computed_at, job_id`

// RecomputeOrphans recomputes the orphan state of every lead or contact
// (module "leads" or "contacts") of the org as of now, in one transaction,
// and records the run. Rerunning with the same inputs writes the same rows.
// Runs of one org and module are serialised; a run whose now is older than
// the stored latest run (a late retry) writes nothing and returns the
// stored run, so it never rolls newer results back.
func (db *DB) RecomputeOrphans(ctx context.Context, orgID int64, module string, now time.Time, jobID string) (OrphanRun, error) {
	m, err := lookupTrailModule(module)
	if err != nil {
		return OrphanRun{}, fmt.Errorf("recompute orphans: %w", err)
	}
	// Postgres keeps microseconds; truncating here makes "same now" exact.
	now = now.Truncate(time.Microsecond)
	var run OrphanRun
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('crmq:orphans:' || $1 || ':' || $2::text, 0))`,
			m.name, orgID); err != nil {
			return fmt.Errorf("lock orphan run: %w", err)
		}
		latest, err := lastOrphanRun(ctx, tx, orgID, m.name)
		switch {
		case err == nil && latest.ComputedAt.After(now):
			run = latest
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		q := fmt.Sprintf(recomputeOrphansSQL, m.table, m.column)
		if err := tx.GetContext(ctx, &run, q, orgID, now, jobID, m.name); err != nil {
			return fmt.Errorf("recompute orphans of %s: %w", m.name, err)
		}
		return nil
	})
	if err != nil {
		return OrphanRun{}, err
	}
	return run.utc(), nil
}

// LastOrphanRun returns the latest recomputation of the module in the org;
// ErrNotFound when there has been none.
func (db *DB) LastOrphanRun(ctx context.Context, orgID int64, module string) (OrphanRun, error) {
	m, err := lookupTrailModule(module)
	if err != nil {
		return OrphanRun{}, fmt.Errorf("orphan run: %w", err)
	}
	return lastOrphanRun(ctx, db, orgID, m.name)
}

func lastOrphanRun(ctx context.Context, q sqlx.QueryerContext, orgID int64, module string) (OrphanRun, error) {
	var run OrphanRun
	err := sqlx.GetContext(ctx, q, &run, `
		SELECT module, average_gap_seconds, records, orphans, computed_at, job_id
		FROM orphan_runs WHERE org_id = $1 AND module = $2`, orgID, module)
	if err != nil {
		return OrphanRun{}, notFound(err, "orphan run of "+module)
	}
	return run.utc(), nil
}

// OrphanStatus returns the orphan state of one lead or contact (by its
// internal id); ErrNotFound when it has not been computed, or the record
// is not the org's.
func (db *DB) OrphanStatus(ctx context.Context, orgID int64, module string, recordID int64) (OrphanState, error) {
	m, err := lookupTrailModule(module)
	if err != nil {
		return OrphanState{}, fmt.Errorf("orphan state: %w", err)
	}
	return orphanStatus(ctx, db, orgID, m.name, recordID)
}

func orphanStatus(ctx context.Context, q sqlx.QueryerContext, orgID int64, module string, recordID int64) (OrphanState, error) {
	var s OrphanState
	err := sqlx.GetContext(ctx, q, &s, `
		SELECT module, record_id, is_orphan, open_since, current_gap_seconds, average_gap_seconds, computed_at, job_id
		FROM orphan_state WHERE org_id = $1 AND module = $2 AND record_id = $3`, orgID, module, recordID)
	if err != nil {
		return OrphanState{}, notFound(err, fmt.Sprintf("orphan state of %s %d", module, recordID))
	}
	s.ComputedAt = s.ComputedAt.UTC()
	if s.OpenSince != nil {
		t := s.OpenSince.UTC()
		s.OpenSince = &t
	}
	return s, nil
}

// optionalOrphanStatus is orphanStatus with "not computed yet" as nil.
func optionalOrphanStatus(ctx context.Context, q sqlx.QueryerContext, orgID int64, module string, recordID int64) (*OrphanState, error) {
	s, err := orphanStatus(ctx, q, orgID, module, recordID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}
