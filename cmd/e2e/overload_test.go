package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/client"
)

// Overload: one client sends 5,000 enqueues as fast as it can (64 requests
// in flight) at an API with one worker. Every answer is 202 or a
// documented 503 (with Retry-After); no other 5xx. Every accepted job ends
// succeeded, once. The POST latency percentiles are logged for
// docs/RELIABILITY.md.
func TestOverloadAnswersEveryEnqueue(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 enqueues")
	}
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	key := s.newOrg("overload")
	c := client.New(s.apiURL, key, client.WithHTTPClient(&http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}))
	ctx := context.Background()

	const total, inflight = 5000, 64
	var (
		mu        sync.Mutex
		ids       []string
		latencies []time.Duration
		unavail   int
		other     = map[string]int{}
	)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				t0 := time.Now()
				a, err := c.Ping(ctx, "default")
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				var p *client.Problem
				switch {
				case err == nil:
					ids = append(ids, a.JobID)
				case errors.As(err, &p) && p.Status == http.StatusServiceUnavailable:
					unavail++
				default:
					other[err.Error()]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	t.Logf("overload: %d POSTs in %s (%.0f/s), %d accepted, %d answered 503, other %v; POST p50 %s p99 %s max %s",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), len(ids), unavail, other,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	if len(other) > 0 {
		t.Fatalf("answers other than 202 and 503: %v", other)
	}

	settled := time.Now()
	waitFor(t, 5*time.Minute, func() bool {
		var open int
		err := s.db.GetContext(ctx, &open, `SELECT count(*) FROM jobs WHERE id = ANY($1) AND state NOT IN ('succeeded', 'failed', 'cancelled')`, pq.StringArray(ids))
		return err == nil && open == 0
	})
	var succeededOnce, rows int
	if err := s.db.GetContext(ctx, &succeededOnce, `SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'succeeded' AND attempts = 1`, pq.StringArray(ids)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.GetContext(ctx, &rows, `SELECT count(*) FROM jobs`); err != nil {
		t.Fatal(err)
	}
	t.Logf("overload: all %d accepted jobs final %s after the last POST", len(ids), time.Since(settled).Round(time.Second))
	if succeededOnce != len(ids) || rows != len(ids) {
		t.Fatalf("%d of %d accepted jobs succeeded on their first attempt; %d job rows", succeededOnce, len(ids), rows)
	}
}
