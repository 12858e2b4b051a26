package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
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

// EnrichBulkSpec: the parent of up to 500 child enrich:record tasks. It
// writes the bulk's ledger, enqueues the first window of children and
// hands its job row to them; the child that ends the last record finishes
// the job. A retried parent (or one the reconciler puts back because no
// child moved for its timeout) enqueues nothing twice and settles
// children that failed for good.
var EnrichBulkSpec = Spec{Type: TypeEnrichBulk, Queue: QueueLow, MaxRetry: 3, Timeout: 2 * time.Hour, Retention: 2 * time.Hour}

// Limits of the seed: records per bulk enrichment, and the default of
// records per org and UTC day (CRMQ_ENRICH_DAILY_LIMIT).
const (
	MaxEnrichBulk           = 500
	DefaultEnrichDailyLimit = 5000
)

// EnrichRecordPayload names one account (its row id and external id).
// A bulk's child names its parent bulk job; its enrichment then writes
// only empty fields and its outcome counts towards the parent.
type EnrichRecordPayload struct {
	OrgID     int64  `json:"org_id"`
	AccountID int64  `json:"account_id"`
	Account   string `json:"account"`
	UserID    string `json:"user_id,omitempty"`
	Bulk      string `json:"bulk,omitempty"`      // the parent enrich:bulk job, for a bulk's child
	QuotaDay  string `json:"quota_day,omitempty"` // the UTC day (YYYY-MM-DD) the record was counted against
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
	if p.QuotaDay != "" {
		if _, err := time.Parse(time.DateOnly, p.QuotaDay); err != nil {
			fe["quota_day"] = "a day as YYYY-MM-DD"
		}
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
	QuotaDay   string  `json:"quota_day,omitempty"` // the UTC day (YYYY-MM-DD) the records were counted against
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
	if p.QuotaDay != "" {
		if _, err := time.Parse(time.DateOnly, p.QuotaDay); err != nil {
			fe["quota_day"] = "a day as YYYY-MM-DD"
		}
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}

// EnrichFailure is a record a bulk enrichment could not enrich.
type EnrichFailure = store.EnrichFailure

// EnrichBulkResult is the result of enrich:bulk, counted from its
// children's outcomes.
type EnrichBulkResult = store.EnrichBulkResult

// NewEnrichRecordTask builds the task.
func NewEnrichRecordTask(p EnrichRecordPayload) (Task, error) {
	return newTask(EnrichRecordSpec, p, "")
}

// NewEnrichBulkTask builds the task.
func NewEnrichBulkTask(p EnrichBulkPayload) (Task, error) { return newTask(EnrichBulkSpec, p, "") }

// NewEnrichChildTask builds a bulk's child: an enrich:record task on its
// bulk's queue (low unless the bulk was put elsewhere), so a bulk never
// delays a single enrichment a person waits for.
func NewEnrichChildTask(p EnrichRecordPayload, queue string) (Task, error) {
	if p.Bulk == "" {
		return Task{}, FieldErrors{"bulk": "a child names its bulk job"}
	}
	if queue == "" {
		queue = EnrichBulkSpec.Queue
	}
	return newTask(EnrichRecordSpec, p, queue)
}

// QuotaDayOf is the day a payload's quota_day names, or fallback when it
// names none (a task enqueued before the field existed).
func QuotaDayOf(day string, fallback time.Time) time.Time {
	if d, err := time.Parse(time.DateOnly, day); err == nil {
		return d
	}
	return fallback.UTC()
}

// sameIgnoringQuotaDay compares two enrichment payloads as an
// Idempotency-Key replay does, leaving out the day they were counted on:
// a client retrying after midnight UTC gets its first job back.
func sameIgnoringQuotaDay(stored, incoming []byte) bool {
	var a, b map[string]any
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(incoming, &b) != nil {
		return false
	}
	delete(a, "quota_day")
	delete(b, "quota_day")
	return reflect.DeepEqual(a, b)
}

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
	day := req.Now.UTC().Format(time.DateOnly)
	if req.Bulk {
		task, err = NewEnrichBulkTask(EnrichBulkPayload{OrgID: req.OrgID, AccountIDs: ids, SegmentID: req.SegmentID, UserID: req.UserID, QuotaDay: day})
	} else {
		task, err = NewEnrichRecordTask(EnrichRecordPayload{OrgID: req.OrgID, AccountID: ids[0], Account: req.AccountIDs[0], UserID: req.UserID, QuotaDay: day})
	}
	if err != nil {
		return EnrichAdmission{}, err
	}
	base := Request{OrgID: req.OrgID, UserID: req.UserID, IdempotencyKey: req.IdempotencyKey, Task: task, Same: sameIgnoringQuotaDay}
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
