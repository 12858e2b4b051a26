package main

import (
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/store"
)

// POST /v1/jobs/{id}/cancel: a queued job ends cancelled and its task
// leaves the queue; cancelling again is 409 job-final; another org's job
// is 404.
func TestCancelJobRoute(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	a := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"low"}`))
	wantProblem(t, e.do(t, "POST", "/v1/jobs/"+a.JobID+"/cancel", e.keyB, ""), 404, "not-found")

	j := decode[store.Job](t, e.do(t, "POST", "/v1/jobs/"+a.JobID+"/cancel", e.keyA, ""))
	if j.State != store.JobCancelled || j.FinishedAt == nil || j.Error == nil {
		t.Fatalf("cancelled job: %+v", j)
	}
	insp := asynq.NewInspector(e.opt)
	defer insp.Close()
	if _, err := insp.GetTaskInfo("low", a.JobID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("task after cancel: %v, want gone from the queue", err)
	}
	wantProblem(t, e.do(t, "POST", "/v1/jobs/"+a.JobID+"/cancel", e.keyA, ""), 409, "job-final")
	if got := decode[store.Job](t, e.do(t, "GET", "/v1/jobs/"+a.JobID, e.keyA, "")); got.State != store.JobCancelled {
		t.Fatalf("GET after cancel: %+v", got)
	}
}
