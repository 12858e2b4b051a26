package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Record is one record as the API renders it: id (the external id), state,
// the module's fields, lookups as the targets' external ids, attributes,
// created_at and updated_at. Numbers are json.Number, so numeric values
// keep their exact digits; timestamps are RFC 3339 strings in UTC.
type Record map[string]any

// RecordPage is one page of ListRecords; NextCursor is "" on the last page.
type RecordPage struct {
	Records    []Record `json:"records"`
	NextCursor string   `json:"next_cursor"`
}

// Page sizes of ListRecords.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// GetRecord reads one record by its external id; ErrNotFound when the org
// has no such record.
func (db *DB) GetRecord(ctx context.Context, orgID int64, module, externalID string) (Record, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return nil, err
	}
	if !storableID(externalID) {
		return nil, fmt.Errorf("%s %q: %w", m.Name, externalID, ErrNotFound)
	}
	from, args := recordFrom(m, orgID)
	args = append(args, externalID)
	q := `SELECT ` + recordJSON(m) + from + fmt.Sprintf(` AND t.external_id = $%d`, len(args))
	var raw []byte
	if err := db.GetContext(ctx, &raw, q, args...); err != nil {
		return nil, notFound(err, fmt.Sprintf("%s %q", m.Name, externalID))
	}
	return decodeRecord(raw)
}

// ListRecords returns up to limit records of a module in the order they
// were first stored, from cursor on ("" for the first page). A limit
// outside 1..MaxPageSize is taken as DefaultPageSize or MaxPageSize; a
// cursor that ListRecords did not hand out is ErrInvalidCursor.
func (db *DB) ListRecords(ctx context.Context, orgID int64, module string, limit int, cursor string) (RecordPage, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return RecordPage{}, err
	}
	limit, after, err := pageOf(limit, cursor)
	if err != nil {
		return RecordPage{}, err
	}
	from, args := recordFrom(m, orgID)
	args = append(args, after, limit+1)
	q := `SELECT t.id, ` + recordJSON(m) + from +
		fmt.Sprintf(` AND t.id > $%d ORDER BY t.id LIMIT $%d`, len(args)-1, len(args))
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return RecordPage{}, fmt.Errorf("list %s: %w", m.Name, err)
	}
	defer rs.Close()
	page := RecordPage{Records: []Record{}}
	var lastID int64
	for rs.Next() {
		var id int64
		var raw []byte
		if err := rs.Scan(&id, &raw); err != nil {
			return RecordPage{}, fmt.Errorf("list %s: %w", m.Name, err)
		}
		if len(page.Records) == limit {
			page.NextCursor = encodeCursor(lastID)
			break
		}
		rec, err := decodeRecord(raw)
		if err != nil {
			return RecordPage{}, err
		}
		page.Records = append(page.Records, rec)
		lastID = id
	}
	if err := rs.Err(); err != nil {
		return RecordPage{}, fmt.Errorf("list %s: %w", m.Name, err)
	}
	return page, nil
}

// DeleteRecord removes a record and its field history in one transaction;
// rows that hang off it go by their foreign keys (a contact's or lead's
// activities, a deal's line items, ...). ErrNotFound when absent.
func (db *DB) DeleteRecord(ctx context.Context, orgID int64, module, externalID string) error {
	m, err := ModuleByName(module)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s %q", m.Name, externalID)
	if !storableID(externalID) {
		return fmt.Errorf("delete %s: %w", what, ErrNotFound)
	}
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		q := `DELETE FROM ` + m.Table + ` WHERE org_id = $1 AND external_id = $2`
		args := []any{orgID, externalID}
		if m.Custom {
			q += ` AND module = $3`
			args = append(args, m.Name)
		}
		var id int64
		if err := tx.GetContext(ctx, &id, q+` RETURNING id`, args...); err != nil {
			return notFound(err, "delete "+what)
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM field_history WHERE org_id = $1 AND module = $2 AND record_id = $3`,
			orgID, m.Name, id); err != nil {
			return fmt.Errorf("delete field history of %s: %w", what, err)
		}
		return nil
	})
}

// recordFrom is the FROM and WHERE of a module's record query, with the
// lookups joined so they render as external ids.
func recordFrom(m Module, orgID int64) (string, []any) {
	var b strings.Builder
	b.WriteString(" FROM " + m.Table + " t")
	for i, l := range m.Lookups {
		fmt.Fprintf(&b, " LEFT JOIN %s l%d ON l%d.id = t.%s", builtinByName[l.Target].Table, i, i, l.Column)
	}
	b.WriteString(" WHERE t.org_id = $1")
	args := []any{orgID}
	if m.Custom {
		b.WriteString(" AND t.module = $2")
		args = append(args, m.Name)
	}
	return b.String(), args
}

// recordJSON renders one row of m as a JSON object in SQL.
func recordJSON(m Module) string {
	pairs := []string{"'id', t.external_id", "'state', t.state"}
	for _, f := range m.Fields {
		v := "t." + f.Name
		if f.Type == TypeTimestamp {
			v = utcJSON(v)
		}
		pairs = append(pairs, fmt.Sprintf("'%s', %s", f.Name, v))
	}
	for i, l := range m.Lookups {
		pairs = append(pairs, fmt.Sprintf("'%s', l%d.external_id", l.Key, i))
	}
	pairs = append(pairs, "'attributes', t.attributes",
		"'created_at', "+utcJSON("t.created_at"), "'updated_at', "+utcJSON("t.updated_at"))
	return "json_build_object(" + strings.Join(pairs, ", ") + ")"
}

// utcJSON renders a timestamptz as RFC 3339 in UTC, whatever the session's
// time zone.
func utcJSON(col string) string {
	return `to_char(` + col + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
}

// storableID tells whether an id from a URL could name a stored record;
// one that could not (NUL, invalid UTF-8, too long) is simply not found,
// rather than an error from Postgres.
func storableID(id string) bool {
	return checkExternalID(id) == nil && utf8.ValidString(id)
}

func decodeRecord(raw []byte) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// Cursors are opaque to clients; inside, the internal id of the last row
// of the previous page.
const cursorPrefix = "r1:"

// pageOf clamps a page limit to 1..MaxPageSize (DefaultPageSize when not
// positive) and decodes the cursor ("" for the first page).
func pageOf(limit int, cursor string) (int, int64, error) {
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	after, err := decodeCursor(cursor)
	return limit, after, err
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, fmt.Errorf("cursor %q: %w", c, ErrInvalidCursor)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(string(b), cursorPrefix), 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("cursor %q: %w", c, ErrInvalidCursor)
	}
	return id, nil
}

// FieldChange is one recorded change of a tracked picklist.
type FieldChange struct {
	Field     string    `db:"field" json:"field"`
	OldValue  *string   `db:"old_value" json:"old_value"`
	NewValue  *string   `db:"new_value" json:"new_value"`
	ChangedAt time.Time `db:"changed_at" json:"changed_at"`
}

// FieldHistory lists the recorded changes of a record's tracked picklist,
// oldest first; ErrNotFound when the org has no such record. Modules
// without a tracked picklist have an empty history.
func (db *DB) FieldHistory(ctx context.Context, orgID int64, module, externalID string) ([]FieldChange, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return nil, err
	}
	if !storableID(externalID) {
		return nil, fmt.Errorf("%s %q: %w", m.Name, externalID, ErrNotFound)
	}
	from, args := recordFrom(Module{Table: m.Table, Custom: m.Custom, Name: m.Name}, orgID)
	args = append(args, externalID)
	var recordID int64
	if err := db.GetContext(ctx, &recordID, `SELECT t.id`+from+fmt.Sprintf(` AND t.external_id = $%d`, len(args)), args...); err != nil {
		return nil, notFound(err, fmt.Sprintf("%s %q", m.Name, externalID))
	}
	changes := []FieldChange{}
	err = db.SelectContext(ctx, &changes, `
		SELECT field, old_value, new_value, changed_at FROM field_history
		WHERE org_id = $1 AND module = $2 AND record_id = $3
		ORDER BY changed_at, id`, orgID, m.Name, recordID)
	if err != nil {
		return nil, fmt.Errorf("field history of %s %q: %w", m.Name, externalID, err)
	}
	return changes, nil
}
