-- +goose Up
-- The stage as the deal stage rule (store/crm) compares it: trimmed of
-- crm.Space and lower-cased. Stored, so the RFM refresh filters won deals
-- by a plain comparison instead of normalising every stage of the org on
-- every run; a test keeps the expression equal to crm.Norm.
ALTER TABLE deals ADD COLUMN stage_norm text
    GENERATED ALWAYS AS (lower(btrim(coalesce(stage, ''), E' \t\n\u000b\f\r\u0085\u00a0'))) STORED;

-- +goose Down
ALTER TABLE deals DROP COLUMN stage_norm;
