-- +goose Up
-- How an org's summaries write money and time (issue 10): the currency
-- amounts are in (ISO 4217 code) and the time zone contact timings are
-- read in (IANA name). An org without a row has USD and UTC.
CREATE TABLE summary_locale_settings (
    org_id     bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    currency   text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    time_zone  text NOT NULL DEFAULT 'UTC' CHECK (time_zone ~ '^[A-Za-z0-9_+/-]{1,64}$'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE summary_locale_settings;
