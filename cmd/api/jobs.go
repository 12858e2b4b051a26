package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// accepted is the answer to every enqueue.
type accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
	EventsURL string `json:"events_url"`
	State     string `json:"state"`
}

// enqueue answers 202 for a task that needs no admission beyond
// jobs.Enqueuer.Enqueue (POST /v1/jobs). Routes whose family has its own
// admission (POST /v1/summaries: jobs.AdmitSummary) call it and answer
// with acceptedHeaders; both end in Enqueue.
func (s *server) enqueue(w http.ResponseWriter, r *http.Request, task jobs.Task) {
	job, replayed, err := s.enq.Enqueue(r.Context(), jobs.Request{
		OrgID: orgFrom(r.Context()).ID, UserID: userID(r), IdempotencyKey: r.Header.Get("Idempotency-Key"), Task: task,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedHeaders(w, job, replayed))
}

// acceptedHeaders sets the headers of a 202 and returns its body.
func acceptedHeaders(w http.ResponseWriter, job store.Job, replayed bool) accepted {
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return acceptedBody(job)
}

// acceptedBody is the body of a 202 for job.
func acceptedBody(job store.Job) accepted {
	status := "/v1/jobs/" + job.ID
	return accepted{JobID: job.ID, StatusURL: status, EventsURL: status + "/events", State: job.State}
}

func (s *server) createJob(w http.ResponseWriter, r *http.Request) {
	var body jobs.Generic
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	task, err := jobs.FromGeneric(orgFrom(r.Context()).ID, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.enqueue(w, r, task)
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.db.Job(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// jobEvents streams the job as server-sent events: one `job` event per
// change, until a final state, the client leaving, or maxStream.
func (s *server) jobEvents(w http.ResponseWriter, r *http.Request) {
	const (
		every     = 200 * time.Millisecond
		keepAlive = 15 * time.Second
		maxStream = 30 * time.Minute
	)
	ctx := r.Context()
	orgID := orgFrom(ctx).ID
	job, err := s.db.Job(ctx, orgID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(maxStream + time.Minute))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(j store.Job) error {
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: job\ndata: %s\n\n", j.UpdatedAt.UnixMicro(), b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(job) != nil || store.JobFinal(job.State) {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.Now().Add(maxStream)
	lastWrite := time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		next, err := s.db.Job(ctx, orgID, job.ID)
		if err != nil {
			return // the stream ends; the client reconnects or polls
		}
		if next.UpdatedAt.Equal(job.UpdatedAt) && next.State == job.State {
			if time.Since(lastWrite) > keepAlive {
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
				lastWrite = time.Now()
			}
			continue
		}
		job = next
		if send(job) != nil || store.JobFinal(job.State) {
			return
		}
		lastWrite = time.Now()
	}
}

// cancelJob stops a queued or running job of the caller's org: 200 with
// the cancelled job, 409 when it already ended.
func (s *server) cancelJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.enq.Cancel(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}
