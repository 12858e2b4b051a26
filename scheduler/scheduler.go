// Package scheduler is crmq's cron table: each entry enqueues one task per
// org on every tick. Any number of schedulers may run at once: the task id
// is derived from the entry, the org and the nominal tick time, so the
// first scheduler to insert the job row wins and the others see
// jobs.ErrAlreadyEnqueued.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// Entry is one line of the cron table.
type Entry struct {
	Spec  string                               // cron spec, UTC; optional seconds field
	Type  string                               // task type, also the task id prefix
	Build func(orgID int64) (jobs.Task, error) // the task for one org
}

// Enqueuer is the part of jobs.Enqueuer the scheduler needs.
type Enqueuer interface {
	Enqueue(ctx context.Context, req jobs.Request) (store.Job, bool, error)
}

// Orgs lists the orgs a tick runs for.
type Orgs interface {
	OrgIDs(ctx context.Context) ([]int64, error)
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse checks a spec. "@every" is refused: its ticks depend on when each
// process started, so two schedulers would not agree on tick times.
func Parse(spec string) (cron.Schedule, error) {
	if strings.HasPrefix(strings.TrimSpace(spec), "@every") {
		return nil, fmt.Errorf("cron spec %q: @every is not aligned to the clock; use a cron expression", spec)
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %w", spec, err)
	}
	return s, nil
}

// Scheduler runs the cron table.
type Scheduler struct {
	cron *cron.Cron
	enq  Enqueuer
	orgs Orgs
	log  *slog.Logger
	now  func() time.Time
}

// New parses every entry; a bad spec is an error naming it.
func New(entries []Entry, enq Enqueuer, orgs Orgs, log *slog.Logger) (*Scheduler, error) {
	s := &Scheduler{
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithParser(parser)),
		enq:  enq, orgs: orgs, log: log, now: time.Now,
	}
	for _, e := range entries {
		sched, err := Parse(e.Spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Type, err)
		}
		s.cron.Schedule(sched, cron.FuncJob(func() {
			tick := NominalTick(sched, s.now())
			if _, err := s.Tick(context.Background(), e, tick); err != nil {
				s.log.Error("tick failed", "type", e.Type, "tick", tick, "err", err)
			}
		}))
	}
	return s, nil
}

// Start runs the table in the background.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling and waits for running ticks.
func (s *Scheduler) Stop() { <-s.cron.Stop().Done() }

// NominalTick is the scheduled time of the tick that fired at or just
// before now. robfig/cron runs a job a moment after its scheduled instant;
// every scheduler must name the tick by that instant, not by its own clock.
func NominalTick(sched cron.Schedule, now time.Time) time.Time {
	now = now.UTC()
	t := sched.Next(now.Add(-2 * time.Minute))
	tick := t
	for !t.After(now) {
		tick = t
		t = sched.Next(t)
	}
	if tick.After(now) { // no tick in the window: fall back to the second
		return now.Truncate(time.Second)
	}
	return tick
}

// TickResult counts what one tick did.
type TickResult struct {
	Enqueued, AlreadyEnqueued int
}

// Tick enqueues the entry's task for every org with the tick's task id.
func (s *Scheduler) Tick(ctx context.Context, e Entry, tick time.Time) (TickResult, error) {
	var res TickResult
	ids, err := s.orgs.OrgIDs(ctx)
	if err != nil {
		return res, fmt.Errorf("list orgs: %w", err)
	}
	var errs []error
	for _, org := range ids {
		task, err := e.Build(org)
		if err != nil {
			errs = append(errs, fmt.Errorf("org %d: %w", org, err))
			continue
		}
		id := jobs.TickTaskID(e.Type, org, tick)
		_, _, err = s.enq.Enqueue(ctx, jobs.Request{OrgID: org, TaskID: id, Task: task})
		switch {
		case err == nil:
			res.Enqueued++
			s.log.Info("tick enqueued", "type", e.Type, "org_id", org, "job_id", id)
		case errors.Is(err, jobs.ErrAlreadyEnqueued):
			res.AlreadyEnqueued++ // another scheduler won this tick
			s.log.Debug("tick already enqueued", "type", e.Type, "org_id", org, "job_id", id)
		default:
			errs = append(errs, fmt.Errorf("org %d: %w", org, err))
		}
	}
	return res, errors.Join(errs...)
}
