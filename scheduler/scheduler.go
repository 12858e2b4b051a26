// Package scheduler is crmq's cron table: each entry enqueues one task per
// org on every tick (one in all for a system task such as jobs:reconcile). Any number of schedulers may run at once: the task id
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
	// Orgs, when set, lists the orgs this entry runs for instead of every
	// org (rfm:refresh runs for the orgs that configured ABM).
	Orgs func(ctx context.Context) ([]int64, error)
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
	ctx  context.Context // cancelled by Stop, ending retries
	stop context.CancelFunc
}

// tickRetries is how many times a tick is tried again for the orgs whose
// enqueue failed (Redis or Postgres briefly away), 1+2+4+8+16 s apart: a
// weekly task must not wait a week because of a blip.
const tickRetries = 5

// New parses every entry; a bad spec is an error naming it.
func New(entries []Entry, enq Enqueuer, orgs Orgs, log *slog.Logger) (*Scheduler, error) {
	ctx, stop := context.WithCancel(context.Background())
	s := &Scheduler{
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithParser(parser)),
		enq:  enq, orgs: orgs, log: log, now: time.Now, ctx: ctx, stop: stop,
	}
	for _, e := range entries {
		sched, err := Parse(e.Spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Type, err)
		}
		s.cron.Schedule(sched, cron.FuncJob(func() {
			tick := NominalTick(sched, s.now())
			if _, err := s.TickWithRetry(s.ctx, e, tick, tickRetries, time.Second); err != nil {
				s.log.Error("tick failed", "type", e.Type, "tick", tick, "err", err)
			}
		}))
	}
	return s, nil
}

// Start runs the table in the background.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling, ends the retries of running ticks and waits for them.
func (s *Scheduler) Stop() {
	s.stop()
	<-s.cron.Stop().Done()
}

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
	res, _, err := s.tick(ctx, e, tick, nil)
	return res, err
}

// TickWithRetry is Tick, tried again up to retries times, first after
// backoff and doubling, for the orgs that failed. The tick's task ids are
// deterministic, so a retry never enqueues twice.
func (s *Scheduler) TickWithRetry(ctx context.Context, e Entry, tick time.Time, retries int, backoff time.Duration) (TickResult, error) {
	var total TickResult
	var only []int64
	for attempt := 0; ; attempt++ {
		res, failed, err := s.tick(ctx, e, tick, only)
		total.Enqueued += res.Enqueued
		total.AlreadyEnqueued += res.AlreadyEnqueued
		// failed is nil when the org list failed (try all again) and
		// empty when no failure can be fixed by trying again.
		if err == nil || attempt == retries || (failed != nil && len(failed) == 0) {
			return total, err
		}
		s.log.Warn("tick incomplete; trying again", "type", e.Type, "tick", tick, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return total, errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
		only = failed
	}
}

// tick enqueues for the given orgs (all when nil) and returns the orgs it
// failed for; nil orgs with an error means the org list itself failed.
func (s *Scheduler) tick(ctx context.Context, e Entry, tick time.Time, only []int64) (TickResult, []int64, error) {
	var res TickResult
	ids := only
	if spec, ok := jobs.SpecOf(e.Type); ok && spec.System {
		ids = []int64{0} // one task for the whole deployment
	}
	if ids == nil {
		list := s.orgs.OrgIDs
		if e.Orgs != nil {
			list = e.Orgs
		}
		var err error
		if ids, err = list(ctx); err != nil {
			return res, nil, fmt.Errorf("list orgs: %w", err)
		}
	}
	var (
		errs   []error
		failed []int64
	)
	for _, org := range ids {
		task, err := e.Build(org)
		if err != nil { // a bad payload: no retry can fix it
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
			failed = append(failed, org)
		}
	}
	if len(errs) > 0 && len(failed) == 0 {
		failed = []int64{} // errors no retry can fix: try nothing again
	}
	return res, failed, errors.Join(errs...)
}
