package store

// RoleFields exposes the catalog of any role to the tests, which read a
// contacts field through it.
func (m ABMMapping) RoleFields(role, alias string) (map[string]AccountField, error) {
	return m.roleFields(role, alias)
}
