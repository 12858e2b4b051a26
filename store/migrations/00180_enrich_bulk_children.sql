-- +goose Up
-- Bulk enrichment as one child enrich:record task per record (issue 14).
--
-- enrich_bulks is the parent's ledger: its records, how many have a child
-- task (dispatched, a sliding window of window_size ahead of done), how
-- many are final (done), and when the parent job was finished (once, by
-- the child that made done reach total, in the same transaction).
CREATE TABLE enrich_bulks (
    job_id      text PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     text,
    quota_day   date NOT NULL, -- the UTC day the records were counted against
    total       integer NOT NULL CHECK (total BETWEEN 1 AND 500),
    window_size integer NOT NULL CHECK (window_size >= 1),
    dispatched  integer NOT NULL DEFAULT 0 CHECK (dispatched BETWEEN 0 AND total),
    done        integer NOT NULL DEFAULT 0 CHECK (done BETWEEN 0 AND total),
    finished_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One record of a bulk and its outcome, written once (pending -> final).
-- account_id has no foreign key: a deleted account is an outcome.
CREATE TABLE enrich_bulk_records (
    job_id      text NOT NULL REFERENCES enrich_bulks (job_id) ON DELETE CASCADE,
    pos         integer NOT NULL,
    account_id  bigint NOT NULL,
    account     text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled')),
    reason      text,
    detail      text,
    written     integer NOT NULL DEFAULT 0,
    finished_at timestamptz,
    PRIMARY KEY (job_id, pos),
    UNIQUE (job_id, account_id)
);

-- A record whose enrichment failed is given back to its org's day once:
-- the key is the enrichment's id (a single's job id, a bulk record's child
-- job id), so no retry can give it back twice.
CREATE TABLE enrichment_refunds (
    id         text PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    day        date NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrichment_refunds_org_day_idx ON enrichment_refunds (org_id, day);

-- +goose Down
DROP TABLE enrichment_refunds, enrich_bulk_records, enrich_bulks;
