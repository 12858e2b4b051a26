// Package e2e builds the crmq binaries, runs api, worker and scheduler as
// processes against real Redis and Postgres, and drives them over HTTP the
// way a calling app does.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/client"
	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

const adminKey = "e2e-admin-key-0123456789abcdef"

func TestMain(m *testing.M) { stacktest.Main(m) }

// system is one crmq deployment: its database, Redis DB and processes.
type system struct {
	t      *testing.T
	db     *store.DB
	env    []string
	apiURL string
}

func newSystem(t *testing.T, extraEnv ...string) *system {
	t.Helper()
	_, dbURL := storetest.NewDB(t)
	return newSystemOn(t, dbURL, storetest.RedisURL(t), extraEnv...)
}

// newSystemOn runs against the given Postgres database and Redis.
func newSystemOn(t *testing.T, dbURL, redisURL string, extraEnv ...string) *system {
	t.Helper()
	bin := stacktest.Binaries(t)
	db, err := store.Open(context.Background(), dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	addr := stacktest.FreeAddr(t)
	return &system{
		t: t, db: db, apiURL: "http://" + addr,
		env: append(append(os.Environ(),
			"PATH="+bin+":"+os.Getenv("PATH"),
			"DATABASE_URL="+dbURL,
			"REDIS_URL="+redisURL,
			"HTTP_ADDR="+addr,
			"CRMQ_ADMIN_KEY="+adminKey,
			"CRMQ_POLL_INTERVAL=10ms",
			"CRMQ_LOG_FORMAT=text",
			"CRMQ_LOG_LEVEL=debug",
			"CRMQ_CRON_ORPHANS=", // off unless a test sets it
			"CRMQ_CRON_SUMMARY_PRUNE=",
			// A worker killed mid-export leaves its local bucket's
			// partial file in the temp dir: the test's, removed after it.
			"TMPDIR="+t.TempDir(),
		), extraEnv...),
	}
}

// start runs a binary with the system's env plus extra variables (the
// last value of a variable wins).
func (s *system) start(name string, extraEnv ...string) *stacktest.Proc {
	s.t.Helper()
	return stacktest.Start(s.t, name, append(append([]string{}, s.env...), extraEnv...))
}

// run runs the CLI to completion and returns its stdout.
func (s *system) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(stacktest.Binaries(s.t), "crmq"), args...)
	cmd.Env = s.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("crmq %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// startAPI starts the api and waits for /readyz.
func (s *system) startAPI() *stacktest.Proc {
	s.t.Helper()
	p := s.start("api")
	stacktest.WaitReady(s.t, p, s.apiURL, 20*time.Second)
	return p
}

// call sends a JSON request and decodes a JSON answer into out (if non-nil).
func (s *system) call(method, path, key string, body any, out any, hdr ...string) *http.Response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.apiURL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// newOrg creates an org over the admin API and returns its key.
func (s *system) newOrg(name string) string {
	s.t.Helper()
	return stacktest.CreateOrg(s.t, s.apiURL, adminKey, name)
}

type accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
}

// client is the Go client of the system's API with key, as an app uses it.
func (s *system) client(key string) *client.Client { return client.New(s.apiURL, key) }

// enqueue posts to POST /v1/jobs through the Go client and returns the job.
func (s *system) enqueue(key string, body map[string]any) accepted {
	s.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	var task client.Task
	if err := json.Unmarshal(raw, &task); err != nil {
		s.t.Fatal(err)
	}
	a, err := s.client(key).Enqueue(context.Background(), task)
	if err != nil {
		s.t.Fatalf("enqueue %v: %v", body, err)
	}
	return accepted{JobID: a.JobID, StatusURL: a.StatusURL}
}

// waitJob polls GET /v1/jobs/{id} until the state is one of want.
func (s *system) waitJob(key, id string, within time.Duration, want ...string) store.Job {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var j store.Job
	for time.Now().Before(deadline) {
		s.call("GET", "/v1/jobs/"+id, key, nil, &j)
		for _, w := range want {
			if j.State == w {
				return j
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("job %s is %q after %s, want one of %v", id, j.State, within, want)
	return j
}
