package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crmq/crmq/store"
)

// SummaryRequest is what a client asks for: a summary of one record, for
// one acting user.
type SummaryRequest struct {
	OrgID          int64
	UserID         string
	Module         string
	RecordID       string
	Regenerate     bool
	IdempotencyKey string
	Limit          int       // summaries per user per UTC day
	Now            time.Time // the day the request counts against
}

// SummaryAdmission is an accepted summary request: its job, whether it is
// the first job returned again for a repeated Idempotency-Key, whether the
// request counted against the user's daily limit, and the user's usage.
type SummaryAdmission struct {
	Job      store.Job
	Replayed bool
	Counted  bool
	Usage    store.SummaryUsage
}

// Why a summary request is refused (besides FieldErrors and a full quota).
var (
	ErrNotSummarizable     = errors.New("records in draft or incomplete state cannot be summarized")
	ErrNoAssociatedRecords = errors.New("an account summary needs at least one associated record (contact, deal, case, success plan, objective, KPI, playbook, project or activity)")
)

// QuotaError: the user's daily limit is reached; it resets at ResetAt.
type QuotaError struct {
	Limit   int
	ResetAt time.Time
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("the daily limit of %d summaries per user is reached; it resets at 00:00 UTC", e.Limit)
}

// Unwrap lets errors.Is(err, store.ErrQuotaExceeded) hold.
func (e *QuotaError) Unwrap() error { return store.ErrQuotaExceeded }

// AdmitSummary is the one admission of summary:generate, shared by the
// API and the CLI: it checks the request, returns the first job again for
// a repeated Idempotency-Key (before anything is counted), checks that the
// record may be summarized, counts the request against the user's daily
// limit (seed 000's consumption policy) and enqueues the job through
// Enqueue. A refused enqueue gives the count back.
func (e *Enqueuer) AdmitSummary(ctx context.Context, req SummaryRequest) (SummaryAdmission, error) {
	p := SummaryPayload{OrgID: req.OrgID, UserID: req.UserID, Module: req.Module, RecordID: req.RecordID, Regenerate: req.Regenerate}
	if err := p.Validate(); err != nil {
		return SummaryAdmission{}, err
	}
	base := Request{OrgID: req.OrgID, UserID: req.UserID, IdempotencyKey: req.IdempotencyKey, Same: sameSummaryRequest}
	if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
		return SummaryAdmission{}, err
	}
	day := req.Now.UTC()
	if req.IdempotencyKey != "" {
		probe, err := NewSummaryTask(p)
		if err != nil {
			return SummaryAdmission{}, err
		}
		base.Task = probe
		j, ok, err := e.replay(ctx, base)
		if err != nil {
			return SummaryAdmission{}, err
		}
		if ok {
			var first SummaryPayload
			_ = json.Unmarshal(j.Payload, &first)
			usage, err := e.DB.SummaryUsageOf(ctx, req.OrgID, req.UserID, day, req.Limit)
			return SummaryAdmission{Job: j, Replayed: true, Counted: first.Counted, Usage: usage}, err
		}
	}

	state, err := e.DB.RecordState(ctx, req.OrgID, req.Module, req.RecordID)
	if err != nil {
		return SummaryAdmission{}, err
	}
	if state != "active" {
		return SummaryAdmission{}, fmt.Errorf("the record is in %s state: %w", state, ErrNotSummarizable)
	}
	if req.Module == "accounts" {
		has, err := e.DB.AccountHasAssociatedRecords(ctx, req.OrgID, req.RecordID)
		if err != nil {
			return SummaryAdmission{}, err
		}
		if !has {
			return SummaryAdmission{}, ErrNoAssociatedRecords
		}
	}
	hash, _, err := e.DB.SummaryDataHash(ctx, req.OrgID, req.Module, req.RecordID)
	if err != nil {
		return SummaryAdmission{}, err
	}
	counted, _, err := e.DB.ConsumeSummary(ctx, req.OrgID, req.UserID, req.Module, req.RecordID, hash, day, req.Limit)
	if errors.Is(err, store.ErrQuotaExceeded) {
		return SummaryAdmission{}, &QuotaError{Limit: req.Limit, ResetAt: time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, time.UTC)}
	}
	if err != nil {
		return SummaryAdmission{}, err
	}
	p.Counted = counted
	task, err := NewSummaryTask(p)
	if err != nil {
		return SummaryAdmission{}, err
	}
	base.Task = task
	job, replayed, err := e.Enqueue(ctx, base)
	if err != nil {
		if counted {
			if _, rerr := e.DB.ReleaseSummaryConsumption(context.WithoutCancel(ctx), req.OrgID, req.UserID, req.Module, req.RecordID, hash, day); rerr != nil {
				e.Log.ErrorContext(ctx, "summary count not given back", "err", rerr)
			}
		}
		return SummaryAdmission{}, err
	}
	usage, err := e.DB.SummaryUsageOf(ctx, req.OrgID, req.UserID, day, req.Limit)
	if err != nil {
		return SummaryAdmission{}, err
	}
	return SummaryAdmission{Job: job, Replayed: replayed, Counted: counted, Usage: usage}, nil
}

// sameSummaryRequest compares what the client asked for, not what the
// admission derived: a retry is not counted again, so its payload's
// counted differs from the first one's.
func sameSummaryRequest(stored, incoming []byte) bool {
	var a, b SummaryPayload
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(incoming, &b) != nil {
		return false
	}
	a.Counted, b.Counted = false, false
	return a == b
}
