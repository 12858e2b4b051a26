package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// SummaryGraph reads what a summary of the org's record reads: for
// accounts, contacts, leads and deals the record, its associated records,
// its activities and org-wide figures; for custom modules the record
// alone. ErrNotFound when the org has no such record; ErrInvalidModule for
// a module that has no summaries. Everything is read from one snapshot,
// with a fixed number of queries whatever the size of the graph.
func (db *DB) SummaryGraph(ctx context.Context, orgID int64, module, externalID string) (SummaryGraph, error) {
	g, err := graphOf(module)
	if err != nil {
		return SummaryGraph{}, err
	}
	what := fmt.Sprintf("summary graph of %s %q", g.subject.Name, externalID)
	if !storableID(externalID) {
		return SummaryGraph{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return SummaryGraph{}, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()

	args := g.args(orgID, externalID)
	aggs, err := graphAggregates(ctx, tx, g, args)
	if err != nil {
		return SummaryGraph{}, fmt.Errorf("%s: %w", what, err)
	}
	out := SummaryGraph{
		Related:    []GraphRecord{},
		Activities: []GraphRecord{},
		History:    []FieldChange{},
		Org:        map[string]any{},
	}
	out.DataHash, out.DataAsOf = dataHash(g.subject.Name, aggs)
	for _, a := range aggs {
		if a.Part == partActivities {
			out.ActivityTotal = a.N
		}
	}

	recs, err := graphRecords(ctx, tx, g.recordsSQL(), args)
	if err != nil {
		return SummaryGraph{}, fmt.Errorf("%s: records: %w", what, err)
	}
	for _, r := range recs {
		if r.Level == 0 {
			out.Subject = r
		} else {
			out.Related = append(out.Related, r)
		}
	}
	if len(g.links) > 0 {
		if out.Activities, err = graphRecords(ctx, tx, g.activitiesSQL(), args); err != nil {
			return SummaryGraph{}, fmt.Errorf("%s: activities: %w", what, err)
		}
	}
	// Org figures, locale and the subject's history: one round trip.
	q, qargs := g.contextSQL(args)
	var ctxRow struct {
		Figures  []byte  `db:"figures"`
		History  []byte  `db:"history"`
		Currency *string `db:"currency"`
		TimeZone *string `db:"time_zone"`
	}
	if err := tx.GetContext(ctx, &ctxRow, q, qargs...); err != nil {
		return SummaryGraph{}, fmt.Errorf("%s: org figures, locale and history: %w", what, err)
	}
	out.Locale = DefaultSummaryLocale
	if ctxRow.Currency != nil && ctxRow.TimeZone != nil {
		out.Locale = SummaryLocale{Currency: *ctxRow.Currency, TimeZone: *ctxRow.TimeZone}
	}
	if len(ctxRow.History) > 0 {
		if err := json.Unmarshal(ctxRow.History, &out.History); err != nil {
			return SummaryGraph{}, fmt.Errorf("%s: history: %w", what, err)
		}
		for i := range out.History {
			out.History[i].ChangedAt = out.History[i].ChangedAt.UTC()
		}
	}
	if len(ctxRow.Figures) > 0 {
		dec := json.NewDecoder(bytes.NewReader(ctxRow.Figures))
		dec.UseNumber()
		if err := dec.Decode(&out.Org); err != nil {
			return SummaryGraph{}, fmt.Errorf("%s: org figures: %w", what, err)
		}
	}
	return out, nil
}

// SummaryDataHash is SummaryGraph's DataHash and DataAsOf without reading
// the graph: one query of aggregates (per table of the graph: member count,
// newest updated_at, checksum of ids and update times; the same for the
// record's history). Any insert, update or delete of a member changes it.
// Org-wide figures are not part of it: they are context, and a change
// elsewhere in the org does not make a record's summary stale.
func (db *DB) SummaryDataHash(ctx context.Context, orgID int64, module, externalID string) (hash string, asOf time.Time, err error) {
	g, err := graphOf(module)
	if err != nil {
		return "", time.Time{}, err
	}
	what := fmt.Sprintf("summary data hash of %s %q", g.subject.Name, externalID)
	if !storableID(externalID) {
		return "", time.Time{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	aggs, err := graphAggregates(ctx, db, g, g.args(orgID, externalID))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", what, err)
	}
	hash, asOf = dataHash(g.subject.Name, aggs)
	return hash, asOf, nil
}

// graphAggregate is one part of the data hash.
type graphAggregate struct {
	Ord      int        `db:"ord"`
	Part     string     `db:"part"`
	N        int        `db:"n"`
	Newest   *time.Time `db:"newest"`
	Checksum string     `db:"checksum"`
}

// graphAggregates runs the aggregates of g; ErrNotFound when the subject
// does not exist.
func graphAggregates(ctx context.Context, q sqlx.QueryerContext, g graphDef, args []any) ([]graphAggregate, error) {
	var aggs []graphAggregate
	if err := sqlx.SelectContext(ctx, q, &aggs, g.aggregatesSQL(), args...); err != nil {
		return nil, fmt.Errorf("aggregates: %w", err)
	}
	if len(aggs) == 0 || aggs[0].N == 0 {
		return nil, ErrNotFound
	}
	return aggs, nil
}

// dataHashVersion changes when the graph's definition does, so hashes of
// the old definition never match the new one.
const dataHashVersion = "crmq summary data v1"

// dataHash hashes the aggregates, in their fixed order; asOf is the newest
// time among them.
func dataHash(module string, aggs []graphAggregate) (string, time.Time) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", dataHashVersion, module)
	var asOf time.Time
	for _, a := range aggs {
		var micros int64
		if a.Newest != nil {
			micros = a.Newest.UnixMicro()
			if a.Newest.After(asOf) {
				asOf = *a.Newest
			}
		}
		fmt.Fprintf(h, "%s %d %d %s\n", a.Part, a.N, micros, a.Checksum)
	}
	return hex.EncodeToString(h.Sum(nil)), asOf.UTC()
}

// graphRow is one rendered record of a graph query.
type graphRow struct {
	Ord        int       `db:"ord"`
	Module     string    `db:"module"`
	Level      int       `db:"level"`
	Parent     string    `db:"parent"`
	ExternalID string    `db:"external_id"`
	UpdatedAt  time.Time `db:"updated_at"`
	Fields     []byte    `db:"fields"`
}

func graphRecords(ctx context.Context, tx *sqlx.Tx, q string, args []any) ([]GraphRecord, error) {
	rows, err := tx.QueryxContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []GraphRecord{}
	for rows.Next() {
		var r graphRow
		if err := rows.StructScan(&r); err != nil {
			return nil, err
		}
		fields, err := decodeRecord(r.Fields)
		if err != nil {
			return nil, err
		}
		out = append(out, GraphRecord{
			Module: r.Module, ID: r.ExternalID, Level: r.Level, Parent: r.Parent,
			Fields: fields, UpdatedAt: r.UpdatedAt.UTC(),
		})
	}
	return out, rows.Err()
}

// RecordState is the state of the org's record: active, draft or
// incomplete (seed 000: drafts and incomplete records get no summary);
// ErrNotFound when the org has no such record.
func (db *DB) RecordState(ctx context.Context, orgID int64, module, externalID string) (string, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("state of %s %q", m.Name, externalID)
	if !storableID(externalID) {
		return "", fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	q := `SELECT state FROM ` + m.Table + ` WHERE org_id = $1 AND external_id = $2`
	args := []any{orgID, externalID}
	if m.Custom {
		q += ` AND module = $3`
		args = append(args, m.Name)
	}
	var state string
	if err := db.GetContext(ctx, &state, q, args...); err != nil {
		return "", notFound(err, what)
	}
	return state, nil
}

// AccountHasAssociatedRecords tells whether the org's account has at least
// one associated record (seed 002 asks for one before an account summary):
// a contact, deal, case, success plan, business challenge, objective, KPI,
// playbook, project or activity. ErrNotFound when the org has no such
// account.
func (db *DB) AccountHasAssociatedRecords(ctx context.Context, orgID int64, externalID string) (bool, error) {
	what := fmt.Sprintf("associated records of accounts %q", externalID)
	if !storableID(externalID) {
		return false, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var has bool
	err := db.GetContext(ctx, &has, `
		SELECT EXISTS (SELECT 1 FROM contacts t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM deals t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM cases t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM success_plans t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM business_challenges t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM objectives t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM kpis t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM playbooks t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM projects t WHERE t.org_id = $1 AND t.account_id = a.id)
		    OR EXISTS (SELECT 1 FROM activities t WHERE t.org_id = $1 AND t.account_id = a.id)
		FROM accounts a WHERE a.org_id = $1 AND a.external_id = $2`, orgID, externalID)
	if err != nil {
		return false, notFound(err, what)
	}
	return has, nil
}
