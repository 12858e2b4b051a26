-- +goose Up
-- The attempt that owns a running job. A worker that stops hands its task
-- back and abandons the handler; if that handler's outcome is written
-- after another worker took the task again, the run_id no longer matches
-- and the stale write changes nothing.
ALTER TABLE jobs ADD COLUMN run_id text;

-- +goose Down
ALTER TABLE jobs DROP COLUMN run_id;
