// Package crm holds the CRM rules every part of crmq reads the same way:
// which deal stages are won, lost or open, which statuses end a task, case,
// project or objective, and the names of the figures a summary states. The
// store passes the stage lists to its SQL as parameters; the summary
// figures (workers/summary) and the offline provider (llm/offline) call the
// Go functions. The package is pure Go and imports nothing of the project,
// so store, workers and llm can all depend on it.
package crm

import (
	"slices"
	"strings"
)

// Space is what Norm trims from both ends of a stage or status: the ASCII
// white space, NEL and the no-break space. SQL trims the same set with
// btrim(x, Space), so Go and Postgres agree on what a value is.
const Space = " \t\n\v\f\r\u0085\u00a0"

// Norm is a stage or status as the rules compare it: trimmed of Space and
// lower-cased.
func Norm(s string) string { return strings.ToLower(strings.Trim(s, Space)) }

// Outcome is where a deal's stage leaves it.
type Outcome int

const (
	Open Outcome = iota
	Won
	Lost
)

func (o Outcome) String() string {
	switch o {
	case Won:
		return "won"
	case Lost:
		return "lost"
	}
	return "open"
}

// Closed reports whether the deal is over, won or lost.
func (o Outcome) Closed() bool { return o != Open }

// The deal stage rule, Zoho's picklist by default: "Closed Won" is won;
// "Closed Lost" and every other stage starting with "closed" ("Closed-Lost
// to Competition", "Closed - Other") are lost; every other stage, or none,
// is open pipeline. Names are compared after Norm. The lists hold normed
// names.
var (
	wonStages  = []string{"closed won"}
	lostStages = []string{"closed lost"}
)

// LostPrefix: a stage that is not won and starts with it (after Norm) is lost.
const LostPrefix = "closed"

// Stage classifies a deal stage.
func Stage(stage string) Outcome {
	s := Norm(stage)
	switch {
	case slices.Contains(wonStages, s):
		return Won
	case slices.Contains(lostStages, s), strings.HasPrefix(s, LostPrefix):
		return Lost
	}
	return Open
}

// WonStages and LostStages are the normed stage names of each outcome, for
// SQL parameters (lower(btrim(stage, Space)) = ANY($n)); a copy each call.
func WonStages() []string  { return slices.Clone(wonStages) }
func LostStages() []string { return slices.Clone(lostStages) }

// doneStatuses end a task, case, project, objective or success plan.
var doneStatuses = []string{"done", "completed", "complete", "closed", "resolved", "cancelled", "canceled", "achieved"}

// Done reports whether status ends the record it belongs to.
func Done(status string) bool { return slices.Contains(doneStatuses, Norm(status)) }

// DoneStatuses are the normed statuses Done accepts; a copy each call.
func DoneStatuses() []string { return slices.Clone(doneStatuses) }

// CaseOpen: a case is open until its status is done or it has a close time.
func CaseOpen(status, closedAt string) bool {
	return !Done(status) && strings.Trim(closedAt, Space) == ""
}

// CaseEscalated: the escalated flag is set, or the status says so.
func CaseEscalated(status string, flag bool) bool { return flag || Norm(status) == "escalated" }
