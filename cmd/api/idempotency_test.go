package main

import (
	"testing"
)

// The acting user is part of what an Idempotency-Key replay must match.
func TestIdempotencyKeyReplayChecksTheUser(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	body := `{"type":"system:ping"}`
	first := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k1", "X-User-ID", "user-1"))
	wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k1", "X-User-ID", "user-2"), 422, "idempotency-mismatch")
	wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k1"), 422, "idempotency-mismatch")
	r := e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k1", "X-User-ID", "user-1")
	if again := decode[accepted](t, r); again.JobID != first.JobID || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the same user's retry got %s (replayed %q), want %s", again.JobID, r.Header.Get("Idempotent-Replayed"), first.JobID)
	}
	// Without a user on the first request, a retry without one replays.
	anon := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k2"))
	wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k2", "X-User-ID", "user-1"), 422, "idempotency-mismatch")
	if again := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, body, "Idempotency-Key", "k2")); again.JobID != anon.JobID {
		t.Fatalf("anonymous retry got %s, want %s", again.JobID, anon.JobID)
	}
}
