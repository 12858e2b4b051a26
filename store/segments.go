package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/crmq/crmq/store/criteria"
)

// Limits on segments.
const (
	MaxSegments         = 100  // segments of one org
	MaxSegmentNameRunes = 100  // characters of a name
	MaxSegmentDescRunes = 1000 // characters of a description
)

// Segment is a named criteria over the org's accounts (their fields, the
// labels and scores the techniques computed) and its materialised
// membership: MemberCount accounts as of ComputedAt.
type Segment struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Criteria    criteria.Criteria `json:"criteria"`
	MemberCount int               `json:"member_count"`
	ComputedAt  *time.Time        `json:"computed_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// SegmentInput is what a client gives to create or replace a segment.
type SegmentInput struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Criteria    *criteria.Criteria `json:"criteria"`
}

// ErrInvalidSegment matches (errors.Is) every SegmentErrors.
var ErrInvalidSegment = errors.New("invalid segment")

// SegmentErrors says what is wrong with a segment, by field: "name",
// "description", or the criteria's own keys under "criteria."
// ("criteria.conditions[1].value", "criteria.pattern"), which name the
// condition at fault.
type SegmentErrors map[string]string

func (e SegmentErrors) Error() string { return fieldErrors("invalid segment", e) }

// Is makes SegmentErrors match ErrInvalidSegment.
func (e SegmentErrors) Is(target error) bool { return target == ErrInvalidSegment }

// checkSegment checks in against the org's segment fields and returns
// its criteria, every condition list non-nil, or SegmentErrors naming
// every problem.
func checkSegment(in SegmentInput, fields map[string]AccountField) (criteria.Criteria, error) {
	errs := SegmentErrors{}
	if !validSegmentName(in.Name) {
		errs["name"] = "1 to 100 printable characters, not starting or ending with a space"
	}
	if !validSegmentDescription(in.Description) {
		errs["description"] = "at most 1000 printable characters (newlines and tabs allowed)"
	}
	var c criteria.Criteria
	if in.Criteria == nil {
		errs["criteria"] = "required: a criteria over account fields, technique labels and scores"
	} else {
		c = *in.Criteria
		if c.Conditions == nil {
			c.Conditions = []criteria.Condition{}
		}
		if _, err := criteria.Check(c, fieldTypes(fields)); err != nil {
			var ce criteria.Errors
			if !errors.As(err, &ce) {
				return c, err
			}
			for k, v := range ce {
				errs["criteria."+k] = v
			}
		}
	}
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

func validSegmentName(s string) bool {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < 1 || n > MaxSegmentNameRunes || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validSegmentDescription(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxSegmentDescRunes {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// segmentRow is a segments row as read.
type segmentRow struct {
	ID          int64      `db:"id"`
	Name        string     `db:"name"`
	Description string     `db:"description"`
	Criteria    []byte     `db:"criteria"`
	MemberCount int        `db:"member_count"`
	ComputedAt  *time.Time `db:"computed_at"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

const segmentColumns = `id, name, description, criteria, member_count, computed_at, created_at, updated_at`

func (r segmentRow) segment() (Segment, error) {
	s := Segment{ID: r.ID, Name: r.Name, Description: r.Description, MemberCount: r.MemberCount,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.ComputedAt != nil {
		t := r.ComputedAt.UTC()
		s.ComputedAt = &t
	}
	if err := json.Unmarshal(r.Criteria, &s.Criteria); err != nil {
		return Segment{}, fmt.Errorf("segment %d: criteria: %w", r.ID, err)
	}
	if s.Criteria.Conditions == nil {
		s.Criteria.Conditions = []criteria.Condition{}
	}
	return s, nil
}

// CreateSegment checks in (SegmentErrors when it is wrong), stores the
// segment and computes its membership as of now, in one transaction: a
// segment is never seen without its members. ErrConflict when the name is
// taken or the org already has MaxSegments segments.
func (db *DB) CreateSegment(ctx context.Context, orgID int64, in SegmentInput, now time.Time) (Segment, error) {
	sc, c, raw, err := db.prepareSegment(ctx, orgID, in, now)
	if err != nil {
		return Segment{}, err
	}
	var id int64
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		// The org row's lock makes counting and inserting one step, so two
		// creations cannot both take the last place, and orders this write
		// with technique edits, which check under it that no segment reads
		// what they change. The count is a
		// statement of its own: one taken in the locking statement would
		// read the snapshot from before the wait for the lock.
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, orgID); err != nil {
			return notFound(err, fmt.Sprintf("org %d", orgID))
		}
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM segments WHERE org_id = $1`, orgID); err != nil {
			return fmt.Errorf("count segments: %w", err)
		}
		if n >= MaxSegments {
			return fmt.Errorf("the org has %d segments, the most it may have; delete one first: %w", MaxSegments, ErrConflict)
		}
		err := tx.GetContext(ctx, &id, `
			INSERT INTO segments (org_id, name, description, criteria) VALUES ($1, $2, $3, $4) RETURNING id`,
			orgID, in.Name, in.Description, raw)
		if isUniqueViolation(err) {
			return errNameTaken(in.Name)
		}
		if err != nil {
			return fmt.Errorf("create segment: %w", err)
		}
		_, err = recomputeSegment(ctx, tx, orgID, id, c, sc)
		return err
	})
	if err != nil {
		return Segment{}, err
	}
	return db.Segment(ctx, orgID, id)
}

// prepareSegment checks in against the org's fields as of now and returns
// the scope to compute its membership in, its criteria and their JSON.
func (db *DB) prepareSegment(ctx context.Context, orgID int64, in SegmentInput, now time.Time) (segmentScope, criteria.Criteria, []byte, error) {
	sc, err := db.segmentScope(ctx, orgID, now)
	if err != nil {
		return segmentScope{}, criteria.Criteria{}, nil, err
	}
	c, err := checkSegment(in, sc.fields)
	if err != nil {
		return segmentScope{}, criteria.Criteria{}, nil, err
	}
	raw, err := json.Marshal(c)
	return sc, c, raw, err
}

// UpdateSegment replaces a segment's name, description and criteria
// (checked as CreateSegment checks them) and recomputes its membership as
// of now, in one transaction. ErrNotFound when the org has no such
// segment, ErrConflict when another of its segments has the name.
func (db *DB) UpdateSegment(ctx context.Context, orgID, segmentID int64, in SegmentInput, now time.Time) (Segment, error) {
	sc, c, raw, err := db.prepareSegment(ctx, orgID, in, now)
	if err != nil {
		return Segment{}, err
	}
	what := fmt.Sprintf("segment %d", segmentID)
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		// The org row's lock orders this write with technique edits,
		// which check under it that no segment reads what they change.
		var one int
		if err := tx.GetContext(ctx, &one, `SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, orgID); err != nil {
			return notFound(err, fmt.Sprintf("org %d", orgID))
		}
		err := tx.GetContext(ctx, &one, `
			UPDATE segments SET name = $3, description = $4, criteria = $5, updated_at = now()
			WHERE org_id = $1 AND id = $2 RETURNING 1`, orgID, segmentID, in.Name, in.Description, raw)
		if isUniqueViolation(err) {
			return errNameTaken(in.Name)
		}
		if err != nil {
			return notFound(err, what)
		}
		_, err = recomputeSegment(ctx, tx, orgID, segmentID, c, sc)
		return err
	})
	if err != nil {
		return Segment{}, err
	}
	return db.Segment(ctx, orgID, segmentID)
}

// DeleteSegment removes a segment and its membership; the techniques and
// labels it read are no longer held by it (SegmentsUsing). ErrNotFound
// when the org has no such segment.
func (db *DB) DeleteSegment(ctx context.Context, orgID, segmentID int64) error {
	res, err := db.ExecContext(ctx, `DELETE FROM segments WHERE org_id = $1 AND id = $2`, orgID, segmentID)
	if err != nil {
		return fmt.Errorf("delete segment %d: %w", segmentID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("segment %d: %w", segmentID, ErrNotFound)
	}
	return nil
}

// Segment reads one segment; ErrNotFound when the org has no such one.
func (db *DB) Segment(ctx context.Context, orgID, segmentID int64) (Segment, error) {
	return readSegment(ctx, db, orgID, segmentID)
}

func readSegment(ctx context.Context, q sqlx.QueryerContext, orgID, segmentID int64) (Segment, error) {
	var r segmentRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+segmentColumns+` FROM segments WHERE org_id = $1 AND id = $2`, orgID, segmentID)
	if err != nil {
		return Segment{}, notFound(err, fmt.Sprintf("segment %d", segmentID))
	}
	return r.segment()
}

// Segments lists the org's segments by name (at most MaxSegments).
func (db *DB) Segments(ctx context.Context, orgID int64) ([]Segment, error) {
	var rows []segmentRow
	err := db.SelectContext(ctx, &rows, `SELECT `+segmentColumns+` FROM segments WHERE org_id = $1 ORDER BY lower(name), id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("segments of org %d: %w", orgID, err)
	}
	out := make([]Segment, 0, len(rows))
	for _, r := range rows {
		s, err := r.segment()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func errNameTaken(name string) error {
	return fmt.Errorf("segment name %q is taken in this org (names compare without case): %w", name, ErrConflict)
}
