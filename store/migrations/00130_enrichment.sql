-- +goose Up
-- Enrichment (seed 004): the org's enrichable fields, the daily count of
-- enriched records, one row per enriched record (its proposal per field),
-- and the History tab.

-- The fields an org enriches: 1 to 13 of the catalog (store.EnrichFields).
CREATE TABLE enrichment_settings (
    org_id     bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    fields     text[] NOT NULL CHECK (cardinality(fields) BETWEEN 1 AND 13),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Records enriched per org and UTC day. A request adds its records with
-- one conditional upsert, so concurrent requests cannot pass the limit.
CREATE TABLE enrichment_usage (
    org_id bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    day    date NOT NULL,
    used   integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (org_id, day)
);

-- One enriched record: a single enrichment's id is its job's id; a bulk
-- record's is the bulk job's id, a dot and the account's row id, so a
-- retried task rewrites its rows instead of adding more.
CREATE TABLE enrichments (
    id             text PRIMARY KEY,
    org_id         bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    job_id         text NOT NULL,
    account_id     bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    mode           text NOT NULL CHECK (mode IN ('single', 'bulk')),
    state          text NOT NULL CHECK (state IN ('succeeded', 'failed')),
    reason         text,
    detail         text,
    website        text,
    website_source text,
    fields         text[] NOT NULL,
    proposals      jsonb NOT NULL DEFAULT '[]',
    site           jsonb,
    written        text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    applied_at     timestamptz
);
CREATE INDEX enrichments_account_idx ON enrichments (org_id, account_id, created_at DESC);
CREATE INDEX enrichments_job_idx ON enrichments (job_id);
CREATE INDEX enrichments_day_idx ON enrichments (org_id, created_at);

-- The History tab: a single enrichment's exact changes per field, or a
-- bulk enrichment as one entry with its count of enriched records.
CREATE TABLE enrichment_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('single', 'bulk')),
    job_id        text NOT NULL,
    enrichment_id text,
    account_id    bigint REFERENCES accounts (id) ON DELETE SET NULL,
    account       text,
    user_id       text,
    changes       jsonb NOT NULL DEFAULT '[]',
    records       integer,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrichment_history_org_idx ON enrichment_history (org_id, id DESC);
-- A bulk job has one entry, rewritten if its task is retried.
CREATE UNIQUE INDEX enrichment_history_bulk_idx ON enrichment_history (job_id) WHERE kind = 'bulk';

-- +goose Down
DROP TABLE enrichment_history, enrichments, enrichment_usage, enrichment_settings;
