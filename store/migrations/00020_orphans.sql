-- +goose Up

-- Orphan state of seed 003: per lead or contact, whether its current
-- unanswered stretch of signals is longer than the module's average
-- response gap. Written by the orphans:recompute task (store/orphans.go
-- holds the definitions); deleting the lead or contact deletes its row.
CREATE TABLE orphan_state (
    org_id              bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module              text NOT NULL CHECK (module IN ('leads', 'contacts')),
    contact_id          bigint REFERENCES contacts (id) ON DELETE CASCADE,
    lead_id             bigint REFERENCES leads (id) ON DELETE CASCADE,
    -- One upsert target for both modules.
    record_id           bigint NOT NULL GENERATED ALWAYS AS (coalesce(contact_id, lead_id)) STORED,
    is_orphan           boolean NOT NULL DEFAULT false,
    open_since          timestamptz,
    current_gap_seconds double precision,
    average_gap_seconds double precision,
    computed_at         timestamptz NOT NULL,
    job_id              text NOT NULL DEFAULT '',
    CHECK ((module = 'contacts' AND contact_id IS NOT NULL AND lead_id IS NULL)
        OR (module = 'leads' AND lead_id IS NOT NULL AND contact_id IS NULL)),
    CHECK ((open_since IS NULL) = (current_gap_seconds IS NULL)),
    PRIMARY KEY (org_id, module, record_id)
);
-- The FKs cascade from contacts and leads; without these a delete of one
-- record would scan the whole table.
CREATE INDEX orphan_state_contact_idx ON orphan_state (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX orphan_state_lead_idx ON orphan_state (lead_id) WHERE lead_id IS NOT NULL;

-- The latest recomputation per org and module: the average it used, how
-- many records it looked at and found orphan, and when.
CREATE TABLE orphan_runs (
    org_id              bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module              text NOT NULL CHECK (module IN ('leads', 'contacts')),
    average_gap_seconds double precision,
    records             integer NOT NULL,
    orphans             integer NOT NULL,
    computed_at         timestamptz NOT NULL,
    job_id              text NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, module)
);

-- +goose Down
DROP TABLE orphan_runs, orphan_state;
