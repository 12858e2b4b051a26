package store

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/criteria"
)

// ABMMapping returns the org's mapping with its defaults filled in; the
// defaults alone (UpdatedAt nil) when the org has saved none. A stored
// mapping is resolved again on reading, so a column added to a built-in
// module later maps itself.
func (db *DB) ABMMapping(ctx context.Context, orgID int64) (ABMMapping, error) {
	return readABMMapping(ctx, db, orgID)
}

func readABMMapping(ctx context.Context, q sqlx.QueryerContext, orgID int64) (ABMMapping, error) {
	var mods []struct {
		Role      string    `db:"role"`
		Module    string    `db:"module"`
		UpdatedAt time.Time `db:"updated_at"`
	}
	if err := sqlx.SelectContext(ctx, q, &mods,
		`SELECT role, module, updated_at FROM module_mappings WHERE org_id = $1`, orgID); err != nil {
		return ABMMapping{}, fmt.Errorf("module mappings: %w", err)
	}
	if len(mods) == 0 {
		return DefaultABMMapping(), nil
	}
	var fields []struct {
		Role     string `db:"role"`
		System   string `db:"system_field"`
		OrgField string `db:"org_field"`
		Type     string `db:"field_type"`
	}
	if err := sqlx.SelectContext(ctx, q, &fields,
		`SELECT role, system_field, org_field, field_type FROM field_mappings WHERE org_id = $1`, orgID); err != nil {
		return ABMMapping{}, fmt.Errorf("field mappings: %w", err)
	}
	var lookups []struct {
		Link  string `db:"link"`
		Field string `db:"field"`
	}
	if err := sqlx.SelectContext(ctx, q, &lookups,
		`SELECT link, field FROM lookup_mappings WHERE org_id = $1`, orgID); err != nil {
		return ABMMapping{}, fmt.Errorf("lookup mappings: %w", err)
	}

	in := ABMMapping{Roles: map[string]RoleMapping{}, Lookups: map[string]*string{}}
	var updated time.Time
	for _, m := range mods {
		in.Roles[m.Role] = RoleMapping{Module: m.Module, Fields: map[string]FieldMapping{}}
		if m.UpdatedAt.After(updated) {
			updated = m.UpdatedAt
		}
	}
	for _, f := range fields {
		if rm, ok := in.Roles[f.Role]; ok {
			rm.Fields[f.System] = FieldMapping{OrgField: f.OrgField, Type: criteria.Type(f.Type)}
		}
	}
	for _, l := range Links() {
		in.Lookups[l] = nil // a link without a row has no lookup
	}
	for _, l := range lookups {
		in.Lookups[l.Link] = &l.Field
	}
	m, err := ResolveABMMapping(in)
	if err != nil {
		// %v: a stored mapping the rules refuse is the server's fault, not the request's.
		return ABMMapping{}, fmt.Errorf("org %d: stored ABM mapping: %v", orgID, err)
	}
	m.UpdatedAt = &updated
	return m, nil
}

// SetABMMapping checks the mapping (MappingErrors, matching
// ErrInvalidMapping, when it is wrong) and replaces the org's with it,
// defaults filled in; it returns what is stored. Putting the mapping the
// org already has changes nothing, updated_at included. ErrNotFound when
// the org does not exist.
func (db *DB) SetABMMapping(ctx context.Context, orgID int64, in ABMMapping) (ABMMapping, error) {
	m, err := ResolveABMMapping(in)
	if err != nil {
		return ABMMapping{}, err
	}
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		// One writer per org: the org row's lock serialises mapping writes
		// and leaves inserts that only reference the org (KEY SHARE) alone.
		var one int
		if err := tx.GetContext(ctx, &one, `SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, orgID); err != nil {
			return notFound(err, fmt.Sprintf("org %d", orgID))
		}
		cur, err := readABMMapping(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if cur.UpdatedAt != nil && reflect.DeepEqual(cur.Roles, m.Roles) && reflect.DeepEqual(cur.Lookups, m.Lookups) {
			m = cur
			return nil
		}
		at, err := writeABMMapping(ctx, tx, orgID, m)
		m.UpdatedAt = &at
		return err
	})
	if err != nil {
		return ABMMapping{}, err
	}
	return m, nil
}

// writeABMMapping replaces the org's rows with m's: every role, every
// field read from an attribute, every link that has a lookup.
func writeABMMapping(ctx context.Context, tx *sqlx.Tx, orgID int64, m ABMMapping) (time.Time, error) {
	for _, table := range []string{"module_mappings", "field_mappings", "lookup_mappings"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE org_id = $1`, orgID); err != nil {
			return time.Time{}, fmt.Errorf("clear %s: %w", table, err)
		}
	}
	var roles, modules, fRoles, fSystem, fOrg, fType, links, lFields []string
	for _, role := range Roles() {
		rm := m.Roles[role]
		roles, modules = append(roles, role), append(modules, rm.Module)
		for _, name := range slices.Sorted(maps.Keys(rm.Fields)) {
			if f := rm.Fields[name]; strings.HasPrefix(f.OrgField, attributesPrefix) {
				fRoles, fSystem = append(fRoles, role), append(fSystem, name)
				fOrg, fType = append(fOrg, f.OrgField), append(fType, string(f.Type))
			}
		}
	}
	for _, l := range Links() {
		if f := m.Lookups[l]; f != nil {
			links, lFields = append(links, l), append(lFields, *f)
		}
	}
	var at time.Time
	if err := tx.GetContext(ctx, &at, `
		INSERT INTO module_mappings (org_id, role, module)
		SELECT $1, r, mod FROM unnest($2::text[], $3::text[]) AS s(r, mod)
		RETURNING updated_at`, orgID, pq.Array(roles), pq.Array(modules)); err != nil {
		return time.Time{}, fmt.Errorf("write module mappings: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO field_mappings (org_id, role, system_field, org_field, field_type)
		SELECT $1, r, s, o, t FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS f(r, s, o, t)`,
		orgID, pq.Array(fRoles), pq.Array(fSystem), pq.Array(fOrg), pq.Array(fType)); err != nil {
		return time.Time{}, fmt.Errorf("write field mappings: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO lookup_mappings (org_id, link, field)
		SELECT $1, l, f FROM unnest($2::text[], $3::text[]) AS s(l, f)`,
		orgID, pq.Array(links), pq.Array(lFields)); err != nil {
		return time.Time{}, fmt.Errorf("write lookup mappings: %w", err)
	}
	return at, nil
}
