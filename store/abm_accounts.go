package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ABMAccount is an account taking part in ABM (inside the global
// criteria), with what the techniques computed for it.
type ABMAccount struct {
	ID       string            `json:"id"` // external id
	Name     string            `json:"name"`
	Industry *string           `json:"industry,omitempty"`
	Country  *string           `json:"country,omitempty"`
	Labels   map[string]string `json:"labels"` // technique -> label
}

// ABMAccountPage is one page of ABMAccounts.
type ABMAccountPage struct {
	Accounts   []ABMAccount `json:"accounts"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ABMAccounts lists the org's active accounts inside the global criteria
// as of now, by account id, limit at a time.
func (db *DB) ABMAccounts(ctx context.Context, orgID int64, now time.Time, limit int, cursor string) (ABMAccountPage, error) {
	limit, after, err := pageOf(limit, cursor)
	if err != nil {
		return ABMAccountPage{}, err
	}
	src, fields, err := db.accountCatalog(ctx, orgID)
	if err != nil {
		return ABMAccountPage{}, err
	}
	c, err := db.GlobalCriteria(ctx, orgID)
	if err != nil {
		return ABMAccountPage{}, err
	}
	scope, err := CriteriaFilter(c, fields, now)
	if err != nil {
		return ABMAccountPage{}, err
	}
	args := []any{orgID, after, limit + 1}
	where, err := scope(&args)
	if err != nil {
		return ABMAccountPage{}, err
	}
	var rows []struct {
		ID         int64   `db:"id"`
		ExternalID string  `db:"external_id"`
		Name       string  `db:"name"`
		Industry   *string `db:"industry"`
		Country    *string `db:"country"`
		Labels     []byte  `db:"labels"`
	}
	err = db.SelectContext(ctx, &rows, `
		SELECT a.id, a.external_id, a.name, `+textFieldSQL(fields, "industry")+` AS industry, `+textFieldSQL(fields, "country")+` AS country,
		       coalesce((SELECT jsonb_object_agg(l.technique, l.label) FROM account_labels l
		                 WHERE l.org_id = a.org_id AND l.`+src.key+` = a.id AND l.label IS NOT NULL), '{}') AS labels
		FROM `+src.from("a")+`
		WHERE a.org_id = $1`+src.only("a")+` AND a.id > $2 AND a.state = 'active' AND (`+where+`)
		ORDER BY a.id LIMIT $3`, args...)
	if err != nil {
		return ABMAccountPage{}, fmt.Errorf("abm accounts of org %d: %w", orgID, err)
	}
	page := ABMAccountPage{Accounts: make([]ABMAccount, 0, len(rows))}
	for i, r := range rows {
		if i == limit {
			page.NextCursor = encodeCursor(rows[i-1].ID)
			break
		}
		a := ABMAccount{ID: r.ExternalID, Name: r.Name, Industry: r.Industry, Country: r.Country, Labels: map[string]string{}}
		if err := json.Unmarshal(r.Labels, &a.Labels); err != nil {
			return ABMAccountPage{}, err
		}
		page.Accounts = append(page.Accounts, a)
	}
	return page, nil
}

// AccountResult is what one technique computed for one account.
type AccountResult struct {
	Technique  string          `db:"technique" json:"technique"`
	Label      *string         `db:"label" json:"label"`
	Raw        json.RawMessage `db:"raw" json:"raw,omitempty"`
	R          *int            `db:"r" json:"r,omitempty"`
	F          *int            `db:"f" json:"f,omitempty"`
	M          *int            `db:"m" json:"m,omitempty"`
	Score      *int            `db:"score" json:"score,omitempty"`
	ComputedAt time.Time       `db:"computed_at" json:"computed_at"`
	RunID      string          `db:"run_id" json:"run_id"`
}

// AccountResults returns the account's stored technique results, and
// whether the account (external id) is inside the global criteria as of
// now. ErrNotFound for no such account of the org. An account is named
// by its external id in the module playing the accounts role: a record's
// external id when a custom module plays it.
func (db *DB) AccountResults(ctx context.Context, orgID int64, externalID string, now time.Time) ([]AccountResult, bool, error) {
	src, fields, err := db.accountCatalog(ctx, orgID)
	if err != nil {
		return nil, false, err
	}
	var id int64
	if err := db.GetContext(ctx, &id, `SELECT a.id FROM `+src.from("a")+` WHERE a.org_id = $1`+src.only("a")+` AND a.external_id = $2`, orgID, externalID); err != nil {
		return nil, false, notFound(err, "account "+externalID)
	}
	var out []AccountResult
	if err := db.SelectContext(ctx, &out, `SELECT technique, label, raw, r, f, m, score, computed_at, run_id FROM account_labels
		WHERE org_id = $1 AND `+src.key+` = $2 ORDER BY technique`, orgID, id); err != nil {
		return nil, false, fmt.Errorf("results of account %s: %w", externalID, err)
	}
	c, err := db.GlobalCriteria(ctx, orgID)
	if err != nil {
		return nil, false, err
	}
	scope, err := CriteriaFilter(c, fields, now)
	if err != nil {
		return nil, false, err
	}
	args := []any{orgID, id}
	where, err := scope(&args)
	if err != nil {
		return nil, false, err
	}
	var in bool
	if err := db.GetContext(ctx, &in, `SELECT EXISTS (SELECT 1 FROM `+src.from("a")+` WHERE a.org_id = $1`+src.only("a")+` AND a.id = $2 AND a.state = 'active' AND (`+where+`))`, args...); err != nil {
		return nil, false, err
	}
	return out, in, nil
}

// AccountValues reads the named catalog fields of one account (by
// external id, of the org's accounts source) as the criteria language's
// Eval takes them.
func (db *DB) AccountValues(ctx context.Context, orgID int64, externalID string, fields map[string]AccountField, names []string) (map[string]any, error) {
	out := map[string]any{}
	if len(names) == 0 {
		return out, nil
	}
	src, err := db.accountSource(ctx, orgID)
	if err != nil {
		return nil, err
	}
	sel := make([]string, len(names))
	for i, n := range names {
		f, ok := fields[n]
		if !ok {
			return nil, fmt.Errorf("field %q: %w", n, ErrInvalidQuery)
		}
		sel[i] = "to_jsonb(" + f.SQL + ")"
	}
	var raw []byte
	q := `SELECT jsonb_build_array(` + strings.Join(sel, ", ") + `) FROM ` + src.from("a") + ` WHERE a.org_id = $1` + src.only("a") + ` AND a.external_id = $2`
	if err := db.GetContext(ctx, &raw, q, orgID, externalID); err != nil {
		return nil, notFound(err, "account "+externalID)
	}
	var vals []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&vals); err != nil {
		return nil, err
	}
	for i, n := range names {
		v := vals[i]
		if s, ok := v.(string); ok && fields[n].Type == "date" {
			if t, err := time.Parse(time.DateOnly, s); err == nil {
				v = t
			}
		}
		out[n] = v
	}
	return out, nil
}
