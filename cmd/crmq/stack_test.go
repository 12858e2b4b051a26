package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// The api and worker binaries are built once per test binary from this
// module's sources and removed when the tests end.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if binDir, buildErr = os.MkdirTemp("", "crmq-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/api", "./cmd/worker")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

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
	addr := freeAddr(t)
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
	s.start(t, "worker")
}

// startAPI starts the api binary and waits until /readyz answers 200.
func (s *stack) startAPI(t *testing.T) {
	t.Helper()
	exited := s.start(t, "api")
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatal("api exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("api not ready within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs a built binary with the stack's environment. When the test
// ends it gets SIGTERM and, if it has not exited 15 s later, SIGKILL; its
// log is shown if the test failed.
func (s *stack) start(t *testing.T, name string) <-chan struct{} {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binaries(t), name))
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15s of SIGTERM; killed", name)
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log:\n%s", name, b)
			}
		}
	})
	return exited
}

// createOrg creates an org through the API, as an operator's script would,
// and returns its key.
func (s *stack) createOrg(t *testing.T, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.apiURL+"/v1/admin/orgs", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		APIKey string `json:"api_key"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil || out.APIKey == "" {
		t.Fatalf("create org: HTTP %d", resp.StatusCode)
	}
	return out.APIKey
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
