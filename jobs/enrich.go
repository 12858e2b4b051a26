package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/crmq/crmq/store"
)

// Enrichment task types: one account's proposal, and a bulk enrichment.
const (
	TypeEnrichRecord = "enrich:record"
	TypeEnrichBulk   = "enrich:bulk"
)

// EnrichRecordSpec: a crawl of at most 5 pages at 10 s each, with the
// host's politeness delay between them; retried with backoff when the
// site was unreachable or timed out.
var EnrichRecordSpec = Spec{Type: TypeEnrichRecord, Queue: QueueDefault, MaxRetry: 3, Timeout: 5 * time.Minute, Retention: time.Hour}

// EnrichBulkSpec: up to 500 records, a bounded number at a time; a retry
// skips the records already done.
var EnrichBulkSpec = Spec{Type: TypeEnrichBulk, Queue: QueueLow, MaxRetry: 3, Timeout: 2 * time.Hour, Retention: 2 * time.Hour}

// Limits of the seed: records per bulk enrichment, and the default of
// records per org and UTC day (CRMQ_ENRICH_DAILY_LIMIT).
const (
	MaxEnrichBulk           = 500
	DefaultEnrichDailyLimit = 5000
)

// EnrichRecordPayload names one account (its row id and external id).
type EnrichRecordPayload struct {
	OrgID     int64  `json:"org_id"`
	AccountID int64  `json:"account_id"`
	Account   string `json:"account"`
	UserID    string `json:"user_id,omitempty"`
}

// Validate implements Payload.
func (p EnrichRecordPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	if p.AccountID <= 0 {
		fe["account_id"] = "must be an account of the org"
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// EnrichRecordResult is the result of enrich:record.
type EnrichRecordResult struct {
	EnrichmentID string   `json:"enrichment_id"`
	Account      string   `json:"account_id"`
	State        string   `json:"state"`
	Reason       string   `json:"reason,omitempty"`
	Found        []string `json:"found"` // fields with a proposed value
}

// EnrichBulkPayload names the accounts (row ids) of a bulk enrichment.
type EnrichBulkPayload struct {
	OrgID      int64   `json:"org_id"`
	AccountIDs []int64 `json:"account_ids"`
	SegmentID  int64   `json:"segment_id,omitempty"` // where the accounts came from, if a segment
	UserID     string  `json:"user_id,omitempty"`
}

// Validate implements Payload.
func (p EnrichBulkPayload) Validate() error {
	fe := FieldErrors{}
	if p.OrgID <= 0 {
		fe["org_id"] = "must be a positive org id"
	}
	switch {
	case len(p.AccountIDs) == 0:
		fe["account_ids"] = "name at least one account"
	case len(p.AccountIDs) > MaxEnrichBulk:
		fe["account_ids"] = fmt.Sprintf("at most %d records per bulk enrichment (got %d)", MaxEnrichBulk, len(p.AccountIDs))
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// EnrichFailure is a record a bulk enrichment could not enrich.
type EnrichFailure struct {
	Account string `json:"account_id"`
	Reason  string `json:"reason"` // no_website, unreachable, robots_disallowed, nothing_found, refused_address, timeout
	Detail  string `json:"detail,omitempty"`
}

// EnrichBulkResult is the result of enrich:bulk.
type EnrichBulkResult struct {
	Records       int             `json:"records"`
	Succeeded     int             `json:"succeeded"`
	Failed        int             `json:"failed"`
	Enriched      int             `json:"enriched"`       // records with at least one field written
	FieldsWritten int             `json:"fields_written"` // empty fields filled, over all records
	Reasons       map[string]int  `json:"reasons"`        // failures by reason
	Failures      []EnrichFailure `json:"failures"`
}

// NewEnrichRecordTask builds the task.
func NewEnrichRecordTask(p EnrichRecordPayload) (Task, error) {
	return newTask(EnrichRecordSpec, p, "")
}

// NewEnrichBulkTask builds the task.
func NewEnrichBulkTask(p EnrichBulkPayload) (Task, error) { return newTask(EnrichBulkSpec, p, "") }

// EnrichRequest is what a client asks: one account (single), or accounts
// or a segment (bulk).
type EnrichRequest struct {
	OrgID          int64
	UserID         string
	Bulk           bool
	AccountIDs     []string // external ids; one for a single enrichment
	SegmentID      int64
	IdempotencyKey string
	Limit          int       // records per org per UTC day
	Now            time.Time // the day the request counts against
}

// EnrichAdmission is an accepted enrichment request.
type EnrichAdmission struct {
	Job       store.Job
	Replayed  bool
	Records   int
	Remaining int // records the org may still enrich today
}

// AdmitEnrich is the one admission of enrich:record and enrich:bulk: it
// resolves the accounts (a segment's from its materialised membership),
// refuses more than 500 per bulk, counts the records against the org's
// day all at once (a bulk that would pass the limit is refused whole,
// with *store.EnrichQuotaError saying how many remain) and enqueues the
// job. A refused enqueue gives the count back.
func (e *Enqueuer) AdmitEnrich(ctx context.Context, req EnrichRequest) (EnrichAdmission, error) {
	if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
		return EnrichAdmission{}, err
	}
	var ids []int64
	var err error
	switch {
	case !req.Bulk && len(req.AccountIDs) != 1:
		return EnrichAdmission{}, FieldErrors{"account_id": "name the account to enrich"}
	case req.Bulk && req.SegmentID != 0 && len(req.AccountIDs) > 0:
		return EnrichAdmission{}, FieldErrors{"segment_id": "name accounts or a segment, not both"}
	case req.Bulk && req.SegmentID == 0 && len(req.AccountIDs) == 0:
		return EnrichAdmission{}, FieldErrors{"account_ids": "name accounts (account_ids) or a segment (segment_id)"}
	case req.Bulk && len(req.AccountIDs) > MaxEnrichBulk:
		return EnrichAdmission{}, FieldErrors{"account_ids": fmt.Sprintf("at most %d records per bulk enrichment (got %d)", MaxEnrichBulk, len(req.AccountIDs))}
	case req.SegmentID < 0:
		return EnrichAdmission{}, FieldErrors{"segment_id": "must be a segment id"}
	case req.SegmentID > 0:
		ids, err = e.DB.SegmentAccountIDs(ctx, req.OrgID, req.SegmentID, MaxEnrichBulk)
		if err == nil && len(ids) > MaxEnrichBulk {
			return EnrichAdmission{}, FieldErrors{"segment_id": fmt.Sprintf("the segment has more than %d members: at most %d records per bulk enrichment", MaxEnrichBulk, MaxEnrichBulk)}
		}
		if err == nil && len(ids) == 0 {
			return EnrichAdmission{}, FieldErrors{"segment_id": "the segment has no members"}
		}
	default:
		ids, err = e.DB.EnrichAccountIDs(ctx, req.OrgID, req.AccountIDs)
	}
	if err != nil {
		return EnrichAdmission{}, err
	}
	var task Task
	if req.Bulk {
		task, err = NewEnrichBulkTask(EnrichBulkPayload{OrgID: req.OrgID, AccountIDs: ids, SegmentID: req.SegmentID, UserID: req.UserID})
	} else {
		task, err = NewEnrichRecordTask(EnrichRecordPayload{OrgID: req.OrgID, AccountID: ids[0], Account: req.AccountIDs[0], UserID: req.UserID})
	}
	if err != nil {
		return EnrichAdmission{}, err
	}
	base := Request{OrgID: req.OrgID, UserID: req.UserID, IdempotencyKey: req.IdempotencyKey, Task: task}
	if req.IdempotencyKey != "" {
		j, ok, err := e.replay(ctx, base)
		if err != nil {
			return EnrichAdmission{}, err
		}
		if ok { // counted when it was first accepted
			used, err := e.DB.EnrichmentUsage(ctx, req.OrgID, req.Now)
			return EnrichAdmission{Job: j, Replayed: true, Records: len(ids), Remaining: max(req.Limit-used, 0)}, err
		}
	}
	remaining, err := e.DB.ReserveEnrichments(ctx, req.OrgID, req.Now, len(ids), req.Limit)
	if err != nil {
		return EnrichAdmission{}, err
	}
	job, replayed, err := e.Enqueue(ctx, base)
	if err != nil || replayed {
		if rerr := e.DB.ReleaseEnrichments(context.WithoutCancel(ctx), req.OrgID, req.Now, len(ids)); rerr != nil {
			e.Log.ErrorContext(ctx, "enrichment count not given back", "err", rerr)
		}
		if err != nil {
			return EnrichAdmission{}, err
		}
		remaining += len(ids)
	}
	return EnrichAdmission{Job: job, Replayed: replayed, Records: len(ids), Remaining: remaining}, nil
}
