-- +goose Up
-- The reconciler settles job rows that stayed non-final far longer than
-- their task allows. It walks jobs by created_at from a watermark (every
-- job created before it is final), so it needs an index on created_at, a
-- column no update touches: state changes stay HOT updates.
CREATE INDEX jobs_created_idx ON jobs (created_at);

-- How many times the reconciler put a job's task back on its queue; it
-- gives up, and fails the job, after a few.
ALTER TABLE jobs ADD COLUMN requeues integer NOT NULL DEFAULT 0;

CREATE TABLE job_reconcile (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watermark timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO job_reconcile (watermark) VALUES ('1970-01-01T00:00:00Z');

-- +goose Down
DROP TABLE job_reconcile;
ALTER TABLE jobs DROP COLUMN requeues;
DROP INDEX jobs_created_idx;
