package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// The three views of the Interactions tab, one statement each. Parameters:
// $1 org, $2 record id, $3 mediums, $4 users, $5 from, $6 to (both
// nullable), $7 limit, $8 module, $9 milestone field; the signals view uses
// only $1-$7. %[1]s is the record's column in activities (trailModules).
//
// Order: by time, a touchpoint before a milestone at the same instant (the
// call that moved the status comes first), then by id. Gaps are between
// consecutive touchpoints shown in the returned trail (LAG after the cap),
// the first one shown has none.

// touchpointWhere selects the record's filtered touchpoints as a.
const touchpointWhere = `a.org_id = $1 AND a.%[1]s = $2 AND a.state = 'active'
      AND (coalesce(cardinality($3::text[]), 0) = 0 OR a.medium = ANY ($3::text[]))
      AND (coalesce(cardinality($4::text[]), 0) = 0 OR a.user_id = ANY ($4::text[]))
      AND ($5::timestamptz IS NULL OR a.occurred_at >= $5)
      AND ($6::timestamptz IS NULL OR a.occurred_at < $6)`

// milestoneWhere selects the record's milestones in the time range as h.
const milestoneWhere = `h.org_id = $1 AND h.module = $8 AND h.record_id = $2 AND h.field = $9
      AND ($5::timestamptz IS NULL OR h.changed_at >= $5)
      AND ($6::timestamptz IS NULL OR h.changed_at < $6)`

// touchpointColumns are the columns of a touchpoint read from a.
const touchpointColumns = `a.id AS act_id, a.external_id AS act_external_id, a.kind, a.medium, a.direction,
       a.status, a.user_id, a.occurred_at, a.subject,
       a.questions_answered, a.time_spent_seconds, a.pages_visited`

const trailAllSQL = `
WITH items AS (
    SELECT 'touchpoint' AS item_type, a.occurred_at AS at, 0 AS tie, a.id AS item_id
    FROM activities a
    WHERE ` + touchpointWhere + `
    UNION ALL
    SELECT 'milestone', h.changed_at, 1, h.id
    FROM field_history h
    WHERE ` + milestoneWhere + `
), newest AS (
    SELECT item_type, at, tie, item_id, count(*) OVER () AS total
    FROM items
    ORDER BY at DESC, tie DESC, item_id DESC
    LIMIT $7
), gapped AS (
    SELECT n.*, CASE WHEN item_type = 'touchpoint' THEN
               extract(epoch FROM at - lag(at) OVER (PARTITION BY item_type ORDER BY at, tie, item_id))::float8
           END AS gap_seconds
    FROM newest n
)
SELECT g.item_type, g.total, g.gap_seconds, ` + touchpointColumns + `,
       h.field, h.old_value, h.new_value, h.changed_at
FROM gapped g
LEFT JOIN activities a ON g.item_type = 'touchpoint' AND a.id = g.item_id
LEFT JOIN field_history h ON g.item_type = 'milestone' AND h.id = g.item_id
ORDER BY g.at, g.tie, g.item_id`

// trailSignalsSQL: the follow-ups between signal k and signal k+1 (before
// the first signal for k = 0, after the last for k = total) form stretch
// k. Signal k+1 is shown with the last follow-up of stretch k; the rest of
// the stretch is collapsed into a count. The cap keeps the newest $7
// signals.
const trailSignalsSQL = `
WITH t AS (
    SELECT a.id, a.occurred_at, a.direction
    FROM activities a
    WHERE ` + touchpointWhere + `
), seq AS (
    SELECT t.*,
           count(*) FILTER (WHERE direction = 'signal') OVER (ORDER BY occurred_at, id ROWS UNBOUNDED PRECEDING) AS signals_so_far,
           count(*) FILTER (WHERE direction = 'signal') OVER () AS total,
           lead(direction) OVER (ORDER BY occurred_at, id) AS next_direction
    FROM t
), stretched AS (
    SELECT seq.*, CASE WHEN direction = 'signal' THEN signals_so_far - 1 ELSE signals_so_far END AS stretch
    FROM seq
), counted AS (
    SELECT stretched.*,
           count(*) FILTER (WHERE direction = 'follow_up') OVER (PARTITION BY stretch) AS stretch_follow_ups
    FROM stretched
), shown AS (
    SELECT id, occurred_at, stretch_follow_ups,
           extract(epoch FROM occurred_at - lag(occurred_at) OVER (ORDER BY occurred_at, id))::float8 AS gap_seconds
    FROM counted
    WHERE (direction = 'signal' OR next_direction = 'signal') AND stretch >= total - $7
)
SELECT s.gap_seconds, s.stretch_follow_ups, ` + touchpointColumns + `,
       (SELECT coalesce(max(total), 0) FROM seq) AS total,
       (SELECT count(*) FROM counted WHERE direction = 'follow_up' AND stretch = total) AS trailing
FROM (SELECT 1) AS one
LEFT JOIN shown s ON true
LEFT JOIN activities a ON a.id = s.id
ORDER BY s.occurred_at, s.id`

// trailMilestonesSQL: the newest $7 milestones, each with the last
// filtered touchpoint at or before it (an index scan per milestone).
const trailMilestonesSQL = `
WITH ms AS (
    SELECT h.id, h.field, h.old_value, h.new_value, h.changed_at, count(*) OVER () AS total
    FROM field_history h
    WHERE ` + milestoneWhere + `
    ORDER BY h.changed_at DESC, h.id DESC
    LIMIT $7
), picked AS (
    SELECT ms.*, lt.id AS last_id, lt.occurred_at AS last_at
    FROM ms
    LEFT JOIN LATERAL (
        SELECT a.id, a.occurred_at
        FROM activities a
        WHERE ` + touchpointWhere + ` AND a.occurred_at <= ms.changed_at
        ORDER BY a.occurred_at DESC, a.id DESC
        LIMIT 1
    ) lt ON true
), gaps AS (
    SELECT last_id, extract(epoch FROM last_at - lag(last_at) OVER (ORDER BY last_at, last_id))::float8 AS gap_seconds
    FROM (SELECT DISTINCT last_id, last_at FROM picked WHERE last_id IS NOT NULL) AS shown
)
SELECT 'milestone' AS item_type, p.total, g.gap_seconds, ` + touchpointColumns + `,
       p.field, p.old_value, p.new_value, p.changed_at
FROM picked p
LEFT JOIN gaps g ON g.last_id = p.last_id
LEFT JOIN activities a ON a.id = p.last_id
ORDER BY p.changed_at, p.id`

// trailRow is one row of any view; what a view does not select stays nil.
type trailRow struct {
	ItemType          *string    `db:"item_type"`
	Total             *int       `db:"total"`
	Trailing          *int       `db:"trailing"`
	GapSeconds        *float64   `db:"gap_seconds"`
	StretchFollowUps  *int       `db:"stretch_follow_ups"`
	ActID             *int64     `db:"act_id"`
	ActExternalID     *string    `db:"act_external_id"`
	Kind              *string    `db:"kind"`
	Medium            *string    `db:"medium"`
	Direction         *string    `db:"direction"`
	Status            *string    `db:"status"`
	UserID            *string    `db:"user_id"`
	OccurredAt        *time.Time `db:"occurred_at"`
	Subject           *string    `db:"subject"`
	QuestionsAnswered *int       `db:"questions_answered"`
	TimeSpentSeconds  *int       `db:"time_spent_seconds"`
	PagesVisited      *int       `db:"pages_visited"`
	Field             *string    `db:"field"`
	OldValue          *string    `db:"old_value"`
	NewValue          *string    `db:"new_value"`
	ChangedAt         *time.Time `db:"changed_at"`
}

// touchpoint is the row's activity, nil when it has none.
func (r trailRow) touchpoint() *Touchpoint {
	if r.ActID == nil {
		return nil
	}
	tp := &Touchpoint{
		ID: deref(r.ActExternalID), Kind: deref(r.Kind), Medium: deref(r.Medium), Direction: deref(r.Direction),
		Status: r.Status, UserID: r.UserID, OccurredAt: deref(r.OccurredAt).UTC(), Subject: r.Subject,
		GapSeconds: r.GapSeconds,
	}
	if r.QuestionsAnswered != nil || r.TimeSpentSeconds != nil || r.PagesVisited != nil {
		tp.Impressions = &Impressions{QuestionsAnswered: r.QuestionsAnswered, TimeSpentSeconds: r.TimeSpentSeconds, PagesVisited: r.PagesVisited}
	}
	return tp
}

// milestone is the row's milestone, nil when it has none.
func (r trailRow) milestone() *Milestone {
	if r.ChangedAt == nil {
		return nil
	}
	return &Milestone{Field: deref(r.Field), Old: r.OldValue, New: r.NewValue, ChangedAt: r.ChangedAt.UTC()}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func queryTrail(ctx context.Context, tx *sqlx.Tx, query string, m trailModule, args []any) ([]trailRow, error) {
	var rows []trailRow
	if err := tx.SelectContext(ctx, &rows, fmt.Sprintf(query, m.column), args...); err != nil {
		return nil, err
	}
	return rows, nil
}

func trailAll(ctx context.Context, tx *sqlx.Tx, m trailModule, args []any, trail *Trail) error {
	rows, err := queryTrail(ctx, tx, trailAllSQL, m, args)
	if err != nil {
		return fmt.Errorf("view all: %w", err)
	}
	for _, r := range rows {
		trail.Total = deref(r.Total)
		if tp := r.touchpoint(); tp != nil {
			trail.Items = append(trail.Items, TrailItem{Type: ItemTouchpoint, At: tp.OccurredAt, Touchpoint: tp})
		} else if ms := r.milestone(); ms != nil {
			trail.Items = append(trail.Items, TrailItem{Type: ItemMilestone, At: ms.ChangedAt, Milestone: ms})
		}
	}
	return nil
}

func trailSignals(ctx context.Context, tx *sqlx.Tx, m trailModule, args []any, trail *Trail) error {
	rows, err := queryTrail(ctx, tx, trailSignalsSQL, m, args[:7])
	if err != nil {
		return fmt.Errorf("view signals: %w", err)
	}
	var followUp *Touchpoint // the shown follow-up waiting for its signal
	for _, r := range rows {
		trail.Total = deref(r.Total)
		trail.TrailingFollowUps = deref(r.Trailing)
		tp := r.touchpoint()
		switch {
		case tp == nil: // no touchpoints at all: the row only carries the counts
		case tp.Direction == "follow_up":
			followUp = tp
		default:
			item := TrailItem{Type: ItemTouchpoint, At: tp.OccurredAt, Touchpoint: tp, LastFollowUp: followUp}
			if followUp != nil {
				item.CollapsedFollowUps = deref(r.StretchFollowUps) - 1
			}
			trail.Items = append(trail.Items, item)
			followUp = nil
		}
	}
	return nil
}

func trailMilestones(ctx context.Context, tx *sqlx.Tx, m trailModule, args []any, trail *Trail) error {
	rows, err := queryTrail(ctx, tx, trailMilestonesSQL, m, args)
	if err != nil {
		return fmt.Errorf("view milestones: %w", err)
	}
	for _, r := range rows {
		trail.Total = deref(r.Total)
		ms := r.milestone()
		if ms == nil {
			continue
		}
		trail.Items = append(trail.Items, TrailItem{Type: ItemMilestone, At: ms.ChangedAt, Milestone: ms, LastTouchpoint: r.touchpoint()})
	}
	return nil
}
