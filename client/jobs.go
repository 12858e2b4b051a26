package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateRetrying  = "retrying"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Final tells whether a job in state will not change any more.
func Final(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCancelled
}

// Job is a job's status (GET /v1/jobs/{id}).
type Job struct {
	ID         string          `json:"id"`
	UserID     string          `json:"user_id,omitempty"`
	Type       string          `json:"type"`
	Queue      string          `json:"queue"`
	State      string          `json:"state"`
	Progress   int             `json:"progress"`
	Attempts   int             `json:"attempts"`
	MaxRetry   int             `json:"max_retry"`
	Requeues   int             `json:"requeues"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// Accepted is the 202 answer of every enqueue.
type Accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
	EventsURL string `json:"events_url"`
	State     string `json:"state"`
}

// Task is a task POST /v1/jobs takes: system:ping, orphans:recompute and
// segment:refresh.
type Task struct {
	Type      string `json:"type"`
	Queue     string `json:"queue,omitempty"`
	HoldMS    int    `json:"hold_ms,omitempty"`
	Technique string `json:"technique,omitempty"`
}

// Enqueue posts a task to POST /v1/jobs.
func (c *Client) Enqueue(ctx context.Context, t Task, opts ...RequestOption) (Accepted, error) {
	var a Accepted
	err := c.do(ctx, rEnqueue, nil, t, &a, opts...)
	return a, err
}

// Ping enqueues system:ping on queue (empty: critical), a no-op task that
// checks the pipeline end to end.
func (c *Client) Ping(ctx context.Context, queue string, opts ...RequestOption) (Accepted, error) {
	return c.Enqueue(ctx, Task{Type: "system:ping", Queue: queue}, opts...)
}

// RecomputeOrphans enqueues orphans:recompute for the org.
func (c *Client) RecomputeOrphans(ctx context.Context, opts ...RequestOption) (Accepted, error) {
	return c.Enqueue(ctx, Task{Type: "orphans:recompute"}, opts...)
}

// Job reads a job's status.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, rJob, []any{id}, nil, &j)
	return j, err
}

// Cancel asks for a job to be cancelled and returns its status.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, rCancel, []any{id}, nil, &j)
	return j, err
}

// WaitJob returns the job once it is final (succeeded, failed or
// cancelled), or the context's error. It follows the job's event stream
// (GET /v1/jobs/{id}/events); when the stream cannot be opened or ends
// early (a proxy that buffers or cuts it, the server's 30-minute cap) it
// polls GET /v1/jobs/{id} instead. A job that is not the org's is
// ErrNotFound at once.
func (c *Client) WaitJob(ctx context.Context, id string) (Job, error) {
	j, err := c.streamJob(ctx, id)
	switch {
	case err == nil:
		return j, nil
	case ctx.Err() != nil:
		return j, ctx.Err()
	case permanent(err):
		return j, err
	}
	return c.pollJob(ctx, id)
}

// permanent tells a 4xx that asking again will not change (a 429 will).
func permanent(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusTooManyRequests
}

// streamJob reads `job` events until one is final.
func (c *Client) streamJob(ctx context.Context, id string) (Job, error) {
	resp, err := c.send(ctx, rJobEvents, []any{id}, nil, "text/event-stream")
	if err != nil {
		return Job{}, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return Job{}, fmt.Errorf("crmq: events of job %s: content type %q, not an event stream", id, ct)
	}
	var last Job
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	event, data := "", strings.Builder{}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "": // the end of one event
			if event == "job" && data.Len() > 0 {
				var j Job
				if err := json.Unmarshal([]byte(data.String()), &j); err != nil {
					return last, fmt.Errorf("crmq: event of job %s: %w", id, err)
				}
				last = j
				if Final(j.State) {
					return j, nil
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"): // a comment: keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return last, fmt.Errorf("crmq: events of job %s: %w", id, err)
	}
	return last, fmt.Errorf("crmq: events of job %s ended before a final state", id)
}

// pollJob reads the job every poll interval until it is final; 429 and
// 503 are waited out (their Retry-After when given).
func (c *Client) pollJob(ctx context.Context, id string) (Job, error) {
	for {
		j, err := c.Job(ctx, id)
		wait := c.poll
		var p *Problem
		switch {
		case err == nil && Final(j.State):
			return j, nil
		case err == nil:
		case errors.As(err, &p) && p.Temporary():
			wait = max(wait, p.RetryAfter)
		case permanent(err):
			return j, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return j, ctx.Err()
		case <-t.C:
		}
	}
}
