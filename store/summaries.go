package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Summary is one generated record summary. Its id is the id of the job
// that produced it, so a retried job replaces its own row instead of
// adding one.
type Summary struct {
	ID     string `db:"id" json:"id"`
	OrgID  int64  `db:"org_id" json:"-"`
	UserID string `db:"user_id" json:"user_id"`
	Module string `db:"module" json:"module"`
	// RecordID is the record's internal id, filled in by SaveSummary;
	// RecordExternalID is the id the API speaks.
	RecordID         int64     `db:"record_id" json:"-"`
	RecordExternalID string    `db:"record_external_id" json:"record_id"`
	DataHash         string    `db:"data_hash" json:"data_hash"`
	DataAsOf         time.Time `db:"data_as_of" json:"data_as_of"`
	Provider         string    `db:"provider" json:"provider"`
	Model            string    `db:"model" json:"model"`
	// Sections is the answer after validation; Truncation what the prompt
	// budget cut (nil for nothing). Both are stored as given.
	Sections         json.RawMessage `db:"-" json:"sections"`
	Truncation       json.RawMessage `db:"-" json:"truncation"`
	PromptTokens     int             `db:"prompt_tokens" json:"prompt_tokens"`
	OutputTokens     int             `db:"output_tokens" json:"output_tokens"`
	TotalTokens      int             `db:"total_tokens" json:"total_tokens"`
	DroppedSourceIDs int             `db:"dropped_source_ids" json:"dropped_source_ids"`
	// ReusedFrom is the summary whose content this one reuses (same data
	// hash), nil for a generated one.
	ReusedFrom *string    `db:"reused_from" json:"reused_from"`
	Saved      bool       `db:"saved" json:"saved"`
	SavedAt    *time.Time `db:"saved_at" json:"saved_at"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
}

// summaryRow scans a summary; jsonb columns arrive as bytes (NULL as nil),
// which json.RawMessage cannot take from database/sql.
type summaryRow struct {
	Summary
	SectionsJSON   []byte `db:"sections"`
	TruncationJSON []byte `db:"truncation"`
}

func (r summaryRow) summary() Summary {
	s := r.Summary
	s.Sections = json.RawMessage(r.SectionsJSON)
	if r.TruncationJSON != nil {
		s.Truncation = json.RawMessage(r.TruncationJSON)
	}
	s.DataAsOf = s.DataAsOf.UTC()
	s.CreatedAt = s.CreatedAt.UTC()
	if s.SavedAt != nil {
		t := s.SavedAt.UTC()
		s.SavedAt = &t
	}
	return s
}

const summaryColumns = `id, org_id, user_id, module, record_id, record_external_id, data_hash, data_as_of,
	provider, model, sections, truncation, prompt_tokens, output_tokens, total_tokens, dropped_source_ids,
	reused_from, saved, saved_at, created_at`

// ErrInvalidSummary is returned by SaveSummary for a summary that cannot be
// stored as given (no id, no sections, JSON that does not parse).
var ErrInvalidSummary = errors.New("invalid summary")

// SaveSummary stores s, or replaces the content of the summary with its id
// (a retried job): user, hash, model, sections, truncation, token counts
// and reuse are replaced, while created_at and the saved flag stay.
// RecordID is looked up from Module and RecordExternalID; CreatedAt zero
// means now; Saved and SavedAt are ignored (see MarkSummarySaved).
// ErrNotFound when the record, or the summary named by ReusedFrom, is not
// the org's; ErrConflict when the id is taken by a summary of another org
// or record.
func (db *DB) SaveSummary(ctx context.Context, s Summary) error {
	what := fmt.Sprintf("save summary %q", s.ID)
	g, err := graphOf(s.Module)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case s.ID == "" || !storableID(s.ID):
		return fmt.Errorf("%s: bad id: %w", what, ErrInvalidSummary)
	case !storableID(s.RecordExternalID):
		return fmt.Errorf("%s: record %s %q: %w", what, s.Module, s.RecordExternalID, ErrNotFound)
	case len(s.Sections) == 0 || !json.Valid(s.Sections):
		return fmt.Errorf("%s: sections are not JSON: %w", what, ErrInvalidSummary)
	case len(s.Truncation) > 0 && !json.Valid(s.Truncation):
		return fmt.Errorf("%s: truncation is not JSON: %w", what, ErrInvalidSummary)
	}
	var truncation, createdAt any
	if len(s.Truncation) > 0 {
		truncation = string(s.Truncation)
	}
	if !s.CreatedAt.IsZero() {
		createdAt = s.CreatedAt
	}
	// The record's internal id; $2 org, $5 external id, $4 module.
	record := `SELECT id FROM ` + g.subject.Table + ` WHERE org_id = $2 AND external_id = $5`
	if g.subject.Custom {
		record += ` AND module = $4`
	}
	var id string
	err = db.GetContext(ctx, &id, `
		WITH rec AS (`+record+`),
		     src AS (SELECT id FROM summaries WHERE id = $16 AND org_id = $2)
		INSERT INTO summaries AS s (id, org_id, user_id, module, record_id, record_external_id, data_hash, data_as_of,
			provider, model, sections, truncation, prompt_tokens, output_tokens, total_tokens, dropped_source_ids,
			reused_from, created_at)
		SELECT $1, $2, $3, $4, rec.id, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14, $15,
			src.id, coalesce($17::timestamptz, now())
		FROM rec LEFT JOIN src ON true
		WHERE $16::text IS NULL OR src.id IS NOT NULL
		ON CONFLICT (id) DO UPDATE SET
			user_id = EXCLUDED.user_id, record_id = EXCLUDED.record_id, data_hash = EXCLUDED.data_hash,
			data_as_of = EXCLUDED.data_as_of, provider = EXCLUDED.provider, model = EXCLUDED.model,
			sections = EXCLUDED.sections, truncation = EXCLUDED.truncation,
			prompt_tokens = EXCLUDED.prompt_tokens, output_tokens = EXCLUDED.output_tokens,
			total_tokens = EXCLUDED.total_tokens, dropped_source_ids = EXCLUDED.dropped_source_ids,
			reused_from = EXCLUDED.reused_from
		WHERE s.org_id = EXCLUDED.org_id AND s.module = EXCLUDED.module
		  AND s.record_external_id = EXCLUDED.record_external_id
		RETURNING s.id`,
		s.ID, s.OrgID, s.UserID, g.subject.Name, s.RecordExternalID, s.DataHash, s.DataAsOf,
		s.Provider, s.Model, string(s.Sections), truncation, s.PromptTokens, s.OutputTokens, s.TotalTokens,
		s.DroppedSourceIDs, s.ReusedFrom, createdAt)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Nothing written: say why.
	var recordExists, reusedExists, idTaken bool
	err = db.QueryRowxContext(ctx, `SELECT EXISTS (`+record+`), EXISTS (SELECT 1 FROM summaries WHERE id = $3 AND org_id = $2),
		EXISTS (SELECT 1 FROM summaries WHERE id = $1), $4::text`, s.ID, s.OrgID, s.ReusedFrom, g.subject.Name, s.RecordExternalID).
		Scan(&recordExists, &reusedExists, &idTaken, new(string))
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case !recordExists:
		return fmt.Errorf("%s: record %s %q: %w", what, g.subject.Name, s.RecordExternalID, ErrNotFound)
	case s.ReusedFrom != nil && !reusedExists:
		return fmt.Errorf("%s: reused summary %q: %w", what, *s.ReusedFrom, ErrNotFound)
	case idTaken:
		return fmt.Errorf("%s: id belongs to another summary: %w", what, ErrConflict)
	}
	return fmt.Errorf("%s: nothing written", what)
}

// Summary reads one of the org's summaries; ErrNotFound when the org has
// none with that id.
func (db *DB) Summary(ctx context.Context, orgID int64, id string) (Summary, error) {
	return db.oneSummary(ctx, fmt.Sprintf("summary %q", id),
		`SELECT `+summaryColumns+` FROM summaries WHERE org_id = $1 AND id = $2`, orgID, id)
}

// LatestSummary reads the newest summary of the org's record; ErrNotFound
// when it has none.
func (db *DB) LatestSummary(ctx context.Context, orgID int64, module, recordExternalID string) (Summary, error) {
	return db.oneSummary(ctx, fmt.Sprintf("latest summary of %s %q", module, recordExternalID), `
		SELECT `+summaryColumns+` FROM summaries
		WHERE org_id = $1 AND module = $2 AND record_external_id = $3
		ORDER BY created_at DESC, id DESC LIMIT 1`, orgID, module, recordExternalID)
}

// SummaryByHash reads the newest summary of the org's record made from
// data with the given hash, whose content can be reused while the data is
// unchanged; ErrNotFound when there is none.
func (db *DB) SummaryByHash(ctx context.Context, orgID int64, module, recordExternalID, dataHash string) (Summary, error) {
	return db.oneSummary(ctx, fmt.Sprintf("summary of %s %q with data hash %q", module, recordExternalID, dataHash), `
		SELECT `+summaryColumns+` FROM summaries
		WHERE org_id = $1 AND module = $2 AND record_external_id = $3 AND data_hash = $4
		ORDER BY created_at DESC, id DESC LIMIT 1`, orgID, module, recordExternalID, dataHash)
}

// MarkSummarySaved saves the org's summary (seed 001's Save Account
// Summary): it is kept until deleted, never pruned. Saving again keeps the
// first saved_at. ErrNotFound when the org has no such summary.
func (db *DB) MarkSummarySaved(ctx context.Context, orgID int64, id string) (Summary, error) {
	return db.oneSummary(ctx, fmt.Sprintf("save summary %q", id), `
		UPDATE summaries SET saved = true, saved_at = coalesce(saved_at, now())
		WHERE org_id = $1 AND id = $2
		RETURNING `+summaryColumns, orgID, id)
}

// SavedSummaries lists the saved summaries of the org's record, the most
// recently saved first.
func (db *DB) SavedSummaries(ctx context.Context, orgID int64, module, recordExternalID string) ([]Summary, error) {
	var rows []summaryRow
	err := db.SelectContext(ctx, &rows, `
		SELECT `+summaryColumns+` FROM summaries
		WHERE org_id = $1 AND module = $2 AND record_external_id = $3 AND saved
		ORDER BY saved_at DESC, id DESC`, orgID, module, recordExternalID)
	if err != nil {
		return nil, fmt.Errorf("saved summaries of %s %q: %w", module, recordExternalID, err)
	}
	out := make([]Summary, len(rows))
	for i, r := range rows {
		out[i] = r.summary()
	}
	return out, nil
}

// pruneBatch bounds the rows one prune statement deletes, so a large
// backlog never holds locks on all of them at once.
const pruneBatch = 5000

// PruneSummaries deletes the org's unsaved summaries created before
// olderThan, with their feedback; saved summaries are never pruned. It
// returns how many it deleted.
func (db *DB) PruneSummaries(ctx context.Context, orgID int64, olderThan time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.ExecContext(ctx, `
			DELETE FROM summaries WHERE id IN (
				SELECT id FROM summaries WHERE org_id = $3 AND NOT saved AND created_at < $1
				ORDER BY created_at LIMIT $2)`, olderThan, pruneBatch, orgID)
		if err != nil {
			return total, fmt.Errorf("prune summaries: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune summaries: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

func (db *DB) oneSummary(ctx context.Context, what, q string, args ...any) (Summary, error) {
	var r summaryRow
	if err := sqlx.GetContext(ctx, db, &r, q, args...); err != nil {
		return Summary{}, notFound(err, what)
	}
	return r.summary(), nil
}
