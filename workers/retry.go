package workers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/workers/fair"
)

// MaxRateLimitDelay caps the wait before retrying a rate-limited task, so a
// provider naming an hour does not park a person's summary for an hour.
const MaxRateLimitDelay = 10 * time.Minute

// RetryDelay is asynq.Config.RetryDelayFunc: a task that failed with a
// RetryAfterError (a provider's 429 or crmq's own limiter) is retried
// after the RetryAfter it names (at least a second), plus one second
// because asynq schedules retries in whole Unix seconds, truncated (v0.26.0
// rdb.go:831), so it would otherwise come back up to a second early, plus
// a random part below a tenth of the delay and a second, so the tasks
// refused together do not all return at the same instant; at most
// MaxRateLimitDelay in all. Any other failure uses asynq's default
// back-off. An *Unavailable attempt comes back after 1-3 s. asynq adds up
// to its DelayedTaskCheckInterval on top.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	if d, ok := fair.RetryDelay(err); ok {
		return d // handed back for its org's cap: a second or so
	}
	if IsFull(err) {
		return fullDelay() // handed back for its type's per-worker limit
	}
	if IsUnavailable(err) || errors.Is(err, context.Canceled) {
		return unavailableDelay()
	}
	var rl RetryAfterError
	if !errors.As(err, &rl) {
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
	d := max(rl.RetryAfter(), time.Second)
	d += time.Second + rand.N(d/10+time.Second)
	return min(d, MaxRateLimitDelay)
}

// RetryAfterError is an error that names when to try again: a provider's
// 429, crmq's own rate limit, later a crawler's 429 or a blob store's 503.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// PermanentError is an error that will come again however often the task
// is tried: a refused or blocked model request, a page that is gone.
type PermanentError interface {
	error
	Permanent() bool
}

// Permanent marks an error whose chain holds a PermanentError with
// asynq.SkipRetry, so the job fails at once with the cause's message
// instead of using up its retries. Other errors, nil included, are
// returned unchanged.
func Permanent(err error) error {
	var p PermanentError
	if err == nil || !errors.As(err, &p) || !p.Permanent() || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}

// UnavailablePrefix starts the message of every *Unavailable error, so a
// task archived for it can be told apart in asynq's LastErr.
const UnavailablePrefix = "unavailable: "

// Unavailable is an attempt that could not start, or could not record its
// outcome, because crmq's own infrastructure (Postgres) did not answer. It
// says nothing about the task: IsFailure keeps it from using up a retry,
// and RetryDelay brings the task back within seconds.
type Unavailable struct{ Err error }

func (u *Unavailable) Error() string { return UnavailablePrefix + u.Err.Error() }

// Unwrap exposes the cause.
func (u *Unavailable) Unwrap() error { return u.Err }

// IsUnavailable tells whether err is, or wraps, an *Unavailable.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// IsFailure is asynq.Config.IsFailure: an attempt that could not run
// because Postgres was away does not count against the task's retries.
// asynq still archives a task whose retries are already used up, whatever
// the error (v0.26.0 processor.go:343); the reconciler puts such a task
// back when its job row shows it never failed for real.
//
// A task cancelled while it ran (asynq's CancelProcessing, sent by POST
// /v1/jobs/{id}/cancel) ends with context.Canceled; that is not a failure
// either: the task comes back within seconds, finds its job cancelled and
// ends without running.
//
// A task handed back because its org holds its share of the queue while
// another org waits (*fair.Busy), or because its worker runs as many of
// its type as Spec.PerWorker allows (*Full), is not a failure either.
func IsFailure(err error) bool {
	return !IsUnavailable(err) && !errors.Is(err, context.Canceled) && !fair.IsBusy(err) && !IsFull(err)
}

// unavailableDelay is the wait before an attempt that found Postgres away
// is tried again: short, since the worker has already waited for Postgres
// (see JobState), and jittered so parked tasks do not return together.
func unavailableDelay() time.Duration { return time.Second + rand.N(2*time.Second) }
