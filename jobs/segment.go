package jobs

import (
	"slices"
	"time"
)

// TypeSegmentRefresh computes an org's technique scores and labels (one
// technique or every active one) and then every segment's membership.
const TypeSegmentRefresh = "segment:refresh"

// SegmentRefreshSpec: set-based SQL over the org's accounts and deals; a
// rerun writes the same rows.
var SegmentRefreshSpec = Spec{Type: TypeSegmentRefresh, Queue: QueueDefault, MaxRetry: 3, Timeout: 30 * time.Minute, Retention: 2 * time.Hour, PerWorker: 4}

// Techniques a refresh may name.
var refreshTechniques = []string{"rfm", "firmographics", "engagement", "voc", "recommendations"}

// SegmentRefreshPayload names the org and, optionally, one technique.
type SegmentRefreshPayload struct {
	OrgID     int64  `json:"org_id"`
	Technique string `json:"technique,omitempty"` // "" for every active technique
	// Force recomputes even when nothing the refresh reads has changed.
	Force bool `json:"force,omitempty"`
}

// Validate implements Payload.
func (p SegmentRefreshPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	if p.Technique != "" && !slices.Contains(refreshTechniques, p.Technique) {
		fe["technique"] = "rfm, firmographics, engagement, voc or recommendations (or absent: every active technique)"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// Techniques lists the techniques the payload asks for.
func (p SegmentRefreshPayload) Techniques() []string {
	if p.Technique != "" {
		return []string{p.Technique}
	}
	return refreshTechniques
}

// TechniqueRun is what a refresh did for one technique.
type TechniqueRun struct {
	Technique string `json:"technique"`
	Version   int    `json:"version"`
	Skipped   bool   `json:"skipped,omitempty"`  // nothing it reads changed since its last refresh
	Scored    int    `json:"scored,omitempty"`   // RFM: accounts with a qualifying deal
	Labelled  int    `json:"labelled,omitempty"` // firmographics: accounts given a result
	Written   int    `json:"written,omitempty"`  // rows whose values, scores or label changed
	// Analysed counts the VoC texts analysed by this run (new or changed
	// since the cache last saw them).
	Analysed int `json:"analysed,omitempty"`
	// Recommendations counts the recommendations computed.
	Recommendations int    `json:"recommendations,omitempty"`
	Note            string `json:"note,omitempty"`
	// Intents says how VoC gave the analysed texts their intent.
	Intents *IntentRun `json:"intents,omitempty"`
}

// IntentRun is how a VoC refresh classified the intents of the texts it
// analysed.
type IntentRun struct {
	// Classifier is the one that ran: "rules" (the rule table) or "llm"
	// (the model); Asked the org's setting, when it differs.
	Classifier string `json:"classifier"`
	Asked      string `json:"asked,omitempty"`
	// Requests are the model requests sent; ByModel the texts whose
	// intent the model gave; Reused the texts analysed again (other
	// keywords or competitors) that kept the model's intent of the same
	// text without a request.
	Requests int `json:"model_requests,omitempty"`
	ByModel  int `json:"by_model,omitempty"`
	Reused   int `json:"reused,omitempty"`
	// Fallbacks are texts the model's answer did not cover (missing,
	// unknown or repeated ids, an intent outside the six, an answer that
	// is not the JSON asked for, a blocked batch): their intent is the
	// rule table's, recorded as a fallback. Deferred are texts over the
	// refresh's budget of model texts: the rule table's intent for now,
	// sent to the model by the next refresh.
	Fallbacks int `json:"fallbacks,omitempty"`
	Deferred  int `json:"deferred,omitempty"`
	// Model is the model that answered; the tokens are as it counted
	// them (thinking included in the output).
	Model        string `json:"model,omitempty"`
	PromptTokens int    `json:"prompt_tokens,omitempty"`
	OutputTokens int    `json:"output_tokens,omitempty"`
	Note         string `json:"note,omitempty"`
}

// SegmentRefreshResult is the result of a segment:refresh job.
type SegmentRefreshResult struct {
	Techniques []TechniqueRun `json:"techniques"`
	Segments   int            `json:"segments"` // segments whose membership was recomputed
	// SegmentErrors names the segments whose criteria no longer check
	// against the mapping: they keep their last membership.
	SegmentErrors string `json:"segment_errors,omitempty"`
	Skipped       bool   `json:"skipped"` // no technique needed work
}

// NewSegmentRefreshTask builds the task.
func NewSegmentRefreshTask(p SegmentRefreshPayload) (Task, error) {
	return newTask(SegmentRefreshSpec, p, "")
}

// NewRFMRefreshTask is the nightly refresh of one org's RFM technique.
func NewRFMRefreshTask(orgID int64) (Task, error) {
	return NewSegmentRefreshTask(SegmentRefreshPayload{OrgID: orgID, Technique: "rfm"})
}
