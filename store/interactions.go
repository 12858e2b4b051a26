package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// The Interactions tab of seed 003: the trail of one lead or contact, its
// signals (from the customer) and follow-ups (by CRM users) in time order,
// with the milestones of its tracked picklist interleaved.

// Views of the Interactions tab.
const (
	ViewAll        = "all"
	ViewSignals    = "signals"
	ViewMilestones = "milestones"
)

// Trail limits: the newest DefaultTrailLimit items unless asked otherwise,
// never more than MaxTrailLimit.
const (
	DefaultTrailLimit = 500
	MaxTrailLimit     = 5000
)

// Item types of a trail.
const (
	ItemTouchpoint = "touchpoint"
	ItemMilestone  = "milestone"
)

// InteractionQuery selects what the trail shows. Mediums, Users and the
// time range [From, To) filter touchpoints (empty means all); the time
// range also bounds milestones. Limit 0 means DefaultTrailLimit.
type InteractionQuery struct {
	View    string
	Mediums []string
	Users   []string
	From    *time.Time
	To      *time.Time
	Limit   int
}

func (q InteractionQuery) normalize() (InteractionQuery, error) {
	switch q.View {
	case "":
		q.View = ViewAll
	case ViewAll, ViewSignals, ViewMilestones:
	default:
		return q, fmt.Errorf("view %q (want all, signals or milestones): %w", q.View, ErrInvalidQuery)
	}
	for _, m := range q.Mediums {
		if !slices.Contains(Mediums(), m) {
			return q, fmt.Errorf("medium %q: %w", m, ErrInvalidQuery)
		}
	}
	for _, u := range q.Users {
		if u == "" {
			return q, fmt.Errorf("empty user id: %w", ErrInvalidQuery)
		}
	}
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		return q, fmt.Errorf("from %s is not before to %s: %w", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), ErrInvalidQuery)
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultTrailLimit
	case q.Limit < 0 || q.Limit > MaxTrailLimit:
		return q, fmt.Errorf("limit %d (want 1 to %d): %w", q.Limit, MaxTrailLimit, ErrInvalidQuery)
	}
	// Non-nil, so the driver sends '{}' rather than NULL.
	q.Mediums = append([]string{}, q.Mediums...)
	q.Users = append([]string{}, q.Users...)
	return q, nil
}

// Trail is the Interactions tab of one lead or contact.
type Trail struct {
	Module         string `json:"module"`
	RecordID       string `json:"record_id"` // the external id
	View           string `json:"view"`
	MilestoneField string `json:"milestone_field"`
	// Items in time order: the newest Limit of Total (touchpoints and
	// milestones in view all, signals in view signals, milestones in view
	// milestones).
	Items     []TrailItem `json:"items"`
	Total     int         `json:"total"`
	Limit     int         `json:"limit"`
	Truncated bool        `json:"truncated"`
	// View signals: follow-ups after the last signal, all collapsed.
	TrailingFollowUps int `json:"trailing_follow_ups,omitempty"`
	// Nil until orphans have been computed for the module.
	Orphan *OrphanState `json:"orphan"`
}

// TrailItem is a touchpoint or a milestone.
type TrailItem struct {
	Type       string      `json:"type"` // "touchpoint" | "milestone"
	At         time.Time   `json:"at"`
	Touchpoint *Touchpoint `json:"touchpoint,omitempty"`
	Milestone  *Milestone  `json:"milestone,omitempty"`
	// View signals, on a signal: the last follow-up since the previous
	// signal, and how many earlier follow-ups of that stretch are collapsed.
	LastFollowUp       *Touchpoint `json:"last_follow_up,omitempty"`
	CollapsedFollowUps int         `json:"collapsed_follow_ups,omitempty"`
	// View milestones: the last touchpoint at or before the milestone.
	LastTouchpoint *Touchpoint `json:"last_touchpoint,omitempty"`
}

// Touchpoint is one activity of the trail.
type Touchpoint struct {
	ID          string       `db:"act_external_id" json:"id"`
	Kind        string       `db:"kind" json:"kind"`
	Medium      string       `db:"medium" json:"medium"`
	Direction   string       `db:"direction" json:"direction"` // "signal" | "follow_up"
	Status      *string      `db:"status" json:"status"`
	UserID      *string      `db:"user_id" json:"user_id"`
	OccurredAt  time.Time    `db:"occurred_at" json:"occurred_at"`
	Subject     *string      `db:"subject" json:"subject"`
	Impressions *Impressions `db:"-" json:"impressions,omitempty"`
	// Seconds since the previous touchpoint shown in this trail; null for
	// the first.
	GapSeconds *float64 `db:"-" json:"gap_seconds"`
}

// Impressions gauge a signal's interest level (survey: questions answered;
// website visit: time spent and pages).
type Impressions struct {
	QuestionsAnswered *int `json:"questions_answered,omitempty"`
	TimeSpentSeconds  *int `json:"time_spent_seconds,omitempty"`
	PagesVisited      *int `json:"pages_visited,omitempty"`
}

// Milestone is a change of the record's tracked picklist.
type Milestone struct {
	Field     string    `json:"field"`
	Old       *string   `json:"old"`
	New       *string   `json:"new"`
	ChangedAt time.Time `json:"changed_at"`
}

// Interactions returns the trail of the org's lead or contact (module
// "leads" or "contacts") with the given external id; ErrNotFound when the
// org has no such record. Filtering, ordering, gaps and the cap happen in
// SQL; the trail and the orphan state are read from one snapshot.
func (db *DB) Interactions(ctx context.Context, orgID int64, module string, externalID string, q InteractionQuery) (Trail, error) {
	m, err := lookupTrailModule(module)
	if err != nil {
		return Trail{}, fmt.Errorf("interactions: %w", err)
	}
	q, err = q.normalize()
	if err != nil {
		return Trail{}, fmt.Errorf("interactions: %w", err)
	}
	trail := Trail{Module: m.name, RecordID: externalID, View: q.View, MilestoneField: m.milestoneField, Limit: q.Limit, Items: []TrailItem{}}

	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Trail{}, fmt.Errorf("interactions: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var recordID int64
	err = tx.GetContext(ctx, &recordID, fmt.Sprintf(`SELECT id FROM %s WHERE org_id = $1 AND external_id = $2`, m.table), orgID, externalID)
	if err != nil {
		return Trail{}, notFound(err, fmt.Sprintf("%s %q", m.name, externalID))
	}
	args := []any{orgID, recordID, pq.Array(q.Mediums), pq.Array(q.Users), q.From, q.To, q.Limit, m.name, m.milestoneField}
	switch q.View {
	case ViewAll:
		err = trailAll(ctx, tx, m, args, &trail)
	case ViewSignals:
		err = trailSignals(ctx, tx, m, args, &trail)
	case ViewMilestones:
		err = trailMilestones(ctx, tx, m, args, &trail)
	}
	if err != nil {
		return Trail{}, fmt.Errorf("interactions of %s %q: %w", m.name, externalID, err)
	}
	trail.Truncated = trail.Total > len(trail.Items)
	if trail.Orphan, err = optionalOrphanStatus(ctx, tx, orgID, m.name, recordID); err != nil {
		return Trail{}, fmt.Errorf("interactions: %w", err)
	}
	return trail, nil
}

// DatePreset turns a time preset of the Interactions tab into the UTC day
// range [from, to) as of now: today, yesterday, last_7_days and
// last_30_days (both counting today).
func DatePreset(preset string, now time.Time) (from, to time.Time, err error) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	tomorrow := today.AddDate(0, 0, 1)
	switch preset {
	case "today":
		return today, tomorrow, nil
	case "yesterday":
		return today.AddDate(0, 0, -1), today, nil
	case "last_7_days":
		return today.AddDate(0, 0, -6), tomorrow, nil
	case "last_30_days":
		return today.AddDate(0, 0, -29), tomorrow, nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("date preset %q (want today, yesterday, last_7_days or last_30_days): %w", preset, ErrInvalidQuery)
}
