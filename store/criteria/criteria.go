// Package criteria is crmq's one criteria language (seed 004): global
// criteria, technique labels, segment rules and export filters all use it.
// A criteria is a list of conditions and an optional pattern that combines
// them by 1-based index with AND, OR, NOT and parentheses (all conditions
// ANDed when the pattern is absent):
//
//	{"conditions": [
//	   {"field": "country", "op": "is_not_empty"},
//	   {"field": "industry", "op": "in", "value": ["Healthcare", "Pharma"]},
//	   {"field": "employees", "op": "between", "value": [200, 5000]}],
//	 "pattern": "1 AND (2 OR 3)"}
//
// The package parses and type-checks a criteria against the fields an
// org's mapping makes available (Check), and evaluates it in Go (Eval) for
// tests and explanations. The store compiles a checked criteria to
// parameterised SQL (store.CompileCriteria): user text never becomes an
// identifier or a literal in SQL. The package imports no other project
// package, so the store can use it.
//
// The rules both sides follow: text compares trimmed and with ASCII letters
// lower-cased; a missing value or a blank text is empty, and an empty value
// satisfies is_empty and the negative operators (each is NOT its positive
// twin) and nothing else; numbers compare as exact decimals; dates by UTC
// day; a criteria without conditions matches every row. README.md
// ("Criteria language") has the whole language and its limits.
package criteria

// Type is a field's type; it decides which operators and values a
// condition on the field takes.
type Type string

// Field types.
const (
	Text   Type = "text"   // equals, not_equals, in, not_in, contains, not_contains, starts_with, is_empty, is_not_empty
	Number Type = "number" // equals, not_equals, in, not_in, gt, gte, lt, lte, between, is_empty, is_not_empty
	Date   Type = "date"   // equals, not_equals, gt, gte, lt, lte, between, before, after, in_last_days, not_in_last_days, is_empty, is_not_empty
)

// Op is a condition's operator.
type Op string

// Operators.
const (
	Equals        Op = "equals"
	NotEquals     Op = "not_equals"
	In            Op = "in"
	NotIn         Op = "not_in"
	Contains      Op = "contains"
	NotContains   Op = "not_contains"
	StartsWith    Op = "starts_with"
	IsEmpty       Op = "is_empty"
	IsNotEmpty    Op = "is_not_empty"
	Gt            Op = "gt"
	Gte           Op = "gte"
	Lt            Op = "lt"
	Lte           Op = "lte"
	Between       Op = "between"
	Before        Op = "before"
	After         Op = "after"
	InLastDays    Op = "in_last_days"
	NotInLastDays Op = "not_in_last_days"
)
