-- +goose Up
-- RFM's raw values as typed columns beside the raw JSON the explanation
-- shows: the refresh compares them with its new results without building
-- JSON per account, and they do not move with the calendar (recency in
-- days does), so a nightly refresh rewrites only accounts whose purchases,
-- scores or label changed. NULL for other techniques; rows written before
-- this migration differ once and are rewritten by the next refresh.
ALTER TABLE account_labels
    ADD COLUMN last_purchase date,
    ADD COLUMN frequency numeric,
    ADD COLUMN monetary numeric;

-- +goose Down
ALTER TABLE account_labels DROP COLUMN last_purchase, DROP COLUMN frequency, DROP COLUMN monetary;
