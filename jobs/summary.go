package jobs

import (
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

// TypeSummaryGenerate builds an AI summary of one record (seeds 000, 001).
const TypeSummaryGenerate = "summary:generate"

// SummarySpec: a person waits on it, so it runs on critical. Provider
// rate limits and 5xx are retried with the provider's delay; refusals fail
// at once.
var SummarySpec = Spec{Type: TypeSummaryGenerate, Queue: QueueCritical, MaxRetry: 5, Timeout: 3 * time.Minute, Retention: time.Hour}

// SummaryPayload names the record, the acting user and the data version
// counted against the user's daily limit when the job was accepted.
type SummaryPayload struct {
	OrgID      int64  `json:"org_id"`
	UserID     string `json:"user_id"`
	Module     string `json:"module"`
	RecordID   string `json:"record_id"` // external id
	Regenerate bool   `json:"regenerate,omitempty"`
	// Counted is false when the user already had this record at this data
	// hash counted today: seed 000 then returns the stored summary.
	Counted bool `json:"counted"`
}

// Validate implements Payload.
func (p SummaryPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	if p.UserID == "" {
		fe["X-User-ID"] = "required: summaries are counted per user"
	} else if !printable(p.UserID, 255) {
		fe["X-User-ID"] = "printable UTF-8 text of at most 255 bytes"
	}
	if !store.ValidModule(p.Module) {
		fe["module"] = "a built-in module or custom_<name>"
	}
	if p.RecordID == "" || !printable(p.RecordID, store.MaxExternalIDBytes) {
		fe["record_id"] = "required: printable UTF-8 text of at most 255 bytes"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// SummaryResult is the result of a summary:generate job: where the
// summary is and what it cost.
type SummaryResult struct {
	SummaryID        string    `json:"summary_id"`
	URL              string    `json:"url"`
	ReusedFrom       *string   `json:"reused_from,omitempty"`
	Provider         string    `json:"provider"`
	Model            string    `json:"model"`
	Usage            llm.Usage `json:"usage"`
	DroppedSourceIDs int       `json:"dropped_source_ids"`
}

// NewSummaryTask builds the task.
func NewSummaryTask(p SummaryPayload) (Task, error) {
	return newTask(SummarySpec, p, "")
}
