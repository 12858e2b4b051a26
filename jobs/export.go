package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crmq/crmq/store"
)

// TypeExportSegment writes a segment's members as one CSV inside a ZIP on
// blob storage (seed 004, "Export segments from ABM").
const TypeExportSegment = "export:segment"

// ExportSegmentSpec: a rerun writes the same file over its own keys.
var ExportSegmentSpec = Spec{Type: TypeExportSegment, Queue: QueueDefault, MaxRetry: 3, Timeout: 2 * time.Hour, Retention: 2 * time.Hour, PerWorker: 4}

// TypeExportsExpire removes an org's export files past their two weeks,
// the files of invalid exports and the history rows past 90 days.
const TypeExportsExpire = "exports:expire"

// ExportsExpireSpec: deletes of what is already gone are no-ops, so two
// runs at once, or a rerun, do no harm.
var ExportsExpireSpec = Spec{Type: TypeExportsExpire, Queue: QueueLow, MaxRetry: 3, Timeout: 10 * time.Minute, Retention: 2 * time.Hour}

// ExportFields is an export's field choice: every field, or the names
// given, in order. Its JSON is "all" or a list of names.
type ExportFields struct {
	All   bool
	Names []string
}

// MarshalJSON implements json.Marshaler.
func (f ExportFields) MarshalJSON() ([]byte, error) {
	if f.All {
		return []byte(`"all"`), nil
	}
	if f.Names == nil {
		return []byte(`[]`), nil
	}
	return json.Marshal(f.Names)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *ExportFields) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "all" {
			return fmt.Errorf(`fields: "all" or a list of field names, not %q`, s)
		}
		*f = ExportFields{All: true}
		return nil
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf(`fields: "all" or a list of field names`)
	}
	*f = ExportFields{Names: names}
	return nil
}

// ExportSegmentPayload names the segment, the fields and the acting user.
type ExportSegmentPayload struct {
	OrgID     int64        `json:"org_id"`
	SegmentID int64        `json:"segment_id"`
	UserID    string       `json:"user_id,omitempty"`
	Fields    ExportFields `json:"fields"`
	// Excel starts the CSV with a UTF-8 byte-order mark, which Excel
	// needs to read UTF-8.
	Excel bool `json:"excel,omitempty"`
}

// Validate implements Payload. Field names are checked against the org's
// catalog by AdmitExport, which can read it.
func (p ExportSegmentPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	if p.SegmentID <= 0 {
		fe["segment_id"] = "must be a positive segment id"
	}
	if !p.Fields.All {
		switch n := len(p.Fields.Names); {
		case n == 0:
			fe["fields"] = `"all", or a list of 1 to 200 field names`
		case n > store.MaxExportFields:
			fe["fields"] = fmt.Sprintf(`at most %d fields can be selected (%d given); use "all" to export every field`, store.MaxExportFields, n)
		}
	}
	if !printable(p.UserID, 255) {
		fe["user_id"] = "printable UTF-8 text, at most 255 bytes"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// ExportSegmentResult is the result of an export:segment job.
type ExportSegmentResult struct {
	ExportID int64  `json:"export_id"`
	Rows     int64  `json:"rows"`
	Size     int64  `json:"size_bytes"`
	SHA256   string `json:"sha256"`
	Columns  int    `json:"columns"`
}

// ExportsExpireResult is the result of an exports:expire job.
type ExportsExpireResult struct {
	FilesRemoved int `json:"files_removed"` // exports whose files were removed
	RowsDeleted  int `json:"rows_deleted"`  // history rows past 90 days
}

// NewExportSegmentTask builds the task.
func NewExportSegmentTask(p ExportSegmentPayload) (Task, error) {
	return newTask(ExportSegmentSpec, p, "")
}

// NewExportsExpireTask builds the task for one org.
func NewExportsExpireTask(orgID int64) (Task, error) {
	return newTask(ExportsExpireSpec, OrgPayload{OrgID: orgID}, "")
}

// ExportRequest is what a client asks for: an export of one segment.
type ExportRequest struct {
	ExportSegmentPayload
	IdempotencyKey string
	Now            time.Time
}

// ExportAdmission is an accepted export: its job and its history row.
type ExportAdmission struct {
	Job      store.Job
	Export   store.Export
	Replayed bool
}

// AdmitExport is the one admission of export:segment (API and CLI): it
// checks the payload, that the segment exists (store.ErrNotFound) and
// that every selected field is in the org's catalog
// (store.ExportFieldErrors), enqueues the job and writes the export row.
func (e *Enqueuer) AdmitExport(ctx context.Context, req ExportRequest) (ExportAdmission, error) {
	p := req.ExportSegmentPayload
	if err := p.Validate(); err != nil {
		return ExportAdmission{}, err
	}
	if _, err := e.DB.Segment(ctx, p.OrgID, p.SegmentID); err != nil {
		return ExportAdmission{}, err
	}
	if !p.Fields.All {
		cat, err := e.DB.ExportCatalog(ctx, p.OrgID)
		if err != nil {
			return ExportAdmission{}, err
		}
		if _, err := cat.Select(p.Fields.Names); err != nil {
			return ExportAdmission{}, err
		}
	}
	task, err := NewExportSegmentTask(p)
	if err != nil {
		return ExportAdmission{}, err
	}
	job, replayed, err := e.Enqueue(ctx, Request{OrgID: p.OrgID, UserID: p.UserID, IdempotencyKey: req.IdempotencyKey, Task: task})
	if err != nil {
		return ExportAdmission{}, err
	}
	fields, _ := p.Fields.MarshalJSON()
	ex, err := e.DB.EnsureExport(ctx, store.ExportRequest{
		JobID: job.ID, OrgID: p.OrgID, SegmentID: p.SegmentID, UserID: p.UserID, Fields: fields, Excel: p.Excel, Now: req.Now,
	})
	if err != nil {
		return ExportAdmission{}, err
	}
	return ExportAdmission{Job: job, Export: ex, Replayed: replayed}, nil
}
