package fetch_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/enrich/fetch/fetchtest"
)

func sharedRobots(t *testing.T) (fetch.RedisRobots, redis.UniversalClient) {
	t.Helper()
	q := storetest.NewQueue(t)
	rdb, ok := q.Opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		t.Fatal("no redis client")
	}
	t.Cleanup(func() { rdb.Close() })
	return fetch.RedisRobots{RDB: rdb, Prefix: fmt.Sprintf("test:robots:%d:", time.Now().UnixNano())}, rdb
}

// Two worker processes (two clients) share robots.txt through Redis: the
// second reads the first one's copy, asks the site for none, and still
// keeps its rules.
func TestASecondFetcherUsesTheSharedRobotsTxt(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var robots, pages atomic.Int32
	at := site(t, dns, "shared.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			robots.Add(1)
			fmt.Fprint(w, "User-agent: CrmqBot\nDisallow: /private\nCrawl-delay: 1\n")
			return
		}
		pages.Add(1)
		fmt.Fprint(w, "ok")
	}))
	cache, rdb := sharedRobots(t)
	withCache := func(c *fetch.Config) { c.Robots = cache }
	first := client(t, dns, "shared.test", withCache)
	if _, err := first.Get(context.Background(), at("/")); err != nil {
		t.Fatal(err)
	}
	if robots.Load() != 1 || first.RobotsFromCache() != 0 {
		t.Fatalf("first fetcher: robots.txt read %d times, %d from the cache", robots.Load(), first.RobotsFromCache())
	}
	origin := strings.TrimSuffix(at(""), "/")
	ttl, err := rdb.TTL(context.Background(), cache.Prefix+origin).Result()
	if err != nil || ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("shared copy's time to live %v %v, want at most a day (RFC 9309 2.4)", ttl, err)
	}

	second := client(t, dns, "shared.test", withCache)
	if _, err := second.Get(context.Background(), at("/about")); err != nil {
		t.Fatal(err)
	}
	_, err = second.Get(context.Background(), at("/private/x"))
	wantReason(t, err, fetch.ReasonRobots)
	if robots.Load() != 1 || second.RobotsFromCache() != 1 {
		t.Fatalf("second fetcher: robots.txt read from the site %d times in all, %d from the cache", robots.Load(), second.RobotsFromCache())
	}
	if pages.Load() != 2 {
		t.Fatalf("%d pages served, want 2 (the disallowed one is not asked)", pages.Load())
	}

	// Without the shared cache, a third fetcher asks the site again.
	if _, err := client(t, dns, "shared.test", nil).Get(context.Background(), at("/")); err != nil {
		t.Fatal(err)
	}
	if robots.Load() != 2 {
		t.Fatalf("robots.txt read %d times, want 2", robots.Load())
	}
}

// A 5xx or 429 robots.txt is not shared: the next fetcher asks again.
func TestAnUnreachableRobotsTxtIsNotShared(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var robots atomic.Int32
	at := site(t, dns, "flaky.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			if robots.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "User-agent: *\nAllow: /\n")
			return
		}
		fmt.Fprint(w, "ok")
	}))
	cache, _ := sharedRobots(t)
	withCache := func(c *fetch.Config) { c.Robots = cache }
	_, err := client(t, dns, "flaky.test", withCache).Get(context.Background(), at("/"))
	wantReason(t, err, fetch.ReasonUnreachable)
	second := client(t, dns, "flaky.test", withCache)
	if _, err := second.Get(context.Background(), at("/")); err != nil || robots.Load() != 2 || second.RobotsFromCache() != 0 {
		t.Fatalf("after a 503: %v, robots.txt read %d times, %d from the cache", err, robots.Load(), second.RobotsFromCache())
	}
}

// A huge robots.txt is cut at 512 KiB before it is shared.
func TestTheSharedRobotsTxtIsBounded(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	at := site(t, dns, "big.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			fmt.Fprint(w, "User-agent: *\nAllow: /\n"+strings.Repeat("# filler line\n", 100_000))
			return
		}
		fmt.Fprint(w, "ok")
	}))
	cache, _ := sharedRobots(t)
	if _, err := client(t, dns, "big.test", func(c *fetch.Config) { c.Robots = cache }).Get(context.Background(), at("/")); err != nil {
		t.Fatal(err)
	}
	f, ok, err := cache.Get(context.Background(), strings.TrimSuffix(at(""), "/"))
	if err != nil || !ok || len(f.Body) != 512<<10 || f.Status != 200 {
		t.Fatalf("shared copy: %d bytes, status %d, %v %v", len(f.Body), f.Status, ok, err)
	}
}
