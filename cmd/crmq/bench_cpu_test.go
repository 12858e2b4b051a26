package main

import (
	"os"
	"syscall"
	"testing"
	"time"
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
