package store

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// ErrInvalidModule is returned for a module name that is neither built in
// nor a valid custom module name.
var ErrInvalidModule = errors.New("invalid module name")

// FieldType is the type of a module column as the API accepts it.
type FieldType string

// Field types. Input is JSON: text is a string, int and numeric are numbers,
// bool is true/false, date is "YYYY-MM-DD", timestamptz is RFC 3339.
const (
	TypeText      FieldType = "text"
	TypeInt       FieldType = "int"
	TypeNumeric   FieldType = "numeric"
	TypeBool      FieldType = "bool"
	TypeDate      FieldType = "date"
	TypeTimestamp FieldType = "timestamptz"
)

// Field is one writable column of a module; its JSON key is its column name.
type Field struct {
	Name string
	Type FieldType
	// Allowed lists the values of a column with a CHECK (IN ...); empty means any.
	Allowed []string
	// Required: the column is NOT NULL without a default, so every row must give it.
	Required bool
	// NotNull columns with a default get Default (as text) when absent or null.
	NotNull bool
	Default string
	// Min and Max bound an int column (CHECK constraints and the column's size).
	Min, Max int64
	// Precision and Scale of a numeric column.
	Precision, Scale int
}

// Lookup is a reference to another module, given in input and rendered in
// output as the target's external id under Key, stored in Column as the
// target's internal id.
type Lookup struct {
	Key    string
	Column string
	Target string
}

// Module describes how the records of one module are stored.
type Module struct {
	Name    string
	Table   string
	Fields  []Field
	Lookups []Lookup
	// Tracked is the picklist whose changes are written to field_history; "" for none.
	Tracked string
	// Custom modules live in the generic records table: name plus attributes.
	Custom bool
}

// customModuleRE names custom modules. The prefix keeps them apart from
// built-in ones and makes a mistyped module name an error (404), not a new
// module.
var customModuleRE = regexp.MustCompile(`^custom_[a-z0-9_]{1,56}$`)

const (
	int32Min = -1 << 31
	int32Max = 1<<31 - 1
)

func textField(name string) Field { return Field{Name: name, Type: TypeText} }

// nameField is the NOT NULL display column, empty by default, most tables have.
func nameField(col string) Field {
	return Field{Name: col, Type: TypeText, NotNull: true, Default: ""}
}

func enumField(col string, values ...string) Field {
	return Field{Name: col, Type: TypeText, Allowed: values}
}

func intField(col string, lo, hi int64) Field {
	return Field{Name: col, Type: TypeInt, Min: lo, Max: hi}
}

func moneyField(col string) Field { return numericField(col, 18, 2) }

func numericField(col string, precision, scale int) Field {
	return Field{Name: col, Type: TypeNumeric, Precision: precision, Scale: scale}
}

func boolField(col string) Field {
	return Field{Name: col, Type: TypeBool, NotNull: true, Default: "false"}
}

func dateField(col string) Field { return Field{Name: col, Type: TypeDate} }
func timeField(col string) Field { return Field{Name: col, Type: TypeTimestamp} }

func lookupTo(key, target string) Lookup {
	return Lookup{Key: key, Column: key + "_id", Target: target}
}

// builtins mirrors store/migrations/00001_foundation.sql; records_test.go
// checks every column named here exists with the type given.
var builtins = []Module{
	{Name: "accounts", Fields: []Field{
		nameField("name"), textField("industry"), intField("employees", int32Min, int32Max), moneyField("annual_revenue"),
		textField("product_family"), textField("website"), textField("city"), textField("country"), textField("owner"),
	}},
	{Name: "contacts", Tracked: "lifecycle_stage", Fields: []Field{
		textField("first_name"), textField("last_name"), textField("email"), textField("phone"), textField("title"),
		textField("lifecycle_stage"), textField("owner"),
	}, Lookups: []Lookup{lookupTo("account", "accounts")}},
	{Name: "leads", Tracked: "lead_status", Fields: []Field{
		textField("first_name"), textField("last_name"), textField("company"), textField("email"), textField("phone"),
		textField("lead_source"), textField("lead_status"), moneyField("potential_value"), boolField("converted"), textField("owner"),
	}},
	{Name: "products", Fields: []Field{
		nameField("name"), textField("code"), textField("family"), moneyField("unit_price"),
	}},
	{Name: "deals", Tracked: "stage", Fields: []Field{
		nameField("name"), textField("stage"), textField("deal_type"), moneyField("amount"), intField("probability", 0, 100),
		dateField("close_date"), textField("next_step"), textField("competitor"), textField("owner"),
		textField("description"),
	}, Lookups: []Lookup{lookupTo("account", "accounts"), lookupTo("contact", "contacts")}},
	{Name: "deal_line_items", Fields: []Field{
		numericField("quantity", 18, 4), moneyField("unit_price"), moneyField("total"),
	}, Lookups: []Lookup{lookupTo("deal", "deals"), lookupTo("product", "products")}},
	{Name: "activities", Fields: []Field{
		{Name: "kind", Type: TypeText, NotNull: true, Default: "note", Allowed: []string{
			"call", "meeting", "email", "note", "task", "cs_activity", "survey", "visit", "ticket", "social", "event"}},
		{Name: "medium", Type: TypeText, Required: true, Allowed: Mediums()},
		{Name: "direction", Type: TypeText, Required: true, Allowed: []string{"signal", "follow_up"}},
		textField("status"), textField("user_id"),
		{Name: "occurred_at", Type: TypeTimestamp, Required: true},
		textField("subject"), textField("notes"),
		intField("questions_answered", 0, int32Max), intField("time_spent_seconds", 0, int32Max),
		intField("pages_visited", 0, int32Max),
	}, Lookups: []Lookup{
		lookupTo("contact", "contacts"), lookupTo("lead", "leads"), lookupTo("account", "accounts"),
		lookupTo("deal", "deals"), lookupTo("case", "cases"), lookupTo("success_plan", "success_plans"),
		lookupTo("objective", "objectives"), lookupTo("kpi", "kpis"),
		lookupTo("business_challenge", "business_challenges"), lookupTo("playbook_task", "playbook_tasks"),
	}},
	{Name: "cases", Fields: []Field{
		nameField("subject"), textField("status"), textField("priority"), boolField("escalated"),
		timeField("opened_at"), timeField("closed_at"),
	}, Lookups: []Lookup{lookupTo("account", "accounts"), lookupTo("contact", "contacts")}},
	{Name: "objectives", Fields: []Field{
		nameField("name"), textField("status"), textField("description"), dateField("due_date"),
	}, Lookups: []Lookup{lookupTo("account", "accounts"), lookupTo("success_plan", "success_plans")}},
	{Name: "kpis", Fields: []Field{
		nameField("name"), enumField("status", KPIStatuses()...), moneyField("target"), moneyField("actual"),
		textField("unit"), textField("comment"),
	}, Lookups: []Lookup{lookupTo("objective", "objectives"), lookupTo("account", "accounts")}},
	{Name: "success_plans", Fields: []Field{
		nameField("name"), textField("status"), dateField("start_date"), dateField("end_date"),
	}, Lookups: []Lookup{lookupTo("account", "accounts")}},
	{Name: "business_challenges", Fields: []Field{
		nameField("name"), textField("description"), textField("status"),
	}, Lookups: []Lookup{lookupTo("account", "accounts"), lookupTo("success_plan", "success_plans")}},
	{Name: "playbooks", Fields: []Field{
		nameField("name"), textField("status"),
	}, Lookups: []Lookup{lookupTo("account", "accounts")}},
	{Name: "playbook_tasks", Fields: []Field{
		nameField("name"), textField("status"), dateField("due_date"), textField("owner"),
	}, Lookups: []Lookup{lookupTo("playbook", "playbooks")}},
	{Name: "projects", Fields: []Field{
		nameField("name"), textField("status"), enumField("health", "green", "amber", "red"),
	}, Lookups: []Lookup{lookupTo("account", "accounts")}},
}

var builtinByName = func() map[string]Module {
	m := make(map[string]Module, len(builtins))
	for _, mod := range builtins {
		mod.Table = mod.Name
		m[mod.Name] = mod
	}
	return m
}()

// customModule is the shape of every custom module: the generic records table.
var customModule = Module{Table: "records", Custom: true, Fields: []Field{nameField("name")}}

// States are the values of every record's state.
func States() []string { return []string{"active", "draft", "incomplete"} }

// Mediums are the channels an activity can come through.
func Mediums() []string {
	return []string{"email", "call", "meeting", "survey", "desk", "facebook", "twitter", "backstage", "webinar", "visit", "portal"}
}

// KPIStatuses are the five statuses a KPI can have.
func KPIStatuses() []string {
	return []string{"Not Started", "On Track", "Off Track", "Blocked", "Completed"}
}

// BuiltinModules lists the names of the built-in modules, sorted.
func BuiltinModules() []string {
	names := make([]string, 0, len(builtins))
	for _, m := range builtins {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// ValidModule tells whether name is a built-in module or a custom module
// name (custom_ followed by 1 to 56 of a-z, 0-9 and _).
func ValidModule(name string) bool {
	return IsBuiltinModule(name) || customModuleRE.MatchString(name)
}

// IsBuiltinModule tells whether name is one of the built-in modules.
func IsBuiltinModule(name string) bool {
	_, ok := builtinByName[name]
	return ok
}

// ModuleByName describes a module: the built-in one of that name, or the
// custom module of that name; ErrInvalidModule when name is neither.
func ModuleByName(name string) (Module, error) {
	if m, ok := builtinByName[name]; ok {
		return cloneModule(m), nil
	}
	if !ValidModule(name) {
		return Module{}, fmt.Errorf("module %q: %w", name, ErrInvalidModule)
	}
	m := cloneModule(customModule)
	m.Name = name
	return m, nil
}

// cloneModule copies the slices so a caller cannot change the registry.
func cloneModule(m Module) Module {
	m.Fields = slices.Clone(m.Fields)
	for i := range m.Fields {
		m.Fields[i].Allowed = slices.Clone(m.Fields[i].Allowed)
	}
	m.Lookups = slices.Clone(m.Lookups)
	return m
}

// field returns the field named key, if the module has one.
func (m Module) field(key string) (int, bool) {
	for i, f := range m.Fields {
		if f.Name == key {
			return i, true
		}
	}
	return -1, false
}

// lookupIndex returns the lookup with JSON key key, if the module has one.
func (m Module) lookupIndex(key string) (int, bool) {
	for i, l := range m.Lookups {
		if l.Key == key {
			return i, true
		}
	}
	return -1, false
}
