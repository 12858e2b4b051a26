package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
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

// getJob answers a status read. With the job watch on (the API process
// listens to the jobs_notify trigger) the row usually comes from memory,
// not Postgres. The ETag changes with every change of the row; a client
// that sends it back in If-None-Match gets 304 and no body while nothing
// changed.
func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.db.Job(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tag := jobETag(job)
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// jobETag is a weak validator of what GET /v1/jobs/{id} shows: every write
// of a job row sets updated_at, and the state, progress, attempts and
// requeues tell apart two writes within one microsecond.
func jobETag(j store.Job) string {
	h := fnv.New64a()
	b := make([]byte, 0, 96)
	b = append(b, j.ID...)
	for _, n := range []int64{j.UpdatedAt.UnixMicro(), int64(j.Progress), int64(j.Attempts), int64(j.Requeues)} {
		b = append(b, '|')
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, '|')
	b = append(b, j.State...)
	_, _ = h.Write(b)
	return `W/"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 section
// 13.1.2): any listed tag, or *, equal to tag once W/ is set aside.
func etagMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	opaque := strings.TrimPrefix(tag, "W/")
	for c := range strings.SplitSeq(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == opaque {
			return true
		}
	}
	return false
}

// jobEvents streams the job as server-sent events: one `job` event per
// change, until a final state, the client leaving, or maxStream. With the
// job watch on, a change wakes the stream (LISTEN/NOTIFY through the one
// connection the process holds), and the row usually comes from memory;
// a stream re-reads every safetyEvery anyway. Without it, it polls every
// pollEvery.
func (s *server) jobEvents(w http.ResponseWriter, r *http.Request) {
	const (
		pollEvery   = 200 * time.Millisecond
		safetyEvery = 5 * time.Second
		keepAlive   = 15 * time.Second
		maxStream   = 30 * time.Minute
	)
	ctx := r.Context()
	orgID := orgFrom(ctx).ID
	// Subscribe before the first read, so no change falls between the two.
	changes, stop, watched := s.db.JobChanges(r.PathValue("id"))
	defer stop()
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
	every := pollEvery
	if watched {
		every = safetyEvery
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
		case <-changes:
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
