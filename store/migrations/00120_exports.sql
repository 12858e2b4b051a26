-- +goose Up
-- Segment exports (seed 004): one row per export, the history a user sees
-- for 90 days. The file is a CSV inside a ZIP on blob storage; file_key is
-- set only once the file is complete and published, so a row is never
-- ready without its whole file.
CREATE TABLE exports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- No foreign key: a deleted segment's exports stay in the history,
    -- invalid (the trigger below), until their 90 days are over.
    segment_id     bigint NOT NULL,
    segment_name   text NOT NULL,
    job_id         text NOT NULL UNIQUE,
    user_id        text,
    -- "all", or the list of fields asked for, in order.
    fields         jsonb NOT NULL,
    excel          boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'ready', 'failed', 'expired', 'invalid')),
    row_count      bigint,
    size_bytes     bigint,
    sha256         text,
    file_key       text,
    -- exports:expire removed whatever files the export had (published or
    -- temporary); set once the export cannot be downloaded any more.
    files_removed  boolean NOT NULL DEFAULT false,
    error          text,
    created_at     timestamptz NOT NULL,
    ready_at       timestamptz,
    download_until timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The history, newest or oldest first, per org and segment.
CREATE INDEX exports_history_idx ON exports (org_id, created_at, id);
CREATE INDEX exports_segment_idx ON exports (org_id, segment_id);

-- Deleting a segment makes its exports invalid (seed 004: "If you delete a
-- segment, its export in the history will also become invalid"), whichever
-- path deletes it; exports:expire then removes their files.
-- +goose StatementBegin
CREATE FUNCTION crmq_invalidate_exports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE exports SET status = 'invalid', updated_at = now()
    WHERE org_id = OLD.org_id AND segment_id = OLD.id AND status <> 'invalid';
    RETURN OLD;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER segments_invalidate_exports AFTER DELETE ON segments
    FOR EACH ROW EXECUTE FUNCTION crmq_invalidate_exports();

-- +goose Down
DROP TRIGGER segments_invalidate_exports ON segments;
DROP FUNCTION crmq_invalidate_exports();
DROP TABLE exports;
