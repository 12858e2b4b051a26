package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// cpuProc is a process whose CPU time a benchmark charges to the jobs it
// runs, with its children (a postmaster and its backends).
type cpuProc struct {
	Name string
	PID  int
}

// parseCPUProcs reads "api=123,worker=456".
func parseCPUProcs(s string) ([]cpuProc, error) {
	var out []cpuProc
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, pid, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("want name=pid, got %q", part)
		}
		out = append(out, cpuProc{Name: name, PID: n})
	}
	return out, nil
}

// procCPU is a process's CPU time (user + system), with the live children
// it has and the ones it reaped, from /proc. Linux only.
func procCPU(pid int) (time.Duration, error) {
	own, reaped, err := statTimes(pid)
	if err != nil {
		return 0, err
	}
	total := own + reaped
	for _, child := range childrenOf(pid) {
		if c, _, err := statTimes(child); err == nil {
			total += c
		}
	}
	return total, nil
}

// statTimes reads utime+stime and cutime+cstime of /proc/<pid>/stat.
func statTimes(pid int) (own, reaped time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("cpu of pid %d: unexpected /proc stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ... utime(14) stime(15) cutime(16) cstime(17).
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("cpu of pid %d: short /proc stat", pid)
	}
	var t [4]int64
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(t[0]+t[1]) * tick, time.Duration(t[2]+t[3]) * tick, nil
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// selfCPU is this process's CPU time (the raw asynq phase runs here).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter samples the CPU time of a set of processes.
type cpuMeter struct {
	procs []cpuProc
}

func (m cpuMeter) sample() map[string]time.Duration {
	out := map[string]time.Duration{"bench": selfCPU()}
	for _, p := range m.procs {
		if d, err := procCPU(p.PID); err == nil {
			out[p.Name] = d
		}
	}
	return out
}

// perThousand turns the CPU spent between two samples into seconds per
// 1,000 jobs, by process.
func perThousand(before, after map[string]time.Duration, jobs int) map[string]float64 {
	out := map[string]float64{}
	if jobs <= 0 {
		return out
	}
	for name, a := range after {
		b, ok := before[name]
		if !ok {
			continue
		}
		out[name] = roundTo((a-b).Seconds()*1000/float64(jobs), 3)
	}
	return out
}

func roundTo(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// hostTimes are the machine's CPU times from /proc/stat's first line, in
// clock ticks: all of them, and steal (time the hypervisor ran other
// machines while this one wanted to run). Zero where /proc/stat is absent.
type hostTimes struct{ total, steal int64 }

func readHostTimes() hostTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseHostTimes(line)
}

// parseHostTimes reads /proc/stat's "cpu" line.
func parseHostTimes(line string) hostTimes {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostTimes{}
	}
	var h hostTimes
	// user nice system idle iowait irq softirq steal [guest guest_nice,
	// already counted in user and nice]
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return hostTimes{}
		}
		h.total += n
		if i == 7 {
			h.steal = n
		}
	}
	return h
}

// stealPct is the share of the machine's CPU time stolen between two
// readings, in percent; -1 when unknown.
func stealPct(before, after hostTimes) float64 {
	d := after.total - before.total
	if d <= 0 || before.total == 0 {
		return -1
	}
	return roundTo(float64(after.steal-before.steal)*100/float64(d), 1)
}

// stealText shows a steal share, or n/a when unknown.
func stealText(pct float64) string {
	if pct < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", pct)
}

// stealNoteAbove: a phase that lost more of the machine's CPU time than
// this (percent) to other machines did not run on a quiet machine.
const stealNoteAbove = 3

// withHost runs a bench phase and records what else took the machine
// meanwhile: the CPU time the hypervisor gave to other machines, and
// Redis's background saves.
func withHost(ctx context.Context, bc benchConfig, phase func() (phaseResult, error)) (phaseResult, error) {
	rdb, _ := bc.RedisOpt.MakeRedisClient().(redis.UniversalClient)
	if rdb != nil {
		defer rdb.Close()
	}
	saves := func() (started int64, running bool, ok bool) {
		if rdb == nil {
			return 0, false, false
		}
		return redisSaves(ctx, rdb)
	}
	before := readHostTimes()
	started0, running0, ok0 := saves()
	r, err := phase()
	r.StealPct = stealPct(before, readHostTimes())
	r.RedisSaves = -1
	if started1, _, ok1 := saves(); ok0 && ok1 {
		r.RedisSaves = int(started1 - started0)
		if running0 {
			r.RedisSaves++
		}
	}
	return r, err
}

// redisSaves reads how many background saves Redis has started (AOF
// rewrites and RDB snapshots: each forks Redis, and the child writes the
// whole dataset while the parent copies every page it changes), and
// whether one runs now.
func redisSaves(ctx context.Context, rdb redis.UniversalClient) (started int64, running bool, ok bool) {
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return 0, false, false
	}
	var n int
	for line := range strings.SplitSeq(info, "\n") {
		k, v, found := strings.Cut(strings.TrimSpace(line), ":")
		if !found {
			continue
		}
		switch k {
		case "aof_rewrites", "rdb_saves":
			c, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false, false
			}
			started += c
			n++
		case "aof_rewrite_in_progress", "rdb_bgsave_in_progress":
			running = running || v == "1"
		}
	}
	return started, running, n == 2
}

// redisSavesText shows a count of background saves, or n/a.
func redisSavesText(n int) string {
	if n < 0 {
		return "n/a"
	}
	return strconv.Itoa(n)
}

// redisSaveNote says when Redis saved in the background during a phase,
// given the names of the phases it saved in.
func redisSaveNote(hit []string) string {
	if len(hit) == 0 {
		return ""
	}
	return fmt.Sprintf("Redis saved in the background (an AOF rewrite or an RDB snapshot: a fork) during %s: "+
		"its child takes a core for a few tenths of a second, and on two cores the jobs of that moment wait "+
		"(see Redis persistence in README.md)", strings.Join(hit, ", "))
}

// savedIn names the phases during which Redis saved in the background.
func savedIn(phases ...phaseResult) []string {
	var hit []string
	for _, p := range phases {
		if p.RedisSaves > 0 {
			hit = append(hit, "the "+p.Name+" phase")
		}
	}
	return hit
}

// stealNote says when some phases ran while the machine's host was busy.
func stealNote(phases ...phaseResult) string {
	worst := 0.0
	for _, p := range phases {
		worst = max(worst, p.StealPct)
	}
	if worst <= stealNoteAbove {
		return ""
	}
	return fmt.Sprintf("the hypervisor gave up to %.1f%% of this machine's CPU time to other machines during a phase (steal, /proc/stat): not a quiet machine, and the two phases of a step may have had different machines", worst)
}
