-- +goose Up

-- Record summaries (seeds 000, 001, 002). A summary's id is the id of the
-- job that produced it, so a retried job upserts rather than inserting a
-- second row. record_id is the internal id in the module's table (or in
-- records, for custom modules); the API speaks record_external_id.
CREATE TABLE summaries (
    id                 text PRIMARY KEY CHECK (id <> ''),
    org_id             bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id            text NOT NULL,
    module             text NOT NULL,
    record_id          bigint NOT NULL,
    record_external_id text NOT NULL,
    data_hash          text NOT NULL,
    data_as_of         timestamptz NOT NULL,
    provider           text NOT NULL,
    model              text NOT NULL,
    -- The answer after validation, and what the prompt budget cut.
    sections           jsonb NOT NULL,
    truncation         jsonb,
    prompt_tokens      integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    output_tokens      integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    total_tokens       integer NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    dropped_source_ids integer NOT NULL DEFAULT 0 CHECK (dropped_source_ids >= 0),
    -- The summary whose content this one reuses (same data hash); pruning
    -- that one leaves the copy standing.
    reused_from        text REFERENCES summaries (id) ON DELETE SET NULL,
    saved              boolean NOT NULL DEFAULT false,
    saved_at           timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (saved = (saved_at IS NOT NULL))
);
-- Show Summary: the newest summary of a record.
CREATE INDEX summaries_latest_idx ON summaries (org_id, module, record_external_id, created_at DESC);
-- Reuse: the newest summary of a record read from the same data.
CREATE INDEX summaries_hash_idx ON summaries (org_id, module, record_external_id, data_hash, created_at DESC);
-- Saved summaries of a record.
CREATE INDEX summaries_saved_idx ON summaries (org_id, module, record_external_id, saved_at DESC) WHERE saved;
-- Pruning reads unsaved summaries by age; the FK from reused_from needs an
-- index or each pruned row would scan the table.
CREATE INDEX summaries_prune_idx ON summaries (created_at) WHERE NOT saved;
CREATE INDEX summaries_reused_from_idx ON summaries (reused_from) WHERE reused_from IS NOT NULL;

-- The daily limit of seed 000: summaries a user generated per day, and
-- which (record, data hash) each one was, so that one unchanged record
-- counts once per user and day. The primary keys make concurrent requests
-- unable to overrun the limit or count a record twice.
CREATE TABLE summary_usage (
    org_id  bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    day     date NOT NULL,
    used    integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (org_id, user_id, day)
);

CREATE TABLE summary_consumptions (
    org_id             bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id            text NOT NULL,
    day                date NOT NULL,
    module             text NOT NULL,
    record_external_id text NOT NULL,
    data_hash          text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id, day, module, record_external_id, data_hash)
);
CREATE INDEX summary_consumptions_day_idx ON summary_consumptions (day);
CREATE INDEX summary_usage_day_idx ON summary_usage (day);

-- Feedback of seed 000: positive or negative; a negative one may say what
-- was wrong and what to improve. One row per summary and user, replaced
-- when the user rates again.
CREATE TABLE summary_feedback (
    summary_id text NOT NULL REFERENCES summaries (id) ON DELETE CASCADE,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    text NOT NULL CHECK (user_id <> ''),
    rating     text NOT NULL CHECK (rating IN ('positive', 'negative')),
    reasons    text[] NOT NULL DEFAULT '{}'
               CHECK (reasons <@ ARRAY['factual_error', 'unclear', 'irrelevant', 'missing_context']),
    areas      text[] NOT NULL DEFAULT '{}'
               CHECK (areas <@ ARRAY['accuracy', 'clarity', 'completeness', 'conciseness']),
    comment    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (rating = 'negative' OR (cardinality(reasons) = 0 AND cardinality(areas) = 0)),
    PRIMARY KEY (summary_id, user_id)
);
CREATE INDEX summary_feedback_org_idx ON summary_feedback (org_id);

-- Which summary sections an org's administrator shows or hides (seed 001);
-- a section without a row has its default visibility.
CREATE TABLE summary_section_settings (
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    section_key text NOT NULL CHECK (section_key ~ '^[a-z0-9_]{1,64}$'),
    visible     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, section_key)
);

-- Expansion opportunities created from an account summary carry the
-- summary's suggestions as their description.
ALTER TABLE deals ADD COLUMN description text;

-- Summaries read org-wide figures: won revenue and open pipeline (deals
-- by stage), a lead source's conversion rate (leads by source).
CREATE INDEX deals_org_stage_idx ON deals (org_id, stage) INCLUDE (amount);
CREATE INDEX leads_org_source_idx ON leads (org_id, lead_source) INCLUDE (converted);

-- +goose Down
DROP INDEX leads_org_source_idx;
DROP INDEX deals_org_stage_idx;
ALTER TABLE deals DROP COLUMN description;
DROP TABLE summary_section_settings, summary_feedback, summary_consumptions, summary_usage, summaries;
