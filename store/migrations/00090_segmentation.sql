-- +goose Up
-- Segmentation (seed 004). Each technique of an org has one row: its
-- settings, its ordered labels (first match wins), its state and the
-- version its last refresh computed. Per-account results live in
-- account_labels: the raw values and scores that decided, the label, and
-- the run that wrote them.

-- The org's ABM setup beyond the mapping: which accounts take part
-- (global criteria; none: all) and when it was configured.
CREATE TABLE abm_configs (
    org_id          bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    global_criteria jsonb NOT NULL DEFAULT '{"conditions": []}',
    configured_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE techniques (
    org_id            bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    technique         text NOT NULL CHECK (technique IN ('rfm', 'firmographics', 'engagement', 'voc', 'recommendations')),
    state             text NOT NULL DEFAULT 'inactive' CHECK (state IN ('inactive', 'active', 'refreshing')),
    settings          jsonb NOT NULL DEFAULT '{}',
    labels            jsonb NOT NULL DEFAULT '[]',
    version           integer NOT NULL DEFAULT 1,
    refreshed_version integer,
    refreshed_at      timestamptz,
    -- what the last successful refresh saw (technique version, setup, data);
    -- a refresh that would see the same skips its work
    refreshed_input   text,
    refresh_job       text, -- the segment:refresh job that set state refreshing
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, technique)
);

-- Edits and activations after the org is configured, for the seed's
-- two-a-day limit.
CREATE TABLE technique_edits (
    org_id    bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    technique text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL CHECK (kind IN ('edit', 'activate'))
);
CREATE INDEX technique_edits_idx ON technique_edits (org_id, technique, at);

CREATE TABLE account_labels (
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    technique   text NOT NULL,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    raw         jsonb NOT NULL DEFAULT '{}',
    r           smallint,
    f           smallint,
    m           smallint,
    label       text,
    computed_at timestamptz NOT NULL,
    run_id      text NOT NULL,
    PRIMARY KEY (org_id, technique, account_id)
);

-- +goose Down
DROP TABLE account_labels, technique_edits, techniques, abm_configs;
