package store

// RoleFields exposes the catalog of any role to the tests, which read a
// contacts field through it.
func (m ABMMapping) RoleFields(role, alias string) (map[string]AccountField, error) {
	return m.roleFields(role, alias)
}

// ExportExprField is an export column read by expr, for the tests of how
// an export writes a column's type.
func ExportExprField(name, expr string) ExportField {
	return ExportField{Name: name, Header: name, expr: expr}
}
