// Package e2e builds the crmq binaries, runs api, worker and scheduler as
// processes against real Redis and Postgres, and drives them over HTTP the
// way a calling app does.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

const adminKey = "e2e-admin-key-0123456789abcdef"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds ./cmd/... once per test binary run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "crmq-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/api", "./cmd/worker", "./cmd/scheduler", "./cmd/crmq")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// system is one crmq deployment: its database, Redis DB and processes.
type system struct {
	t        *testing.T
	db       *store.DB
	env      []string
	apiURL   string
	logDir   string
	mu       sync.Mutex
	procs    []*proc
	startIdx int
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func newSystem(t *testing.T, extraEnv ...string) *system {
	t.Helper()
	_, dbURL := storetest.NewDB(t)
	return newSystemOn(t, dbURL, storetest.RedisURL(t), extraEnv...)
}

// newSystemOn runs against the given Postgres database and Redis.
func newSystemOn(t *testing.T, dbURL, redisURL string, extraEnv ...string) *system {
	t.Helper()
	bin := binaries(t)
	db, err := store.Open(context.Background(), dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	port := freePort(t)
	s := &system{
		t: t, db: db, logDir: t.TempDir(),
		apiURL: "http://127.0.0.1:" + port,
		env: append([]string{
			"PATH=" + bin + ":" + os.Getenv("PATH"),
			"DATABASE_URL=" + dbURL,
			"REDIS_URL=" + redisURL,
			"HTTP_ADDR=127.0.0.1:" + port,
			"CRMQ_ADMIN_KEY=" + adminKey,
			"CRMQ_POLL_INTERVAL=10ms",
			"CRMQ_LOG_FORMAT=text",
			"CRMQ_LOG_LEVEL=debug",
			"CRMQ_CRON_ORPHANS=", // off unless a test sets it
			"CRMQ_CRON_SUMMARY_PRUNE=",
		}, extraEnv...),
	}
	t.Cleanup(s.stopAll)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
	})
	return s
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// start runs a binary with the system's env plus extra variables.
func (s *system) start(name string, extraEnv ...string) *proc {
	s.t.Helper()
	s.mu.Lock()
	s.startIdx++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("%02d-%s.log", s.startIdx, name))
	s.mu.Unlock()
	logFile, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = append(append(os.Environ(), s.env...), extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logFile.Close(); close(p.done) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p
}

// run runs the CLI to completion and returns its stdout.
func (s *system) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "crmq"), args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("crmq %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// startAPI starts the api and waits for /readyz.
func (s *system) startAPI() *proc {
	s.t.Helper()
	p := s.start("api")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			s.t.Fatalf("api exited: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatal("api never became ready")
	return nil
}

// terminate sends SIGTERM and waits for the process to exit.
func (p *proc) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s did not exit within %s of SIGTERM", p.name, within)
	}
}

func (s *system) stopAll() {
	s.mu.Lock()
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
}

func (s *system) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(s.logDir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		s.t.Logf("==== %s ====\n%s", filepath.Base(f), b)
	}
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
	var out struct {
		APIKey string `json:"api_key"`
	}
	if r := s.call("POST", "/v1/admin/orgs", adminKey, map[string]string{"name": name}, &out); r.StatusCode != 201 {
		s.t.Fatalf("create org: %d", r.StatusCode)
	}
	return out.APIKey
}

type accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
}

// enqueue posts to POST /v1/jobs and returns the job id.
func (s *system) enqueue(key string, body map[string]any) accepted {
	s.t.Helper()
	var a accepted
	if r := s.call("POST", "/v1/jobs", key, body, &a); r.StatusCode != 202 {
		b, _ := io.ReadAll(r.Body)
		s.t.Fatalf("enqueue %v: %d %s", body, r.StatusCode, b)
	}
	return a
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
