package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/crmq/crmq/cmd/internal/stacktest"
)

// bench capacity --short against the real binaries: every step runs both
// phases to the end, CPU is charged to the named processes, and the
// enqueue comparison counts both sides. (Latency goals are for a quiet
// machine, not for a test.)
func TestBenchCapacityShortRun(t *testing.T) {
	s := newStack(t)
	worker := stacktest.Start(t, "worker", s.env)
	api := stacktest.Start(t, "api", s.env)
	stacktest.WaitReady(t, api, s.apiURL, 30*time.Second)
	key := s.createOrg(t, "bench")

	t.Setenv("CRMQ_BENCH_KEY", key)
	cpu := fmt.Sprintf("api=%d,worker=%d", api.Cmd.Process.Pid, worker.Cmd.Process.Pid)
	code, stdout, stderr := crmq(t, "bench", "capacity", "--url", s.apiURL, "--short", "--stop-after", "2", "--cpu", cpu, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout %s", code, stderr, stdout)
	}
	var rep capacityReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if len(rep.Steps) != 2 || rep.Steps[0].Rate != 50 || rep.Steps[1].Rate != 100 {
		t.Fatalf("steps %+v, want 50 and 100/s", rep.Steps)
	}
	for _, st := range rep.Steps {
		for _, p := range []phaseResult{st.Raw, st.CRMQ} {
			if p.Sent != st.Rate || p.Count != p.Sent || p.Errors+p.Dropped != 0 || p.P99MS <= 0 {
				t.Errorf("%d/s %s: sent %d, count %d, errors %d, dropped %d, p99 %.1f (first error %q)",
					st.Rate, p.Name, p.Sent, p.Count, p.Errors, p.Dropped, p.P99MS, p.FirstError)
			}
		}
		if st.CRMQ.StartedAll <= st.CRMQ.Sent {
			t.Errorf("%d/s: %d jobs started with the warm-up, %d measured", st.Rate, st.CRMQ.StartedAll, st.CRMQ.Sent)
		}
		for _, name := range []string{"api", "worker", "bench"} {
			if st.CRMQCPU[name] <= 0 {
				t.Errorf("%d/s: no CPU charged to %s: %v", st.Rate, name, st.CRMQCPU)
			}
		}
		if st.RawCPU["bench"] <= 0 || st.ReadsPerJob < 1 || st.APIMSPerPost <= 0 {
			t.Errorf("%d/s: raw CPU %v, reads per job %.2f, API ms per POST %.3f", st.Rate, st.RawCPU, st.ReadsPerJob, st.APIMSPerPost)
		}
		// The test Postgres may or may not preload pg_stat_statements.
		if st.StatementsPerJob != -1 && st.StatementsPerJob < 1 {
			t.Errorf("%d/s: %.2f statements per job: at least the INSERT runs for each", st.Rate, st.StatementsPerJob)
		}
	}
	if e := rep.Enqueue; e == nil || e.APIPerSec <= 0 || e.RawPerSec <= 0 || e.RawBatchedPerSec <= 0 || e.APIErrors+e.RawErrors != 0 {
		t.Fatalf("enqueue comparison %+v", rep.Enqueue)
	}
	if rep.Machine == "" {
		t.Error("no machine line")
	}
}
