package llm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// DefaultLimitPrefix prefixes the limiter's Redis keys when NewLimiter is
// given none. redis_rate puts "rate:" before it.
const DefaultLimitPrefix = "crmq:llm:"

// Limiter caps requests per minute to the provider, per org and for all
// orgs together, for every worker process at once: the state lives in
// Redis and each decision is one Lua script there (redis_rate, GCRA, on
// Redis' own clock). A scope allows a burst of its whole per-minute budget
// and then one request every minute/limit: the long-run rate is the limit,
// but the minute that follows an idle spell can see nearly twice it, so
// set the global limit somewhat below the provider's quota.
type Limiter struct {
	rate           *redis_rate.Limiter
	perOrg, global int
	prefix         string
}

// NewLimiter returns a limiter of perOrgRPM requests per minute for each
// org and globalRPM for all orgs together; a limit <= 0 disables its
// scope. Processes that share rdb and prefix share the budgets.
func NewLimiter(rdb redis.UniversalClient, perOrgRPM, globalRPM int, prefix string) *Limiter {
	if prefix == "" {
		prefix = DefaultLimitPrefix
	}
	return &Limiter{rate: redis_rate.NewLimiter(rdb), perOrg: perOrgRPM, global: globalRPM, prefix: prefix}
}

// Allow takes one request from org's budget and from the global one, or
// returns a *RateLimitError (Scope "org" or "global") saying when to try
// again. A request refused by one scope takes nothing from the other: the
// org is checked before the global budget is touched, and the global
// budget is looked at before the org's is taken. (Two processes racing
// for the last global request can still cost the loser one org request.)
// Redis errors are ErrTransient.
func (l *Limiter) Allow(ctx context.Context, orgID int64) error {
	if l == nil {
		return nil
	}
	globalKey := l.prefix + "global"
	orgKey := l.prefix + "org:" + strconv.FormatInt(orgID, 10)
	if l.global > 0 && l.perOrg > 0 {
		// A cost-0 call changes nothing and reports what is left.
		res, err := l.rate.AllowN(ctx, globalKey, redis_rate.PerMinute(l.global), 0)
		if err != nil {
			return limiterError(err)
		}
		if res.Remaining < 1 {
			return l.refused("global", peekRetryAfter(res), fmt.Errorf("all orgs together over %d requests per minute", l.global))
		}
	}
	if l.perOrg > 0 {
		res, err := l.rate.Allow(ctx, orgKey, redis_rate.PerMinute(l.perOrg))
		if err != nil {
			return limiterError(err)
		}
		if res.Allowed == 0 {
			return l.refused("org", res.RetryAfter, fmt.Errorf("org %d over %d requests per minute", orgID, l.perOrg))
		}
	}
	if l.global > 0 {
		res, err := l.rate.Allow(ctx, globalKey, redis_rate.PerMinute(l.global))
		if err != nil {
			return limiterError(err)
		}
		if res.Allowed == 0 {
			return l.refused("global", res.RetryAfter, fmt.Errorf("all orgs together over %d requests per minute", l.global))
		}
	}
	return nil
}

func (l *Limiter) refused(scope string, after time.Duration, err error) *RateLimitError {
	// Round up to the millisecond so that waiting RetryAfter is enough.
	after = after.Truncate(time.Millisecond) + time.Millisecond
	return &RateLimitError{Scope: scope, Delay: after, Err: err}
}

// peekRetryAfter is when a cost-0 look that found no request left will find
// one: GCRA allows a request once the theoretical arrival time (now +
// ResetAfter) plus one emission interval is within the burst (one period).
func peekRetryAfter(res *redis_rate.Result) time.Duration {
	interval := res.Limit.Period / time.Duration(res.Limit.Rate)
	return max(res.ResetAfter+interval-res.Limit.Period, 0)
}

func limiterError(err error) error {
	return fmt.Errorf("llm: rate limiter: %w: %w", ErrTransient, err)
}

// Limited returns a Provider that asks l before every request to p. When
// the limiter says to retry after a delay that fits in what is left of
// maxWait (counted from the call), it waits and asks again; otherwise it
// returns the *RateLimitError without calling p, so the job is retried
// later instead of holding a worker. A nil l returns p.
func Limited(p Provider, l *Limiter, maxWait time.Duration) Provider {
	if l == nil {
		return p
	}
	return &limited{inner: p, limiter: l, maxWait: maxWait}
}

type limited struct {
	inner   Provider
	limiter *Limiter
	maxWait time.Duration
}

func (p *limited) Name() string { return p.inner.Name() }

func (p *limited) Generate(ctx context.Context, req Request) (Response, error) {
	giveUp := time.Now().Add(p.maxWait)
	for {
		err := p.limiter.Allow(ctx, req.OrgID)
		if err == nil {
			return p.inner.Generate(ctx, req)
		}
		var rl *RateLimitError
		if !errors.As(err, &rl) {
			return Response{}, err
		}
		wakeAt := time.Now().Add(rl.Delay)
		if wakeAt.After(giveUp) {
			return Response{}, err
		}
		if dl, ok := ctx.Deadline(); ok && wakeAt.After(dl) {
			return Response{}, err // the caller would stop before the slot comes
		}
		t := time.NewTimer(rl.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Response{}, fmt.Errorf("%w (stopped waiting: %w)", err, ctx.Err())
		}
	}
}
