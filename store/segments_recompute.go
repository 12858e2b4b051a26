package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/crmq/crmq/store/criteria"
)

// segmentScope is what recomputing a segment of the org reads besides the
// segment: the catalog its criteria compile against and the global
// criteria, both as of one instant.
type segmentScope struct {
	src    accountSource
	fields map[string]AccountField
	global Filter
	now    time.Time
}

func (db *DB) segmentScope(ctx context.Context, orgID int64, now time.Time) (segmentScope, error) {
	src, fields, err := db.segmentCatalog(ctx, orgID)
	if err != nil {
		return segmentScope{}, err
	}
	global, err := db.ScopeFilter(ctx, orgID, now)
	if err != nil {
		return segmentScope{}, fmt.Errorf("global criteria of org %d: %w", orgID, err)
	}
	return segmentScope{src: src, fields: joinedFields(fields), global: global, now: now}, nil
}

// RecomputeSegment computes a segment's membership as of now and returns
// its member count. ErrNotFound when the org has no such segment; a
// criteria that no longer checks against the org's fields (the mapping
// changed) is a criteria.Errors, and the membership is left as it was.
func (db *DB) RecomputeSegment(ctx context.Context, orgID, segmentID int64, now time.Time) (int, error) {
	sc, err := db.segmentScope(ctx, orgID, now)
	if err != nil {
		return 0, err
	}
	return db.recomputeLocked(ctx, orgID, segmentID, sc)
}

// RecomputeSegments recomputes every segment of the org as of now, each
// in its own transaction, and returns how many it recomputed; the
// technique refresh calls it after every refresh. A segment whose
// criteria no longer checks keeps its last membership and computed_at
// (so a client sees it is stale) and is named in the error, which joins
// every such failure; the others are recomputed all the same.
func (db *DB) RecomputeSegments(ctx context.Context, orgID int64, now time.Time) (int, error) {
	sc, err := db.segmentScope(ctx, orgID, now)
	if err != nil {
		return 0, err
	}
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `SELECT id FROM segments WHERE org_id = $1 ORDER BY id`, orgID); err != nil {
		return 0, fmt.Errorf("segments of org %d: %w", orgID, err)
	}
	done := 0
	var errs []error
	for _, id := range ids {
		_, err := db.recomputeLocked(ctx, orgID, id, sc)
		switch {
		case errors.Is(err, ErrNotFound): // deleted meanwhile
		case errors.Is(err, criteria.ErrInvalid):
			errs = append(errs, fmt.Errorf("segment %d: %w", id, err))
		case err != nil:
			return done, err
		default:
			done++
		}
	}
	return done, errors.Join(errs...)
}

// recomputeLocked recomputes a stored segment under its row's lock, so
// two recomputations of one segment take turns.
func (db *DB) recomputeLocked(ctx context.Context, orgID, segmentID int64, sc segmentScope) (int, error) {
	var n int
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var raw []byte
		err := tx.GetContext(ctx, &raw, `SELECT criteria FROM segments WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, segmentID)
		if err != nil {
			return notFound(err, fmt.Sprintf("segment %d", segmentID))
		}
		var c criteria.Criteria
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("segment %d: criteria: %w", segmentID, err)
		}
		n, err = recomputeSegment(ctx, tx, orgID, segmentID, c, sc)
		return err
	})
	return n, err
}

// recomputeSegment writes the segment's membership set-based in one
// statement: the org's active accounts inside the global criteria and the
// segment's criteria are inserted if new, members that left are deleted,
// and the count and computed_at are set. No account is loaded into Go.
//
// Like RFM scoring, membership reads the org's accounts source: the
// accounts table, or a custom accounts module's records, which
// segment_members names by account_id or record_id (sc.src.key); members
// of the other kind (the accounts role moved since) are dropped first.
func recomputeSegment(ctx context.Context, tx *sqlx.Tx, orgID, segmentID int64, c criteria.Criteria, sc segmentScope) (int, error) {
	filter, err := CriteriaFilter(c, sc.fields, sc.now)
	if err != nil {
		return 0, err
	}
	args := []any{orgID, segmentID, sc.now}
	global := "TRUE"
	if sc.global != nil {
		if global, err = sc.global(&args); err != nil {
			return 0, fmt.Errorf("global criteria: %w", err)
		}
	}
	rule, err := filter(&args)
	if err != nil {
		return 0, fmt.Errorf("segment %d criteria: %w", segmentID, err)
	}
	// want against the stored members in one FULL JOIN, which Postgres
	// runs as a hash or merge join whatever its row estimates say: an
	// anti-join planned from stale statistics (a members table analysed
	// while nearly empty) can become a nested loop, quadratic in the
	// segment's size. Only the difference is written.
	src := sc.src
	if _, err := tx.ExecContext(ctx, `DELETE FROM segment_members WHERE segment_id = $1 AND `+src.other+` IS NOT NULL`, segmentID); err != nil {
		return 0, fmt.Errorf("segment %d: drop members of the other accounts module: %w", segmentID, err)
	}
	q := `
		WITH want AS MATERIALIZED (
			SELECT a.id FROM ` + segmentFrom(src) + `
			WHERE a.org_id = $1` + src.only("a") + ` AND a.state = 'active' AND (` + global + `) AND (` + rule + `)
		), diff AS MATERIALIZED (
			SELECT w.id AS joins, m.` + src.key + ` AS leaves
			FROM want w FULL JOIN (SELECT ` + src.key + ` FROM segment_members WHERE segment_id = $2) m ON m.` + src.key + ` = w.id
			WHERE w.id IS NULL OR m.` + src.key + ` IS NULL
		), added AS (
			INSERT INTO segment_members (org_id, segment_id, ` + src.key + `)
			SELECT $1, $2, joins FROM diff WHERE joins IS NOT NULL
			ON CONFLICT (segment_id, ` + src.key + `) DO NOTHING
		), left_segment AS (
			DELETE FROM segment_members m USING diff
			WHERE m.segment_id = $2 AND m.` + src.key + ` = diff.leaves
		)
		UPDATE segments SET member_count = (SELECT count(*) FROM want), computed_at = $3
		WHERE org_id = $1 AND id = $2
		RETURNING member_count`
	var n int
	if err := tx.GetContext(ctx, &n, q, args...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("segment %d: %w", segmentID, ErrNotFound)
		}
		return 0, fmt.Errorf("recompute segment %d: %w", segmentID, err)
	}
	return n, nil
}
