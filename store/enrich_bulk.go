package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// A bulk enrichment runs as one child enrich:record task per record. The
// parent's ledger (enrich_bulks, enrich_bulk_records) says which records
// have a child (a sliding window ahead of the records done), each
// record's outcome, written once, and when the parent job was finished:
// by the child whose outcome made the last record final, in the same
// transaction as that outcome, so exactly once.

// Bulk record outcomes besides the fetch reasons.
const (
	EnrichReasonDeleted   = "account_deleted"
	EnrichReasonCancelled = "cancelled"
	EnrichReasonError     = "error" // the child task failed for good without an outcome
)

// EnrichFailure is a record a bulk enrichment could not enrich.
type EnrichFailure struct {
	Account string `json:"account_id"`
	Reason  string `json:"reason"` // no_website, unreachable, robots_disallowed, nothing_found, refused_address, timeout, account_deleted, cancelled, error
	Detail  string `json:"detail,omitempty"`
}

// EnrichBulkResult is the result of enrich:bulk, counted from its
// children's outcomes.
type EnrichBulkResult struct {
	Records       int             `json:"records"`
	Succeeded     int             `json:"succeeded"`
	Failed        int             `json:"failed"`
	Enriched      int             `json:"enriched"`       // records with at least one field written
	FieldsWritten int             `json:"fields_written"` // empty fields filled, over all records
	Refunded      int             `json:"refunded"`       // failed records given back to the org's day
	Reasons       map[string]int  `json:"reasons"`        // failures by reason
	Failures      []EnrichFailure `json:"failures"`
}

// EnrichBulk is a bulk enrichment's ledger.
type EnrichBulk struct {
	JobID      string     `db:"job_id"`
	OrgID      int64      `db:"org_id"`
	UserID     *string    `db:"user_id"`
	QuotaDay   time.Time  `db:"quota_day"`
	Total      int        `db:"total"`
	Window     int        `db:"window_size"`
	Dispatched int        `db:"dispatched"`
	Done       int        `db:"done"`
	FinishedAt *time.Time `db:"finished_at"`
}

// Percent is the share of records final.
func (b EnrichBulk) Percent() int { return b.Done * 100 / b.Total }

// EnrichChildID is the id of a bulk record's child task, job row and
// enrichment: the bulk's job id, a dot and the account's row id.
func EnrichChildID(bulkJobID string, accountID int64) string {
	return bulkJobID + "." + strconv.FormatInt(accountID, 10)
}

const bulkCols = `job_id, org_id, user_id, quota_day, total, window_size, dispatched, done, finished_at`

// StartEnrichBulk writes a bulk's ledger the first time its parent runs
// and reads it back on every later run (a retried parent).
func (db *DB) StartEnrichBulk(ctx context.Context, orgID int64, jobID, userID string, quotaDay time.Time, accountIDs []int64, window int) (EnrichBulk, error) {
	var b EnrichBulk
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO enrich_bulks (job_id, org_id, user_id, quota_day, total, window_size)
			VALUES ($1, $2, nullif($3, ''), $4::date, $5, $6) ON CONFLICT (job_id) DO NOTHING`,
			jobID, orgID, userID, quotaDay.UTC().Format(time.DateOnly), len(accountIDs), max(window, 1))
		if err != nil {
			return fmt.Errorf("bulk %s: %w", jobID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO enrich_bulk_records (job_id, pos, account_id, account)
				SELECT $1, u.pos - 1, u.id, coalesce(a.external_id, u.id::text)
				FROM unnest($3::bigint[]) WITH ORDINALITY AS u(id, pos)
				LEFT JOIN accounts a ON a.org_id = $2 AND a.id = u.id
				ON CONFLICT DO NOTHING`, jobID, orgID, pq.Int64Array(accountIDs)); err != nil {
				return fmt.Errorf("bulk %s records: %w", jobID, err)
			}
		}
		return tx.GetContext(ctx, &b, `SELECT `+bulkCols+` FROM enrich_bulks WHERE job_id = $1`, jobID)
	})
	return b, err
}

// GetEnrichBulk reads a bulk's ledger.
func (db *DB) GetEnrichBulk(ctx context.Context, jobID string) (EnrichBulk, error) {
	var b EnrichBulk
	if err := db.GetContext(ctx, &b, `SELECT `+bulkCols+` FROM enrich_bulks WHERE job_id = $1`, jobID); err != nil {
		return EnrichBulk{}, notFound(err, "bulk enrichment "+jobID)
	}
	return b, nil
}

// EnrichChild is a record of a bulk that has a child task and no outcome
// yet, with its child job row's state ("" when the row is missing).
type EnrichChild struct {
	AccountID int64   `db:"account_id"`
	ID        string  `db:"id"`
	JobState  string  `db:"job_state"`
	JobError  *string `db:"job_error"`
}

// DispatchEnrichBulk moves the bulk's window: the records up to done +
// window get their child's job row (child builds it), and every record
// inside the window still without an outcome is answered, so the caller
// enqueues them all. The queue ignores a task id it holds already, so a
// child whose task was lost (the process died between this commit and the
// enqueue) is put back by the next dispatch.
func (db *DB) DispatchEnrichBulk(ctx context.Context, jobID string, child func(accountID int64, account string) (ChildJob, error)) ([]ChildJob, error) {
	var out []ChildJob
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var b EnrichBulk
		if err := tx.GetContext(ctx, &b, `SELECT `+bulkCols+` FROM enrich_bulks WHERE job_id = $1 FOR UPDATE`, jobID); err != nil {
			return notFound(err, "bulk enrichment "+jobID)
		}
		if b.FinishedAt != nil {
			return nil
		}
		target := min(b.Total, max(b.Dispatched, b.Done+b.Window))
		var accounts []struct {
			ID  int64  `db:"account_id"`
			Ext string `db:"account"`
		}
		if err := tx.SelectContext(ctx, &accounts, `SELECT account_id, account FROM enrich_bulk_records
			WHERE job_id = $1 AND pos < $2 AND state = 'pending' ORDER BY pos`, jobID, target); err != nil {
			return fmt.Errorf("bulk %s window: %w", jobID, err)
		}
		for _, a := range accounts {
			c, err := child(a.ID, a.Ext)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		if err := insertChildJobs(ctx, tx, b.OrgID, b.UserID, out); err != nil {
			return err
		}
		if target > b.Dispatched {
			if _, err := tx.ExecContext(ctx, `UPDATE enrich_bulks SET dispatched = $2 WHERE job_id = $1`, jobID, target); err != nil {
				return fmt.Errorf("bulk %s dispatched: %w", jobID, err)
			}
		}
		return nil
	})
	return out, err
}

// StrandedEnrichChildren lists the records that have a child task and no
// outcome, with their child job's state: a child whose job is final
// (failed for good, or cancelled) without an outcome left its record
// stranded, and the parent settles it.
func (db *DB) StrandedEnrichChildren(ctx context.Context, jobID string) ([]EnrichChild, error) {
	var out []EnrichChild
	err := db.SelectContext(ctx, &out, `
		SELECT r.account_id, r.job_id || '.' || r.account_id AS id, coalesce(j.state, '') AS job_state, j.error AS job_error
		FROM enrich_bulk_records r JOIN enrich_bulks b USING (job_id)
		LEFT JOIN jobs j ON j.id = r.job_id || '.' || r.account_id
		WHERE r.job_id = $1 AND r.state = 'pending' AND r.pos < b.dispatched
		ORDER BY r.pos`, jobID)
	if err != nil {
		return nil, fmt.Errorf("bulk %s children: %w", jobID, err)
	}
	return out, nil
}

// EnrichOutcome is a bulk record's final outcome.
type EnrichOutcome struct {
	State   string // succeeded, failed or cancelled
	Reason  string
	Detail  string
	Written int // fields written
}

// EnrichRecordFinish says what recording an outcome did.
type EnrichRecordFinish struct {
	Recorded bool // false: the record had its outcome already (a retried child)
	Finished bool // this outcome finished the bulk (and its parent job)
	Bulk     EnrichBulk
}

// EnrichBulkRecordState is a bulk record's state: pending until its
// outcome is recorded.
func (db *DB) EnrichBulkRecordState(ctx context.Context, jobID string, accountID int64) (string, error) {
	var state string
	if err := db.GetContext(ctx, &state, `SELECT state FROM enrich_bulk_records WHERE job_id = $1 AND account_id = $2`, jobID, accountID); err != nil {
		return "", notFound(err, fmt.Sprintf("record %d of bulk enrichment %s", accountID, jobID))
	}
	return state, nil
}

// FinishEnrichChild is a bulk child's last step, in one transaction: if
// its record has no outcome yet, the found values of write go into the
// account's empty fields (never over a value), the enrichment e is saved
// with the fields written (skipped when e.ID is empty: the account is
// gone), and the record's outcome is recorded as FinishEnrichBulkRecord
// does. A record that has its outcome already changes nothing
// (Recorded false): a child run twice writes once.
func (db *DB) FinishEnrichChild(ctx context.Context, jobID string, accountID int64, e Enrichment, write []EnrichProposal, o EnrichOutcome, now time.Time) (EnrichRecordFinish, error) {
	var f EnrichRecordFinish
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		// The bulk first, as every writer of the ledger locks it.
		if err := tx.GetContext(ctx, &f.Bulk, `SELECT `+bulkCols+` FROM enrich_bulks WHERE job_id = $1 FOR UPDATE`, jobID); err != nil {
			return notFound(err, "bulk enrichment "+jobID)
		}
		var state string
		if err := tx.GetContext(ctx, &state, `SELECT state FROM enrich_bulk_records WHERE job_id = $1 AND account_id = $2`, jobID, accountID); err != nil {
			return notFound(err, fmt.Sprintf("record %d of bulk enrichment %s", accountID, jobID))
		}
		if state != "pending" {
			return nil
		}
		if e.ID != "" {
			if len(write) > 0 {
				values := map[string]any{}
				for _, p := range write {
					if p.Found {
						values[p.Field] = p.Proposed
					}
				}
				changes, err := writeFields(ctx, tx, f.Bulk.OrgID, accountID, values, true, now)
				if err != nil {
					return fmt.Errorf("account %d: %w", accountID, err)
				}
				e.Written = pq.StringArray{}
				for _, c := range changes {
					e.Written = append(e.Written, c.Field)
				}
				sort.Strings(e.Written)
			}
			if err := saveEnrichment(ctx, tx, f.Bulk.OrgID, e); err != nil {
				return err
			}
			o.Written = len(e.Written)
		}
		var err error
		f, err = finishBulkRecords(ctx, tx, jobID, []int64{accountID}, o, false)
		return err
	})
	return f, err
}

// FinishEnrichBulkRecord records a record's outcome, once: a failed or
// cancelled record is given back to the org's day (keyed by its child id,
// so never twice), the parent's progress moves, and the outcome that makes
// the last record final finishes the parent job with the result counted
// from every record, and writes its history entry, in the same
// transaction.
func (db *DB) FinishEnrichBulkRecord(ctx context.Context, jobID string, accountID int64, o EnrichOutcome) (EnrichRecordFinish, error) {
	var f EnrichRecordFinish
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		f, err = finishBulkRecords(ctx, tx, jobID, []int64{accountID}, o, false)
		return err
	})
	return f, err
}

// CancelEnrichBulk ends a cancelled bulk's records that have no outcome
// yet and are not running: those never dispatched, and the caller's own
// (accountID); they are given back to the org's day. Records whose child
// is queued end when their child runs and sees the parent cancelled.
func (db *DB) CancelEnrichBulk(ctx context.Context, jobID string, accountID int64) (EnrichRecordFinish, error) {
	var f EnrichRecordFinish
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var rest []int64
		if err := tx.SelectContext(ctx, &rest, `SELECT r.account_id FROM enrich_bulk_records r JOIN enrich_bulks b USING (job_id)
			WHERE r.job_id = $1 AND r.state = 'pending' AND (r.pos >= b.dispatched OR r.account_id = $2)
			ORDER BY r.pos FOR UPDATE OF b`, jobID, accountID); err != nil {
			return fmt.Errorf("bulk %s cancel: %w", jobID, err)
		}
		var err error
		f, err = finishBulkRecords(ctx, tx, jobID, rest, EnrichOutcome{State: "cancelled", Reason: EnrichReasonCancelled,
			Detail: "the bulk enrichment was cancelled before this record was enriched"}, true)
		return err
	})
	return f, err
}

// finishBulkRecords writes one outcome to each of the records still
// pending among accounts, under the bulk's row lock.
func finishBulkRecords(ctx context.Context, tx *sqlx.Tx, jobID string, accounts []int64, o EnrichOutcome, closeWindow bool) (EnrichRecordFinish, error) {
	var f EnrichRecordFinish
	if err := tx.GetContext(ctx, &f.Bulk, `SELECT `+bulkCols+` FROM enrich_bulks WHERE job_id = $1 FOR UPDATE`, jobID); err != nil {
		return f, notFound(err, "bulk enrichment "+jobID)
	}
	var done []int64
	if err := tx.SelectContext(ctx, &done, `UPDATE enrich_bulk_records SET state = $3, reason = nullif($4, ''), detail = nullif($5, ''),
			written = $6, finished_at = now()
		WHERE job_id = $1 AND account_id = ANY($2) AND state = 'pending' RETURNING account_id`,
		jobID, pq.Int64Array(accounts), o.State, o.Reason, o.Detail, o.Written); err != nil {
		return f, fmt.Errorf("bulk %s outcome: %w", jobID, err)
	}
	if closeWindow {
		if _, err := tx.ExecContext(ctx, `UPDATE enrich_bulks SET dispatched = total WHERE job_id = $1`, jobID); err != nil {
			return f, fmt.Errorf("bulk %s window: %w", jobID, err)
		}
		f.Bulk.Dispatched = f.Bulk.Total
	}
	if len(done) == 0 {
		return f, nil
	}
	f.Recorded = true
	if o.State != "succeeded" {
		for _, a := range done {
			if _, err := refund(ctx, tx, EnrichChildID(jobID, a), f.Bulk.OrgID, f.Bulk.QuotaDay, o.Reason); err != nil {
				return f, err
			}
		}
	}
	if err := tx.GetContext(ctx, &f.Bulk.Done, `UPDATE enrich_bulks SET done = done + $2 WHERE job_id = $1 RETURNING done`, jobID, len(done)); err != nil {
		return f, fmt.Errorf("bulk %s done: %w", jobID, err)
	}
	if err := setDetachedProgress(ctx, tx, jobID, f.Bulk.Percent()); err != nil {
		return f, err
	}
	if f.Bulk.Done < f.Bulk.Total || f.Bulk.FinishedAt != nil {
		return f, nil
	}
	res, err := bulkResult(ctx, tx, jobID)
	if err != nil {
		return f, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return f, err
	}
	if _, err := finishDetachedJob(ctx, tx, jobID, b); err != nil {
		return f, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO enrichment_history (org_id, kind, job_id, user_id, records, created_at)
		VALUES ($1, 'bulk', $2, $3, $4, now())
		ON CONFLICT (job_id) WHERE kind = 'bulk' DO UPDATE SET records = EXCLUDED.records`,
		f.Bulk.OrgID, jobID, f.Bulk.UserID, res.Enriched); err != nil {
		return f, fmt.Errorf("bulk history: %w", err)
	}
	if err := tx.GetContext(ctx, &f.Bulk.FinishedAt, `UPDATE enrich_bulks SET finished_at = now() WHERE job_id = $1 RETURNING finished_at`, jobID); err != nil {
		return f, fmt.Errorf("bulk %s finished: %w", jobID, err)
	}
	f.Finished = true
	return f, nil
}

// EnrichBulkResultOf counts a bulk's outcomes so far (the parent's result
// once every record is final).
func (db *DB) EnrichBulkResultOf(ctx context.Context, jobID string) (EnrichBulkResult, error) {
	var res EnrichBulkResult
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = bulkResult(ctx, tx, jobID)
		return err
	})
	return res, err
}

func bulkResult(ctx context.Context, tx *sqlx.Tx, jobID string) (EnrichBulkResult, error) {
	var rows []struct {
		Account  string  `db:"account"`
		State    string  `db:"state"`
		Reason   *string `db:"reason"`
		Detail   *string `db:"detail"`
		Written  int     `db:"written"`
		Refunded bool    `db:"refunded"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT r.account, r.state, r.reason, r.detail, r.written,
			EXISTS (SELECT 1 FROM enrichment_refunds f WHERE f.id = r.job_id || '.' || r.account_id) AS refunded
		FROM enrich_bulk_records r WHERE r.job_id = $1 ORDER BY r.pos`, jobID); err != nil {
		return EnrichBulkResult{}, fmt.Errorf("bulk %s outcomes: %w", jobID, err)
	}
	res := EnrichBulkResult{Records: len(rows), Reasons: map[string]int{}, Failures: []EnrichFailure{}}
	for _, r := range rows {
		switch r.State {
		case "succeeded":
			res.Succeeded++
			if r.Written > 0 {
				res.Enriched++
				res.FieldsWritten += r.Written
			}
		case "pending":
		default:
			res.Failed++
			reason := r.State
			if r.Reason != nil {
				reason = *r.Reason
			}
			res.Reasons[reason]++
			f := EnrichFailure{Account: r.Account, Reason: reason}
			if r.Detail != nil {
				f.Detail = *r.Detail
			}
			res.Failures = append(res.Failures, f)
		}
		if r.Refunded {
			res.Refunded++
		}
	}
	sort.SliceStable(res.Failures, func(i, j int) bool { return res.Failures[i].Account < res.Failures[j].Account })
	return res, nil
}

// RefundEnrichment gives one failed record back to the org's day, once
// per id (an enrichment's id): a retried task that fails again gives
// nothing more. It answers whether this call gave it back.
func (db *DB) RefundEnrichment(ctx context.Context, id string, orgID int64, day time.Time, reason string) (bool, error) {
	var ok bool
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		ok, err = refund(ctx, tx, id, orgID, day, reason)
		return err
	})
	return ok, err
}

func refund(ctx context.Context, tx *sqlx.Tx, id string, orgID int64, day time.Time, reason string) (bool, error) {
	d := day.UTC().Format(time.DateOnly)
	var one int
	err := tx.GetContext(ctx, &one, `INSERT INTO enrichment_refunds (id, org_id, day, reason) VALUES ($1, $2, $3::date, $4)
		ON CONFLICT (id) DO NOTHING RETURNING 1`, id, orgID, d, reason)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("refund %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE enrichment_usage SET used = greatest(used - 1, 0) WHERE org_id = $1 AND day = $2::date`, orgID, d); err != nil {
		return false, fmt.Errorf("refund %s: %w", id, err)
	}
	return true, nil
}
