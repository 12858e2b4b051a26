package main

import (
	"testing"
)

func TestContentTypeIsParsedNotPrefixMatched(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	for _, ct := range []string{"application/jsonfoo", "application/json-seq", "text/plain", "application/json;;"} {
		wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping"}`, "Content-Type", ct), 400, "unsupported-media-type")
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping"}`, "Content-Type", ct); r.StatusCode != 202 {
			t.Errorf("Content-Type %q: %d, want 202", ct, r.StatusCode)
		}
	}
}
