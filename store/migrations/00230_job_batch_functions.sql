-- +goose Up
-- The batched start and finish of job rows (store/jobs_batch.go), as
-- functions the Go side calls through prepared statements: one round trip
-- and no planning per batch. PL/pgSQL keeps each statement's plan for the
-- session, and a plan made while jobs was small (a fresh database) would
-- join it by sequential scan and keep doing so as it grows; planned with
-- enable_seqscan off, the rows are looked up in the primary key whatever
-- the table's size at planning time.
-- +goose StatementBegin
CREATE FUNCTION crmq_start_jobs(p_ids text[], p_attempts int[], p_runs text[])
RETURNS TABLE (id text, previous text, created_at timestamptz, started_at timestamptz)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    -- Rows locked in id order, so two batches never wait for each other
    -- in a cycle; a succeeded or cancelled job is not restarted.
    RETURN QUERY
    WITH req AS (SELECT * FROM unnest(p_ids, p_attempts, p_runs) AS r(id, attempt, run_id)),
    old AS (SELECT j.id, j.state FROM jobs j JOIN req ON req.id = j.id ORDER BY j.id FOR UPDATE OF j)
    UPDATE jobs j SET
        state = CASE WHEN old.state IN ('succeeded', 'cancelled') THEN old.state ELSE 'running' END,
        attempts = CASE WHEN old.state IN ('succeeded', 'cancelled') THEN j.attempts ELSE req.attempt END,
        progress = CASE WHEN old.state IN ('succeeded', 'cancelled') THEN j.progress ELSE 0 END,
        started_at = COALESCE(j.started_at, now()),
        error = CASE WHEN old.state IN ('succeeded', 'cancelled') THEN j.error ELSE NULL END,
        run_id = CASE WHEN old.state IN ('succeeded', 'cancelled') THEN j.run_id ELSE req.run_id END,
        updated_at = now()
    FROM old JOIN req ON req.id = old.id WHERE j.id = old.id
    RETURNING j.id, old.state, j.created_at, j.started_at;
END $$;

CREATE FUNCTION crmq_finish_jobs(p_ids text[], p_runs text[], p_states text[], p_results text[], p_errors text[])
RETURNS void
LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    -- Only the run that holds the row finishes it; an ended job stays so.
    UPDATE jobs j SET state = r.state,
        result = COALESCE(r.result::jsonb, j.result),
        error = r.error,
        progress = CASE WHEN r.state = 'succeeded' THEN 100 ELSE j.progress END,
        finished_at = CASE WHEN r.state IN ('succeeded', 'failed', 'cancelled') THEN now() ELSE NULL END,
        updated_at = now()
    FROM unnest(p_ids, p_runs, p_states, p_results, p_errors) AS r(id, run_id, state, result, error)
    WHERE j.id = r.id AND j.run_id = r.run_id AND j.state NOT IN ('succeeded', 'cancelled');
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION crmq_start_jobs(text[], int[], text[]);
DROP FUNCTION crmq_finish_jobs(text[], text[], text[], text[], text[]);
