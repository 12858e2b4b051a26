-- +goose Up
-- The batched start of job rows as one UPDATE (store/jobs_batch.go): it
-- starts the jobs that are not final and returns them; a job missing from
-- its result is final (succeeded or cancelled, left as it is) or has no
-- row, which the caller reads apart (rare: a redelivered task).
-- crmq_start_jobs (00230) first locked the rows FOR UPDATE to read their
-- previous state, then updated them: two lookups and a lock record per
-- row, and about a third more Postgres time per batch (pgbench, 5-row
-- batches). Without the lock, a row changed meanwhile (a cancel) is read
-- again by the UPDATE once its writer commits, and skipped if final. The
-- caller passes ids in order, so batches lock rows in id order.
-- crmq_start_jobs stays for processes of the previous release until they
-- stop.
-- +goose StatementBegin
CREATE FUNCTION crmq_start_open_jobs(p_ids text[], p_attempts int[], p_runs text[])
RETURNS TABLE (id text, created_at timestamptz, started_at timestamptz)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE jobs j SET state = 'running', attempts = r.attempt, progress = 0,
        started_at = COALESCE(j.started_at, now()), error = NULL, run_id = r.run_id, updated_at = now()
    FROM unnest(p_ids, p_attempts, p_runs) AS r(id, attempt, run_id)
    WHERE j.id = r.id AND j.state NOT IN ('succeeded', 'cancelled')
    RETURNING j.id, j.created_at, j.started_at;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION crmq_start_open_jobs(text[], int[], text[]);
