package store

import (
	"context"
	"time"
)

// The batched statements, for tests that check them against the single ones.

func (db *DB) InsertJobsBatch(ctx context.Context, in []Job) ([]Job, []bool, error) {
	out, _, err := db.insertJobs(ctx, in)
	jobs, ok := make([]Job, len(out)), make([]bool, len(out))
	for i, r := range out {
		jobs[i], ok[i] = r.job, r.inserted
	}
	return jobs, ok, err
}

type JobStartIn = jobStartIn
type JobFinishIn = jobFinishIn

func NewJobStartIn(id string, attempt int, runID string) JobStartIn {
	return jobStartIn{id: id, attempt: attempt, runID: runID}
}

func NewJobFinishIn(id, runID, state string, result []byte, msg string) JobFinishIn {
	return jobFinishIn{id: id, runID: runID, state: state, result: result, errMsg: msg}
}

func (db *DB) StartJobsBatch(ctx context.Context, in []JobStartIn) ([]JobStart, []error, error) {
	return db.startJobs(ctx, in)
}

func (db *DB) FinishJobsBatch(ctx context.Context, in []JobFinishIn) error {
	_, _, err := db.finishJobs(ctx, in)
	return err
}

// Batcher exposes the grouping logic with functions a test supplies.
type Batcher struct{ b *batcher[string, string] }

func NewBatcher(max int, one func(context.Context, string) (string, error), many func(context.Context, []string) ([]string, []error, error)) *Batcher {
	return &Batcher{&batcher[string, string]{max: max, key: func(s string) string { return s }, one: one, many: many}}
}

func (b *Batcher) Do(ctx context.Context, in string) (string, error) { return b.b.do(ctx, in) }

func (b *Batcher) Pending() int {
	b.b.mu.Lock()
	defer b.b.mu.Unlock()
	return len(b.b.pending)
}

// SetLinger sets the batcher's linger (see batcher); before use.
func (b *Batcher) SetLinger(d time.Duration) { b.b.linger = d }

// SetMinRate sets the call rate below which it does not linger; before use.
func (b *Batcher) SetMinRate(perSecond float64) { b.b.minRate = perSecond }

// NotifiedID is notifiedID, for the test that reads real notifications.
func NotifiedID(payload string) (id string, gone, ok bool) { return notifiedID(payload) }

// JobUncached reads a job from Postgres, never from the watch's memory.
func (db *DB) JobUncached(ctx context.Context, orgID int64, id string) (Job, error) {
	return db.jobFromDB(ctx, orgID, id)
}
