-- +goose Up
-- Segments (seed 004): a criteria over account fields, technique labels
-- and scores, and its membership, materialised so that exports and bulk
-- enrichment read who is in a segment instead of evaluating the rule again.
CREATE TABLE segments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    description  text NOT NULL DEFAULT '',
    criteria     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- When the membership was last computed and how many it had.
    computed_at  timestamptz,
    member_count integer NOT NULL DEFAULT 0,
    UNIQUE (org_id, id)
);
-- Names are unique per org whatever their case: "At risk" and "at risk"
-- would be two segments no one could tell apart in a list.
CREATE UNIQUE INDEX segments_name_idx ON segments (org_id, lower(name));

CREATE TABLE segment_members (
    org_id     bigint NOT NULL,
    segment_id bigint NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (segment_id, account_id),
    -- The member row's org is its segment's.
    FOREIGN KEY (org_id, segment_id) REFERENCES segments (org_id, id) ON DELETE CASCADE
);
-- Deleting an account finds its memberships.
CREATE INDEX segment_members_account_idx ON segment_members (account_id);

-- +goose Down
DROP TABLE segment_members, segments;
