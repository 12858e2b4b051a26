package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Job states. A job moves queued -> running -> succeeded | failed, through
// retrying when an attempt fails and another is due, and back to queued
// when a stopping worker hands it back.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobRetrying  = "retrying"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// JobFinal tells whether a state is final.
func JobFinal(state string) bool {
	return state == JobSucceeded || state == JobFailed || state == JobCancelled
}

// Job is the durable status of one task.
type Job struct {
	ID             string          `db:"id" json:"id"`
	OrgID          int64           `db:"org_id" json:"-"`
	UserID         *string         `db:"user_id" json:"user_id,omitempty"`
	Type           string          `db:"type" json:"type"`
	Queue          string          `db:"queue" json:"queue"`
	State          string          `db:"state" json:"state"`
	Progress       int             `db:"progress" json:"progress"`
	Attempts       int             `db:"attempts" json:"attempts"`
	MaxRetry       int             `db:"max_retry" json:"max_retry"`
	Requeues       int             `db:"requeues" json:"requeues"` // times the reconciler put the task back on its queue
	Payload        json.RawMessage `db:"payload" json:"-"`
	Result         *RawJSON        `db:"result" json:"result,omitempty"`
	Error          *string         `db:"error" json:"error,omitempty"`
	IdempotencyKey *string         `db:"idempotency_key" json:"-"`
	CreatedAt      time.Time       `db:"created_at" json:"created_at"`
	StartedAt      *time.Time      `db:"started_at" json:"started_at,omitempty"`
	FinishedAt     *time.Time      `db:"finished_at" json:"finished_at,omitempty"`
	UpdatedAt      time.Time       `db:"updated_at" json:"updated_at"`
}

// RawJSON is a jsonb column that scans from bytes and marshals as is.
type RawJSON []byte

// Scan implements sql.Scanner.
func (r *RawJSON) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*r = append((*r)[:0], v...)
	case string:
		*r = RawJSON(v)
	case nil:
		*r = nil
	default:
		return fmt.Errorf("RawJSON: cannot scan %T", src)
	}
	return nil
}

// UnmarshalJSON implements json.Unmarshaler (clients decoding a job).
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

const jobColumns = `id, org_id, user_id, type, queue, state, progress, attempts, max_retry, requeues, payload,
	result, error, idempotency_key, created_at, started_at, finished_at, updated_at`

// insertedColumns are the columns an insert returns: the rest of a new
// row is what the caller gave and the table's defaults (see inserted).
// Returning every column cost Postgres the payload's text and the API a
// reflective scan of 18 columns per job.
const insertedColumns = `id, created_at, updated_at`

const insertJobSQL = `
	INSERT INTO jobs (id, org_id, user_id, type, queue, max_retry, payload, idempotency_key)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + insertedColumns

// inserted is the row an insert of j wrote, created and updated at the
// times it returned: queued, no attempt, no progress, no result.
func inserted(j Job, created, updated time.Time) Job {
	return Job{
		ID: j.ID, OrgID: j.OrgID, UserID: j.UserID, Type: j.Type, Queue: j.Queue, State: JobQueued,
		MaxRetry: j.MaxRetry, Payload: payloadOrEmpty(j.Payload), IdempotencyKey: j.IdempotencyKey,
		CreatedAt: created, UpdatedAt: updated,
	}
}

// InsertJob writes a new queued job row and returns it as stored. It
// returns false, without error, when a row with that id already exists (a
// deterministic scheduler id), and ErrConflict when the org already used
// the idempotency key. Concurrent inserts without an idempotency key share
// one statement (see batcher); one with a key runs alone, so its unique
// violation is its own.
func (db *DB) InsertJob(ctx context.Context, j Job) (Job, bool, error) {
	w := db.watch.Load()
	var t watchToken
	if w != nil {
		t = w.begin()
	}
	var (
		out Job
		ok  bool
		err error
	)
	if j.IdempotencyKey != nil {
		out, ok, err = db.InsertJobSingle(ctx, j)
	} else {
		var r insertedJob
		r, err = db.jobs.insert.do(ctx, j)
		out, ok = r.job, r.inserted
	}
	if w != nil && ok && err == nil {
		w.store(out, t) // the client's first status read costs no query
	}
	return out, ok, err
}

// InsertJobSingle is InsertJob as one statement of its own, never batched.
func (db *DB) InsertJobSingle(ctx context.Context, j Job) (Job, bool, error) {
	st, err := db.prepared(ctx, insertJobSQL)
	if err != nil {
		return Job{}, false, err
	}
	var (
		id               string
		created, updated time.Time
	)
	err = st.QueryRowContext(ctx, j.ID, j.OrgID, j.UserID, j.Type, j.Queue, j.MaxRetry, payloadOrEmpty(j.Payload), j.IdempotencyKey).Scan(&id, &created, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Job{}, false, nil
	case isUniqueViolation(err):
		return Job{}, false, fmt.Errorf("idempotency key: %w", ErrConflict)
	case err != nil:
		return Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	return inserted(j, created, updated), true, nil
}

// payloadOrEmpty is the payload to store: {} for none (the column's
// default, which an explicit NULL would not get).
func payloadOrEmpty(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return []byte(`{}`)
	}
	return p
}

// DeleteQueuedJob removes a job row that never reached the queue. started
// is true when the row was kept because a worker has already started it:
// the enqueue that reported an error did reach Redis (an answer lost in a
// failover), so the job is accepted after all.
func (db *DB) DeleteQueuedJob(ctx context.Context, id string) (started bool, err error) {
	err = db.GetContext(ctx, &started, `
		WITH d AS (DELETE FROM jobs WHERE id = $1 AND state = 'queued' AND attempts = 0 RETURNING 1)
		SELECT NOT EXISTS (SELECT 1 FROM d) AND EXISTS (SELECT 1 FROM jobs WHERE id = $1)`, id)
	db.forgetJob(id)
	if err != nil {
		return false, fmt.Errorf("delete job %s: %w", id, err)
	}
	return started, nil
}

// Job reads one job of an org; another org's job is ErrNotFound.
//
// With WatchJobs, a row this process holds is answered from memory (it is
// kept current by notifications), and a row read is kept for next time; a
// row from memory may lack Payload, which status reads never show.
func (db *DB) Job(ctx context.Context, orgID int64, id string) (Job, error) {
	w := db.watch.Load()
	if w == nil {
		return db.jobFromDB(ctx, orgID, id)
	}
	if j, ok := w.get(orgID, id); ok {
		return j, nil
	}
	t := w.begin()
	j, err := db.jobFromDB(ctx, orgID, id)
	if err == nil {
		w.store(j, t)
	}
	return j, err
}

func (db *DB) jobFromDB(ctx context.Context, orgID int64, id string) (Job, error) {
	st, err := db.prepared(ctx, jobSQL)
	if err != nil {
		return Job{}, err
	}
	var j Job
	if err := st.GetContext(ctx, &j, id, orgID); err != nil {
		return Job{}, notFound(err, "job "+id)
	}
	return j, nil
}

// jobSQL is what every status poll runs.
const jobSQL = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1 AND org_id = $2`

// JobByIdempotencyKey finds the job an org created with the key.
func (db *DB) JobByIdempotencyKey(ctx context.Context, orgID int64, key string) (Job, error) {
	var j Job
	err := db.GetContext(ctx, &j, `SELECT `+jobColumns+` FROM jobs WHERE org_id = $1 AND idempotency_key = $2`, orgID, key)
	if err != nil {
		return Job{}, notFound(err, "job")
	}
	return j, nil
}

// JobStart is what StartJob reports: the final state the job was already
// in (succeeded or cancelled: not started, it must not run again; "" when
// it started), when it was enqueued and when its first attempt started
// (Postgres' clock).
type JobStart struct {
	Final     string    `db:"final"`
	CreatedAt time.Time `db:"created_at"`
	StartedAt time.Time `db:"started_at"`
}

// QueuedFor is the time the job waited before its first attempt.
func (s JobStart) QueuedFor() time.Duration { return s.StartedAt.Sub(s.CreatedAt) }

// StartJob marks a job running for the given attempt (1-based), unless it
// already succeeded or was cancelled (JobStart.Final), so a redelivered
// job that already succeeded is not run again. ErrNotFound when no row
// exists.
//
// runID fences the attempt: FinishJob only writes while the row still
// carries it, so the late write of an attempt a stopping worker abandoned
// cannot overwrite the state of the attempt that runs the task again.
func (db *DB) StartJob(ctx context.Context, id string, attempt int, runID string) (JobStart, error) {
	return db.jobs.start.do(ctx, jobStartIn{id: id, attempt: attempt, runID: runID})
}

func (db *DB) startJobOne(ctx context.Context, id string, attempt int, runID string) (JobStart, error) {
	st, err := db.prepared(ctx, startJobSQL)
	if err != nil {
		return JobStart{}, err
	}
	var js JobStart
	err = st.GetContext(ctx, &js, id, attempt, runID)
	if errors.Is(err, sql.ErrNoRows) {
		out, errs := db.notStarted(ctx, []string{id})
		return out[0], errs[0]
	}
	if err != nil {
		return JobStart{}, fmt.Errorf("start job %s: %w", id, err)
	}
	return js, nil
}

// startJobSQL starts one job, as crmq_start_open_jobs (migration 00240)
// starts many: a final job is left as it is and not returned.
const startJobSQL = `
		UPDATE jobs SET state = 'running', attempts = $2, progress = 0,
			started_at = COALESCE(started_at, now()), error = NULL, run_id = $3, updated_at = now()
		WHERE id = $1 AND state NOT IN ('succeeded', 'cancelled')
		RETURNING created_at, started_at`

// notStarted reads the jobs a start left alone (one query for all) and
// gives each its JobStart: final, or ErrNotFound without a row.
func (db *DB) notStarted(ctx context.Context, ids []string) ([]JobStart, []error) {
	out, errs := make([]JobStart, len(ids)), make([]error, len(ids))
	var rows []struct{ ID, State string }
	if err := db.SelectContext(ctx, &rows, `SELECT id, state FROM jobs WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		for i, id := range ids {
			errs[i] = fmt.Errorf("job %s: %w", id, err)
		}
		return out, errs
	}
	state := make(map[string]string, len(rows))
	for _, r := range rows {
		state[r.ID] = r.State
	}
	for i, id := range ids {
		switch st, ok := state[id]; {
		case !ok:
			errs[i] = fmt.Errorf("job %s: %w", id, ErrNotFound)
		case st != JobSucceeded && st != JobCancelled:
			// Only a final row is left alone, and a final row stays final.
			errs[i] = fmt.Errorf("job %s was not started yet is %s", id, st)
		default:
			out[i] = JobStart{Final: st}
		}
	}
	return out, errs
}

// FinishJob records the outcome of an attempt. The state and the result are
// one UPDATE, so a job is never succeeded without its result.
// It writes nothing when another attempt has started since (see StartJob).
func (db *DB) FinishJob(ctx context.Context, id, runID, state string, result []byte, errMsg string) error {
	_, err := db.jobs.finish.do(ctx, jobFinishIn{id: id, runID: runID, state: state, result: result, errMsg: errMsg})
	return err
}

func (db *DB) finishJobOne(ctx context.Context, id, runID, state string, result []byte, errMsg string) error {
	var errCol *string
	if errMsg != "" {
		errCol = &errMsg
	}
	var resultCol any
	if result != nil {
		resultCol = result
	}
	st, err := db.prepared(ctx, finishJobSQL)
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, id, state, resultCol, errCol, runID); err != nil {
		return fmt.Errorf("finish job %s: %w", id, err)
	}
	return nil
}

const finishJobSQL = `
		UPDATE jobs SET state = $2,
			result = COALESCE($3::jsonb, result),
			error = $4,
			progress = CASE WHEN $2 = 'succeeded' THEN 100 ELSE progress END,
			finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() ELSE NULL END,
			updated_at = now()
		WHERE id = $1 AND run_id = $5 AND state NOT IN ('succeeded', 'cancelled')`

// ErrJobCancelled: the job was cancelled; the attempt should stop.
var ErrJobCancelled = errors.New("job cancelled")

// ErrJobFinal: the job already reached a final state.
var ErrJobFinal = errors.New("job already final")

// SetJobProgress records the progress in percent (0-100) of the attempt
// runID, while it owns the running job. It returns ErrJobCancelled when
// the job was cancelled meanwhile, so a handler working in batches stops
// between two of them.
func (db *DB) SetJobProgress(ctx context.Context, id, runID string, percent int) error {
	percent = max(0, min(100, percent))
	st, err := db.prepared(ctx, progressSQL)
	if err != nil {
		return err
	}
	var state string
	if err := st.GetContext(ctx, &state, id, runID, percent); err != nil {
		return notFound(err, "job "+id)
	}
	if state == JobCancelled {
		return fmt.Errorf("job %s: %w", id, ErrJobCancelled)
	}
	return nil
}

const progressSQL = `
		WITH upd AS (
			UPDATE jobs SET progress = $3, updated_at = now()
			WHERE id = $1 AND run_id = $2 AND state = 'running' AND progress <> $3
			RETURNING state)
		SELECT COALESCE((SELECT state FROM upd), (SELECT state FROM jobs WHERE id = $1))`

// CancelJob moves a job of the org that is not final yet to cancelled and
// returns it. ErrNotFound for no such job (or another org's), ErrJobFinal
// when it already ended.
func (db *DB) CancelJob(ctx context.Context, orgID int64, id string) (Job, error) {
	var j Job
	err := db.GetContext(ctx, &j, `
		UPDATE jobs SET state = 'cancelled', error = 'cancelled by the client', finished_at = now(), updated_at = now()
		WHERE id = $1 AND org_id = $2 AND state IN ('queued', 'running', 'retrying')
		RETURNING `+jobColumns, id, orgID)
	db.forgetJob(id)
	if errors.Is(err, sql.ErrNoRows) {
		cur, err := db.Job(ctx, orgID, id)
		if err != nil {
			return Job{}, err
		}
		return cur, fmt.Errorf("job %s is %s: %w", id, cur.State, ErrJobFinal)
	}
	if err != nil {
		return Job{}, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return j, nil
}
