package store

import (
	"fmt"
	"slices"
	"strings"
)

// customExportFields are the columns an export carries when a custom
// module plays the accounts role, in the order an all-fields export
// writes them: id (the record's external id) and name, the role's other
// mapped fields (system fields in the built-in accounts' order, then the
// custom fields by name; each read from its attribute and named by its
// field name, e.g. industry for attributes.sector), state, created_at and
// updated_at, then the ABM fields every export offers (labels, scores,
// raw RFM values) as builtinExportFields has them.
func customExportFields(rm RoleMapping) []ExportField {
	out := []ExportField{
		{Name: "id", Header: exportHeaders["id"], expr: "a.external_id"},
		{Name: "name", Header: exportHeaders["name"], expr: "a.name"},
	}
	var system, custom []string
	for name, f := range rm.Fields {
		if name == "name" || !strings.HasPrefix(f.OrgField, attributesPrefix) {
			continue
		}
		if _, ok := exportHeaders[name]; ok {
			system = append(system, name)
		} else {
			custom = append(custom, name)
		}
	}
	order := map[string]int{}
	for i, f := range builtinByName["accounts"].Fields {
		order[f.Name] = i
	}
	slices.SortFunc(system, func(a, b string) int { return order[a] - order[b] })
	slices.Sort(custom)
	for _, name := range slices.Concat(system, custom) {
		f := attributeExportField(name, strings.TrimPrefix(rm.Fields[name].OrgField, attributesPrefix))
		if h, ok := exportHeaders[name]; ok {
			f.Header = h
		} else {
			f.Header = humanize(name)
		}
		out = append(out, f)
	}
	for _, f := range builtinExportFields() {
		switch {
		case f.Name == "state" || f.Name == "created_at" || f.Name == "updated_at":
			out = append(out, f) // columns records has too
		case f.technique == TechniqueRFM || f.technique == TechniqueFirmographics:
			// The ABM fields of the techniques a custom accounts module
			// has (the behavioural ones are refused for it).
			out = append(out, f)
		}
	}
	return out
}

// recordExprs are the expressions of builtinExportFields that read a
// column records has as well.
var recordExprs = map[string]bool{
	"a.external_id": true, "a.name": true, "a.state": true,
	utcText("a.created_at"): true, utcText("a.updated_at"): true,
}

// checkExportSource refuses fields built for the other kind of accounts
// than src (the accounts role moved between the built-in module and a
// custom one after the export was asked): a built-in column such as
// industry is no column of records.
func checkExportSource(fields []ExportField, src accountSource) error {
	if !src.custom() {
		return nil
	}
	for _, f := range fields {
		if f.attribute == "" && f.technique == "" && !recordExprs[f.expr] {
			return fmt.Errorf("export field %q is a column of the built-in accounts, but custom module %s now plays the accounts role: %w",
				f.Name, src.module, ErrInvalidExportFields)
		}
	}
	return nil
}
