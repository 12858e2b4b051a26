package enrich

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// DefaultBulkConcurrency is how many child tasks of one bulk enrichment
// may be queued or running at once (the bulk's window); the fetcher's
// global cap and per-host turns apply on top.
const DefaultBulkConcurrency = 8

// Bulk is the enrich:bulk task, the parent of one child enrich:record task
// per record. It writes the bulk's ledger, hands its job row to the
// children (store.DetachJob) and enqueues the first window of them; each
// child, once its record's outcome is recorded, enqueues the next ones, so
// at most Concurrency children of a bulk are queued or running, and the
// child that ends the last record finishes the parent job with the result
// counted from every outcome. The parent holds no worker slot while its
// children run, so bulks cannot starve their own children.
//
// Run again (a retry after a crash, or the reconciler after no child
// moved for the parent's timeout), it enqueues nothing twice (the
// children's task ids are their row ids), puts back children whose task
// was lost, and ends the records of children that failed for good
// without recording an outcome.
type Bulk struct {
	Enricher
	Queue       jobs.TaskEnqueuer // asynq's Client
	Concurrency int
}

// detachToken is the run id a bulk's job row carries while its children
// own it.
func detachToken(jobID string) string { return "children:" + jobID }

// Run implements workers.Handler. Its result is only the state at the
// time it returns: the parent job's stored result is written by the last
// child.
func (h Bulk) Run(ctx context.Context, job workers.Job[jobs.EnrichBulkPayload]) (jobs.EnrichBulkResult, error) {
	p := job.Payload
	n := h.Concurrency
	if n <= 0 {
		n = DefaultBulkConcurrency
	}
	b, err := h.Store.StartEnrichBulk(ctx, p.OrgID, job.ID, p.UserID, jobs.QuotaDayOf(p.QuotaDay, h.Now()), p.AccountIDs, n)
	if err != nil {
		return jobs.EnrichBulkResult{}, err
	}
	if b.FinishedAt == nil {
		if _, err := h.Store.DetachJob(ctx, job.ID, detachToken(job.ID)); err != nil {
			return jobs.EnrichBulkResult{}, err
		}
		if err := h.Store.SetDetachedProgress(ctx, job.ID, b.Percent()); err != nil {
			return jobs.EnrichBulkResult{}, err
		}
		if err := h.settleStranded(ctx, job.ID); err != nil {
			return jobs.EnrichBulkResult{}, err
		}
		if err := dispatch(ctx, h.Store, h.Queue, job.ID, p.OrgID, p.UserID, p.QuotaDay); err != nil {
			return jobs.EnrichBulkResult{}, err
		}
	}
	return h.Store.EnrichBulkResultOf(ctx, job.ID)
}

// settleStranded ends the records whose child job is final without an
// outcome: it failed for good (its retries used up by errors or crashes)
// or was cancelled on its own.
func (h Bulk) settleStranded(ctx context.Context, bulkID string) error {
	children, err := h.Store.StrandedEnrichChildren(ctx, bulkID)
	if err != nil {
		return err
	}
	for _, c := range children {
		if c.JobState != store.JobFailed && c.JobState != store.JobCancelled {
			continue
		}
		detail := "the record's task ended " + c.JobState + " without an outcome"
		if c.JobError != nil {
			detail += ": " + *c.JobError
		}
		if _, err := h.Store.FinishEnrichBulkRecord(ctx, bulkID, c.AccountID, store.EnrichOutcome{State: "failed", Reason: store.EnrichReasonError, Detail: detail}); err != nil {
			return err
		}
		h.Log.WarnContext(ctx, "bulk record settled by its parent", "job_id", bulkID, "child", c.ID, "state", c.JobState)
	}
	return nil
}

// dispatch moves a bulk's window and enqueues its children; the queue
// ignores those it holds already.
func dispatch(ctx context.Context, st *store.DB, q jobs.TaskEnqueuer, bulkID string, orgID int64, userID, quotaDay string) error {
	if q == nil {
		return errors.New("bulk enrichment: no queue to enqueue its children on")
	}
	children, err := st.DispatchEnrichBulk(ctx, bulkID, func(accountID int64, account string) (store.ChildJob, error) {
		queue, _ := asynq.GetQueueName(ctx) // the parent's, or a sibling's: the same
		t, err := jobs.NewEnrichChildTask(jobs.EnrichRecordPayload{OrgID: orgID, AccountID: accountID, Account: account,
			UserID: userID, Bulk: bulkID, QuotaDay: quotaDay}, queue)
		if err != nil {
			return store.ChildJob{}, err
		}
		return jobs.ChildJob(store.EnrichChildID(bulkID, accountID), t), nil
	})
	if err != nil {
		return err
	}
	_, err = jobs.EnqueueChildren(ctx, q, children)
	return err
}

// child is a bulk's enrich:record task: it enriches its record as a
// single enrichment does, then, in one transaction, writes the found
// values into the account's empty fields only, keeps the proposals and
// records the outcome (which finishes the parent when it is the last);
// then it enqueues the bulk's next children. An unreachable or silent
// site is retried with backoff and recorded as failed on the last
// attempt; other failures are recorded at once. A child run again after
// its outcome was recorded only enqueues the next children.
func (h Record) child(ctx context.Context, job workers.Job[jobs.EnrichRecordPayload]) (jobs.EnrichRecordResult, error) {
	p := job.Payload
	res := jobs.EnrichRecordResult{EnrichmentID: job.ID, Account: p.Account, Found: []string{}}
	state, _, err := h.Store.JobState(ctx, p.Bulk)
	if errors.Is(err, store.ErrNotFound) {
		return res, workers.Permanent(permanent(fmt.Sprintf("bulk enrichment %s is gone", p.Bulk)))
	}
	if err != nil {
		return res, err
	}
	if state == store.JobCancelled {
		if _, err := h.Store.CancelEnrichBulk(ctx, p.Bulk, p.AccountID); err != nil {
			return res, err
		}
		return res, fmt.Errorf("bulk enrichment %s was cancelled: %w", p.Bulk, workers.ErrCancelled)
	}
	rec, err := h.Store.EnrichBulkRecordState(ctx, p.Bulk, p.AccountID)
	if err != nil {
		return res, err
	}
	res.State = rec
	if rec == "pending" {
		var retry error
		res, retry, err = h.enrichChild(ctx, job)
		if err != nil && lastAttempt(ctx) && ctx.Err() == nil {
			// No retry is left: the record ends failed rather than
			// holding its bulk until the parent settles it.
			if _, ferr := h.Store.FinishEnrichBulkRecord(ctx, p.Bulk, p.AccountID, store.EnrichOutcome{State: "failed",
				Reason: store.EnrichReasonError, Detail: err.Error()}); ferr == nil {
				res.State, res.Reason, err = "failed", store.EnrichReasonError, nil
			}
		}
		if err != nil || retry != nil {
			return res, errors.Join(err, retry)
		}
	}
	return res, dispatch(ctx, h.Store, h.Queue, p.Bulk, p.OrgID, p.UserID, p.QuotaDay)
}

// enrichChild crawls the child's record and records its outcome. retry is
// a transient site failure on an attempt that is not the last: the
// enrichment row says why, the outcome waits for the next attempt.
func (h Record) enrichChild(ctx context.Context, job workers.Job[jobs.EnrichRecordPayload]) (res jobs.EnrichRecordResult, retry, err error) {
	p := job.Payload
	res = jobs.EnrichRecordResult{EnrichmentID: job.ID, Account: p.Account, Found: []string{}}
	settings, err := h.Store.EnrichmentSettings(ctx, p.OrgID)
	if err != nil {
		return res, nil, err
	}
	o, err := h.enrich(ctx, p.OrgID, p.AccountID, job.ID, p.Bulk, "bulk", settings.Fields)
	var out store.EnrichOutcome
	var write []store.EnrichProposal
	switch {
	case errors.Is(err, store.ErrNotFound): // deleted since the request
		out = store.EnrichOutcome{State: "failed", Reason: store.EnrichReasonDeleted, Detail: fmt.Sprintf("account %s was deleted before it was enriched", p.Account)}
	case err != nil:
		return res, nil, err
	case o.e.State == "failed":
		out = store.EnrichOutcome{State: "failed", Reason: *o.e.Reason}
		if o.e.Detail != nil {
			out.Detail = *o.e.Detail
		}
		if o.transient && !lastAttempt(ctx) {
			if err := h.Store.SaveEnrichment(ctx, p.OrgID, o.e); err != nil {
				return res, nil, err
			}
			return res, errors.New(out.Reason + ": " + out.Detail), nil
		}
	default:
		out = store.EnrichOutcome{State: "succeeded"}
		for _, pr := range o.e.Proposals {
			if pr.Found && contains(settings.Fields, pr.Field) {
				write = append(write, pr)
			}
		}
	}
	if _, err := h.Store.FinishEnrichChild(ctx, p.Bulk, p.AccountID, o.e, write, out, h.Now()); err != nil {
		return res, nil, err
	}
	res.State, res.Reason = out.State, out.Reason
	for _, pr := range o.e.Proposals {
		if pr.Found {
			res.Found = append(res.Found, pr.Field)
		}
	}
	return res, nil, nil
}

// lastAttempt tells whether the running task has no retry left (true
// outside asynq: a handler called directly decides at once).
func lastAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return !ok1 || !ok2 || retried >= maxRetry
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
