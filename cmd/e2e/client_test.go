package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmq/crmq/client"
)

// An app uses the Go client against the running processes: it enqueues a
// ping and a summary, waits for each on the event stream, waits again
// through a proxy that cuts event streams (the client falls back to
// polling), and reads typed errors for bad input and unknown jobs.
func TestGoClientAgainstTheStack(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	key := s.newOrg("go-client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.client(key)

	a, err := c.Ping(ctx, "default", client.IdempotencyKey("ping-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Ping(ctx, "default", client.IdempotencyKey("ping-1"))
	if err != nil || again.JobID != a.JobID {
		t.Fatalf("the same idempotency key gave job %q (%v), want %q", again.JobID, err, a.JobID)
	}
	j, err := c.WaitJob(ctx, a.JobID)
	if err != nil || j.State != client.StateSucceeded || j.Type != "system:ping" || len(j.Result) == 0 {
		t.Fatalf("ping: %+v %v", j, err)
	}

	// A proxy in front of the API that answers 502 to event streams.
	api, _ := url.Parse(s.apiURL)
	var streams, polls atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(api)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			streams.Add(1)
			http.Error(w, "streams are not proxied", http.StatusBadGateway)
			return
		}
		if r.Method == "GET" {
			polls.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	viaProxy := client.New(proxy.URL, key, client.WithPollInterval(50*time.Millisecond))
	b, err := viaProxy.Ping(ctx, "low")
	if err != nil {
		t.Fatal(err)
	}
	j, err = viaProxy.WaitJob(ctx, b.JobID)
	if err != nil || j.State != client.StateSucceeded || streams.Load() != 1 || polls.Load() == 0 {
		t.Fatalf("through the proxy: %+v %v (%d streams, %d polls)", j, err, streams.Load(), polls.Load())
	}

	// The summary family: a record, its summary, the summary read back.
	s.call("PUT", "/v1/modules/accounts/records", key, []map[string]any{{"external_id": "acc-1", "name": "Acme", "industry": "Logistics"}}, nil)
	s.call("PUT", "/v1/modules/contacts/records", key, []map[string]any{{"external_id": "c-1", "first_name": "Ada", "last_name": "Stone", "account": "acc-1"}}, nil)
	sa, err := c.Summarize(ctx, client.SummaryRequest{Module: "accounts", RecordID: "acc-1"}, client.User("user-1"))
	if err != nil || !sa.Counted || sa.Usage.Used != 1 {
		t.Fatalf("summarize: %+v %v", sa, err)
	}
	if j, err = c.WaitJob(ctx, sa.JobID); err != nil || j.State != client.StateSucceeded {
		t.Fatalf("summary job: %+v %v", j, err)
	}

	// Typed errors.
	_, err = c.Summarize(ctx, client.SummaryRequest{Module: "nonsense", RecordID: "x"}, client.User("user-1"))
	var p *client.Problem
	if !errors.As(err, &p) || !errors.Is(err, client.ErrInvalid) || p.Errors["module"] == "" {
		t.Fatalf("bad module: %#v", err)
	}
	if _, err := c.WaitJob(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an unknown job: %v", err)
	}
	if _, err := client.New(s.apiURL, "not-a-key").Ping(ctx, ""); !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong key: %v", err)
	}
}
