package store

import (
	"context"
	"fmt"
	"strings"
)

// RowCounts is how many records an org holds per module (built-in modules
// always present, custom modules when they have rows) and how many field
// history rows.
type RowCounts struct {
	Modules      map[string]int64 `json:"modules"`
	FieldHistory int64            `json:"field_history"`
}

// CountRows counts the org's records per module, in one query.
func (db *DB) CountRows(ctx context.Context, orgID int64) (RowCounts, error) {
	var parts []string
	for _, m := range builtins {
		parts = append(parts, fmt.Sprintf(`SELECT '%s' AS module, count(*) AS n FROM %s WHERE org_id = $1`, m.Name, m.Name))
	}
	parts = append(parts,
		`SELECT module, count(*) FROM records WHERE org_id = $1 GROUP BY module`,
		`SELECT NULL, count(*) FROM field_history WHERE org_id = $1`)
	rs, err := db.QueryContext(ctx, strings.Join(parts, " UNION ALL "), orgID)
	if err != nil {
		return RowCounts{}, fmt.Errorf("count rows: %w", err)
	}
	defer rs.Close()
	c := RowCounts{Modules: map[string]int64{}}
	for rs.Next() {
		var module *string
		var n int64
		if err := rs.Scan(&module, &n); err != nil {
			return RowCounts{}, fmt.Errorf("count rows: %w", err)
		}
		if module == nil {
			c.FieldHistory = n
		} else {
			c.Modules[*module] = n
		}
	}
	if err := rs.Err(); err != nil {
		return RowCounts{}, fmt.Errorf("count rows: %w", err)
	}
	return c, nil
}

// RowDigests fingerprints an org's records: per module, an MD5 over its
// rows as GetRecord renders them without created_at and updated_at, in
// external id order; per tracked module, one over its field history.
// Lookups render as external ids, so two orgs holding the same data have
// the same digests whatever their internal ids.
type RowDigests struct {
	Modules      map[string]string `json:"modules"`
	FieldHistory map[string]string `json:"field_history"`
}

// Digests computes the org's RowDigests; it reads every row, so it is meant
// for tests and operators, not for request paths.
func (db *DB) Digests(ctx context.Context, orgID int64) (RowDigests, error) {
	d := RowDigests{Modules: map[string]string{}, FieldHistory: map[string]string{}}
	var custom []string
	if err := db.SelectContext(ctx, &custom,
		`SELECT DISTINCT module FROM records WHERE org_id = $1 ORDER BY module`, orgID); err != nil {
		return RowDigests{}, fmt.Errorf("digests: %w", err)
	}
	names := append(BuiltinModules(), custom...)
	for _, name := range names {
		m, err := ModuleByName(name)
		if err != nil {
			return RowDigests{}, err
		}
		from, args := recordFrom(m, orgID)
		q := `SELECT md5(coalesce(string_agg((` + recordJSON(m) + `::jsonb - 'created_at' - 'updated_at')::text,
			E'\n' ORDER BY t.external_id), ''))` + from
		var sum string
		if err := db.GetContext(ctx, &sum, q, args...); err != nil {
			return RowDigests{}, fmt.Errorf("digest %s: %w", name, err)
		}
		d.Modules[name] = sum
		if m.Tracked == "" {
			continue
		}
		q = `SELECT md5(coalesce(string_agg(json_build_array(t.external_id, h.field, h.old_value, h.new_value, ` +
			utcJSON("h.changed_at") + `)::text, E'\n' ORDER BY t.external_id, h.changed_at, h.field, h.old_value, h.new_value), ''))
			FROM field_history h JOIN ` + m.Table + ` t ON t.id = h.record_id
			WHERE h.org_id = $1 AND h.module = $2`
		if err := db.GetContext(ctx, &sum, q, orgID, m.Name); err != nil {
			return RowDigests{}, fmt.Errorf("digest %s history: %w", name, err)
		}
		d.FieldHistory[name] = sum
	}
	return d, nil
}
