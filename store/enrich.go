package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// EnrichField is a field enrichment may propose for an account, and where
// the account keeps it: a typed column of accounts or a key of its
// attributes (which the ABM mapping can map, so segment criteria read it).
type EnrichField struct {
	Key       string `json:"key"`
	Label     string `json:"label"`
	Type      string `json:"type"`                // text, integer or list (of text)
	Column    string `json:"column,omitempty"`    // accounts column
	Attribute string `json:"attribute,omitempty"` // attributes key
}

// EnrichFields is the catalog of enrichable fields (GET /v1/enrichment/fields).
var EnrichFields = []EnrichField{
	{Key: "name", Label: "Account name", Type: "text", Column: "name"},
	{Key: "legal_name", Label: "Legal name", Type: "text", Attribute: "legal_name"},
	{Key: "description", Label: "Description", Type: "text", Attribute: "description"},
	{Key: "industry", Label: "Industry", Type: "text", Column: "industry"},
	{Key: "employees", Label: "Employee count", Type: "integer", Column: "employees"},
	{Key: "size_band", Label: "Size band (employees)", Type: "text", Attribute: "size_band"},
	{Key: "founded_year", Label: "Founding year", Type: "integer", Attribute: "founded_year"},
	{Key: "phone", Label: "Phone", Type: "text", Attribute: "phone"},
	{Key: "email", Label: "Email", Type: "text", Attribute: "email"},
	{Key: "street", Label: "Street", Type: "text", Attribute: "street"},
	{Key: "city", Label: "City", Type: "text", Column: "city"},
	{Key: "region", Label: "Region", Type: "text", Attribute: "region"},
	{Key: "postcode", Label: "Postcode", Type: "text", Attribute: "postcode"},
	{Key: "country", Label: "Country", Type: "text", Column: "country"},
	{Key: "linkedin", Label: "LinkedIn profile", Type: "text", Attribute: "linkedin"},
	{Key: "twitter", Label: "X/Twitter profile", Type: "text", Attribute: "twitter"},
	{Key: "facebook", Label: "Facebook profile", Type: "text", Attribute: "facebook"},
	{Key: "technologies", Label: "Technologies", Type: "list", Attribute: "technologies"},
	{Key: "email_provider", Label: "Email provider", Type: "text", Attribute: "email_provider"},
	{Key: "website", Label: "Website", Type: "text", Column: "website"},
}

// DefaultEnrichFields are an org's fields until it chooses (13, the most).
var DefaultEnrichFields = []string{"description", "industry", "employees", "size_band", "founded_year", "phone",
	"street", "city", "country", "linkedin", "technologies", "email_provider", "website"}

// The seed's limits on fields per org.
const (
	MinEnrichFields = 1
	MaxEnrichFields = 13
)

// enrichField finds a catalog field.
func enrichField(key string) (EnrichField, bool) {
	i := slices.IndexFunc(EnrichFields, func(f EnrichField) bool { return f.Key == key })
	if i < 0 {
		return EnrichField{}, false
	}
	return EnrichFields[i], true
}

// EnrichmentErrors says what is wrong with an enrichment request, by field.
type EnrichmentErrors map[string]string

func (e EnrichmentErrors) Error() string { return fieldErrors("invalid enrichment request", e) }

// EnrichSettings is an org's choice of fields.
type EnrichSettings struct {
	Fields    []string   `json:"fields"`
	Default   bool       `json:"default"` // the org has not chosen yet
	UpdatedAt *time.Time `json:"updated_at"`
}

// EnrichmentSettings reads the org's fields, or the default ones.
func (db *DB) EnrichmentSettings(ctx context.Context, orgID int64) (EnrichSettings, error) {
	var row struct {
		Fields    pq.StringArray `db:"fields"`
		UpdatedAt time.Time      `db:"updated_at"`
	}
	err := db.GetContext(ctx, &row, `SELECT fields, updated_at FROM enrichment_settings WHERE org_id = $1`, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return EnrichSettings{Fields: slices.Clone(DefaultEnrichFields), Default: true}, nil
	}
	if err != nil {
		return EnrichSettings{}, fmt.Errorf("enrichment settings: %w", err)
	}
	return EnrichSettings{Fields: row.Fields, UpdatedAt: &row.UpdatedAt}, nil
}

// checkEnrichFields checks a list of catalog keys: known, no repeats, and
// (when bounded) between the seed's limits.
func checkEnrichFields(fields []string, bounded bool) error {
	errs := EnrichmentErrors{}
	if bounded && (len(fields) < MinEnrichFields || len(fields) > MaxEnrichFields) {
		errs["fields"] = fmt.Sprintf("choose at least %d and at most %d fields (got %d)", MinEnrichFields, MaxEnrichFields, len(fields))
	}
	if !bounded && len(fields) == 0 {
		errs["fields"] = "name at least one field"
	}
	seen := map[string]bool{}
	for i, f := range fields {
		if _, ok := enrichField(f); !ok {
			errs[fmt.Sprintf("fields[%d]", i)] = fmt.Sprintf("%q is not an enrichable field; see GET /v1/enrichment/fields", clipText(f, 64))
		} else if seen[f] {
			errs[fmt.Sprintf("fields[%d]", i)] = fmt.Sprintf("%q is named twice", f)
		}
		seen[f] = true
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// PutEnrichmentSettings replaces the org's fields.
func (db *DB) PutEnrichmentSettings(ctx context.Context, orgID int64, fields []string, now time.Time) (EnrichSettings, error) {
	if err := checkEnrichFields(fields, true); err != nil {
		return EnrichSettings{}, err
	}
	_, err := db.ExecContext(ctx, `INSERT INTO enrichment_settings (org_id, fields, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (org_id) DO UPDATE SET fields = EXCLUDED.fields, updated_at = EXCLUDED.updated_at`,
		orgID, pq.StringArray(fields), now)
	if err != nil {
		return EnrichSettings{}, fmt.Errorf("put enrichment settings: %w", err)
	}
	t := now
	return EnrichSettings{Fields: fields, UpdatedAt: &t}, nil
}

// ErrEnrichQuota matches EnrichQuotaError.
var ErrEnrichQuota = errors.New("daily enrichment limit reached")

// EnrichQuotaError: the request would pass the org's daily limit.
type EnrichQuotaError struct {
	Limit, Remaining, Asked int
}

func (e *EnrichQuotaError) Error() string {
	return fmt.Sprintf("enriching %d records would pass the org's limit of %d per UTC day: %d remain today", e.Asked, e.Limit, e.Remaining)
}

func (e *EnrichQuotaError) Unwrap() error { return ErrEnrichQuota }

// ReserveEnrichments counts n records against the org's day, all or
// nothing: one conditional upsert, so concurrent requests cannot pass
// limit together. It answers how many remain after.
func (db *DB) ReserveEnrichments(ctx context.Context, orgID int64, day time.Time, n, limit int) (int, error) {
	d := day.UTC().Format(time.DateOnly)
	var used int
	err := db.GetContext(ctx, &used, `
		INSERT INTO enrichment_usage AS u (org_id, day, used) SELECT $1, $2::date, $3::int WHERE $3::int <= $4::int
		ON CONFLICT (org_id, day) DO UPDATE SET used = u.used + EXCLUDED.used WHERE u.used + EXCLUDED.used <= $4::int
		RETURNING used`, orgID, d, n, limit)
	if errors.Is(err, sql.ErrNoRows) {
		var have int
		if err := db.GetContext(ctx, &have, `SELECT coalesce((SELECT used FROM enrichment_usage WHERE org_id = $1 AND day = $2::date), 0)`, orgID, d); err != nil {
			return 0, fmt.Errorf("enrichment usage: %w", err)
		}
		return max(limit-have, 0), &EnrichQuotaError{Limit: limit, Remaining: max(limit-have, 0), Asked: n}
	}
	if err != nil {
		return 0, fmt.Errorf("reserve enrichments: %w", err)
	}
	return limit - used, nil
}

// ReleaseEnrichments gives back n records counted on day (an enqueue that
// failed after the count).
func (db *DB) ReleaseEnrichments(ctx context.Context, orgID int64, day time.Time, n int) error {
	_, err := db.ExecContext(ctx, `UPDATE enrichment_usage SET used = greatest(used - $3, 0) WHERE org_id = $1 AND day = $2::date`,
		orgID, day.UTC().Format(time.DateOnly), n)
	if err != nil {
		return fmt.Errorf("release enrichments: %w", err)
	}
	return nil
}

// EnrichmentUsage is the org's count today.
func (db *DB) EnrichmentUsage(ctx context.Context, orgID int64, day time.Time) (int, error) {
	var used int
	err := db.GetContext(ctx, &used, `SELECT coalesce((SELECT used FROM enrichment_usage WHERE org_id = $1 AND day = $2::date), 0)`,
		orgID, day.UTC().Format(time.DateOnly))
	if err != nil {
		return 0, fmt.Errorf("enrichment usage: %w", err)
	}
	return used, nil
}

// EnrichTarget is an account as enrichment reads it.
type EnrichTarget struct {
	ID         int64
	ExternalID string
	Name       string
	Website    string
	Values     map[string]any // the catalog fields' current values (absent: empty)
}

// EnrichAccountIDs resolves external ids to row ids; unknown ids are
// listed in EnrichmentErrors.
func (db *DB) EnrichAccountIDs(ctx context.Context, orgID int64, external []string) ([]int64, error) {
	var rows []struct {
		ID  int64  `db:"id"`
		Ext string `db:"external_id"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT id, external_id FROM accounts WHERE org_id = $1 AND external_id = ANY($2)`,
		orgID, pq.StringArray(external)); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	byExt := map[string]int64{}
	for _, r := range rows {
		byExt[r.Ext] = r.ID
	}
	errs := EnrichmentErrors{}
	ids := make([]int64, 0, len(external))
	seen := map[int64]bool{}
	for i, e := range external {
		id, ok := byExt[e]
		if !ok {
			errs[fmt.Sprintf("account_ids[%d]", i)] = fmt.Sprintf("no account %q in this org", clipText(e, 64))
			continue
		}
		if !seen[id] {
			ids = append(ids, id)
			seen[id] = true
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return ids, nil
}

// SegmentAccountIDs lists a segment's members (its materialised
// membership), at most max+1 so a caller can tell "more than max".
// Enrichment reads the built-in accounts: ErrCustomAccounts when a custom
// module plays the accounts role.
func (db *DB) SegmentAccountIDs(ctx context.Context, orgID, segmentID int64, max int) ([]int64, error) {
	var one int
	if err := db.GetContext(ctx, &one, `SELECT 1 FROM segments WHERE org_id = $1 AND id = $2`, orgID, segmentID); err != nil {
		return nil, notFound(err, fmt.Sprintf("segment %d", segmentID))
	}
	if module, custom, err := db.CustomAccounts(ctx, orgID); err != nil {
		return nil, err
	} else if custom {
		return nil, fmt.Errorf("enriching segment %d: its members are records of %s, and enrichment reads the built-in accounts: %w", segmentID, module, ErrCustomAccounts)
	}
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `SELECT account_id FROM segment_members WHERE org_id = $1 AND segment_id = $2 AND account_id IS NOT NULL
		ORDER BY account_id LIMIT $3`, orgID, segmentID, max+1); err != nil {
		return nil, fmt.Errorf("segment %d members: %w", segmentID, err)
	}
	return ids, nil
}

// EnrichTarget reads an account's website and current field values.
func (db *DB) EnrichTarget(ctx context.Context, orgID, accountID int64) (EnrichTarget, error) {
	var row accountRow
	if err := db.GetContext(ctx, &row, `SELECT `+accountCols+` FROM accounts WHERE org_id = $1 AND id = $2`, orgID, accountID); err != nil {
		return EnrichTarget{}, notFound(err, fmt.Sprintf("account %d", accountID))
	}
	return row.target()
}

// ContactEmailDomains counts the email domains of an account's contacts,
// most common first (at most 20).
func (db *DB) ContactEmailDomains(ctx context.Context, orgID, accountID int64) ([]DomainCount, error) {
	var out []DomainCount
	err := db.SelectContext(ctx, &out, `
		SELECT lower(split_part(btrim(email), '@', 2)) AS domain, count(*) AS contacts
		FROM contacts
		WHERE org_id = $1 AND account_id = $2 AND email LIKE '%_@_%'
		GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20`, orgID, accountID)
	if err != nil {
		return nil, fmt.Errorf("contact email domains: %w", err)
	}
	return out, nil
}

// DomainCount is an email domain and how many contacts use it.
type DomainCount struct {
	Domain   string `db:"domain" json:"domain"`
	Contacts int    `db:"contacts" json:"contacts"`
}

// emptyValue tells whether a field's value counts as empty.
func emptyValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(t) == ""
	case []any:
		return len(t) == 0
	case []string:
		return len(t) == 0
	}
	return false
}
