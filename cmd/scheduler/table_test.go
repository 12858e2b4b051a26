package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/scheduler"
	"github.com/crmq/crmq/store/storetest"
)

// exports:expire is in the default table, hourly, and two schedulers on
// the same hourly tick enqueue it once per org, on queue low.
func TestExportsExpireRunsHourlyOncePerOrg(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := storetest.NewDB(t)
	var entry *scheduler.Entry
	for _, e := range Table(cfg, db) {
		if e.Type == jobs.TypeExportsExpire {
			entry = &e
		}
	}
	if entry == nil || entry.Spec != "0 * * * *" {
		t.Fatalf("exports:expire entry %+v, want hourly", entry)
	}
	storetest.NewOrg(t, db, "one")
	storetest.NewOrg(t, db, "two")
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tick := time.Date(2026, 5, 4, 13, 0, 0, 0, time.UTC)
	enqueued := 0
	for range 2 {
		c := asynq.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		s, err := scheduler.New([]scheduler.Entry{*entry}, &jobs.Enqueuer{DB: db, Client: c, Log: quiet}, db, quiet)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Tick(context.Background(), *entry, tick)
		if err != nil {
			t.Fatal(err)
		}
		enqueued += res.Enqueued
	}
	if enqueued != 2 {
		t.Fatalf("%d tasks for 2 orgs and one tick from two schedulers", enqueued)
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	pending, err := insp.ListPendingTasks(jobs.QueueLow)
	if err != nil || len(pending) != 2 {
		t.Fatalf("queue low holds %d tasks (%v), want 2", len(pending), err)
	}
	for _, p := range pending {
		if p.Type != jobs.TypeExportsExpire {
			t.Errorf("task %s", p.Type)
		}
	}
}
