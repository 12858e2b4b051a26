package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/crmq/crmq/store/criteria"
)

// AccountField is a field an account criteria may name: its type, and
// the SQL expression that reads it from the account row, aliased a.
type AccountField struct {
	Type criteria.Type
	SQL  string
}

// AccountAlias is the alias of the account row every AccountField.SQL
// reads: the accounts table when the built-in module plays the accounts
// role, the records table (restricted by the caller to the module of the
// mapping) when a custom module does. Every expression names only columns
// both tables have (name, state, attributes, created_at, updated_at) or
// the typed columns of accounts, which only the built-in module maps.
const AccountAlias = "a"

// AccountFields is the catalog of the fields an account criteria may name
// in the org, by name: the accounts role's mapped fields (the typed
// columns of accounts, or of a custom module its name, and every field
// read from an attribute) plus state, created_at and updated_at.
func (db *DB) AccountFields(ctx context.Context, orgID int64) (map[string]AccountField, error) {
	m, err := db.ABMMapping(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return m.roleFields(RoleAccounts, AccountAlias)
}

// roleFields is the catalog of a role's fields over the row aliased alias
// (a constant of this package, never input).
func (m ABMMapping) roleFields(role, alias string) (map[string]AccountField, error) {
	rm, ok := m.Roles[role]
	if !ok {
		return nil, fmt.Errorf("role %q is not mapped", role)
	}
	out := map[string]AccountField{
		"state":      {Type: criteria.Text, SQL: alias + ".state"},
		"created_at": {Type: criteria.Date, SQL: utcDay(alias + ".created_at")},
		"updated_at": {Type: criteria.Date, SQL: utcDay(alias + ".updated_at")},
	}
	cols := columns(rm.Module)
	for name, f := range rm.Fields {
		if key, ok := strings.CutPrefix(f.OrgField, attributesPrefix); ok {
			sql, err := attributeSQL(alias, key, f.Type)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", role, name, err)
			}
			out[name] = AccountField{Type: f.Type, SQL: sql}
			continue
		}
		// A column: only one the module registry names is written into SQL.
		t, ok := cols[f.OrgField]
		if !ok || t != f.Type {
			return nil, fmt.Errorf("%s.%s: %q is not a %s column of module %s", role, name, f.OrgField, f.Type, rm.Module)
		}
		col := alias + "." + f.OrgField
		if isTimestampColumn(rm.Module, f.OrgField) {
			col = utcDay(col)
		}
		out[name] = AccountField{Type: t, SQL: col}
	}
	return out, nil
}

// utcDay is a timestamptz column's UTC day: the criteria language compares
// dates by UTC day, and its compiler wants a date.
func utcDay(col string) string { return "(" + col + " AT TIME ZONE 'UTC')::date" }

// isTimestampColumn tells whether a built-in module's column is a
// timestamp (a date column is already a date).
func isTimestampColumn(module, col string) bool {
	for _, f := range builtinByName[module].Fields {
		if f.Name == col {
			return f.Type == TypeTimestamp
		}
	}
	return false
}

// attributeSQL reads attribute key of the row aliased alias as typ.
//
// The key is written into the SQL as a string literal, so it must not be
// able to end or escape that literal: attributeKeyRE admits only ASCII
// letters, digits and _, checked here, where the key is embedded, not
// only when the mapping was saved. Numbers and dates go through
// crmq_attr_number and crmq_attr_date (migration 00080), which answer
// NULL for a value that is not one rather than failing the query.
func attributeSQL(alias, key string, typ criteria.Type) (string, error) {
	if !attributeKeyRE.MatchString(key) {
		return "", fmt.Errorf("attribute key %q cannot be read: 1 to 64 of A-Z, a-z, 0-9 and _", key)
	}
	v := alias + ".attributes->>'" + key + "'"
	switch typ {
	case criteria.Text:
		return "(" + v + ")", nil
	case criteria.Number:
		return "crmq_attr_number(" + v + ")", nil
	case criteria.Date:
		return "crmq_attr_date(" + v + ")", nil
	}
	return "", fmt.Errorf("attribute %q: unknown type %q", key, typ)
}
