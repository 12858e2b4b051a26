package client

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// SummaryRequest asks for a record's AI summary (POST /v1/summaries).
type SummaryRequest struct {
	Module     string `json:"module"`    // accounts, contacts, leads, deals or a custom_* module
	RecordID   string `json:"record_id"` // the record's external id
	Regenerate bool   `json:"regenerate,omitempty"`
}

// SummaryAccepted is the 202 of a summary request, with the user's daily
// count.
type SummaryAccepted struct {
	Accepted
	Counted bool `json:"counted"`
	Usage   struct {
		Day       string `json:"day"`
		Used      int    `json:"used"`
		Limit     int    `json:"limit"`
		Remaining int    `json:"remaining"`
	} `json:"usage"`
}

// Summarize enqueues summary:generate; pass User (summaries are per user).
// The finished job's result names the summary's URL; Summary reads it.
func (c *Client) Summarize(ctx context.Context, r SummaryRequest, opts ...RequestOption) (SummaryAccepted, error) {
	var a SummaryAccepted
	err := c.do(ctx, rSummarize, nil, r, &a, opts...)
	return a, err
}

// Summary reads a summary as the API returns it (GET /v1/summaries/{id}).
func (c *Client) Summary(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.do(ctx, rSummary, []any{id}, nil, &raw)
	return raw, err
}

// RefreshSegments enqueues segment:refresh of the org's active techniques
// (technique empty) or of one (POST /v1/abm/refresh).
func (c *Client) RefreshSegments(ctx context.Context, technique string, opts ...RequestOption) (Accepted, error) {
	var a Accepted
	var body any // no body: every active technique
	if technique != "" {
		body = refreshRequest{Technique: technique}
	}
	err := c.do(ctx, rRefresh, nil, body, &a, opts...)
	return a, err
}

// refreshRequest is the body of POST /v1/abm/refresh for one technique.
type refreshRequest struct {
	Technique string `json:"technique"`
}

// ExportRequest asks for a segment's export. Fields nil exports every
// field; otherwise 1 to 200 field names, in order.
type ExportRequest struct {
	Fields []string
	Excel  bool // a byte-order mark for spreadsheets
}

// exportRequest is the body of POST /v1/segments/{id}/exports.
type exportRequest struct {
	Fields any  `json:"fields"` // "all" or the field names
	Excel  bool `json:"excel,omitempty"`
}

// ExportAccepted is the 202 of an export request.
type ExportAccepted struct {
	Accepted
	ExportID  int64  `json:"export_id"`
	ExportURL string `json:"export_url"`
}

// ExportSegment enqueues export:segment of the segment (POST
// /v1/segments/{id}/exports); pass User.
func (c *Client) ExportSegment(ctx context.Context, segmentID int64, r ExportRequest, opts ...RequestOption) (ExportAccepted, error) {
	body := exportRequest{Fields: "all", Excel: r.Excel}
	if r.Fields != nil {
		body.Fields = r.Fields
	}
	var a ExportAccepted
	err := c.do(ctx, rExportSegment, []any{segmentID}, body, &a, opts...)
	return a, err
}

// Export is an export's history row (GET /v1/exports/{id}).
type Export struct {
	ID            int64      `json:"id"`
	SegmentID     int64      `json:"segment_id"`
	SegmentName   string     `json:"segment_name"`
	JobID         string     `json:"job_id"`
	Status        string     `json:"status"` // queued, running, ready, failed, expired or invalid
	Progress      int        `json:"progress"`
	RowCount      *int64     `json:"row_count"`
	SizeBytes     *int64     `json:"size_bytes"`
	SHA256        *string    `json:"sha256"`
	Error         string     `json:"error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ReadyAt       *time.Time `json:"ready_at"`
	DownloadUntil *time.Time `json:"download_until"`
}

// Export reads an export's row.
func (c *Client) Export(ctx context.Context, id int64) (Export, error) {
	var e Export
	err := c.do(ctx, rExport, []any{id}, nil, &e)
	return e, err
}

// Download opens a ready export's ZIP file; the caller closes it. An
// expired file is ErrGone.
func (c *Client) Download(ctx context.Context, id int64) (io.ReadCloser, error) {
	resp, err := c.send(ctx, rDownload, []any{id}, nil, "application/zip")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// EnrichAccepted is the 202 of an enrichment request.
type EnrichAccepted struct {
	Accepted
	EnrichmentID string `json:"enrichment_id,omitempty"`
	Records      int    `json:"records"`
	Remaining    int    `json:"remaining_today"`
}

// Enrich enqueues enrich:record of one account (POST /v1/enrichments):
// the worker proposes values, Enrichment reads them.
func (c *Client) Enrich(ctx context.Context, accountID string, opts ...RequestOption) (EnrichAccepted, error) {
	var a EnrichAccepted
	err := c.do(ctx, rEnrich, nil, enrichRequest{AccountID: accountID}, &a, opts...)
	return a, err
}

// enrichRequest is the body of POST /v1/enrichments.
type enrichRequest struct {
	AccountID string `json:"account_id"`
}

// enrichBulkRequest is the body of POST /v1/enrichments/bulk: accounts or
// a segment.
type enrichBulkRequest struct {
	AccountIDs []string `json:"account_ids,omitempty"`
	SegmentID  int64    `json:"segment_id,omitempty"`
}

// EnrichBulk enqueues enrich:bulk of up to 500 accounts, or of a segment's
// members when segmentID is not zero (POST /v1/enrichments/bulk).
func (c *Client) EnrichBulk(ctx context.Context, accountIDs []string, segmentID int64, opts ...RequestOption) (EnrichAccepted, error) {
	body := enrichBulkRequest{SegmentID: segmentID}
	if segmentID == 0 {
		body.AccountIDs = accountIDs
	}
	var a EnrichAccepted
	err := c.do(ctx, rEnrichBulk, nil, body, &a, opts...)
	return a, err
}

// Enrichment reads an enrichment's proposals as the API returns them.
func (c *Client) Enrichment(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.do(ctx, rEnrichment, []any{id}, nil, &raw)
	return raw, err
}
