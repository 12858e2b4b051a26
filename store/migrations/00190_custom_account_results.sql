-- +goose Up
-- Segmentation over a custom accounts module (seed 004: module 1 may be
-- "any custom module where you are maintaining your customer accounts").
-- Such an org's accounts are rows of records, not of accounts, so a
-- technique's result and a segment's member refer to one or the other:
-- account_id (the built-in accounts) or record_id (a custom module's
-- record), exactly one of them, each with its foreign key, so deleting
-- the row deletes its results and memberships as before.
--
-- The primary keys had account_id NOT NULL; they become unique indexes
-- over the same columns (rows with a NULL account_id never collide in
-- them), which ON CONFLICT (org_id, technique, account_id) still infers,
-- so the built-in statements and their plans are unchanged. A second
-- unique index does the same for record_id.
ALTER TABLE account_labels
    ADD COLUMN record_id bigint REFERENCES records (id) ON DELETE CASCADE,
    DROP CONSTRAINT account_labels_pkey,
    ALTER COLUMN account_id DROP NOT NULL,
    ADD CONSTRAINT account_labels_one_subject CHECK (num_nonnulls(account_id, record_id) = 1);
CREATE UNIQUE INDEX account_labels_account_key ON account_labels (org_id, technique, account_id);
CREATE UNIQUE INDEX account_labels_record_key ON account_labels (org_id, technique, record_id);

ALTER TABLE segment_members
    ADD COLUMN record_id bigint REFERENCES records (id) ON DELETE CASCADE,
    DROP CONSTRAINT segment_members_pkey,
    ALTER COLUMN account_id DROP NOT NULL,
    ADD CONSTRAINT segment_members_one_subject CHECK (num_nonnulls(account_id, record_id) = 1);
CREATE UNIQUE INDEX segment_members_account_key ON segment_members (segment_id, account_id);
CREATE UNIQUE INDEX segment_members_record_key ON segment_members (segment_id, record_id);
-- Deleting a record finds its memberships (as segment_members_account_idx
-- does for accounts); account_labels' unique index leads with org_id, so a
-- record's results are found by this one.
CREATE INDEX segment_members_record_idx ON segment_members (record_id) WHERE record_id IS NOT NULL;
CREATE INDEX account_labels_record_idx ON account_labels (record_id) WHERE record_id IS NOT NULL;

-- +goose Down
DELETE FROM account_labels WHERE record_id IS NOT NULL;
DELETE FROM segment_members WHERE record_id IS NOT NULL;
DROP INDEX account_labels_record_idx, segment_members_record_idx,
    segment_members_record_key, segment_members_account_key,
    account_labels_record_key, account_labels_account_key;
ALTER TABLE segment_members
    DROP CONSTRAINT segment_members_one_subject,
    DROP COLUMN record_id,
    ALTER COLUMN account_id SET NOT NULL,
    ADD PRIMARY KEY (segment_id, account_id);
ALTER TABLE account_labels
    DROP CONSTRAINT account_labels_one_subject,
    DROP COLUMN record_id,
    ALTER COLUMN account_id SET NOT NULL,
    ADD PRIMARY KEY (org_id, technique, account_id);
