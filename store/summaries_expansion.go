package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Expansion opportunities of seed 001: a deal created from an account
// summary's suggested expansion opportunities, which fill its description.

// Values of an expansion opportunity created from a summary.
const (
	ExpansionDealType  = "expansion"
	ExpansionStage     = "Qualification"
	expansionIDPrefix  = "exp-"
	MaxExpansionName   = 500 // characters
	maxExpansionDetail = 20000
)

// ErrInvalidExpansion is returned for a name or description that cannot be
// stored.
var ErrInvalidExpansion = errors.New("invalid expansion opportunity")

// ExpansionDealID is the external id of the expansion opportunity created
// from a summary: one per summary, so a repeated request finds the first.
func ExpansionDealID(summaryID string) string { return expansionIDPrefix + summaryID }

// CreateExpansionOpportunity creates the deal of the expansion opportunity
// suggested by the org's account summary summaryID: deal_type expansion,
// stage Qualification, the account as its account, name and description as
// given (name "" is "Expansion: <account name>"). The deal's external id is
// ExpansionDealID(summaryID), so calling again returns the deal already
// created (created false) as it is now. The deal is returned as GetRecord
// renders it. ErrNotFound when the org has no such summary or account;
// ErrConflict when the summary is not of that account.
func (db *DB) CreateExpansionOpportunity(ctx context.Context, orgID int64, summaryID, accountExternalID, name, description string) (Record, bool, error) {
	what := fmt.Sprintf("expansion opportunity of summary %q", summaryID)
	dealID := ExpansionDealID(summaryID)
	switch {
	case !storableID(summaryID) || !storableID(dealID):
		return nil, false, fmt.Errorf("%s: %w", what, ErrNotFound)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0) || utf8.RuneCountInString(name) > MaxExpansionName:
		return nil, false, fmt.Errorf("%s: name: %w", what, ErrInvalidExpansion)
	case !utf8.ValidString(description) || strings.ContainsRune(description, 0) || utf8.RuneCountInString(description) > maxExpansionDetail:
		return nil, false, fmt.Errorf("%s: description: %w", what, ErrInvalidExpansion)
	}
	s, err := db.Summary(ctx, orgID, summaryID)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	if s.Module != "accounts" || s.RecordExternalID != accountExternalID {
		return nil, false, fmt.Errorf("%s: the summary is of %s %q, not accounts %q: %w",
			what, s.Module, s.RecordExternalID, accountExternalID, ErrConflict)
	}
	created := false
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		// The ingestion lock of the org's deals: the same writer order as
		// UpsertRecords, so the stage history below stays true.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			fmt.Sprintf("crmq:ingest:%d:deals", orgID)); err != nil {
			return fmt.Errorf("lock deals: %w", err)
		}
		var id int64
		err := tx.GetContext(ctx, &id, `
			INSERT INTO deals (org_id, external_id, account_id, name, stage, deal_type, description)
			SELECT $1, $2, a.id, CASE WHEN $4 = '' THEN 'Expansion: ' || a.name ELSE $4 END, $5, $6, $7
			FROM accounts a WHERE a.org_id = $1 AND a.external_id = $3
			ON CONFLICT (org_id, external_id) DO NOTHING
			RETURNING id`, orgID, dealID, accountExternalID, name, ExpansionStage, ExpansionDealType, description)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err != nil {
			// No row: the deal exists already, or the account does not.
			var exists bool
			if qerr := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM deals WHERE org_id = $1 AND external_id = $2)`,
				orgID, dealID); qerr != nil {
				return qerr
			}
			if exists {
				return nil
			}
			return notFound(err, fmt.Sprintf("account %q", accountExternalID))
		}
		created = true
		// A new deal's first stage is a milestone, as ingestion records it.
		_, err = tx.ExecContext(ctx, `
			INSERT INTO field_history (org_id, module, record_id, field, old_value, new_value, changed_at)
			VALUES ($1, 'deals', $2, 'stage', NULL, $3, statement_timestamp())`, orgID, id, ExpansionStage)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	rec, err := db.GetRecord(ctx, orgID, "deals", dealID)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	return rec, created, nil
}
