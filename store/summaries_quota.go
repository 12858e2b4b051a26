package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// The daily limit of seed 000: each user may generate a number of summaries
// a day. A generation counts when the user has not yet had a summary of the
// same record made from the same data (data hash) that day: regenerating an
// unchanged record is free, a changed record counts again, and each user
// has their own count.

// ErrQuotaExceeded is returned by ConsumeSummary when the user has used the
// day's limit; nothing is counted.
var ErrQuotaExceeded = errors.New("daily summary limit reached")

// ErrInvalidConsumption is returned for a consumption without a user,
// record or data hash.
var ErrInvalidConsumption = errors.New("invalid summary consumption")

// SummaryUsage is a user's count for one day. Day is YYYY-MM-DD.
type SummaryUsage struct {
	Day       string `json:"day"`
	Used      int    `json:"used"`
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
}

// dayOf is the calendar day of t in t's own location: the caller decides
// which time zone a "day" is (crmq passes UTC).
func dayOf(t time.Time) string { return t.Format(time.DateOnly) }

func checkConsumption(userID, module, recordExternalID, dataHash string) error {
	switch {
	case userID == "" || !storableID(userID):
		return fmt.Errorf("user id %q: %w", userID, ErrInvalidConsumption)
	case !ValidModule(module):
		return fmt.Errorf("module %q: %w", module, ErrInvalidConsumption)
	case !storableID(recordExternalID):
		return fmt.Errorf("record id %q: %w", recordExternalID, ErrInvalidConsumption)
	case dataHash == "" || !storableID(dataHash):
		return fmt.Errorf("data hash %q: %w", dataHash, ErrInvalidConsumption)
	}
	return nil
}

// ConsumeSummary counts one generation of a summary of the record, made
// from data with dataHash, against the user's limit for day. counted is
// false when the same user already had this record with this hash that day
// (nothing is counted again); used is the day's count afterwards. When the
// count has reached limit, ErrQuotaExceeded, and nothing is recorded.
//
// Safe under any concurrency: the consumption row's key makes a repeat
// count once, and the count only moves by one UPDATE guarded by used <
// limit, which Postgres re-checks after waiting for a concurrent update of
// the same row; both happen in one transaction, rolled back when the limit
// is reached.
func (db *DB) ConsumeSummary(ctx context.Context, orgID int64, userID, module, recordExternalID, dataHash string, day time.Time, limit int) (counted bool, used int, err error) {
	if err := checkConsumption(userID, module, recordExternalID, dataHash); err != nil {
		return false, 0, fmt.Errorf("consume summary: %w", err)
	}
	d := dayOf(day)
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		var isNew bool
		err := tx.GetContext(ctx, &isNew, `
			INSERT INTO summary_consumptions (org_id, user_id, day, module, record_external_id, data_hash)
			VALUES ($1, $2, $3::date, $4, $5, $6)
			ON CONFLICT DO NOTHING RETURNING true`, orgID, userID, d, module, recordExternalID, dataHash)
		if errors.Is(err, sql.ErrNoRows) {
			counted = false
			return usedOn(ctx, tx, orgID, userID, d, &used)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO summary_usage (org_id, user_id, day) VALUES ($1, $2, $3::date)
			ON CONFLICT DO NOTHING`, orgID, userID, d); err != nil {
			return err
		}
		err = tx.GetContext(ctx, &used, `
			UPDATE summary_usage SET used = used + 1
			WHERE org_id = $1 AND user_id = $2 AND day = $3::date AND used < $4
			RETURNING used`, orgID, userID, d, limit)
		if errors.Is(err, sql.ErrNoRows) {
			if err := usedOn(ctx, tx, orgID, userID, d, &used); err != nil {
				return err
			}
			return fmt.Errorf("%d of %d used on %s: %w", used, limit, d, ErrQuotaExceeded)
		}
		if err != nil {
			return err
		}
		counted = true
		return nil
	})
	if errors.Is(err, ErrQuotaExceeded) {
		return false, used, fmt.Errorf("consume summary: %w", err)
	}
	if err != nil {
		return false, 0, fmt.Errorf("consume summary: %w", err)
	}
	return counted, used, nil
}

func usedOn(ctx context.Context, q sqlx.QueryerContext, orgID int64, userID, day string, used *int) error {
	return sqlx.GetContext(ctx, q, used, `
		SELECT coalesce((SELECT used FROM summary_usage WHERE org_id = $1 AND user_id = $2 AND day = $3::date), 0)`,
		orgID, userID, day)
}

// ReleaseSummaryConsumption undoes a consumption that ConsumeSummary
// counted (counted == true) when what followed it failed, e.g. the job
// could not be enqueued: nothing is charged for a job that never ran. It
// deletes the consumption row and takes one off the day's count in one
// statement; released is false when there was no such consumption
// (already released, or never counted).
func (db *DB) ReleaseSummaryConsumption(ctx context.Context, orgID int64, userID, module, recordExternalID, dataHash string, day time.Time) (released bool, err error) {
	if err := checkConsumption(userID, module, recordExternalID, dataHash); err != nil {
		return false, fmt.Errorf("release summary consumption: %w", err)
	}
	err = db.GetContext(ctx, &released, `
		WITH gone AS (
			DELETE FROM summary_consumptions
			WHERE org_id = $1 AND user_id = $2 AND day = $3::date AND module = $4
			  AND record_external_id = $5 AND data_hash = $6
			RETURNING 1),
		dec AS (
			UPDATE summary_usage SET used = used - 1
			WHERE org_id = $1 AND user_id = $2 AND day = $3::date AND used > 0 AND EXISTS (SELECT 1 FROM gone))
		SELECT EXISTS (SELECT 1 FROM gone)`, orgID, userID, dayOf(day), module, recordExternalID, dataHash)
	if err != nil {
		return false, fmt.Errorf("release summary consumption: %w", err)
	}
	return released, nil
}

// SummaryUsageOf is the user's count for day against limit.
func (db *DB) SummaryUsageOf(ctx context.Context, orgID int64, userID string, day time.Time, limit int) (SummaryUsage, error) {
	u := SummaryUsage{Day: dayOf(day), Limit: limit}
	if err := usedOn(ctx, db, orgID, userID, u.Day, &u.Used); err != nil {
		return SummaryUsage{}, fmt.Errorf("summary usage: %w", err)
	}
	u.Remaining = max(limit-u.Used, 0)
	return u, nil
}

// PruneSummaryUsage deletes the org's counts and consumptions of the days
// before the day of before; they only matter on their own day. It returns
// how many rows it deleted.
func (db *DB) PruneSummaryUsage(ctx context.Context, orgID int64, before time.Time) (int64, error) {
	var n int64
	err := db.GetContext(ctx, &n, `
		WITH c AS (DELETE FROM summary_consumptions WHERE org_id = $2 AND day < $1::date RETURNING 1),
		     u AS (DELETE FROM summary_usage WHERE org_id = $2 AND day < $1::date RETURNING 1)
		SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM u)`, dayOf(before), orgID)
	if err != nil {
		return 0, fmt.Errorf("prune summary usage: %w", err)
	}
	return n, nil
}
