package main

import (
	"os"
	"testing"
	"time"
)

// procCPU reads this very process's CPU from /proc, and grows with work.
func TestProcCPUReadsProc(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 50*time.Millisecond {
		t.Fatalf("150ms of spinning read as %s of CPU", after-before)
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
