package llm

import "time"

// Facts are the records a summary is built from, as the prompt shows them.
// Every record has a Ref, unique in the prompt, that answers cite.
type Facts struct {
	Subject Record   `json:"subject"`
	Related []Record `json:"related"` // associated records other than activities
	// Activities included, newest first; the prompt budget may have cut
	// older ones (see Truncation).
	Activities []Record `json:"activities"`
	// Org-wide figures the module's sections use (revenue share, a lead
	// source's conversion rate, pipeline value), each citing no record.
	Org map[string]any `json:"org,omitempty"`
	// Today is the date the facts were read, for "recent" and "overdue".
	Today time.Time `json:"today"`
}

// Record is one CRM record in the facts.
type Record struct {
	Ref    string         `json:"ref"`    // e.g. "contacts/c-42"
	Module string         `json:"module"` // e.g. "contacts"
	Level  int            `json:"level"`  // 0 subject, 1 directly associated, 2 and deeper per the seed's level table
	Parent string         `json:"parent,omitempty"`
	Fields map[string]any `json:"fields"` // the record as the API returns it, lookups as external ids
}
