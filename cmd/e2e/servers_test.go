package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/stacktest"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// privateRedis is a redis-server of the test's own, so the test may stop
// and restart it without touching the Redis other packages use.
type privateRedis struct {
	t    *testing.T
	dir  string
	port string
}

func newPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	r := &privateRedis{t: t, dir: t.TempDir(), port: freePort(t)}
	r.start()
	t.Cleanup(func() { _ = exec.Command("redis-cli", "-p", r.port, "shutdown", "nosave").Run() })
	return r
}

func (r *privateRedis) url() string { return "redis://127.0.0.1:" + r.port + "/0" }

func (r *privateRedis) start() {
	r.t.Helper()
	out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", r.port,
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(r.dir, "redis.log")).CombinedOutput()
	if err != nil {
		r.t.Fatalf("redis-server: %v %s", err, out)
	}
	waitFor(r.t, 10*time.Second, func() bool {
		out, _ := exec.Command("redis-cli", "-p", r.port, "ping").Output()
		return strings.TrimSpace(string(out)) == "PONG"
	})
}

// restart shuts Redis down cleanly (the AOF keeps every accepted task),
// stays down for `down`, and starts it again on the same port and data.
func (r *privateRedis) restart(down time.Duration, whileDown func()) {
	r.t.Helper()
	_ = exec.Command("redis-cli", "-p", r.port, "shutdown").Run()
	waitFor(r.t, 10*time.Second, func() bool { return exec.Command("redis-cli", "-p", r.port, "ping").Run() != nil })
	if whileDown != nil {
		whileDown()
	}
	time.Sleep(down)
	r.start()
}

// privatePostgres is a PostgreSQL cluster of the test's own (initdb, trust
// auth, run as the postgres user when the test runs as root), so the test
// may stop it.
type privatePostgres struct {
	t         *testing.T
	bin, data string
	port      string
}

func newPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("no PostgreSQL server binaries (make test installs them)")
	}
	dir, err := os.MkdirTemp("", "crmq-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePostgres{t: t, bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(dir, "data"), port: freePort(t)}
	_ = os.Chmod(dir, 0o777)
	p.as("mkdir -p " + p.data + " && " + p.bin + "/initdb -D " + p.data + " -U postgres --auth=trust -E UTF8 >/dev/null")
	p.start()
	t.Cleanup(func() {
		p.as(p.bin + "/pg_ctl -D " + p.data + " stop -m immediate >/dev/null 2>&1 || true")
		_ = os.RemoveAll(dir)
	})
	return p
}

// as runs a shell command as the postgres user when root (Postgres refuses
// to run as root).
func (p *privatePostgres) as(cmd string) {
	p.t.Helper()
	var c *exec.Cmd
	if u, _ := user.Current(); u != nil && u.Uid == "0" {
		c = exec.Command("su", "postgres", "-s", "/bin/sh", "-c", cmd)
	} else {
		c = exec.Command("sh", "-c", cmd)
	}
	if out, err := c.CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

func (p *privatePostgres) url() string {
	return "postgres://postgres@127.0.0.1:" + p.port + "/postgres?sslmode=disable"
}

func (p *privatePostgres) start() {
	p.t.Helper()
	p.as(fmt.Sprintf("%s/pg_ctl -D %s -l %s/log -w -t 30 -o \"-p %s -c listen_addresses=127.0.0.1 -k %s -c fsync=off\" start >/dev/null",
		p.bin, p.data, p.data, p.port, p.data))
}

func (p *privatePostgres) stop() {
	p.t.Helper()
	p.as(p.bin + "/pg_ctl -D " + p.data + " stop -m fast >/dev/null")
}

// migrate applies crmq's migrations to the private cluster.
func (p *privatePostgres) migrate() {
	p.t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, p.url(), 2)
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	if err := store.Migrate(ctx, db.DB.DB); err != nil {
		p.t.Fatal(err)
	}
}

func waitFor(t *testing.T, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s", within)
}

func newTestDB(t *testing.T) (*store.DB, string) { return storetest.NewDB(t) }

func newTestRedis(t *testing.T) string { return storetest.RedisURL(t) }

// freePort returns a free loopback port number.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(stacktest.FreeAddr(t))
	return port
}
