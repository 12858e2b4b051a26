package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// stack is a test's own database, Redis DB and, if asked, a running worker
// and api. The CLI under test reads the same settings from the environment.
type stack struct {
	db                      *store.DB
	dbURL, redisURL, apiURL string
	adminKey                string
	env                     []string
}

// newStack sets DATABASE_URL, REDIS_URL, HTTP_ADDR, CRMQ_POLL_INTERVAL and
// CRMQ_LOG_LEVEL for the test (t.Setenv), so the test cannot run in parallel.
func newStack(t *testing.T) *stack {
	t.Helper()
	db, dbURL := storetest.NewDB(t)
	redisURL := storetest.RedisURL(t)
	addr := stacktest.FreeAddr(t)
	s := &stack{db: db, dbURL: dbURL, redisURL: redisURL, apiURL: "http://" + addr, adminKey: randomHex(16)}
	vars := [][2]string{
		{"DATABASE_URL", dbURL},
		{"REDIS_URL", redisURL},
		{"HTTP_ADDR", addr},
		{"CRMQ_ADMIN_KEY", s.adminKey},
		{"CRMQ_POLL_INTERVAL", "10ms"},
		{"CRMQ_LOG_LEVEL", "warn"},
		{"CRMQ_SHUTDOWN_TIMEOUT", "5s"},
	}
	s.env = os.Environ()
	for _, v := range vars {
		t.Setenv(v[0], v[1])
		s.env = append(s.env, v[0]+"="+v[1])
	}
	return s
}

// startWorker starts the worker binary; it is stopped when the test ends.
func (s *stack) startWorker(t *testing.T) {
	t.Helper()
	stacktest.Start(t, "worker", s.env)
}

// startAPI starts the api binary and waits until /readyz answers 200.
func (s *stack) startAPI(t *testing.T) {
	t.Helper()
	stacktest.WaitReady(t, stacktest.Start(t, "api", s.env), s.apiURL, 30*time.Second)
}

// createOrg creates an org through the API, as an operator's script would,
// and returns its key.
func (s *stack) createOrg(t *testing.T, name string) string {
	t.Helper()
	return stacktest.CreateOrg(t, s.apiURL, s.adminKey, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// crmq runs the CLI in-process and returns its exit code and output.
func crmq(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}
