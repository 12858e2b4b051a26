package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// A client that sends the ETag back gets 304 and no body while the job has
// not changed, and 200 with the new state once it has; reads of a job the
// API holds cost no query.
func TestJobStatusETagAnd304(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	ctx := e.watchJobs(t)
	acc := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"low"}`))

	first := e.do(t, "GET", acc.StatusURL, e.keyA, "")
	tag := first.Header.Get("ETag")
	if first.StatusCode != 200 || tag == "" || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET: %d, ETag %q, Cache-Control %q", first.StatusCode, tag, first.Header.Get("Cache-Control"))
	}
	if j := decode[store.Job](t, first); j.State != store.JobQueued {
		t.Fatalf("state %s", j.State)
	}
	for _, inm := range []string{tag, `"other", ` + tag, "*"} {
		r := e.do(t, "GET", acc.StatusURL, e.keyA, "", "If-None-Match", inm)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusNotModified || len(body) != 0 || r.Header.Get("ETag") != tag {
			t.Fatalf("If-None-Match %s: %d, body %q, ETag %q; want 304, empty, the same tag", inm, r.StatusCode, body, r.Header.Get("ETag"))
		}
	}
	if r := e.do(t, "GET", acc.StatusURL, e.keyA, "", "If-None-Match", `W/"nope"`); r.StatusCode != 200 {
		t.Fatalf("a tag that does not match: %d, want 200", r.StatusCode)
	}
	if r := e.do(t, "GET", acc.StatusURL, e.keyB, "", "If-None-Match", tag); r.StatusCode != 404 {
		t.Fatalf("another org's key with the tag: %d, want 404", r.StatusCode)
	}
	hits, _ := e.db.JobCacheStats()
	if hits < 5 {
		t.Fatalf("%d status reads served from memory, want the 5 above", hits)
	}

	// A worker (another connection) starts the job: the old tag no longer matches.
	worker := otherHandle(t, e)
	if _, err := worker.StartJob(ctx, acc.JobID, 1, "run-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do(t, "GET", acc.StatusURL, e.keyA, "", "If-None-Match", tag)
		if r.StatusCode == 200 {
			j := decode[store.Job](t, r)
			if j.State != store.JobRunning || r.Header.Get("ETag") == tag {
				t.Fatalf("after the start: state %s, ETag %q (old %q)", j.State, r.Header.Get("ETag"), tag)
			}
			break
		}
		if r.StatusCode != 304 || time.Now().After(deadline) {
			t.Fatalf("after the start: %d, want 200 within 5s", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With the job watch on, the events stream is woken by the row's
// notifications, not by its 5 s safety re-read: each change arrives well
// within that, and the final state ends the stream.
func TestEventsFollowNotifications(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	ctx := e.watchJobs(t)
	acc := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"low"}`))
	req, _ := http.NewRequest("GET", e.srv.URL+acc.EventsURL, nil)
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: ")); ok {
				var j store.Job
				if json.Unmarshal(data, &j) == nil {
					events <- j.State
				}
			}
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("event %s, want %s", got, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no %s event within 3s (the safety re-read comes only after 5s)", want)
		}
	}
	next(store.JobQueued)
	worker := otherHandle(t, e)
	if _, err := worker.StartJob(ctx, acc.JobID, 1, "run-1"); err != nil {
		t.Fatal(err)
	}
	next(store.JobRunning)
	if err := worker.FinishJob(ctx, acc.JobID, "run-1", store.JobSucceeded, []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	next(store.JobSucceeded)
	select {
	case _, open := <-events:
		if open {
			t.Fatal("an event after the final state")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the stream did not end after the final state")
	}
}

func TestETagMatching(t *testing.T) {
	tag := `W/"abc"`
	for header, want := range map[string]bool{
		``: false, `W/"abc"`: true, `"abc"`: true, `"x", W/"abc"`: true, `*`: true, `W/"abcd"`: false, `"ab"`: false,
	} {
		if got := etagMatches(header, tag); got != want {
			t.Errorf("etagMatches(%q) = %v, want %v", header, got, want)
		}
	}
}

// otherHandle is a second connection pool to the test's database, as a
// worker process has.
func otherHandle(t *testing.T, e *apiEnv) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), e.dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// watchJobs makes the API's store follow job notifications (as the api
// process does) until the test ends; it returns the watch's context.
func (e *apiEnv) watchJobs(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.db.WatchJobs(ctx, e.dbURL, quiet); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// Status polls that succeed are logged at debug level only; every other
// request, and a poll that fails, keeps its info line.
func TestSucceededPollsAreNotLoggedAtInfo(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	var logs syncBuffer
	e.s.log = slog.New(slog.NewJSONHandler(&logs, nil))
	e.rebuild(t)
	acc := decode[accepted](t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"low"}`))
	for range 3 {
		if r := e.do(t, "GET", acc.StatusURL, e.keyA, ""); r.StatusCode != 200 {
			t.Fatalf("poll: %d", r.StatusCode)
		}
	}
	if r := e.do(t, "GET", acc.StatusURL, e.keyB, ""); r.StatusCode != 404 {
		t.Fatalf("another org's poll: %d", r.StatusCode)
	}
	lines := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var l struct {
			Msg       string `json:"msg"`
			Level     string `json:"level"`
			Method    string `json:"method"`
			Path      string `json:"path"`
			Route     string `json:"route"`
			Status    int    `json:"status"`
			Duration  int64  `json:"duration"`
			RequestID string `json:"request_id"`
			OrgID     int64  `json:"org_id"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Msg == "http" {
			lines[fmt.Sprintf("%s %d", l.Route, l.Status)]++
			if l.Status == 202 && (l.Level != "INFO" || l.Method != "POST" || l.Path != "/v1/jobs" || l.Duration <= 0 || l.RequestID == "" || l.OrgID == 0) {
				t.Errorf("access log line of the POST lacks a field: %s", line)
			}
		}
	}
	want := map[string]int{"POST /v1/jobs 202": 1, "GET /v1/jobs/{id} 404": 1}
	if !maps.Equal(lines, want) {
		t.Fatalf("access log lines %v, want %v", lines, want)
	}
}
