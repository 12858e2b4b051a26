package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// benchCRMQ drives system:ping through the running API as an app would:
// POST /v1/jobs, then GET /v1/jobs/{id} until it is final.
//
// Latency = POST round trip + (finished_at - created_at) of the job row.
// created_at is written during the POST and finished_at before the
// succeeded row is committed, both by Postgres' clock, so the sum is never
// less than the true POST start -> succeeded time, and exceeds it by at
// most the part of the POST after the insert. The status polls only learn
// that the job is done; their interval costs API load, not accuracy. What
// the polls saw is kept too ("observed"). A small fixed pool polls every
// started job in turn, so the polling load does not grow with the number
// of jobs in flight.
func benchCRMQ(ctx context.Context, bc benchConfig, api *apiDriver) (phaseResult, error) {
	var (
		p       = newPhase(bc.MaxInFlight)
		posts   sync.WaitGroup // POSTs running
		pollers sync.WaitGroup
		// Every flight in the queue holds a slot, so a send never blocks.
		queue = make(chan *flight, bc.MaxInFlight)
	)
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	for range bc.Pollers {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			api.poll(pollCtx, queue)
		}()
	}

	windowEnd := time.Now().Add(bc.Warmup + bc.Duration)
	sent, dropped, window := p.run(ctx, bc, func(f *flight) {
		posts.Add(1)
		go func() {
			defer posts.Done()
			id, err := api.post(ctx)
			if err != nil {
				f.end(sample{}, err)
				return
			}
			now := time.Now()
			f.id, f.posted, f.next = id, now.Sub(f.t0), now.Add(bc.PollEvery)
			if bc.DeferPolls && f.next.Before(windowEnd) {
				f.next = windowEnd
			}
			queue <- f
		}()
	})
	if bc.OnWindowEnd != nil {
		bc.OnWindowEnd()
	}
	// Pollers end each flight by its JobTimeout; ctx bounds the rest.
	err := p.settle(ctx)
	stopPolling()
	pollers.Wait()
	posts.Wait()
	for len(queue) > 0 {
		(<-queue).end(sample{}, errors.New("bench stopped before the job finished"))
	}
	p.pending.Wait()
	if err != nil {
		return phaseResult{}, err
	}
	r := p.t.result("crmq e2e", sent, dropped, window)
	r.StatusPolls = api.polls.Load()
	r.StartedAll = p.started
	return r, nil
}

// apiDriver speaks to the crmq API with one org key.
type apiDriver struct {
	base, key  string
	body       []byte
	every      time.Duration
	jobTimeout time.Duration
	http       *http.Client
	polls      atomic.Int64
}

func newAPIDriver(bc benchConfig) (*apiDriver, error) {
	u, err := url.Parse(bc.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want http(s)://host:port", bc.URL)
	}
	body, err := json.Marshal(jobs.Generic{Type: jobs.TypePing, Queue: bc.Queue})
	if err != nil {
		return nil, err
	}
	// Keep a connection per possible concurrent request, so the bench
	// measures crmq and not TCP handshakes.
	conns := bc.MaxInFlight + bc.Pollers
	return &apiDriver{
		base: bc.URL, key: bc.Key, body: body, every: bc.PollEvery, jobTimeout: bc.JobTimeout,
		http: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				MaxIdleConns:        conns,
				MaxIdleConnsPerHost: conns,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
		},
	}, nil
}

// post enqueues one ping and returns its job id.
func (a *apiDriver) post(ctx context.Context) (string, error) {
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := a.do(ctx, http.MethodPost, "/v1/jobs", a.body, http.StatusAccepted, &acc); err != nil {
		return "", err
	}
	if acc.JobID == "" {
		return "", errors.New("POST /v1/jobs: 202 without job_id")
	}
	return acc.JobID, nil
}

// jobStatus is the part of GET /v1/jobs/{id} the bench reads.
type jobStatus struct {
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// rowLatency is created_at -> finished_at, on Postgres' clock.
func (j jobStatus) rowLatency() (time.Duration, error) {
	if j.FinishedAt == nil || j.CreatedAt.IsZero() {
		return 0, fmt.Errorf("succeeded job without created_at and finished_at")
	}
	return j.FinishedAt.Sub(j.CreatedAt), nil
}

// status reads a job's status.
func (a *apiDriver) status(ctx context.Context, id string) (jobStatus, error) {
	a.polls.Add(1)
	var job jobStatus
	err := a.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, http.StatusOK, &job)
	return job, err
}

func (a *apiDriver) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	// Read to the end so the connection is reused.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(b, &p) != nil || p.Detail == "" {
			p.Detail = string(b[:min(len(b), 200)])
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, p.Detail)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// poll takes flights from the queue in turn, polls each when it is due
// and puts it back until it is final or too old.
func (a *apiDriver) poll(ctx context.Context, queue chan *flight) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var f *flight
		select {
		case <-ctx.Done():
			return
		case f = <-queue:
		}
		if wait := time.Until(f.next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				f.end(sample{}, ctx.Err())
				return
			case <-timer.C:
			}
		}
		job, err := a.status(ctx, f.id)
		observed := time.Since(f.t0)
		switch {
		case err != nil:
			f.end(sample{}, err)
		case job.State == store.JobSucceeded:
			row, err := job.rowLatency()
			s := sample{lat: f.posted + row, observed: observed}
			if err == nil && job.StartedAt != nil {
				s.parts = &[3]time.Duration{f.posted, job.StartedAt.Sub(job.CreatedAt), job.FinishedAt.Sub(*job.StartedAt)}
			}
			f.end(s, err)
		case store.JobFinal(job.State):
			f.end(sample{}, fmt.Errorf("job %s ended %s", f.id, job.State))
		case observed > a.jobTimeout:
			f.end(sample{}, fmt.Errorf("job %s still %s after %s", f.id, job.State, a.jobTimeout))
		default:
			f.next = time.Now().Add(a.every)
			queue <- f
		}
	}
}

// preflight sends one ping and waits for it, so a wrong key, a stopped
// API or a missing worker fails the run at once with a clear reason, and
// the connections are warm before measuring.
func (a *apiDriver) preflight(ctx context.Context) error {
	id, err := a.post(ctx)
	if err != nil {
		return fmt.Errorf("%w (is the api running at %s, and is the key an org key?)", err, a.base)
	}
	deadline := time.Now().Add(min(a.jobTimeout, 20*time.Second))
	for {
		job, err := a.status(ctx, id)
		switch {
		case err != nil:
			return err
		case job.State == store.JobSucceeded:
			_, err := job.rowLatency()
			return err
		case store.JobFinal(job.State):
			return fmt.Errorf("ping job %s ended %s", id, job.State)
		case time.Now().After(deadline):
			return fmt.Errorf("ping job %s still %s after %s (is a worker running on the same REDIS_URL?)",
				id, job.State, min(a.jobTimeout, 20*time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
