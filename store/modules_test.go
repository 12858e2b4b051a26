package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// The registry is written by hand from the migration; this keeps the two in
// step: every registered column exists with the registered type, and every
// column of a module's table is registered (or is bookkeeping).
func TestModuleRegistryMatchesSchema(t *testing.T) {
	db, _ := storetest.NewDB(t)
	bookkeeping := []string{"id", "org_id", "external_id", "state", "attributes", "created_at", "updated_at",
		"stage_norm"} // deals: the stage as the stage rule compares it (generated, migration 00110)
	pgTypes := map[store.FieldType][]string{
		store.TypeText:      {"text"},
		store.TypeInt:       {"integer", "smallint"},
		store.TypeNumeric:   {"numeric"},
		store.TypeBool:      {"boolean"},
		store.TypeDate:      {"date"},
		store.TypeTimestamp: {"timestamp with time zone"},
	}
	builtins := store.BuiltinModules()
	if len(builtins) != 15 {
		t.Errorf("want 15 built-in modules, got %d: %v", len(builtins), builtins)
	}
	for _, name := range builtins {
		m, err := store.ModuleByName(name)
		if err != nil {
			t.Fatal(err)
		}
		var cols []struct {
			Name string `db:"column_name"`
			Type string `db:"data_type"`
		}
		if err := db.SelectContext(context.Background(), &cols,
			`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1`, m.Table); err != nil {
			t.Fatal(err)
		}
		if len(cols) == 0 {
			t.Errorf("%s: table %s has no columns", name, m.Table)
		}
		typeOf := map[string]string{}
		for _, c := range cols {
			typeOf[c.Name] = c.Type
		}
		registered := map[string]bool{}
		for _, f := range m.Fields {
			registered[f.Name] = true
			if !slices.Contains(pgTypes[f.Type], typeOf[f.Name]) {
				t.Errorf("%s.%s: registered as %s, column is %q", name, f.Name, f.Type, typeOf[f.Name])
			}
		}
		for _, l := range m.Lookups {
			registered[l.Column] = true
			if typeOf[l.Column] != "bigint" {
				t.Errorf("%s.%s: lookup column is %q", name, l.Column, typeOf[l.Column])
			}
			if !store.IsBuiltinModule(l.Target) {
				t.Errorf("%s.%s: target %q is not a built-in module", name, l.Key, l.Target)
			}
		}
		for _, c := range cols {
			if !registered[c.Name] && !slices.Contains(bookkeeping, c.Name) {
				t.Errorf("%s: column %s is not in the registry", name, c.Name)
			}
		}
		if m.Tracked != "" && !registered[m.Tracked] {
			t.Errorf("%s: tracked field %s is not a field", name, m.Tracked)
		}
	}
}

func TestModuleNames(t *testing.T) {
	for _, tc := range []struct {
		name           string
		valid, builtin bool
	}{
		{"accounts", true, true},
		{"playbook_tasks", true, true},
		{"custom_widgets", true, false},
		{"custom_w", true, false},
		{"custom_a2_b", true, false},
		{"widgets", false, false},
		{"custom_", false, false},
		{"", false, false},
		{"Widgets", false, false},
		{"2widgets", false, false},
		{"wid-gets", false, false},
		{"_x", false, false},
		{"custom_" + strings.Repeat("a", 57), false, false}, // 64 chars
	} {
		if got := store.ValidModule(tc.name); got != tc.valid {
			t.Errorf("ValidModule(%q) = %v, want %v", tc.name, got, tc.valid)
		}
		if got := store.IsBuiltinModule(tc.name); got != tc.builtin {
			t.Errorf("IsBuiltinModule(%q) = %v, want %v", tc.name, got, tc.builtin)
		}
		m, err := store.ModuleByName(tc.name)
		switch {
		case !tc.valid && !errors.Is(err, store.ErrInvalidModule):
			t.Errorf("ModuleByName(%q): want ErrInvalidModule, got %v", tc.name, err)
		case tc.valid && err != nil:
			t.Errorf("ModuleByName(%q): %v", tc.name, err)
		case tc.valid && m.Custom == tc.builtin:
			t.Errorf("ModuleByName(%q).Custom = %v", tc.name, m.Custom)
		}
	}
}

func TestModuleByNameReturnsACopy(t *testing.T) {
	m, _ := store.ModuleByName("kpis")
	m.Fields[0].Name = "changed"
	m.Lookups[0].Target = "changed"
	again, _ := store.ModuleByName("kpis")
	if again.Fields[0].Name == "changed" || again.Lookups[0].Target == "changed" {
		t.Fatal("changing a returned Module changed the registry")
	}
}
