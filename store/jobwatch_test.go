package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// With the job watch on, status reads of a job this process inserted or
// read cost no query, and a change written by another process (a worker)
// reaches the cached row through the trigger's notification: no read ever
// returns the row as it was before a change it could have seen.
func TestJobWatchServesReadsFromMemoryAndFollowsChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api, url := storetest.NewDB(t)
	worker, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	org, _ := storetest.NewOrg(t, api, "acme")
	other, _ := storetest.NewOrg(t, api, "other")
	if err := api.WatchJobs(ctx, url, quietLog); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.InsertJob(ctx, store.Job{ID: "j1", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	changes, stop, ok := api.JobChanges("j1")
	if !ok {
		t.Fatal("JobChanges: not watching")
	}
	defer stop()

	j, err := api.Job(ctx, org.ID, "j1")
	if err != nil || j.State != store.JobQueued {
		t.Fatalf("first read: %+v %v", j, err)
	}
	if hits, misses := api.JobCacheStats(); hits != 1 || misses != 0 {
		t.Fatalf("the inserted row was not served from memory: %d hits, %d misses", hits, misses)
	}
	if _, err := api.Job(ctx, other.ID, "j1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org read the cached job: %v", err)
	}

	// The worker, another connection, moves the job on.
	if _, err := worker.StartJob(ctx, "j1", 1, "run-1"); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes)
	if j, _ := api.Job(ctx, org.ID, "j1"); j.State != store.JobRunning || j.Attempts != 1 {
		t.Fatalf("after the start: %+v", j)
	}
	if err := worker.FinishJob(ctx, "j1", "run-1", store.JobSucceeded, []byte(`{"ok":true}`), ""); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes)
	hits0, misses0 := api.JobCacheStats()
	j, _ = api.Job(ctx, org.ID, "j1")
	if j.State != store.JobSucceeded || j.Result == nil || string(*j.Result) != `{"ok": true}` || j.Progress != 100 || j.FinishedAt == nil {
		t.Fatalf("after the finish: %+v", j)
	}
	fresh, _ := worker.Job(ctx, org.ID, "j1")
	if !fresh.UpdatedAt.Equal(j.UpdatedAt) || !fresh.FinishedAt.Equal(*j.FinishedAt) || !fresh.CreatedAt.Equal(j.CreatedAt) {
		t.Fatalf("cached row %+v differs from Postgres' %+v", j, fresh)
	}
	if hits, misses := api.JobCacheStats(); hits != hits0+1 || misses != misses0 {
		t.Fatalf("the changed row was not served from memory: hits %d->%d, misses %d->%d", hits0, hits, misses0, misses)
	}

	// A job this process never held is read once, then served from memory.
	if _, _, err := worker.InsertJob(ctx, store.Job{ID: "j2", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := api.Job(ctx, org.ID, "j2"); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := api.JobCacheStats(); hits != hits0+2 || misses != misses0+1 {
		t.Fatalf("j2: hits %d->%d, misses %d->%d; want one miss then one hit", hits0, hits, misses0, misses)
	}

	// A cancel through this process is seen by its next read at once.
	if _, err := api.CancelJob(ctx, org.ID, "j2"); err != nil {
		t.Fatal(err)
	}
	if j, _ := api.Job(ctx, org.ID, "j2"); j.State != store.JobCancelled {
		t.Fatalf("read after own cancel: %s", j.State)
	}
}

func waitChange(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification of the change within 5s")
	}
}

// The trigger's messages, as Postgres sends them, take the fast path: the
// job id is read from the start of the message and nothing is decoded
// until a read needs the row. A cached row an update announced stays the
// org's own.
func TestJobNotificationsAreReadWithoutDecoding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, url := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	other, _ := storetest.NewOrg(t, db, "other")
	l := pq.NewListener(url, 100*time.Millisecond, time.Second, nil)
	defer l.Close()
	if err := l.Listen("crmq_jobs"); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		select {
		case n := <-l.Notify:
			if n == nil {
				t.Fatal("listener reconnected")
			}
			return n.Extra
		case <-time.After(5 * time.Second):
			t.Fatal("no notification within 5s")
		}
		return ""
	}
	if err := db.WatchJobs(ctx, url, quietLog); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.InsertJob(ctx, store.Job{ID: "n1", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{"a":"\"quoted\""}`)}); err != nil {
		t.Fatal(err)
	}
	changes, stop, _ := db.JobChanges("n1")
	defer stop()
	if _, err := db.StartJob(ctx, "n1", 1, "run-1"); err != nil {
		t.Fatal(err)
	}
	if id, gone, ok := store.NotifiedID(next()); !ok || gone || id != "n1" {
		t.Fatalf("update announced as id %q gone %v fast %v", id, gone, ok)
	}
	waitChange(t, changes) // the start reached this process's watch
	// Another process (a worker) finishes it: this one holds the row (it
	// inserted it) and keeps the announcement.
	worker, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	if err := worker.FinishJob(ctx, "n1", "run-1", store.JobFailed, nil, `boom "quoted" \ back`); err != nil {
		t.Fatal(err)
	}
	if id, gone, ok := store.NotifiedID(next()); !ok || gone || id != "n1" {
		t.Fatalf("finish announced as id %q gone %v fast %v", id, gone, ok)
	}
	waitChange(t, changes)
	if _, err := db.Job(ctx, other.ID, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another org read the announced row: %v", err)
	}
	hits0, _ := db.JobCacheStats()
	j, err := db.Job(ctx, org.ID, "n1")
	if err != nil || j.State != store.JobFailed || j.Error == nil || *j.Error != `boom "quoted" \ back` {
		t.Fatalf("announced row read as %+v %v", j, err)
	}
	if hits, _ := db.JobCacheStats(); hits != hits0+1 {
		t.Fatal("the announced row was not served from memory")
	}
	if _, err := db.DeleteJobsOfQueue(ctx, "low"); err != nil {
		t.Fatal(err)
	}
	if id, gone, ok := store.NotifiedID(next()); !ok || !gone || id != "n1" {
		t.Fatalf("delete announced as id %q gone %v fast %v", id, gone, ok)
	}
	for _, msg := range []string{`{"id":"n1"}`, `{"id" : "a\"b", "org_id" : 1}`, `{"org_id" : 1, "id" : "n1"}`} {
		if _, _, ok := store.NotifiedID(msg); ok {
			t.Errorf("message %s of another shape took the fast path", msg)
		}
	}
}
