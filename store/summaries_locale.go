package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"
)

// SummaryLocale is how an org's summaries write money and time: the
// currency of amounts (ISO 4217 code, default USD) and the time zone in
// which contact timings (part of day, weekday) are read (IANA name,
// default UTC).
type SummaryLocale struct {
	Currency string `json:"currency" db:"currency"`
	TimeZone string `json:"time_zone" db:"time_zone"`
}

// DefaultSummaryLocale is the locale of an org that set none.
var DefaultSummaryLocale = SummaryLocale{Currency: "USD", TimeZone: "UTC"}

// ErrInvalidLocale is returned for a currency that is not three capital
// letters or a time zone the system does not know.
var ErrInvalidLocale = errors.New("invalid summary locale")

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks the currency code and that the time zone loads.
func (l SummaryLocale) Validate() map[string]string {
	bad := map[string]string{}
	if !currencyRE.MatchString(l.Currency) {
		bad["currency"] = "must be an ISO 4217 code of three capital letters, like USD or EUR"
	}
	if _, err := time.LoadLocation(l.TimeZone); err != nil || l.TimeZone == "" || l.TimeZone == "Local" || len(l.TimeZone) > 64 {
		bad["time_zone"] = "must be an IANA time zone name, like UTC or Europe/Berlin"
	}
	return bad
}

// summaryLocale reads the org's locale through q, the default when unset.
func summaryLocale(ctx context.Context, q sqlx.QueryerContext, orgID int64) (SummaryLocale, error) {
	var l SummaryLocale
	err := sqlx.GetContext(ctx, q, &l, `SELECT currency, time_zone FROM summary_locale_settings WHERE org_id = $1`, orgID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return DefaultSummaryLocale, nil
	case err != nil:
		return SummaryLocale{}, fmt.Errorf("summary locale: %w", err)
	}
	return l, nil
}

// SummaryLocale is the org's summary locale, DefaultSummaryLocale when unset.
func (db *DB) SummaryLocale(ctx context.Context, orgID int64) (SummaryLocale, error) {
	return summaryLocale(ctx, db, orgID)
}

// SetSummaryLocale stores the org's locale; ErrInvalidLocale when it does
// not validate.
func (db *DB) SetSummaryLocale(ctx context.Context, orgID int64, l SummaryLocale) error {
	if bad := l.Validate(); len(bad) > 0 {
		return fmt.Errorf("%w: %v", ErrInvalidLocale, bad)
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO summary_locale_settings (org_id, currency, time_zone) VALUES ($1, $2, $3)
		ON CONFLICT (org_id) DO UPDATE SET currency = EXCLUDED.currency, time_zone = EXCLUDED.time_zone, updated_at = now()`,
		orgID, l.Currency, l.TimeZone)
	if err != nil {
		return fmt.Errorf("set summary locale: %w", err)
	}
	return nil
}
