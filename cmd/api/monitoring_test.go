package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// syncBuffer is a log sink the server writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// asynqmon's 500 names Redis' address; the client gets a generic 503
// problem and the log keeps the original.
func TestMonitoringWithRedisDownIsA503ThatHidesTheAddress(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	const addr = "127.0.0.1:1"
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", ReadOnly: true,
		RedisConnOpt: asynq.RedisClientOpt{Addr: addr, DialTimeout: 100 * time.Millisecond}})
	t.Cleanup(func() { mon.Close() })
	var logs syncBuffer
	e.s.log = slog.New(slog.NewTextHandler(&logs, nil))
	e.s.monitoring = mon
	e.rebuild(t)

	r := e.do(t, "GET", "/monitoring/api/queues", testAdminKey, "")
	if r.StatusCode != 503 || r.Header.Get("Content-Type") != "application/problem+json" {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("status %d %q, want a 503 problem; body %s", r.StatusCode, r.Header.Get("Content-Type"), b)
	}
	b, _ := io.ReadAll(r.Body)
	if strings.Contains(string(b), addr) || !strings.Contains(string(b), "Redis is unreachable") {
		t.Fatalf("body %s", b)
	}
	if !strings.Contains(logs.String(), addr) {
		t.Fatalf("the original answer is not in the log: %s", logs.String())
	}
	// The dashboard page itself needs no Redis.
	if r := e.do(t, "GET", "/monitoring/", testAdminKey, ""); r.StatusCode != 200 {
		t.Fatalf("dashboard page: %d", r.StatusCode)
	}
}
