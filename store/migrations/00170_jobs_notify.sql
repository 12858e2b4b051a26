-- +goose Up
-- Every change of a job row is announced on channel crmq_jobs, so an API
-- process keeps the job statuses it serves in memory (status reads cost no
-- query) and wakes the server-sent-event streams of that job (no poll per
-- stream). The message is the row as the API shows it, plus org_id; a row
-- too large for a notification (8000 bytes) is announced by id only and
-- read again. Inserts are not announced: the inserting API has the row.
-- +goose StatementBegin
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('crmq_jobs', json_build_object('id', OLD.id, 'org_id', OLD.org_id, 'gone', true)::text);
        RETURN NULL;
    END IF;
    msg := json_build_object('id', NEW.id, 'org_id', NEW.org_id, 'user_id', NEW.user_id, 'type', NEW.type,
        'queue', NEW.queue, 'state', NEW.state, 'progress', NEW.progress, 'attempts', NEW.attempts,
        'max_retry', NEW.max_retry, 'requeues', NEW.requeues, 'result', NEW.result, 'error', NEW.error,
        'created_at', NEW.created_at, 'started_at', NEW.started_at, 'finished_at', NEW.finished_at,
        'updated_at', NEW.updated_at)::text;
    IF octet_length(msg) > 7900 THEN
        msg := json_build_object('id', NEW.id, 'org_id', NEW.org_id, 'gone', true)::text;
    END IF;
    PERFORM pg_notify('crmq_jobs', msg);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER jobs_notify AFTER UPDATE OR DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_notify();

-- +goose Down
DROP TRIGGER jobs_notify ON jobs;
DROP FUNCTION jobs_notify();
