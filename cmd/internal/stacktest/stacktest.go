// Package stacktest runs crmq's real binaries for tests: it builds them
// once per test binary, starts them as processes with their logs kept,
// stops them with SIGTERM when the test ends, and shows their logs when
// it failed.
package stacktest

import (
	"bytes"
	"context"
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
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds api, worker, scheduler and crmq once per test binary and
// returns the folder holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "crmq-test-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
			"./cmd/api", "./cmd/worker", "./cmd/scheduler", "./cmd/crmq")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Main runs the tests and removes the built binaries; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Proc is one running binary.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Done    chan struct{} // closed when it exited
	Err     error         // its exit error, once Done is closed
	logPath string
}

// Start runs a built binary with exactly env. When the test ends it gets
// SIGTERM and, 15 s later, SIGKILL; its log is shown if the test failed.
func Start(t testing.TB, name string, env []string) *Proc {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(Binaries(t), name))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Done: make(chan struct{}), logPath: logFile.Name()}
	go func() { p.Err = cmd.Wait(); logFile.Close(); close(p.Done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.Done:
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15s of SIGTERM; killed", name)
			_ = cmd.Process.Kill()
			<-p.Done
		}
		if t.Failed() {
			p.showLog(t)
		}
	})
	return p
}

func (p *Proc) showLog(t testing.TB) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	t.Logf("==== %s log ====\n%s", p.Name, b)
}

// Terminate sends SIGTERM and waits for the process to exit.
func (p *Proc) Terminate(t testing.TB, within time.Duration) {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(within):
		_ = p.Cmd.Process.Kill()
		t.Fatalf("%s did not exit within %s of SIGTERM", p.Name, within)
	}
}

// WaitReady waits until baseURL/readyz answers 200, failing the test if
// the process exits first or within passes.
func WaitReady(t testing.TB, p *Proc, baseURL string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(baseURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.Done:
			t.Fatalf("%s exited before it was ready: %v", p.Name, p.Err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready within %s", p.Name, within)
}

// CreateOrg creates an org through the admin API and returns its key.
func CreateOrg(t testing.TB, baseURL, adminKey, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, baseURL+"/v1/admin/orgs", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
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
		t.Fatalf("create org %s: HTTP %d", name, resp.StatusCode)
	}
	return out.APIKey
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
