package store

import (
	"errors"
	"fmt"
)

// Leads and contacts are the modules with an interactions trail (seed
// 003); the Interactions tab and the orphan computation share this table.

// ErrInvalidQuery marks a malformed interactions or orphans request (unknown
// view, medium, preset or module, bad limit or time range); the API answers
// 400.
var ErrInvalidQuery = errors.New("invalid query")

// trailModule names the tables and columns of a module that has an
// Interactions tab; SQL is built only from these constants.
type trailModule struct {
	name           string // "leads" | "contacts", also field_history.module
	table          string // the record table
	column         string // the record's column in activities and orphan_state
	milestoneField string // the tracked picklist in field_history.field
}

var trailModules = map[string]trailModule{
	"leads":    {name: "leads", table: "leads", column: "lead_id", milestoneField: "lead_status"},
	"contacts": {name: "contacts", table: "contacts", column: "contact_id", milestoneField: "lifecycle_stage"},
}

func lookupTrailModule(module string) (trailModule, error) {
	m, ok := trailModules[module]
	if !ok {
		return trailModule{}, fmt.Errorf("module %q has no interactions (leads and contacts do): %w", module, ErrInvalidQuery)
	}
	return m, nil
}
