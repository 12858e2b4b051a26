package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// jobBatchMax bounds the rows of one batched job statement.
const jobBatchMax = 64

// jobBatchers group the writes every job makes (see batcher).
type jobBatchers struct {
	insert *batcher[Job, insertedJob]
	start  *batcher[jobStartIn, JobStart]
	finish *batcher[jobFinishIn, struct{}]
}

type insertedJob struct {
	job      Job
	inserted bool
}

type jobStartIn struct {
	id      string
	attempt int
	runID   string
}

type jobFinishIn struct {
	id, runID, state string
	result           []byte
	errMsg           string
}

func newJobBatchers(db *DB) jobBatchers {
	return jobBatchers{
		insert: &batcher[Job, insertedJob]{
			max: jobBatchMax, key: func(j Job) string { return j.ID },
			one: func(ctx context.Context, j Job) (insertedJob, error) {
				out, ok, err := db.InsertJobSingle(ctx, j)
				return insertedJob{out, ok}, err
			},
			many: db.insertJobs,
		},
		start: &batcher[jobStartIn, JobStart]{
			max: jobBatchMax, key: func(in jobStartIn) string { return in.id },
			one: func(ctx context.Context, in jobStartIn) (JobStart, error) {
				return db.startJobOne(ctx, in.id, in.attempt, in.runID)
			},
			many: db.startJobs,
		},
		finish: &batcher[jobFinishIn, struct{}]{
			max: jobBatchMax, key: func(in jobFinishIn) string { return in.id },
			one: func(ctx context.Context, in jobFinishIn) (struct{}, error) {
				return struct{}{}, db.finishJobOne(ctx, in.id, in.runID, in.state, in.result, in.errMsg)
			},
			many: db.finishJobs,
		},
	}
}

// insertJobsSQL is insertJobSQL for many rows (none with an idempotency key).
const insertJobsSQL = `
	INSERT INTO jobs (id, org_id, user_id, type, queue, max_retry, payload)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::jsonb[])
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + insertedColumns

func (db *DB) insertJobs(ctx context.Context, in []Job) ([]insertedJob, []error, error) {
	n := len(in)
	ids, types, queues, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	orgs, maxRetry := make([]int64, n), make([]int64, n)
	users := make([]sql.NullString, n)
	for i, j := range in {
		ids[i], orgs[i], types[i], queues[i], maxRetry[i] = j.ID, j.OrgID, j.Type, j.Queue, int64(j.MaxRetry)
		payloads[i] = string(payloadOrEmpty(j.Payload))
		if j.UserID != nil {
			users[i] = sql.NullString{String: *j.UserID, Valid: true}
		}
	}
	st, err := db.prepared(ctx, insertJobsSQL)
	if err != nil {
		return nil, nil, err
	}
	rows, err := st.QueryContext(ctx, pq.Array(ids), pq.Array(orgs), pq.Array(users), pq.Array(types),
		pq.Array(queues), pq.Array(maxRetry), pq.Array(payloads))
	if err != nil {
		return nil, nil, fmt.Errorf("insert jobs: %w", err)
	}
	defer rows.Close()
	type times struct{ created, updated time.Time }
	byID := make(map[string]times, n)
	for rows.Next() {
		var (
			id string
			t  times
		)
		if err := rows.Scan(&id, &t.created, &t.updated); err != nil {
			return nil, nil, fmt.Errorf("insert jobs: %w", err)
		}
		byID[id] = t
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("insert jobs: %w", err)
	}
	out, errs := make([]insertedJob, n), make([]error, n)
	for i, j := range in {
		t, ok := byID[j.ID] // absent: the id existed already (ON CONFLICT DO NOTHING)
		if ok {
			out[i] = insertedJob{job: inserted(j, t.created, t.updated), inserted: true}
		}
	}
	return out, errs, nil
}

// The batched start and finish are functions (migration 00230), called
// through prepared statements: one round trip and no planning per batch.
// They were plain statements planned at each run (a prepared statement
// soon settles on one generic plan, and the plan made while jobs was small
// is a hash join over a sequential scan of jobs, kept as the table grows:
// 4 ms a batch on 20,000 rows, and the workers fell behind at 750 jobs/s);
// planning cost 0.24-0.39 ms a batch and a second round trip (pg_stat_
// statements with track_planning: a quarter of the job statements' time
// at 750 jobs/s). The functions plan with enable_seqscan off, so their
// kept plans look each id up in the primary key whatever the table's size
// when they were made. (TestBatchedStartAndFinishDoNotScanJobs.)
// The start returns the jobs it started (not the final ones: migration
// 00240); the ids are passed in order, so batches lock rows in one order.
const (
	startJobsSQL  = `SELECT id, created_at, started_at FROM crmq_start_open_jobs($1, $2, $3)`
	finishJobsSQL = `SELECT crmq_finish_jobs($1, $2, $3, $4, $5)`
)

func (db *DB) startJobs(ctx context.Context, in []jobStartIn) ([]JobStart, []error, error) {
	n := len(in)
	sorted := slices.SortedFunc(slices.Values(in), func(a, b jobStartIn) int { return strings.Compare(a.id, b.id) })
	ids, runs, attempts := make([]string, n), make([]string, n), make([]int64, n)
	for i, s := range sorted {
		ids[i], attempts[i], runs[i] = s.id, int64(s.attempt), s.runID
	}
	var rows []struct {
		ID string `db:"id"`
		JobStart
	}
	st, err := db.prepared(ctx, startJobsSQL)
	if err != nil {
		return nil, nil, err
	}
	if err := st.SelectContext(ctx, &rows, pq.Array(ids), pq.Array(attempts), pq.Array(runs)); err != nil {
		return nil, nil, fmt.Errorf("start jobs: %w", err)
	}
	byID := make(map[string]JobStart, len(rows))
	for _, r := range rows {
		byID[r.ID] = r.JobStart
	}
	out, errs := make([]JobStart, n), make([]error, n)
	var left []int // calls whose job the start left alone
	for i, s := range in {
		js, ok := byID[s.id]
		if !ok {
			left = append(left, i)
		}
		out[i] = js
	}
	if len(left) > 0 {
		ids := make([]string, len(left))
		for k, i := range left {
			ids[k] = in[i].id
		}
		starts, serrs := db.notStarted(ctx, ids)
		for k, i := range left {
			out[i], errs[i] = starts[k], serrs[k]
		}
	}
	return out, errs, nil
}

func (db *DB) finishJobs(ctx context.Context, in []jobFinishIn) ([]struct{}, []error, error) {
	n := len(in)
	ids, runs, states := make([]string, n), make([]string, n), make([]string, n)
	results, msgs := make([]sql.NullString, n), make([]sql.NullString, n)
	for i, f := range in {
		ids[i], runs[i], states[i] = f.id, f.runID, f.state
		if f.result != nil {
			results[i] = sql.NullString{String: string(f.result), Valid: true}
		}
		if f.errMsg != "" {
			msgs[i] = sql.NullString{String: f.errMsg, Valid: true}
		}
	}
	st, err := db.prepared(ctx, finishJobsSQL)
	if err != nil {
		return nil, nil, err
	}
	if _, err := st.ExecContext(ctx, pq.Array(ids), pq.Array(runs), pq.Array(states), pq.Array(results), pq.Array(msgs)); err != nil {
		return nil, nil, fmt.Errorf("finish jobs: %w", err)
	}
	return make([]struct{}, n), make([]error, n), nil
}

// JobWriteStats counts, since the DB was opened, the job-row writes
// (insert, start, finish) callers asked for and the statements that made
// them: Calls / Statements is the mean batch size.
type JobWriteStats struct{ Calls, Statements int64 }

// JobWriteStats reads the counts of the job batchers.
func (db *DB) JobWriteStats() JobWriteStats {
	var s JobWriteStats
	for _, c := range []*batchCounts{&db.jobs.insert.counts, &db.jobs.start.counts, &db.jobs.finish.counts} {
		s.Calls += c.calls.Load()
		s.Statements += c.statements.Load()
	}
	return s
}

// SetJobBatchDelay makes the job-row writes (insert, start, finish) that
// arrive steadily, at least minRate a second of their kind (0: at any
// rate), wait up to d for others to share their statement (see batcher);
// d 0, the default, never waits. Call it before the DB is used.
func (db *DB) SetJobBatchDelay(d time.Duration, minRate float64) {
	db.jobs.insert.linger, db.jobs.start.linger, db.jobs.finish.linger = d, d, d
	db.jobs.insert.minRate, db.jobs.start.minRate, db.jobs.finish.minRate = minRate, minRate, minRate
}
