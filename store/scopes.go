package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The scopes an org API key can carry. Setup rights are kept apart from
// use (seed 004: "ABM for Zoho CRM Setup" apart from "ABM for Zoho CRM"),
// and generating or reading AI summaries is a right of its own (seed 000:
// "Record Summary permission").
const (
	ScopeSummaries    = "summaries"     // generate, read, save and rate summaries
	ScopeRecordsRead  = "records:read"  // read CRM records and their interactions
	ScopeRecordsWrite = "records:write" // upsert and delete CRM records
	ScopeJobs         = "jobs"          // enqueue a generic job
	ScopeABMSetup     = "abm:setup"     // module mapping, global criteria, techniques
	ScopeABM          = "abm"           // segments and their reads
	ScopeEnrichment   = "enrichment"    // enrichment proposals
	ScopeExport       = "export"        // segment exports
)

// scopes is the one list of known scopes, in the order they are shown.
var scopes = []string{
	ScopeSummaries, ScopeRecordsRead, ScopeRecordsWrite, ScopeJobs,
	ScopeABMSetup, ScopeABM, ScopeEnrichment, ScopeExport,
}

// Scopes returns every known scope.
func Scopes() []string { return slices.Clone(scopes) }

// KnownScope tells whether name is a scope.
func KnownScope(name string) bool { return slices.Contains(scopes, name) }

var (
	// ErrUnknownScope: a scope name that is not in Scopes.
	ErrUnknownScope = errors.New("unknown scope")
	// ErrNoScopes: an explicit, empty scope list. Leaving the list out
	// grants every scope; an empty one would be a key that can do nothing
	// but read job status, which is far more likely a mistake.
	ErrNoScopes = errors.New("no scopes given")
)

// ParseScopes checks a list of scope names and returns it without
// duplicates, in the order of Scopes. An unknown name is ErrUnknownScope,
// and the error lists the valid ones.
func ParseScopes(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w (valid scopes: %s)", ErrNoScopes, strings.Join(scopes, ", "))
	}
	var unknown []string
	for _, n := range names {
		if !KnownScope(n) {
			unknown = append(unknown, fmt.Sprintf("%q", n))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w %s (valid scopes: %s)", ErrUnknownScope, strings.Join(unknown, ", "), strings.Join(scopes, ", "))
	}
	var out []string
	for _, s := range scopes {
		if slices.Contains(names, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// KeyGrant is what an API key grants: its org, and the scopes it may use
// there.
type KeyGrant struct {
	Org Org
	// Scopes is nil for a key with every scope, including scopes added
	// after the key was made.
	Scopes []string
}

// Allows tells whether the key carries scope.
func (g KeyGrant) Allows(scope string) bool {
	return g.Scopes == nil || slices.Contains(g.Scopes, scope)
}
