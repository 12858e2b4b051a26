package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// MaxBatchRows is the most records one UpsertRecords call accepts.
const MaxBatchRows = 5000

// Errors of the records API besides ErrNotFound.
var (
	ErrBatchTooLarge = errors.New("batch too large")
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Outcomes of one input row.
const (
	RowCreated = "created"
	RowUpdated = "updated"
	RowError   = "error"
)

// RowResult is what happened to one input row; Index is its position in
// the batch.
type RowResult struct {
	Index      int    `json:"index"`
	ExternalID string `json:"external_id,omitempty"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
}

// UpsertResult answers a batch: one RowResult per input row, in order.
type UpsertResult struct {
	Created int         `json:"created"`
	Updated int         `json:"updated"`
	Failed  int         `json:"failed"`
	Rows    []RowResult `json:"rows"`
}

// UpsertRecords creates or replaces records of one module by external id.
//
// Each row is a JSON object holding the full record: external_id, state
// (active, draft or incomplete; default active), the module's fields by
// column name, lookups by their key holding the target's external id, and
// attributes (custom fields). A field left out is stored as NULL (or the
// column's default), as PUT replaces. Rows of custom modules may also carry
// custom fields at the top level; they go into attributes. Tracked modules
// accept changed_at, the time a change of the tracked picklist is recorded
// at (default now).
//
// A row that does not validate, names a lookup target that does not exist
// in the org, or repeats an external id of an earlier row of the batch is
// reported as an error and skipped; the other rows are stored, all in one
// transaction. The error returned is for failures of the whole call
// (ErrInvalidModule, ErrBatchTooLarge, the database), and then nothing is
// stored.
func (db *DB) UpsertRecords(ctx context.Context, orgID int64, module string, rows []json.RawMessage) (UpsertResult, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return UpsertResult{}, err
	}
	if len(rows) > MaxBatchRows {
		return UpsertResult{}, fmt.Errorf("%d rows, at most %d: %w", len(rows), MaxBatchRows, ErrBatchTooLarge)
	}
	res := UpsertResult{Rows: make([]RowResult, len(rows))}
	rowErrs := make([][]string, len(rows))
	var valid []inputRow
	firstAt := make(map[string]int, len(rows))
	for i, raw := range rows {
		row, errs := parseRow(m, i, raw)
		res.Rows[i] = RowResult{Index: i, ExternalID: row.externalID}
		if row.externalID != "" {
			if j, dup := firstAt[row.externalID]; dup {
				errs = append(errs, fmt.Sprintf("duplicate external_id %q (first at row %d)", row.externalID, j))
			} else {
				firstAt[row.externalID] = i
			}
		}
		rowErrs[i] = errs
		if len(errs) == 0 {
			valid = append(valid, row)
		}
	}

	inserted := make(map[int]bool, len(valid))
	if len(valid) > 0 {
		err = db.InTx(ctx, func(tx *sqlx.Tx) error {
			// One writer per org and module at a time: concurrent batches with
			// overlapping rows cannot deadlock, and the old picklist values
			// read for field history stay true until the upsert.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
				fmt.Sprintf("crmq:ingest:%d:%s", orgID, m.Name)); err != nil {
				return fmt.Errorf("lock %s: %w", m.Name, err)
			}
			resolved, err := resolveLookups(ctx, tx, orgID, m, valid, rowErrs)
			if err != nil {
				return err
			}
			if len(resolved) == 0 {
				return nil
			}
			var old map[string]*string
			if m.Tracked != "" {
				if old, err = trackedValues(ctx, tx, orgID, m, resolved); err != nil {
					return err
				}
			}
			ids, err := upsertRows(ctx, tx, orgID, m, resolved, inserted)
			if err != nil {
				return err
			}
			if m.Tracked != "" {
				return writeHistory(ctx, tx, orgID, m, resolved, ids, old, inserted)
			}
			return nil
		})
		if err != nil {
			return UpsertResult{}, fmt.Errorf("upsert %s: %w", m.Name, err)
		}
	}

	for i := range res.Rows {
		r := &res.Rows[i]
		switch {
		case len(rowErrs[i]) > 0:
			r.Status, r.Error = RowError, strings.Join(rowErrs[i], "; ")
			res.Failed++
		case inserted[i]:
			r.Status = RowCreated
			res.Created++
		default:
			r.Status = RowUpdated
			res.Updated++
		}
	}
	return res, nil
}

// resolveLookups turns the lookups' external ids into internal ids with one
// query per lookup field, and returns the rows whose lookups all exist; the
// others get an error in rowErrs.
func resolveLookups(ctx context.Context, tx *sqlx.Tx, orgID int64, m Module, rows []inputRow, rowErrs [][]string) ([]inputRow, error) {
	for i := range rows {
		rows[i].lookupIDs = make([]*string, len(m.Lookups))
	}
	for l, lk := range m.Lookups {
		seen := map[string]bool{}
		var ext []string
		for _, r := range rows {
			if id := r.lookups[l]; id != nil && !seen[*id] {
				seen[*id] = true
				ext = append(ext, *id)
			}
		}
		if len(ext) == 0 {
			continue
		}
		target := builtinByName[lk.Target]
		q := `SELECT external_id, id::text FROM ` + target.Table + ` WHERE org_id = $1 AND external_id = ANY($2)`
		found := make(map[string]string, len(ext))
		rs, err := tx.QueryContext(ctx, q, orgID, pq.Array(ext))
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", lk.Key, err)
		}
		for rs.Next() {
			var e, id string
			if err := rs.Scan(&e, &id); err != nil {
				rs.Close()
				return nil, fmt.Errorf("resolve %s: %w", lk.Key, err)
			}
			found[e] = id
		}
		if err := rs.Close(); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", lk.Key, err)
		}
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", lk.Key, err)
		}
		for i := range rows {
			id := rows[i].lookups[l]
			if id == nil {
				continue
			}
			if internal, ok := found[*id]; ok {
				rows[i].lookupIDs[l] = &internal
				continue
			}
			rowErrs[rows[i].index] = append(rowErrs[rows[i].index],
				fmt.Sprintf("%s %q not found in %s", lk.Key, *id, lk.Target))
		}
	}
	ok := rows[:0:0]
	for _, r := range rows {
		if len(rowErrs[r.index]) == 0 {
			ok = append(ok, r)
		}
	}
	return ok, nil
}

// trackedValues reads the current value of the tracked picklist of the
// batch's existing records, by external id.
func trackedValues(ctx context.Context, tx *sqlx.Tx, orgID int64, m Module, rows []inputRow) (map[string]*string, error) {
	ext := make([]string, len(rows))
	for i, r := range rows {
		ext[i] = r.externalID
	}
	q := `SELECT external_id, ` + m.Tracked + ` FROM ` + m.Table + ` WHERE org_id = $1 AND external_id = ANY($2)`
	rs, err := tx.QueryContext(ctx, q, orgID, pq.Array(ext))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Tracked, err)
	}
	defer rs.Close()
	old := make(map[string]*string)
	for rs.Next() {
		var e string
		var v *string
		if err := rs.Scan(&e, &v); err != nil {
			return nil, fmt.Errorf("read %s: %w", m.Tracked, err)
		}
		old[e] = v
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Tracked, err)
	}
	return old, nil
}

// upsertRows writes the batch with one INSERT ... ON CONFLICT over unnested
// arrays, and returns the internal id of each row by external id; inserted
// gets the rows that were new, by input index.
func upsertRows(ctx context.Context, tx *sqlx.Tx, orgID int64, m Module, rows []inputRow, inserted map[int]bool) (map[string]int64, error) {
	cols := []string{"external_id", "state"}
	casts := []string{"r.c0", "r.c1"}
	for _, f := range m.Fields {
		casts = append(casts, fmt.Sprintf("r.c%d::%s", len(cols), pgType(f.Type)))
		cols = append(cols, f.Name)
	}
	for _, l := range m.Lookups {
		casts = append(casts, fmt.Sprintf("r.c%d::bigint", len(cols)))
		cols = append(cols, l.Column)
	}
	casts = append(casts, fmt.Sprintf("r.c%d::jsonb", len(cols)))
	cols = append(cols, "attributes")

	arrays := make([]textArray, len(cols))
	for i := range arrays {
		arrays[i] = make(textArray, len(rows))
	}
	for i, r := range rows {
		arrays[0][i] = &r.externalID
		arrays[1][i] = &r.state
		c := 2
		for _, v := range r.values {
			arrays[c][i] = v
			c++
		}
		for _, v := range r.lookupIDs {
			arrays[c][i] = v
			c++
		}
		arrays[c][i] = &r.attributes
	}

	args := []any{orgID}
	keyCols, keyVals := "org_id", "$1"
	if m.Custom {
		args = append(args, m.Name)
		keyCols, keyVals = "org_id, module", "$1, $2"
	}
	params := make([]string, len(cols))
	aliases := make([]string, len(cols))
	for i := range cols {
		args = append(args, arrays[i])
		params[i] = fmt.Sprintf("$%d::text[]", len(args))
		aliases[i] = fmt.Sprintf("c%d", i)
	}
	var set, oldRow, newRow []string
	for _, c := range cols[1:] {
		set = append(set, c+" = EXCLUDED."+c)
		oldRow = append(oldRow, "t."+c)
		newRow = append(newRow, "EXCLUDED."+c)
	}
	q := `INSERT INTO ` + m.Table + ` AS t (` + keyCols + `, ` + strings.Join(cols, ", ") + `)
		SELECT ` + keyVals + `, ` + strings.Join(casts, ", ") + `
		FROM unnest(` + strings.Join(params, ", ") + `) AS r(` + strings.Join(aliases, ", ") + `)
		ON CONFLICT (` + keyCols + `, external_id) DO UPDATE SET ` + strings.Join(set, ", ") + `,
			updated_at = CASE WHEN (` + strings.Join(oldRow, ", ") + `) IS DISTINCT FROM (` + strings.Join(newRow, ", ") + `)
				THEN now() ELSE t.updated_at END
		RETURNING t.id, t.external_id, (t.xmax = 0)`

	index := make(map[string]int, len(rows))
	for _, r := range rows {
		index[r.externalID] = r.index
	}
	rs, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	ids := make(map[string]int64, len(rows))
	for rs.Next() {
		var id int64
		var ext string
		var isNew bool
		if err := rs.Scan(&id, &ext, &isNew); err != nil {
			return nil, err
		}
		ids[ext] = id
		if isNew {
			inserted[index[ext]] = true
		}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	if len(ids) != len(rows) {
		return nil, fmt.Errorf("upsert returned %d rows for %d", len(ids), len(rows))
	}
	return ids, nil
}

// writeHistory records, in one statement, every change of the tracked
// picklist made by the batch, including the first value of a new record.
// A change already recorded with the same new value at the same time is not
// recorded again, so replaying a back-fill (changed_at given) is idempotent.
// Without changed_at a change is dated by this statement, which runs under
// the batch's lock, not by the transaction's start: batches that queued on
// the lock are dated in the order they were applied.
func writeHistory(ctx context.Context, tx *sqlx.Tx, orgID int64, m Module, rows []inputRow, ids map[string]int64, old map[string]*string, inserted map[int]bool) error {
	f, _ := m.field(m.Tracked)
	var recIDs, olds, news, ats textArray
	for _, r := range rows {
		newV := r.values[f]
		var oldV *string
		if !inserted[r.index] {
			oldV = old[r.externalID]
		}
		if equalPtr(oldV, newV) {
			continue
		}
		id := fmt.Sprint(ids[r.externalID])
		recIDs = append(recIDs, &id)
		olds = append(olds, oldV)
		news = append(news, newV)
		ats = append(ats, r.changedAt)
	}
	if len(recIDs) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO field_history (org_id, module, record_id, field, old_value, new_value, changed_at)
		SELECT $1, $2, h.record_id, $3, h.old_value, h.new_value, h.changed_at
		FROM (SELECT r.record_id, r.old_value, r.new_value, COALESCE(r.changed_at, statement_timestamp()) AS changed_at
		      FROM unnest($4::bigint[], $5::text[], $6::text[], $7::timestamptz[])
		           AS r(record_id, old_value, new_value, changed_at)) h
		WHERE NOT EXISTS (
			SELECT 1 FROM field_history f
			WHERE f.org_id = $1 AND f.module = $2 AND f.record_id = h.record_id
			  AND f.changed_at = h.changed_at AND f.field = $3
			  AND f.new_value IS NOT DISTINCT FROM h.new_value)`,
		orgID, m.Name, m.Tracked, recIDs, olds, news, ats)
	if err != nil {
		return fmt.Errorf("field history: %w", err)
	}
	return nil
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func pgType(t FieldType) string {
	switch t {
	case TypeInt:
		return "integer"
	case TypeNumeric:
		return "numeric"
	case TypeBool:
		return "boolean"
	case TypeDate:
		return "date"
	case TypeTimestamp:
		return "timestamptz"
	default:
		return "text"
	}
}

// textArray is a Postgres array literal of text with NULLs, which
// pq.StringArray cannot express; the query casts it to the column type.
type textArray []*string

// Value implements driver.Valuer.
func (a textArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		if s == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(*s); j++ {
			c := (*s)[j]
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}
