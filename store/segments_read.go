package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/crm"
)

// SegmentRef names a segment.
type SegmentRef struct {
	ID   int64  `json:"id" db:"id"`
	Name string `json:"name" db:"name"`
}

// SegmentsUsing lists, by id, the org's segments whose criteria depend on
// technique, so that the technique editor can refuse an edit (seed 004:
// techniques linked to a segment cannot be edited; a label used by a
// segment cannot be modified) and name the segments in its 409.
//
// With no labels, a segment depends on the technique when any of its
// conditions reads a field the technique computes: label.<technique>,
// score.<technique>.* or <technique>.* (e.g. label.rfm, score.rfm.r,
// rfm.recency_days).
//
// With labels, only conditions on label.<technique> count, and one
// depends on a label L of the list when
//   - its operator is positive (equals, in, contains, starts_with) and an
//     account labelled L satisfies it, by the criteria language's own
//     rules (trimmed, ASCII case-insensitive): equals "at risk" depends
//     on "At risk", starts_with "at" on "At risk" and "Attentive";
//   - or its operator is negative (not_equals, not_in, not_contains) or
//     is_empty or is_not_empty: which accounts it keeps changes when any
//     label's accounts change, so it depends on every label.
//
// Scores and raw values do not name a label, so they count only without
// labels. The pattern is not consulted: a condition under NOT is a use
// all the same. What counts is the label's name as the condition states
// it; an edit of one label that moves accounts into or out of another
// (labels are first match wins) is the editor's to foresee, by passing
// the labels such an edit can move accounts between.
func (db *DB) SegmentsUsing(ctx context.Context, orgID int64, technique string, labels []string) ([]SegmentRef, error) {
	return segmentsUsing(ctx, db, orgID, technique, labels)
}

func segmentsUsing(ctx context.Context, q sqlx.QueryerContext, orgID int64, technique string, labels []string) ([]SegmentRef, error) {
	var rows []struct {
		SegmentRef
		Criteria []byte `db:"criteria"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, `SELECT id, name, criteria FROM segments WHERE org_id = $1 ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("segments of org %d: %w", orgID, err)
	}
	out := []SegmentRef{}
	for _, r := range rows {
		var c criteria.Criteria
		if err := json.Unmarshal(r.Criteria, &c); err != nil {
			return nil, fmt.Errorf("segment %d: criteria: %w", r.ID, err)
		}
		if slices.ContainsFunc(c.Conditions, func(cd criteria.Condition) bool { return conditionUses(cd, technique, labels) }) {
			out = append(out, r.SegmentRef)
		}
	}
	return out, nil
}

// conditionUses tells whether one condition depends on the technique, or
// on one of its labels when labels is not empty (see SegmentsUsing).
func conditionUses(cd criteria.Condition, technique string, labels []string) bool {
	labelField := "label." + technique
	if len(labels) == 0 {
		return cd.Field == labelField ||
			strings.HasPrefix(cd.Field, "score."+technique+".") ||
			strings.HasPrefix(cd.Field, technique+".")
	}
	if cd.Field != labelField {
		return false
	}
	if _, neg := criteria.Positive(cd.Op); neg || cd.Op == criteria.IsEmpty {
		return true
	}
	checked, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{cd}}, map[string]criteria.Type{labelField: criteria.Text})
	if err != nil {
		return true // a condition that no longer reads: hold every label rather than guess
	}
	for _, l := range labels {
		if checked.Eval(map[string]any{labelField: l}, time.Time{}) {
			return true
		}
	}
	return false
}

// SegmentDetail is a segment with what GET /v1/segments/{id} shows of its
// members.
type SegmentDetail struct {
	Segment
	Stats SegmentStats `json:"stats"`
}

// SegmentStats describes a segment's members as one snapshot.
type SegmentStats struct {
	Members int `json:"members"`
	// Labels is, per technique whose label segments may name, how many
	// members carry each label and how many none. Unlabelled is apart from
	// the labels so that no label name can be mistaken for it.
	Labels map[string]LabelCounts `json:"labels"`
	// WonRevenue sums the amounts of the members' active won deals (won
	// by the stage rule of store/crm); Average is that total over the
	// members, a member without a won deal counting as zero, rounded to
	// the cent, and null without members. JSON numbers with their exact
	// decimal digits, as records render amounts.
	WonRevenue struct {
		Total   json.Number  `json:"total"`
		Average *json.Number `json:"average"`
	} `json:"won_revenue"`
	TopIndustries []ValueCount `json:"top_industries"` // at most 5, most members first
	TopCountries  []ValueCount `json:"top_countries"`  // at most 5, most members first
}

// LabelCounts is one technique's label distribution over members.
type LabelCounts struct {
	Labels     map[string]int `json:"labels"`
	Unlabelled int            `json:"unlabelled"`
}

// ValueCount is a value and how many members have it.
type ValueCount struct {
	Value string `json:"value" db:"value"`
	Count int    `json:"count" db:"n"`
}

// TopValues is how many values SegmentStats lists per field.
const TopValues = 5

// SegmentDetail reads a segment and describes its members, all from one
// snapshot (a read-only repeatable-read transaction), so the figures
// agree with each other. ErrNotFound when the org has no such segment.
//
// Industry, country and name are the accounts role's mapped fields of
// those names (AccountFields), so an attribute mapped to industry is read
// as a segment criteria reads it; a field the mapping lacks is left out
// (no top values, null in SegmentMembers). A value is trimmed, and a
// blank one is not counted.
func (db *DB) SegmentDetail(ctx context.Context, orgID, segmentID int64) (SegmentDetail, error) {
	src, fields, err := db.segmentCatalog(ctx, orgID)
	if err != nil {
		return SegmentDetail{}, err
	}
	techniques := labelTechniques(fields)
	var d SegmentDetail
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return SegmentDetail{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if d.Segment, err = readSegment(ctx, tx, orgID, segmentID); err != nil {
		return SegmentDetail{}, err
	}
	st := &d.Stats

	// Members and won revenue.
	args := []any{orgID, segmentID, pq.StringArray(crm.WonStages()), crm.Space}
	won := stageSQL{wonP: "$3", spaceP: "$4"}.won("d") // the won stages of store/crm
	var rev struct {
		Members int     `db:"members"`
		Total   string  `db:"total"`
		Average *string `db:"average"`
	}
	err = tx.GetContext(ctx, &rev, `
		WITH m AS (SELECT a.id, `+src.refCol("a")+` AS ref FROM segment_members m JOIN `+src.from("a")+` ON a.id = m.`+src.key+`
		           WHERE m.org_id = $1 AND m.segment_id = $2),
		n AS (SELECT count(*) AS members FROM m),
		w AS (
			SELECT coalesce(sum(d.amount), 0) AS total FROM deals d
			WHERE d.org_id = $1 AND d.state = 'active' AND `+src.dealRef()+` IN (SELECT ref FROM m) AND `+won+`
		)
		SELECT n.members, w.total::text AS total, round(w.total / nullif(n.members, 0), 2)::text AS average FROM n, w`, args...)
	if err != nil {
		return SegmentDetail{}, fmt.Errorf("segment %d won revenue: %w", segmentID, err)
	}
	st.Members = rev.Members
	st.WonRevenue.Total = json.Number(rev.Total)
	if rev.Average != nil {
		avg := json.Number(*rev.Average)
		st.WonRevenue.Average = &avg
	}

	// Label distribution per technique; a blank label is no label.
	var dist []struct {
		Technique string  `db:"technique"`
		Label     *string `db:"label"`
		N         int     `db:"n"`
	}
	err = tx.SelectContext(ctx, &dist, `
		SELECT t.technique, nullif(btrim(l.label, E' \t\n\r\x0b\x0c'), '') AS label, count(*) AS n
		FROM segment_members m CROSS JOIN unnest($3::text[]) AS t (technique)
		LEFT JOIN account_labels l ON l.org_id = $1 AND l.technique = t.technique AND l.`+src.key+` = m.`+src.key+`
		WHERE m.org_id = $1 AND m.segment_id = $2 AND m.`+src.key+` IS NOT NULL
		GROUP BY 1, 2`, orgID, segmentID, pq.StringArray(techniques))
	if err != nil {
		return SegmentDetail{}, fmt.Errorf("segment %d labels: %w", segmentID, err)
	}
	st.Labels = make(map[string]LabelCounts, len(techniques))
	for _, t := range techniques {
		st.Labels[t] = LabelCounts{Labels: map[string]int{}}
	}
	for _, r := range dist {
		lc := st.Labels[r.Technique]
		if r.Label == nil {
			lc.Unlabelled += r.N
		} else {
			lc.Labels[*r.Label] += r.N
		}
		st.Labels[r.Technique] = lc
	}

	// Top industries and countries.
	var top []struct {
		Field string `db:"field"`
		ValueCount
	}
	err = tx.SelectContext(ctx, &top, `
		WITH v AS (
			SELECT nullif(btrim(`+textFieldSQL(fields, "industry")+`), '') AS industry,
			       nullif(btrim(`+textFieldSQL(fields, "country")+`), '') AS country
			FROM segment_members m JOIN `+src.from("a")+` ON a.id = m.`+src.key+`
			WHERE m.org_id = $1 AND m.segment_id = $2
		), c AS (
			SELECT 'industry' AS field, industry AS value, count(*) AS n FROM v WHERE industry IS NOT NULL GROUP BY industry
			UNION ALL
			SELECT 'country', country, count(*) FROM v WHERE country IS NOT NULL GROUP BY country
		), r AS (
			SELECT c.*, row_number() OVER (PARTITION BY field ORDER BY n DESC, value COLLATE "C") AS rank FROM c
		)
		SELECT field, value, n FROM r WHERE rank <= $3 ORDER BY field, rank`, orgID, segmentID, TopValues)
	if err != nil {
		return SegmentDetail{}, fmt.Errorf("segment %d top values: %w", segmentID, err)
	}
	st.TopIndustries, st.TopCountries = []ValueCount{}, []ValueCount{}
	for _, r := range top {
		if r.Field == "industry" {
			st.TopIndustries = append(st.TopIndustries, r.ValueCount)
		} else {
			st.TopCountries = append(st.TopCountries, r.ValueCount)
		}
	}
	return d, nil
}

// labelTechniques are the techniques whose label the catalog offers
// (label.<technique>), sorted.
func labelTechniques(fields map[string]AccountField) []string {
	var out []string
	for name := range fields {
		if t, ok := strings.CutPrefix(name, "label."); ok {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// textFieldSQL is the catalog's text expression of field over the
// account alias a, or a NULL text when the mapping has no such text field.
func textFieldSQL(fields map[string]AccountField, field string) string {
	if f, ok := fields[field]; ok && f.Type == criteria.Text {
		return "(" + f.SQL + ")::text"
	}
	return "NULL::text"
}

// SegmentMember is one member account as the segment's account list shows
// it: its external id, name, industry and country (null when empty or not
// mapped) and what each technique computed for it.
type SegmentMember struct {
	ID       string  `json:"id"`
	Name     *string `json:"name"`
	Industry *string `json:"industry"`
	Country  *string `json:"country"`
	// Labels has an entry for every technique whose label segments may
	// name; Label is null when the technique did not label the account.
	Labels map[string]MemberLabel `json:"labels"`
}

// MemberLabel is a technique's result for an account: its label and, for
// RFM, its r, f and m scores.
type MemberLabel struct {
	Label *string `json:"label"`
	R     *int    `json:"r,omitempty"`
	F     *int    `json:"f,omitempty"`
	M     *int    `json:"m,omitempty"`
}

// SegmentMemberPage is one page of SegmentMembers; NextCursor is "" on
// the last page.
type SegmentMemberPage struct {
	Accounts   []SegmentMember `json:"accounts"`
	NextCursor string          `json:"next_cursor"`
}

// SegmentMembers returns up to limit members of a segment in account id
// order, from cursor on ("" for the first page), keyset-paginated as
// ListRecords is: a limit outside 1..MaxPageSize is taken as
// DefaultPageSize or MaxPageSize, a cursor it did not hand out is
// ErrInvalidCursor. ErrNotFound when the org has no such segment.
func (db *DB) SegmentMembers(ctx context.Context, orgID, segmentID int64, limit int, cursor string) (SegmentMemberPage, error) {
	limit, after, err := pageOf(limit, cursor)
	if err != nil {
		return SegmentMemberPage{}, err
	}
	src, fields, err := db.segmentCatalog(ctx, orgID)
	if err != nil {
		return SegmentMemberPage{}, err
	}
	var one int
	if err := db.GetContext(ctx, &one, `SELECT 1 FROM segments WHERE org_id = $1 AND id = $2`, orgID, segmentID); err != nil {
		return SegmentMemberPage{}, notFound(err, fmt.Sprintf("segment %d", segmentID))
	}
	techniques := labelTechniques(fields)
	blank := func(expr string) string { return "nullif(btrim(" + expr + "), '')" }
	var rows []struct {
		AccountID int64   `db:"account_id"`
		ID        string  `db:"external_id"`
		Name      *string `db:"name"`
		Industry  *string `db:"industry"`
		Country   *string `db:"country"`
		Labels    []byte  `db:"labels"`
	}
	err = db.SelectContext(ctx, &rows, `
		SELECT m.`+src.key+` AS account_id, a.external_id,
		       `+blank(textFieldSQL(fields, "name"))+` AS name,
		       `+blank(textFieldSQL(fields, "industry"))+` AS industry,
		       `+blank(textFieldSQL(fields, "country"))+` AS country,
		       coalesce((SELECT jsonb_object_agg(l.technique, jsonb_build_object('label', l.label, 'r', l.r, 'f', l.f, 'm', l.m))
		                 FROM account_labels l
		                 WHERE l.org_id = $1 AND l.`+src.key+` = a.id AND l.technique = ANY($3)), '{}') AS labels
		FROM segment_members m JOIN `+src.from("a")+` ON a.id = m.`+src.key+`
		WHERE m.org_id = $1 AND m.segment_id = $2 AND m.`+src.key+` > $4
		ORDER BY m.`+src.key+`
		LIMIT $5`, orgID, segmentID, pq.StringArray(techniques), after, limit+1)
	if err != nil {
		return SegmentMemberPage{}, fmt.Errorf("segment %d members: %w", segmentID, err)
	}
	page := SegmentMemberPage{Accounts: make([]SegmentMember, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			page.NextCursor = encodeCursor(rows[i-1].AccountID)
			break
		}
		m := SegmentMember{ID: r.ID, Name: r.Name, Industry: r.Industry, Country: r.Country, Labels: map[string]MemberLabel{}}
		var got map[string]MemberLabel
		if err := json.Unmarshal(r.Labels, &got); err != nil {
			return SegmentMemberPage{}, fmt.Errorf("segment %d member %s labels: %w", segmentID, r.ID, err)
		}
		for _, t := range techniques {
			m.Labels[t] = got[t]
		}
		page.Accounts = append(page.Accounts, m)
	}
	return page, nil
}
