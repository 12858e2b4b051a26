package llm_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store/storetest"
)

// redisOptions names this test's own Redis DB; each redis.NewClient of it
// is another connection pool, as another worker process would have.
func redisOptions(t *testing.T) *redis.Options {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

func client(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// allowN calls Allow n times and fails the test at the first refusal.
func allowN(t *testing.T, l *llm.Limiter, org int64, n int) {
	t.Helper()
	for i := range n {
		if err := l.Allow(context.Background(), org); err != nil {
			t.Fatalf("org %d request %d of %d refused: %v", org, i+1, n, err)
		}
	}
}

// refused asserts Allow refuses org with a RateLimitError of scope and a
// RetryAfter in (0, most].
func refused(t *testing.T, l *llm.Limiter, org int64, scope string, most time.Duration) *llm.RateLimitError {
	t.Helper()
	err := l.Allow(context.Background(), org)
	var rl *llm.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("org %d: Allow = %v, want a RateLimitError", org, err)
	}
	if rl.Scope != scope {
		t.Errorf("org %d refused with scope %q, want %q (%v)", org, rl.Scope, scope, rl)
	}
	if rl.Delay <= 0 || rl.Delay > most {
		t.Errorf("org %d: RetryAfter %s, want in (0, %s]", org, rl.Delay, most)
	}
	return rl
}

func TestLimiterPerOrgLimitLeavesOtherOrgsAlone(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 3, 0, "t:")

	allowN(t, l, 1, 3)
	rl := refused(t, l, 1, "org", 20*time.Second+time.Millisecond) // one request every 60s/3
	if rl.Delay < 19*time.Second {
		t.Errorf("RetryAfter %s, want about 20s", rl.Delay)
	}
	allowN(t, l, 2, 3)
	refused(t, l, 2, "org", 21*time.Second)
}

func TestLimiterGlobalLimitSpansOrgs(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 0, 4, "t:")
	for org := int64(1); org <= 4; org++ {
		allowN(t, l, org, 1)
	}
	refused(t, l, 5, "global", 16*time.Second)
	refused(t, l, 1, "global", 16*time.Second)
}

func TestLimiterRefusalInOneScopeCostsNothingInTheOther(t *testing.T) {
	opt := redisOptions(t)
	l := llm.NewLimiter(client(t, opt), 2, 3, "t:")

	allowN(t, l, 1, 2) // global 2 of 3
	refused(t, l, 1, "org", 31*time.Second)
	allowN(t, l, 2, 1) // global 3 of 3: org 1's refusal did not take it
	rl := refused(t, l, 3, "global", 21*time.Second)
	if rl.Delay < 19*time.Second {
		t.Errorf("global RetryAfter %s, want about 20s (one request every 60s/3)", rl.Delay)
	}
	refused(t, l, 3, "global", 21*time.Second)

	// Org 3's budget is whole: the same org budget without the global
	// scope lets it make both its requests.
	orgOnly := llm.NewLimiter(client(t, opt), 2, 0, "t:")
	allowN(t, orgOnly, 3, 2)
	refused(t, orgOnly, 3, "org", 31*time.Second)
}

func TestLimiterInstancesShareTheBudget(t *testing.T) {
	opt := redisOptions(t)
	a := llm.NewLimiter(client(t, opt), 4, 10, "t:")
	b := llm.NewLimiter(client(t, opt), 4, 10, "t:")

	allowN(t, a, 9, 2)
	allowN(t, b, 9, 2)
	refused(t, a, 9, "org", 16*time.Second)
	refused(t, b, 9, "org", 16*time.Second)
	allowN(t, a, 10, 4)
	allowN(t, b, 11, 2) // 10 of the global 10, taken through both
	refused(t, a, 12, "global", 7*time.Second)

	other := llm.NewLimiter(client(t, opt), 4, 10, "other:")
	allowN(t, other, 9, 4) // another prefix is another budget
}

func TestLimiterDisabledScopesNeverRefuseNorTouchRedis(t *testing.T) {
	rdb := client(t, redisOptions(t))
	for _, lim := range []struct{ org, global int }{{0, 0}, {-1, 0}, {0, -5}} {
		l := llm.NewLimiter(rdb, lim.org, lim.global, "t:")
		allowN(t, l, 1, 200)
	}
	if n, err := rdb.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("disabled limiters left %d keys (err %v)", n, err)
	}
	var nilLimiter *llm.Limiter
	allowN(t, nilLimiter, 1, 1)

	orgOnly := llm.NewLimiter(rdb, 2, 0, "t:")
	allowN(t, orgOnly, 1, 2)
	refused(t, orgOnly, 1, "org", 31*time.Second)
	globalOnly := llm.NewLimiter(rdb, 0, 2, "t:")
	allowN(t, globalOnly, 1, 2) // the org scope's count is not the global one
	refused(t, globalOnly, 1, "global", 31*time.Second)
}

func TestLimiterAllowsAgainAfterRetryAfter(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 0, 300, "t:") // one every 200ms once the burst is gone
	allowN(t, l, 1, 300)
	rl := refused(t, l, 1, "global", 201*time.Millisecond)
	time.Sleep(rl.Delay)
	allowN(t, l, 1, 1)
	refused(t, l, 1, "global", 201*time.Millisecond)
}

func TestLimiterRedisDownIsTransient(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	err := llm.NewLimiter(rdb, 5, 5, "t:").Allow(context.Background(), 1)
	var rl *llm.RateLimitError
	if !errors.Is(err, llm.ErrTransient) || errors.As(err, &rl) {
		t.Fatalf("Allow with Redis unreachable = %v, want ErrTransient", err)
	}
}

// countingProvider answers every request and counts them.
type countingProvider struct{ calls atomic.Int32 }

func (p *countingProvider) Name() string { return "counting" }

func (p *countingProvider) Generate(ctx context.Context, req llm.Request) (llm.Response, error) {
	p.calls.Add(1)
	return llm.Response{Model: "m"}, nil
}

func TestLimitedWaitsForAShortDelay(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 240, 0, "t:") // one every 250ms after the burst
	// Timed from before the burst: however slow the steps between, the
	// next request is allowed about 250ms after the burst used the budget.
	began := time.Now()
	allowN(t, l, 1, 240)
	inner := &countingProvider{}
	p := llm.Limited(inner, l, 2*time.Second)

	resp, err := p.Generate(context.Background(), llm.Request{OrgID: 1})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Errorf("answered %s after the burst; the limiter wanted about 250ms", waited)
	}
	if inner.calls.Load() != 1 || resp.Model != "m" {
		t.Errorf("inner called %d times, response %+v", inner.calls.Load(), resp)
	}
	if p.Name() != "counting" {
		t.Errorf("Name() = %q, want the inner provider's", p.Name())
	}
}

func TestLimitedRefusesALongDelayWithoutCallingTheProvider(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 1, 0, "t:")
	allowN(t, l, 1, 1)
	inner := &countingProvider{}

	began := time.Now()
	_, err := llm.Limited(inner, l, 2*time.Second).Generate(context.Background(), llm.Request{OrgID: 1})
	var rl *llm.RateLimitError
	if !errors.As(err, &rl) || rl.Scope != "org" || rl.Delay < 59*time.Second {
		t.Fatalf("Generate = %v, want the org's RateLimitError of about a minute", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("refusal took %s; it should not wait", d)
	}
	if n := inner.calls.Load(); n != 0 {
		t.Errorf("inner provider called %d times", n)
	}
}

func TestLimitedStopsWaitingWhenTheContextEnds(t *testing.T) {
	l := llm.NewLimiter(client(t, redisOptions(t)), 2, 0, "t:") // 30s between requests
	allowN(t, l, 1, 2)
	inner := &countingProvider{}
	p := llm.Limited(inner, l, time.Minute)

	// A deadline before the slot: refused at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	_, err := p.Generate(ctx, llm.Request{OrgID: 1})
	var rl *llm.RateLimitError
	if !errors.As(err, &rl) || time.Since(began) > time.Second {
		t.Errorf("with a 5s deadline: %v after %s, want the RateLimitError at once", err, time.Since(began))
	}

	// Cancelled while waiting: returns then.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	began = time.Now()
	_, err = p.Generate(ctx2, llm.Request{OrgID: 1})
	if !errors.Is(err, context.Canceled) || !errors.As(err, &rl) {
		t.Errorf("cancelled while waiting: %v, want context.Canceled and the RateLimitError", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("cancelled wait returned after %s", d)
	}
	if n := inner.calls.Load(); n != 0 {
		t.Errorf("inner provider called %d times", n)
	}
}

func TestLimitedWithoutLimiterIsTheProvider(t *testing.T) {
	inner := &countingProvider{}
	if p := llm.Limited(inner, nil, time.Second); p != llm.Provider(inner) {
		t.Errorf("Limited(p, nil) = %v, want p", p)
	}
}
