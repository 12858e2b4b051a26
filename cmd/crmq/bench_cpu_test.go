package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/store/storetest"
)

// procCPU reads this very process's CPU from /proc, and grows with work.
func TestProcCPUReadsProc(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel's own account (getrusage) says this process
	// used 200ms more CPU, however long that takes on a loaded machine,
	// then compare with what /proc says (clock ticks of 10ms).
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	for deadline := time.Now().Add(time.Minute); used()-start < 200*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("no 200ms of CPU within a minute")
		}
	}
	spun := used() - start
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < spun/2 || got > 2*spun+50*time.Millisecond {
		t.Fatalf("%s of CPU by getrusage read from /proc as %s", spun, got)
	}
	if _, err := procCPU(0); err == nil {
		t.Fatal("pid 0 read")
	}
	if got := perThousand(map[string]time.Duration{"a": time.Second}, map[string]time.Duration{"a": 3 * time.Second}, 500); got["a"] != 4 {
		t.Fatalf("2 s for 500 jobs = %v s per 1,000, want 4", got["a"])
	}
	if _, err := parseCPUProcs("api=1,worker"); err == nil {
		t.Fatal("a name without a pid was accepted")
	}
}

// The host's steal share comes from /proc/stat: its total moves with the
// clock, and the share is steal over everything between two readings.
func TestStealShareOfTheHost(t *testing.T) {
	before := readHostTimes()
	if before.total <= 0 || before.steal < 0 || before.steal > before.total {
		t.Fatalf("/proc/stat read as %+v", before)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice
	if h := parseHostTimes("cpu  624500 137 203608 2896770 4043 0 30995 23428 7 0"); h != (hostTimes{total: 3783481, steal: 23428}) {
		t.Fatalf("a /proc/stat line read as %+v", h)
	}
	if got := stealPct(hostTimes{total: 1000, steal: 10}, hostTimes{total: 1800, steal: 210}); got != 25 {
		t.Fatalf("steal of 200 ticks in 800: %v%%, want 25%%", got)
	}
	if got := stealPct(hostTimes{}, hostTimes{total: 100, steal: 5}); got != -1 {
		t.Fatalf("steal with no first reading: %v, want -1 (unknown)", got)
	}
	if n := stealNote(phaseResult{StealPct: 2}, phaseResult{StealPct: 12.5}); !strings.Contains(n, "12.5%") {
		t.Fatalf("note for a phase with 12.5%% steal: %q", n)
	}
	if n := stealNote(phaseResult{StealPct: 1}, phaseResult{StealPct: -1}); n != "" {
		t.Fatalf("note for a quiet machine: %q", n)
	}
}

// redisSaves counts a background save when Redis starts one, and the
// note names the phases that had one.
func TestRedisSavesCountsABackgroundRewrite(t *testing.T) {
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := t.Context()
	before, _, ok := redisSaves(ctx, rdb)
	if !ok {
		t.Fatal("INFO persistence not read")
	}
	// One may be under way already (AOF rewrites start by themselves):
	// then it has been counted, and asking for another waits for it.
	for deadline := time.Now().Add(time.Minute); ; {
		err := rdb.BgRewriteAOF(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "in progress") {
			t.Fatalf("BGREWRITEAOF: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, _, ok := redisSaves(ctx, rdb)
	if !ok || after < before+1 {
		t.Fatalf("saves started: %d before a rewrite, %d after (read %v)", before, after, ok)
	}
	n := redisSaveNote(savedIn(phaseResult{Name: "raw asynq", RedisSaves: 0}, phaseResult{Name: "crmq", RedisSaves: 1}))
	if !strings.Contains(n, "during the crmq phase:") || strings.Contains(n, "raw") {
		t.Errorf("note %q should name the crmq phase alone", n)
	}
	if redisSaveNote(savedIn(phaseResult{RedisSaves: -1}, phaseResult{})) != "" {
		t.Error("a note without a save")
	}
}
