package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/criteria"
)

// Technique states.
const (
	TechniqueInactive   = "inactive"
	TechniqueActive     = "active"
	TechniqueRefreshing = "refreshing"
)

// Technique is one segmentation technique of an org as stored: settings
// and ordered labels as JSON (their shape is the technique's own), state,
// and what its last refresh computed.
type Technique struct {
	OrgID            int64           `db:"org_id" json:"-"`
	Name             string          `db:"technique" json:"technique"`
	State            string          `db:"state" json:"state"`
	Settings         json.RawMessage `db:"settings" json:"settings"`
	Labels           json.RawMessage `db:"labels" json:"labels"`
	Version          int             `db:"version" json:"version"`
	RefreshedVersion *int            `db:"refreshed_version" json:"refreshed_version,omitempty"`
	RefreshedAt      *time.Time      `db:"refreshed_at" json:"refreshed_at,omitempty"`
	RefreshedInput   *string         `db:"refreshed_input" json:"-"`
	RefreshJob       *string         `db:"refresh_job" json:"refresh_job,omitempty"`
	UpdatedAt        time.Time       `db:"updated_at" json:"updated_at"`
}

// ErrTechniqueRefreshing: the technique is being refreshed; edits wait.
var ErrTechniqueRefreshing = errors.New("technique is refreshing")

const techniqueColumns = `org_id, technique, state, settings, labels, version, refreshed_version, refreshed_at, refreshed_input, refresh_job, updated_at`

// RefreshLease is how long a technique may show refreshing without its
// job ending it; past it (the worker died), the technique takes edits and
// refreshes again.
const RefreshLease = 45 * time.Minute

// Techniques returns the org's stored techniques by name; a technique
// never saved is absent (its defaults apply).
func (db *DB) Techniques(ctx context.Context, orgID int64) (map[string]Technique, error) {
	var rows []Technique
	if err := db.SelectContext(ctx, &rows, `SELECT `+techniqueColumns+` FROM techniques WHERE org_id = $1`, orgID); err != nil {
		return nil, fmt.Errorf("techniques of org %d: %w", orgID, err)
	}
	out := make(map[string]Technique, len(rows))
	for _, r := range rows {
		out[r.Name] = r
	}
	return out, nil
}

// TechniqueWrite is one change to a technique: new settings and labels
// (nil keeps them), a new state ("" keeps it), and whether it counts
// against the daily edit limit (Kind "edit" or "activate"; "" counts not).
type TechniqueWrite struct {
	Settings json.RawMessage
	Labels   json.RawMessage
	State    string
	Kind     string
	// Limit is how many counted changes a technique takes per UTC day
	// once the org is configured; 0: no limit.
	Limit int
	Now   time.Time
	// Guard, when set, refuses the write with an InUseError while a
	// segment reads what it changes: the technique (no labels) or those
	// labels (see SegmentsUsing). It is checked under the org's lock,
	// which segment writes take too, so a segment created meanwhile
	// cannot slip between the check and the write.
	Guard *UseGuard
}

// UseGuard names what a technique write changes that segments may read.
type UseGuard struct {
	Labels []string // empty: the whole technique
}

// ErrInUse: segments read what a technique write would change.
var ErrInUse = errors.New("used by segments")

// InUseError names the segments that lock a technique or its labels.
type InUseError struct {
	Technique string
	Segments  []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is used by segments %s; remove it from them first", e.Technique, strings.Join(e.Segments, ", "))
}

// Unwrap lets errors.Is(err, ErrInUse) hold.
func (e *InUseError) Unwrap() error { return ErrInUse }

// ErrEditLimit: the technique's counted changes of the day are used up.
var ErrEditLimit = errors.New("technique edit limit reached for today")

// WriteTechnique applies w under the org's lock: it refuses while the
// technique refreshes, counts the change against the day's limit when the
// org is configured, bumps the version when settings or labels change, and
// returns the technique as stored.
func (db *DB) WriteTechnique(ctx context.Context, orgID int64, name string, w TechniqueWrite) (Technique, error) {
	var out Technique
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE`, orgID); err != nil {
			return err
		}
		var cur Technique
		err := tx.GetContext(ctx, &cur, `SELECT `+techniqueColumns+` FROM techniques WHERE org_id = $1 AND technique = $2`, orgID, name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = Technique{OrgID: orgID, Name: name, State: TechniqueInactive, Settings: json.RawMessage(`{}`), Labels: json.RawMessage(`[]`)}
		case err != nil:
			return err
		case cur.State == TechniqueRefreshing && w.Now.Sub(cur.UpdatedAt) < RefreshLease:
			return fmt.Errorf("%s: %w", name, ErrTechniqueRefreshing)
		}
		if w.Guard != nil {
			refs, err := segmentsUsing(ctx, tx, orgID, name, w.Guard.Labels)
			if err != nil {
				return err
			}
			if len(refs) > 0 {
				e := &InUseError{Technique: name}
				for _, r := range refs {
					e.Segments = append(e.Segments, r.Name)
				}
				return e
			}
		}
		if w.Kind != "" && w.Limit > 0 {
			configured, err := abmConfigured(ctx, tx, orgID)
			if err != nil {
				return err
			}
			if configured {
				n, err := editsOn(ctx, tx, orgID, name, w.Now)
				if err != nil {
					return err
				}
				if n >= w.Limit {
					return fmt.Errorf("%s: %d of %d: %w", name, n, w.Limit, ErrEditLimit)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO technique_edits (org_id, technique, at, kind) VALUES ($1, $2, $3, $4)`, orgID, name, w.Now, w.Kind); err != nil {
					return err
				}
			}
		}
		settings, labels, state := cur.Settings, cur.Labels, cur.State
		if w.Settings != nil {
			settings = w.Settings
		}
		if w.Labels != nil {
			labels = w.Labels
		}
		if w.State != "" {
			state = w.State
		} else if state == TechniqueRefreshing { // a refresh whose job died
			state = TechniqueActive
		}
		return tx.GetContext(ctx, &out, `
			INSERT INTO techniques (org_id, technique, state, settings, labels)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (org_id, technique) DO UPDATE SET
				state = EXCLUDED.state, settings = EXCLUDED.settings, labels = EXCLUDED.labels,
				version = techniques.version + CASE WHEN techniques.settings = EXCLUDED.settings AND techniques.labels = EXCLUDED.labels THEN 0 ELSE 1 END,
				updated_at = now()
			RETURNING `+techniqueColumns, orgID, name, state, []byte(settings), []byte(labels))
	})
	return out, err
}

// EditsOn counts the technique's counted changes on now's UTC day.
func (db *DB) EditsOn(ctx context.Context, orgID int64, name string, now time.Time) (int, error) {
	return editsOn(ctx, db, orgID, name, now)
}

func editsOn(ctx context.Context, q sqlx.QueryerContext, orgID int64, name string, now time.Time) (int, error) {
	day := now.UTC().Truncate(24 * time.Hour)
	var n int
	err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM technique_edits WHERE org_id = $1 AND technique = $2 AND at >= $3 AND at < $4`,
		orgID, name, day, day.Add(24*time.Hour))
	return n, err
}

// BeginRefresh marks the active techniques among names refreshing for
// job and returns them. A technique refreshing for another live job, or
// inactive, is left out; one refreshing for this job (a retried attempt)
// or for a job past RefreshLease is taken over.
func (db *DB) BeginRefresh(ctx context.Context, orgID int64, names []string, job string, now time.Time) ([]Technique, error) {
	var out []Technique
	err := db.SelectContext(ctx, &out, `
		UPDATE techniques SET state = 'refreshing', refresh_job = $3, updated_at = $4
		WHERE org_id = $1 AND technique = ANY($2)
		  AND (state = 'active' OR (state = 'refreshing' AND (refresh_job = $3 OR updated_at < $5)))
		RETURNING `+techniqueColumns, orgID, pq.StringArray(names), job, now, now.Add(-RefreshLease))
	if err != nil {
		return nil, fmt.Errorf("begin refresh of org %d: %w", orgID, err)
	}
	return out, nil
}

// EndRefresh puts a refreshing technique back to active; with input set
// it records a successful refresh of version.
func (db *DB) EndRefresh(ctx context.Context, orgID int64, name string, version int, input *string, at time.Time) error {
	q := `UPDATE techniques SET state = 'active', updated_at = now() WHERE org_id = $1 AND technique = $2 AND state = 'refreshing'`
	args := []any{orgID, name}
	if input != nil {
		q = `UPDATE techniques SET state = 'active', refreshed_version = $3, refreshed_input = $4, refreshed_at = $5, updated_at = now()
		     WHERE org_id = $1 AND technique = $2 AND state = 'refreshing'`
		args = append(args, version, *input, at)
	}
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("end refresh of %s: %w", name, err)
	}
	return nil
}

// LabelRule is a label's name and its checked criteria.
type LabelRule struct {
	Name  string
	Rule  *criteria.Checked
	Index int // the label's position, 0-based
}

// RFMLabelFields are the fields RFM labels may name, with their types.
func RFMLabelFields() map[string]criteria.Type {
	out := make(map[string]criteria.Type, len(scoredLabelColumns))
	for k := range scoredLabelColumns {
		out[k] = criteria.Number
	}
	return out
}

// labelCase is CASE over the rules in order (first match wins), the
// label names as parameters; NULL when none matches.
func labelCase(rules []LabelRule, cols map[string]string, now time.Time, args *[]any) (string, error) {
	if len(rules) == 0 {
		return "NULL::text", nil
	}
	var b strings.Builder
	b.WriteString("CASE")
	for _, r := range rules {
		cond, err := CompileCriteria(r.Rule, cols, now, args)
		if err != nil {
			return "", fmt.Errorf("label %q: %w", r.Name, err)
		}
		*args = append(*args, r.Name)
		fmt.Fprintf(&b, " WHEN %s THEN $%d::text", cond, len(*args))
	}
	b.WriteString(" END")
	return b.String(), nil
}

// LabelFirmographics gives every in-scope account its firmographic label
// (the first rule over account fields that matches; none: unlabelled)
// under runID, and drops the results of accounts no longer in scope.
//
// The accounts are the org's accounts source: the accounts table or a
// custom accounts module's records (fields then read the record row).
func (db *DB) LabelFirmographics(ctx context.Context, orgID int64, rules []LabelRule, fields map[string]AccountField, scope Filter, now time.Time, runID string) (int, error) {
	src, err := db.accountSource(ctx, orgID)
	if err != nil {
		return 0, err
	}
	args := []any{orgID, now, runID}
	cols := make(map[string]string, len(fields))
	for name, f := range fields {
		cols[name] = f.SQL
	}
	expr, err := labelCase(rules, cols, now, &args)
	if err != nil {
		return 0, err
	}
	scopeSQL := "true"
	if scope != nil {
		if scopeSQL, err = scope(&args); err != nil {
			return 0, err
		}
	}
	var n int
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &n, `
			WITH written AS (
				INSERT INTO account_labels (org_id, technique, `+src.key+`, raw, label, computed_at, run_id)
				SELECT $1, 'firmographics', a.id, '{}', `+expr+`, $2, $3
				FROM `+src.from("a")+` WHERE a.org_id = $1`+src.only("a")+` AND a.state = 'active' AND (`+scopeSQL+`)
				ON CONFLICT (org_id, technique, `+src.key+`) DO UPDATE SET
					label = EXCLUDED.label, computed_at = EXCLUDED.computed_at, run_id = EXCLUDED.run_id
				RETURNING 1)
			SELECT count(*) FROM written`, args...); err != nil {
			return fmt.Errorf("label firmographics of org %d: %w", orgID, err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM account_labels WHERE org_id = $1 AND technique = 'firmographics' AND run_id <> $2`, orgID, runID)
		return err
	})
	return n, err
}

// RefreshInput describes what a refresh of the org reads, so a refresh
// that would read the same skips its work: the setup (global criteria,
// mapping), and per table the newest change and the row count (a delete
// changes the count). The UTC day is part of it: recency and
// in_last_days move with the calendar. With a custom accounts module its
// records count too (a NULL, left out, for the built-in module).
func (db *DB) RefreshInput(ctx context.Context, orgID int64, now time.Time) (string, error) {
	module, custom, err := db.CustomAccounts(ctx, orgID)
	if err != nil {
		return "", err
	}
	if !custom {
		module = ""
	}
	var s string
	err = db.GetContext(ctx, &s, `
		SELECT concat_ws('|', $2::text,
			(SELECT md5(global_criteria::text) FROM abm_configs WHERE org_id = $1),
			(SELECT max(updated_at)::text FROM field_mappings WHERE org_id = $1),
			(SELECT max(updated_at)::text FROM lookup_mappings WHERE org_id = $1),
			(SELECT max(updated_at)::text FROM module_mappings WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM accounts WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM deals WHERE org_id = $1),
			(SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM deal_line_items WHERE org_id = $1),
			CASE WHEN $3 <> '' THEN (SELECT count(*)::text || '@' || coalesce(max(updated_at)::text, '') FROM records WHERE org_id = $1 AND module = $3) END)`,
		orgID, now.UTC().Format(time.DateOnly), module)
	if err != nil {
		return "", fmt.Errorf("refresh input of org %d: %w", orgID, err)
	}
	return s, nil
}
