package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// EnrichProposal is one field of an enrichment: the account's value when
// the site was read, the value found, and how it was found.
type EnrichProposal struct {
	Field      string  `json:"field"`
	Current    any     `json:"current"`
	Proposed   any     `json:"proposed"`
	Found      bool    `json:"found"`
	Source     string  `json:"source,omitempty"` // json-ld, microdata, opengraph, meta, page text, html, dns, llm, contacts
	URL        string  `json:"url,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
	Evidence   string  `json:"evidence,omitempty"`
}

// Enrichment is one enriched record.
type Enrichment struct {
	ID            string           `json:"id" db:"id"`
	JobID         string           `json:"job_id" db:"job_id"`
	AccountRowID  int64            `json:"-" db:"account_id"`
	Account       string           `json:"account_id" db:"external_id"`
	Mode          string           `json:"mode" db:"mode"`
	State         string           `json:"state" db:"state"`
	Reason        *string          `json:"reason" db:"reason"`
	Detail        *string          `json:"detail,omitempty" db:"detail"`
	Website       *string          `json:"website" db:"website"`
	WebsiteSource *string          `json:"website_source,omitempty" db:"website_source"`
	Fields        pq.StringArray   `json:"fields" db:"fields"`
	Proposals     []EnrichProposal `json:"proposals" db:"-"`
	Site          json.RawMessage  `json:"site,omitempty" db:"-"`
	Written       pq.StringArray   `json:"written" db:"written"`
	CreatedAt     time.Time        `json:"created_at" db:"created_at"`
	AppliedAt     *time.Time       `json:"applied_at" db:"applied_at"`

	ProposalsJSON []byte `json:"-" db:"proposals"`
	SiteJSON      []byte `json:"-" db:"site"`
}

// SaveEnrichment writes a record's enrichment, replacing the row of the
// same id (a retried task).
func (db *DB) SaveEnrichment(ctx context.Context, orgID int64, e Enrichment) error {
	return saveEnrichment(ctx, db, orgID, e)
}

func saveEnrichment(ctx context.Context, q sqlx.ExecerContext, orgID int64, e Enrichment) error {
	props, err := json.Marshal(e.Proposals)
	if err != nil {
		return fmt.Errorf("enrichment %s proposals: %w", e.ID, err)
	}
	if e.Written == nil {
		e.Written = pq.StringArray{}
	}
	var site []byte
	if len(e.Site) > 0 {
		site = e.Site
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO enrichments (id, org_id, job_id, account_id, mode, state, reason, detail, website, website_source, fields, proposals, site, written, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, detail = EXCLUDED.detail,
			website = EXCLUDED.website, website_source = EXCLUDED.website_source, fields = EXCLUDED.fields,
			proposals = EXCLUDED.proposals, site = EXCLUDED.site, written = EXCLUDED.written, created_at = EXCLUDED.created_at`,
		e.ID, orgID, e.JobID, e.AccountRowID, e.Mode, e.State, e.Reason, e.Detail, e.Website, e.WebsiteSource,
		pq.StringArray(e.Fields), props, site, pq.StringArray(e.Written), e.CreatedAt)
	if err != nil {
		return fmt.Errorf("save enrichment %s: %w", e.ID, err)
	}
	return nil
}

const enrichmentCols = `e.id, e.job_id, e.account_id, a.external_id, e.mode, e.state, e.reason, e.detail, e.website,
	e.website_source, e.fields, e.proposals, e.site, e.written, e.created_at, e.applied_at`

func (e *Enrichment) decode() error {
	if err := json.Unmarshal(e.ProposalsJSON, &e.Proposals); err != nil {
		return fmt.Errorf("enrichment %s proposals: %w", e.ID, err)
	}
	if e.Proposals == nil {
		e.Proposals = []EnrichProposal{}
	}
	if len(e.SiteJSON) > 0 {
		e.Site = e.SiteJSON
	}
	if e.Written == nil {
		e.Written = pq.StringArray{}
	}
	return nil
}

// GetEnrichment reads one enrichment of the org.
func (db *DB) GetEnrichment(ctx context.Context, orgID int64, id string) (Enrichment, error) {
	var e Enrichment
	err := db.GetContext(ctx, &e, `SELECT `+enrichmentCols+` FROM enrichments e JOIN accounts a ON a.id = e.account_id
		WHERE e.org_id = $1 AND e.id = $2`, orgID, id)
	if err != nil {
		return Enrichment{}, notFound(err, "enrichment "+id)
	}
	return e, e.decode()
}

// AccountEnrichments lists an account's enrichments, newest first (at most 50).
func (db *DB) AccountEnrichments(ctx context.Context, orgID int64, external string) ([]Enrichment, error) {
	var id int64
	if err := db.GetContext(ctx, &id, `SELECT id FROM accounts WHERE org_id = $1 AND external_id = $2`, orgID, external); err != nil {
		return nil, notFound(err, "account "+external)
	}
	var out []Enrichment
	if err := db.SelectContext(ctx, &out, `SELECT `+enrichmentCols+` FROM enrichments e JOIN accounts a ON a.id = e.account_id
		WHERE e.org_id = $1 AND e.account_id = $2 ORDER BY e.created_at DESC, e.id LIMIT 50`, orgID, id); err != nil {
		return nil, fmt.Errorf("enrichments of %s: %w", external, err)
	}
	for i := range out {
		if err := out[i].decode(); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []Enrichment{}
	}
	return out, nil
}

// JobEnrichments lists a job's enriched records (a bulk's), by account row id.
func (db *DB) JobEnrichments(ctx context.Context, orgID int64, jobID string) ([]Enrichment, error) {
	var out []Enrichment
	if err := db.SelectContext(ctx, &out, `SELECT `+enrichmentCols+` FROM enrichments e JOIN accounts a ON a.id = e.account_id
		WHERE e.org_id = $1 AND e.job_id = $2 ORDER BY e.account_id`, orgID, jobID); err != nil {
		return nil, fmt.Errorf("enrichments of job %s: %w", jobID, err)
	}
	for i := range out {
		if err := out[i].decode(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EnrichChange is one field a single enrichment changed: its exact old
// and new values.
type EnrichChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// ErrEnrichmentNotApplicable: the enrichment has no proposal to apply
// (it failed, or it was a bulk one, which writes by itself).
var ErrEnrichmentNotApplicable = errors.New("enrichment cannot be applied")

// ApplyEnrichment writes the accepted fields of a single enrichment to its
// account (the seed's consent step) and records the exact changes in the
// history. Fields not named are left as they are.
func (db *DB) ApplyEnrichment(ctx context.Context, orgID int64, id string, fields []string, userID string, now time.Time) ([]EnrichChange, error) {
	if err := checkEnrichFields(fields, false); err != nil {
		return nil, err
	}
	var changes []EnrichChange
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var e Enrichment
		if err := tx.GetContext(ctx, &e, `SELECT `+enrichmentCols+` FROM enrichments e JOIN accounts a ON a.id = e.account_id
			WHERE e.org_id = $1 AND e.id = $2 FOR UPDATE OF e`, orgID, id); err != nil {
			return notFound(err, "enrichment "+id)
		}
		if err := e.decode(); err != nil {
			return err
		}
		if e.Mode != "single" || e.State != "succeeded" {
			return fmt.Errorf("enrichment %s is a %s enrichment that %s: %w", id, e.Mode, e.State, ErrEnrichmentNotApplicable)
		}
		values := map[string]any{}
		errs := EnrichmentErrors{}
		for i, f := range fields {
			j := slices.IndexFunc(e.Proposals, func(p EnrichProposal) bool { return p.Field == f })
			if j < 0 || !e.Proposals[j].Found {
				errs[fmt.Sprintf("fields[%d]", i)] = fmt.Sprintf("the enrichment has no proposed value for %q", f)
				continue
			}
			values[f] = e.Proposals[j].Proposed
		}
		if len(errs) > 0 {
			return errs
		}
		var err error
		if changes, err = writeFields(ctx, tx, orgID, e.AccountRowID, values, false, now); err != nil {
			return err
		}
		b, err := json.Marshal(changes)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO enrichment_history (org_id, kind, job_id, enrichment_id, account_id, account, user_id, changes, records, created_at)
			VALUES ($1, 'single', $2, $3, $4, $5, nullif($6, ''), $7, 1, $8)`, orgID, e.JobID, e.ID, e.AccountRowID, e.Account, userID, b, now); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE enrichments SET applied_at = $2,
			written = ARRAY(SELECT DISTINCT unnest(written || $3::text[]) ORDER BY 1) WHERE id = $1`, e.ID, now, pq.StringArray(fields))
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// WriteEmptyFields writes a bulk enrichment's found values into the
// account's fields that are empty, never over a value; it answers the
// fields written.
func (db *DB) WriteEmptyFields(ctx context.Context, orgID, accountID int64, proposals []EnrichProposal, now time.Time) ([]string, error) {
	values := map[string]any{}
	for _, p := range proposals {
		if p.Found {
			values[p.Field] = p.Proposed
		}
	}
	var written []string
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		changes, err := writeFields(ctx, tx, orgID, accountID, values, true, now)
		for _, c := range changes {
			written = append(written, c.Field)
		}
		return err
	})
	slices.Sort(written)
	return written, err
}

// writeFields sets the account's catalog fields to values (only the empty
// ones when onlyEmpty) under a row lock, and answers what changed.
func writeFields(ctx context.Context, tx *sqlx.Tx, orgID, accountID int64, values map[string]any, onlyEmpty bool, now time.Time) ([]EnrichChange, error) {
	var row accountRow
	if err := tx.GetContext(ctx, &row, `SELECT `+accountCols+` FROM accounts WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, accountID); err != nil {
		return nil, notFound(err, fmt.Sprintf("account %d", accountID))
	}
	cur, err := row.target()
	if err != nil {
		return nil, err
	}
	changes := []EnrichChange{}
	sets := []string{}
	args := []any{orgID, accountID, now}
	attrs := map[string]any{}
	for _, f := range EnrichFields { // catalog order: stable history
		v, ok := values[f.Key]
		if !ok || emptyValue(v) {
			continue
		}
		old := cur.Values[f.Key]
		if onlyEmpty && !emptyValue(old) {
			continue
		}
		v, err := typed(f, v)
		if err != nil {
			return nil, err
		}
		if sameValue(old, v) {
			continue
		}
		changes = append(changes, EnrichChange{Field: f.Key, Old: old, New: v})
		if f.Column != "" {
			args = append(args, v)
			// f.Column comes from the catalog, never from input.
			sets = append(sets, fmt.Sprintf("%s = $%d", f.Column, len(args)))
		} else {
			attrs[f.Attribute] = v
		}
	}
	if len(changes) == 0 {
		return changes, nil
	}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return nil, err
		}
		args = append(args, b)
		sets = append(sets, fmt.Sprintf("attributes = attributes || $%d::jsonb", len(args)))
	}
	q := "UPDATE accounts SET updated_at = $3"
	for _, s := range sets {
		q += ", " + s
	}
	if _, err := tx.ExecContext(ctx, q+" WHERE org_id = $1 AND id = $2", args...); err != nil {
		return nil, fmt.Errorf("write enriched fields: %w", err)
	}
	return changes, nil
}

// typed converts a proposed value to the field's type.
func typed(f EnrichField, v any) (any, error) {
	switch f.Type {
	case "integer":
		switch n := v.(type) {
		case float64:
			if n != math.Trunc(n) || n < 0 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%s: %v is not a count", f.Key, n)
			}
			return int64(n), nil
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		}
	case "list":
		switch l := v.(type) {
		case []any:
			out := make([]string, 0, len(l))
			for _, x := range l {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("%s: list of text expected", f.Key)
				}
				out = append(out, s)
			}
			return out, nil
		case []string:
			return l, nil
		}
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s: %T is not a %s value", f.Key, v, f.Type)
}

// sameValue compares a stored value with a typed new one by their JSON.
func sameValue(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

const accountCols = `id, external_id, name, industry, employees, website, city, country, attributes`

type accountRow struct {
	ID         int64   `db:"id"`
	ExternalID string  `db:"external_id"`
	Name       string  `db:"name"`
	Industry   *string `db:"industry"`
	Employees  *int64  `db:"employees"`
	Website    *string `db:"website"`
	City       *string `db:"city"`
	Country    *string `db:"country"`
	Attributes []byte  `db:"attributes"`
}

func (r accountRow) target() (EnrichTarget, error) {
	t := EnrichTarget{ID: r.ID, ExternalID: r.ExternalID, Name: r.Name, Values: map[string]any{}}
	var attrs map[string]any
	if err := json.Unmarshal(r.Attributes, &attrs); err != nil {
		return t, fmt.Errorf("account %d attributes: %w", r.ID, err)
	}
	put := func(k string, v any) {
		if !emptyValue(v) {
			t.Values[k] = v
		}
	}
	str := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	put("name", r.Name)
	put("industry", str(r.Industry))
	if r.Employees != nil {
		put("employees", *r.Employees)
	}
	put("website", str(r.Website))
	put("city", str(r.City))
	put("country", str(r.Country))
	for _, f := range EnrichFields {
		if f.Attribute != "" {
			if v, ok := attrs[f.Attribute]; ok {
				if n, isNum := v.(float64); isNum && f.Type == "integer" && n == math.Trunc(n) {
					v = int64(n)
				}
				put(f.Key, v)
			}
		}
	}
	if r.Website != nil {
		t.Website = *r.Website
	}
	return t, nil
}

// SaveBulkHistory records a bulk enrichment as one history entry with its
// count of enriched records (rewritten when the task is retried).
func (db *DB) SaveBulkHistory(ctx context.Context, orgID int64, jobID, userID string, records int, now time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO enrichment_history (org_id, kind, job_id, user_id, records, created_at)
		VALUES ($1, 'bulk', $2, nullif($3, ''), $4, $5)
		ON CONFLICT (job_id) WHERE kind = 'bulk' DO UPDATE SET records = EXCLUDED.records, created_at = EXCLUDED.created_at`,
		orgID, jobID, userID, records, now)
	if err != nil {
		return fmt.Errorf("bulk history: %w", err)
	}
	return nil
}

// HistoryEntry is one line of the History tab.
type HistoryEntry struct {
	ID           int64          `json:"-" db:"id"`
	Kind         string         `json:"kind" db:"kind"`
	JobID        string         `json:"job_id" db:"job_id"`
	EnrichmentID *string        `json:"enrichment_id,omitempty" db:"enrichment_id"`
	Account      *string        `json:"account_id,omitempty" db:"account"`
	UserID       *string        `json:"user_id,omitempty" db:"user_id"`
	Changes      []EnrichChange `json:"changes,omitempty" db:"-"`
	Records      *int           `json:"records" db:"records"`
	CreatedAt    time.Time      `json:"created_at" db:"created_at"`
	ChangesJSON  []byte         `json:"-" db:"changes"`
}

// HistoryPage is a page of history, newest first.
type HistoryPage struct {
	Entries    []HistoryEntry `json:"entries"`
	NextCursor *string        `json:"next_cursor"`
}

// EnrichmentHistory pages through the org's history, newest first.
func (db *DB) EnrichmentHistory(ctx context.Context, orgID int64, limit int, cursor string) (HistoryPage, error) {
	limit, before, err := pageOf(limit, cursor)
	if err != nil {
		return HistoryPage{}, err
	}
	if before == 0 {
		before = math.MaxInt64
	}
	var rows []HistoryEntry
	if err := db.SelectContext(ctx, &rows, `SELECT id, kind, job_id, enrichment_id, account, user_id, changes, records, created_at
		FROM enrichment_history WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, orgID, before, limit+1); err != nil {
		return HistoryPage{}, fmt.Errorf("enrichment history: %w", err)
	}
	page := HistoryPage{Entries: make([]HistoryEntry, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			c := encodeCursor(rows[i-1].ID)
			page.NextCursor = &c
			break
		}
		if r.Kind == "single" {
			if err := json.Unmarshal(r.ChangesJSON, &r.Changes); err != nil {
				return HistoryPage{}, fmt.Errorf("history %d: %w", r.ID, err)
			}
		}
		page.Entries = append(page.Entries, r)
	}
	return page, nil
}

// EnrichStat is one day's and reason's count of enriched records.
type EnrichStat struct {
	Day       string  `json:"day" db:"day"`
	Mode      string  `json:"mode" db:"mode"`
	State     string  `json:"state" db:"state"`
	Reason    *string `json:"reason" db:"reason"`
	Records   int     `json:"records" db:"records"`
	DayTotal  int     `json:"-" db:"day_total"`
	RateOfDay float64 `json:"rate" db:"-"` // share of the day's records
}

// EnrichmentStats counts the org's enriched records per UTC day, mode,
// outcome and failure reason over the last days days.
func (db *DB) EnrichmentStats(ctx context.Context, orgID int64, since time.Time) ([]EnrichStat, error) {
	var out []EnrichStat
	err := db.SelectContext(ctx, &out, `
		SELECT to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, mode, state, reason, count(*) AS records,
		       sum(count(*)) OVER (PARTITION BY (created_at AT TIME ZONE 'UTC')::date) AS day_total
		FROM enrichments WHERE org_id = $1 AND created_at >= $2
		GROUP BY 1, (created_at AT TIME ZONE 'UTC')::date, mode, state, reason
		ORDER BY 1 DESC, mode, state, reason NULLS FIRST`, orgID, since)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("enrichment stats: %w", err)
	}
	for i := range out {
		out[i].RateOfDay = math.Round(float64(out[i].Records)/float64(out[i].DayTotal)*1000) / 1000
	}
	if out == nil {
		out = []EnrichStat{}
	}
	return out, nil
}
