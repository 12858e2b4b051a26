package workers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/llm"
)

// MaxRateLimitDelay caps the wait before retrying a rate-limited task, so a
// provider naming an hour does not park a person's summary for an hour.
const MaxRateLimitDelay = 10 * time.Minute

// RetryDelay is asynq.Config.RetryDelayFunc: a task that failed with an
// *llm.RateLimitError (a provider's 429 or crmq's own limiter) is retried
// after the RetryAfter it names (at least a second), plus one second
// because asynq schedules retries in whole Unix seconds, truncated (v0.26.0
// rdb.go:831), so it would otherwise come back up to a second early, plus
// a random part below a tenth of the delay and a second, so the tasks
// refused together do not all return at the same instant; at most
// MaxRateLimitDelay in all. Any other failure uses asynq's default
// back-off. asynq adds up to its DelayedTaskCheckInterval on top.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var rl *llm.RateLimitError
	if !errors.As(err, &rl) {
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
	d := max(rl.RetryAfter, time.Second)
	d += time.Second + rand.N(d/10+time.Second)
	return min(d, MaxRateLimitDelay)
}

// Permanent marks an error the provider will give again (a refused or
// blocked request, llm.ErrPermanent) with asynq.SkipRetry, so the job fails
// at once with the provider's message instead of using up its retries.
// Other errors, nil included, are returned unchanged.
func Permanent(err error) error {
	if err == nil || !errors.Is(err, llm.ErrPermanent) || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
