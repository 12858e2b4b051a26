package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// capacityStep is one rate of `crmq bench capacity`.
type capacityStep struct {
	Rate       int         `json:"rate"`
	Raw        phaseResult `json:"raw"`
	CRMQ       phaseResult `json:"crmq"`
	P99Ratio   float64     `json:"p99_ratio"`
	WithinGoal bool        `json:"within_goal"`
	// CPU seconds per 1,000 jobs started (warm-up included), by process:
	// "bench" is this process (the load generator; in the raw phase also
	// asynq's client and server), the others are named by --cpu.
	RawCPU  map[string]float64 `json:"raw_cpu_s_per_1000"`
	CRMQCPU map[string]float64 `json:"crmq_cpu_s_per_1000"`
	// The crmq phase split where its send window closed: before, the API
	// only answered POSTs (status reads are deferred); after, it answered
	// status reads (and the worker finished any backlog). With status
	// reads deferred, APIMSPerPost and APIMSPerRead are the API's CPU per
	// request of each kind, whatever the number of polls.
	WindowCPU    map[string]float64 `json:"crmq_window_cpu_s_per_1000"`
	APIMSPerPost float64            `json:"api_cpu_ms_per_post,omitempty"`
	APIMSPerRead float64            `json:"api_cpu_ms_per_status_read,omitempty"`
	ReadsPerJob  float64            `json:"status_reads_per_job"`
	// Statements per job in the crmq phase, from pg_stat_statements
	// (status polls included); -1 when it is not available.
	StatementsPerJob float64         `json:"statements_per_job"`
	Statements       []statementCost `json:"statements,omitempty"`
}

// statementCost is one statement's share of a step.
type statementCost struct {
	Query      string  `json:"query"`
	PerJob     float64 `json:"per_job"`
	MSPer1000  float64 `json:"exec_ms_per_1000_jobs"`
	CallsTotal int64   `json:"calls"`
}

// enqueueRate compares the API's POST rate with raw asynq Enqueue plus
// one INSERT of the job row, closed loop, on the same Redis and Postgres.
// The goal's baseline runs one INSERT statement per job; a second raw
// side writes its rows through crmq's own shared insert statement (the
// batching the API gets), a stricter baseline reported beside it.
type enqueueRate struct {
	Clients          int     `json:"clients"`
	Duration         string  `json:"duration"`
	RawPerSec        float64 `json:"raw_insert_enqueue_per_s"`
	RawBatchedPerSec float64 `json:"raw_batched_insert_enqueue_per_s"`
	APIPerSec        float64 `json:"api_post_per_s"`
	Ratio            float64 `json:"ratio"`
	BatchedRatio     float64 `json:"ratio_to_batched"`
	Goal             float64 `json:"goal"`
	WithinGoal       bool    `json:"within_goal"`
	RawErrors        int64   `json:"raw_errors"`
	APIErrors        int64   `json:"api_errors"`
	FirstError       string  `json:"first_error,omitempty"`
	PausedQueue      string  `json:"paused_queue"`
	// CPU milliseconds per operation of each side, by process ("bench" is
	// the process driving the load), and the share of the machine's cores
	// each side kept busy: near 1 the side was bound by CPU, well below it
	// by the latency of its round trips.
	RawCPU         map[string]float64 `json:"raw_cpu_ms_per_op,omitempty"`
	RawBatchedCPU  map[string]float64 `json:"raw_batched_cpu_ms_per_op,omitempty"`
	APICPU         map[string]float64 `json:"api_cpu_ms_per_op,omitempty"`
	RawBusy        float64            `json:"raw_cores_busy_share,omitempty"`
	RawBatchedBusy float64            `json:"raw_batched_cores_busy_share,omitempty"`
	APIBusy        float64            `json:"api_cores_busy_share,omitempty"`
}

// capacityReport is what bench capacity prints.
type capacityReport struct {
	Machine      string         `json:"machine"`
	Queue        string         `json:"queue"`
	PollInterval string         `json:"poll_interval"`
	Concurrency  int            `json:"raw_concurrency"`
	Duration     string         `json:"duration"`
	Warmup       string         `json:"warmup"`
	StatusPoll   string         `json:"status_poll"`
	Steps        []capacityStep `json:"steps"`
	// Highest rate whose crmq p99 stayed within GoalRatio of raw asynq's,
	// with no error or drop; 0 when none did.
	Capacity  int          `json:"capacity"`
	GoalRatio float64      `json:"goal_ratio"`
	Enqueue   *enqueueRate `json:"enqueue,omitempty"`
	Notes     []string     `json:"notes,omitempty"`
}

// enqueueGoal: API POST rate at least this share of raw Enqueue + INSERT.
const enqueueGoal = 0.7

func runBenchCapacity(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	url := fs.String("url", "", "API base URL (default http://$HTTP_ADDR)")
	key := fs.String("key", "", "org API key (default $CRMQ_BENCH_KEY)")
	rates := fs.String("rates", "250,500,750,1000,1500,2000", "rates to step through, jobs per second, ascending")
	duration := fs.Duration("duration", 10*time.Second, "measured send window of each phase of each step")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured send window before each measured one")
	queue := fs.String("queue", jobs.QueueCritical, "queue the pings run on")
	pollers := fs.Int("pollers", 4, "goroutines polling job status")
	pollEvery := fs.Duration("poll-every", 20*time.Millisecond, "time between two status polls of one job")
	deferPolls := fs.Bool("defer-polls", true, "read job statuses only after each send window (false: poll every job every --poll-every while measuring)")
	cpuProcs := fs.String("cpu", os.Getenv("CRMQ_BENCH_CPU"), "processes whose CPU is charged per job, name=pid,... (api, worker, postgres postmaster, redis); default $CRMQ_BENCH_CPU")
	stopAfter := fs.Int("stop-after", 1, "stop stepping after this many steps in a row miss the goal")
	enqDuration := fs.Duration("enqueue-duration", 5*time.Second, "time each side of the enqueue-rate comparison runs, in turns of 1s (0 skips it)")
	enqClients := fs.Int("enqueue-clients", 16, "concurrent clients of the enqueue-rate comparison")
	short := fs.Bool("short", false, "a quick run for tests and CI: rates 50,100, 1s windows, 300ms warm-up, 1s enqueue comparison")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	jobTimeout := fs.Duration("job-timeout", 30*time.Second, "a job not finished this long after its start counts as an error")
	c.detail = "Steps the rate through --rates. At each step it runs raw asynq, then crmq, as `crmq bench e2e`\n" +
		"does, and adds: CPU seconds per 1,000 jobs of the processes named by --cpu (read from /proc,\n" +
		"children included, so a postmaster counts its backends) and of this process, and Postgres\n" +
		"statements per job (pg_stat_statements of this database, reset before each crmq phase;\n" +
		"status reads included). It stops after --stop-after steps in a row miss the goal and reports\n" +
		"the highest rate at which crmq's p99 stayed within 2x of raw asynq's with no error or drop.\n" +
		"Then it compares the enqueue rate, closed loop with --enqueue-clients: POST /v1/jobs against\n" +
		"asynq Enqueue plus one INSERT statement per job (the goal's baseline), then against\n" +
		"Enqueue with the rows through crmq's shared insert statement (stricter). The job's queue\n" +
		"is paused meanwhile so no worker competes; raw tasks go to a queue nobody consumes,\n" +
		"deleted after.\n" +
		"CPU and statement counts do not depend on the machine's load; latencies do."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *short {
		*rates, *duration, *warmup, *enqDuration = "50,100", time.Second, 300*time.Millisecond, time.Second
	}
	steps, err := parseRates(*rates)
	if err != nil {
		return usagef(c.cmd, "--rates: %v", err)
	}
	procs, err := parseCPUProcs(*cpuProcs)
	if err != nil {
		return usagef(c.cmd, "--cpu: %v", err)
	}
	switch {
	case *duration < 100*time.Millisecond || *duration > 10*time.Minute:
		return usagef(c.cmd, "--duration must be in [100ms, 10m]")
	case *warmup < 0 || *warmup > time.Minute:
		return usagef(c.cmd, "--warmup must be in [0, 1m]")
	case *pollers < 1 || *pollers > 256 || *pollEvery < 100*time.Microsecond || *pollEvery > time.Second:
		return usagef(c.cmd, "--pollers must be in [1, 256] and --poll-every in [100µs, 1s]")
	case *stopAfter < 1 || *enqClients < 1 || *enqClients > 1024 || *enqDuration < 0 || *enqDuration > 10*time.Minute:
		return usagef(c.cmd, "--stop-after >= 1, --enqueue-clients in [1, 1024], --enqueue-duration in [0, 10m]")
	case *jobTimeout < time.Second:
		return usagef(c.cmd, "--job-timeout must be >= 1s")
	case !slices.Contains(jobs.Queues, *queue):
		return usagef(c.cmd, "--queue must be one of %s", strings.Join(jobs.Queues, ", "))
	}
	cfg, redisOpt, err := benchTarget(c, key, url)
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	// Each step: two phases of warm-up + window + settling; then the enqueue comparison.
	perStep := 2*(*warmup+*duration) + 2**jobTimeout
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(steps))*perStep+2**enqDuration+2*time.Minute)
	defer cancel()

	bc := benchConfig{
		URL: strings.TrimRight(*url, "/"), Key: *key, Queue: *queue,
		Duration: *duration, Warmup: *warmup, MaxInFlight: 1000,
		Pollers: *pollers, PollEvery: *pollEvery, DeferPolls: *deferPolls, JobTimeout: *jobTimeout,
		RedisOpt: redisOpt, PollInterval: cfg.PollInterval, Concurrency: cfg.Concurrency,
		RawQueue: "bench_raw", Log: c.logger(),
	}
	rep := capacityReport{
		Machine: c.machine(ctx), Queue: bc.Queue, PollInterval: bc.PollInterval.String(), Concurrency: bc.Concurrency,
		Duration: bc.Duration.String(), Warmup: bc.Warmup.String(), StatusPoll: statusPollNote(bc), GoalRatio: goalRatio,
	}
	stmtsOK := true
	if err := db.EnableStatementStats(ctx); err != nil {
		stmtsOK = false
		rep.Notes = append(rep.Notes, "statements per job unknown: "+oneLine(err.Error()))
	}
	if len(procs) == 0 {
		rep.Notes = append(rep.Notes, "no --cpu processes named: only this process's CPU is reported")
	}
	meter := cpuMeter{procs: procs}

	api, err := newAPIDriver(bc)
	if err != nil {
		return err
	}
	defer api.http.CloseIdleConnections()
	if err := api.preflight(ctx); err != nil {
		return fmt.Errorf("preflight (one ping through the API before measuring): %w", err)
	}
	misses := 0
	for _, rate := range steps {
		step, err := capacityAt(ctx, bc, rate, api, db, meter, stmtsOK)
		if err != nil {
			return fmt.Errorf("step %d/s: %w", rate, err)
		}
		rep.Steps = append(rep.Steps, step)
		if step.WithinGoal {
			rep.Capacity = rate
			misses = 0
		} else if misses++; misses >= *stopAfter {
			break
		}
	}
	if *enqDuration > 0 {
		er, err := compareEnqueueRate(ctx, bc, api, db, meter, *enqClients, *enqDuration)
		if err != nil {
			return fmt.Errorf("enqueue rate: %w", err)
		}
		rep.Enqueue = &er
	}
	if *asJSON {
		return printJSON(c.stdout, rep)
	}
	return printCapacity(c.stdout, rep)
}

func parseRates(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100_000 {
			return nil, fmt.Errorf("want rates in [1, 100000], got %q", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("rates must ascend, got %d after %d", n, out[len(out)-1])
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no rate")
	}
	return out, nil
}

// capacityAt measures one rate.
func capacityAt(ctx context.Context, bc benchConfig, rate int, api *apiDriver, db *store.DB, meter cpuMeter, stmtsOK bool) (capacityStep, error) {
	bc.Rate = rate
	if bc.DeferPolls {
		bc.MaxInFlight = max(bc.MaxInFlight, int(float64(rate)*(bc.Warmup+bc.Duration).Seconds())+rate)
	}
	step := capacityStep{Rate: rate, StatementsPerJob: -1}
	bc.Log.InfoContext(ctx, "bench capacity: raw asynq", "rate", rate)
	before := meter.sample()
	raw, err := withHost(ctx, bc, func() (phaseResult, error) { return benchRaw(ctx, bc) })
	if err != nil {
		return step, fmt.Errorf("raw asynq phase: %w", err)
	}
	step.Raw, step.RawCPU = raw, perThousand(before, meter.sample(), raw.StartedAll)

	bc.Log.InfoContext(ctx, "bench capacity: crmq", "rate", rate)
	if stmtsOK {
		if err := db.ResetStatementStats(ctx); err != nil {
			return step, err
		}
	}
	api.polls.Store(0)
	before = meter.sample()
	var atWindow map[string]time.Duration
	var pollsAtWindow int64
	bc.OnWindowEnd = func() { atWindow, pollsAtWindow = meter.sample(), api.polls.Load() }
	got, err := withHost(ctx, bc, func() (phaseResult, error) { return benchCRMQ(ctx, bc, api) })
	if err != nil {
		return step, fmt.Errorf("crmq phase: %w", err)
	}
	after := meter.sample()
	step.CRMQ, step.CRMQCPU = got, perThousand(before, after, got.StartedAll)
	step.WindowCPU = perThousand(before, atWindow, got.StartedAll)
	if got.StartedAll > 0 {
		step.ReadsPerJob = roundTo(float64(got.StatusPolls)/float64(got.StartedAll), 2)
	}
	if a, ok := step.WindowCPU["api"]; ok && bc.DeferPolls {
		// The pollers start on the window's last tick: a few reads may
		// fall before the sample; they are charged to the POSTs.
		step.APIMSPerPost = a
		if reads := got.StatusPolls - pollsAtWindow; reads > 0 {
			step.APIMSPerRead = roundTo((after["api"]-atWindow["api"]).Seconds()*1000/float64(reads), 3)
		}
	}
	if stmtsOK {
		stats, err := db.StatementStats(ctx)
		if err != nil {
			return step, err
		}
		step.StatementsPerJob, step.Statements = statementsPerJob(stats, got.StartedAll)
	}
	if raw.P99MS > 0 {
		step.P99Ratio = math.Round(got.P99MS/raw.P99MS*100) / 100
	}
	clean := raw.Errors+raw.Dropped+got.Errors+got.Dropped == 0
	step.WithinGoal = clean && got.Count > 0 && step.P99Ratio <= goalRatio
	return step, nil
}

// statementsPerJob sums the statements of a phase and lists each one's
// share, most called first.
func statementsPerJob(stats []store.StatementStat, jobs int) (float64, []statementCost) {
	if jobs <= 0 {
		return 0, nil
	}
	var calls int64
	var out []statementCost
	for _, s := range stats {
		calls += s.Calls
		q := strings.Join(strings.Fields(s.Query), " ")
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		out = append(out, statementCost{
			Query: q, CallsTotal: s.Calls,
			PerJob:    roundTo(float64(s.Calls)/float64(jobs), 3),
			MSPer1000: roundTo(s.TimeMS*1000/float64(jobs), 1),
		})
	}
	return roundTo(float64(calls)/float64(jobs), 2), out
}

// enqueueSlice is how long one side of the enqueue comparison runs before
// the next takes its turn.
const enqueueSlice = time.Second

// compareEnqueueRate runs each side closed loop for d with n clients, in
// turns of enqueueSlice (raw, raw with the shared INSERT, API, raw, ...):
// the host's speed drifts by a fifth from one run to the next, and within
// a run, so sides run one after the other for all of d measured the drift
// as much as the sides (ratios 0.63-0.84 for one build).
func compareEnqueueRate(ctx context.Context, bc benchConfig, api *apiDriver, db *store.DB, meter cpuMeter, n int, d time.Duration) (enqueueRate, error) {
	er := enqueueRate{Clients: n, Duration: d.String(), Goal: enqueueGoal, PausedQueue: bc.Queue}
	grant, err := db.GrantByKey(ctx, bc.Key)
	if err != nil {
		return er, fmt.Errorf("org of the key: %w", err)
	}
	orgID := grant.Org.ID
	var firstErr atomic.Value
	note := func(err error) {
		firstErr.CompareAndSwap(nil, oneLine(err.Error()))
	}

	// Raw: one INSERT of the row the API would write, then Enqueue, on a
	// queue nobody consumes; as its own statement per job (the goal's
	// baseline), and through the shared insert statement.
	const rawQueue = "bench_enqueue"
	client := asynq.NewClient(bc.RedisOpt)
	defer client.Close()
	insp := asynq.NewInspector(bc.RedisOpt)
	defer insp.Close()
	task, err := jobs.NewPingTask(orgID, bc.Queue, 0)
	if err != nil {
		return er, err
	}
	raw := func(insert func(context.Context, store.Job) (store.Job, bool, error)) func(context.Context) error {
		return func(ctx context.Context) error {
			id := uuid.NewString()
			if _, _, err := insert(ctx, store.Job{ID: id, OrgID: orgID, Type: task.Spec.Type, Queue: rawQueue,
				MaxRetry: task.Spec.MaxRetry, Payload: task.Payload}); err != nil {
				return err
			}
			_, err := client.EnqueueContext(ctx, asynq.NewTask(task.Spec.Type, task.Payload, append(task.Spec.Options(rawQueue), asynq.TaskID(id))...))
			return err
		}
	}
	// The raw side's rows and tasks go only after the API side ran: each
	// deleted row is announced to every API process (jobs_notify), and
	// decoding tens of thousands of those would load the API while it is
	// measured.
	defer func() {
		if err := insp.DeleteQueue(rawQueue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			bc.Log.WarnContext(ctx, "bench: raw enqueue queue not removed", "err", err)
		}
		if _, err := db.DeleteJobsOfQueue(context.WithoutCancel(ctx), rawQueue); err != nil {
			bc.Log.WarnContext(ctx, "bench: raw enqueue rows not removed", "err", err)
		}
	}()

	// API: POST /v1/jobs with the job's queue paused, so no worker competes.
	if err := insp.PauseQueue(bc.Queue); err != nil {
		return er, fmt.Errorf("pause %s: %w", bc.Queue, err)
	}
	sides := []*loadSide{
		{op: raw(db.InsertJobSingle)},
		{op: raw(db.InsertJob)},
		{op: func(ctx context.Context) error {
			_, err := api.post(ctx)
			return err
		}},
	}
	for left := d; left > 0 && ctx.Err() == nil; left -= enqueueSlice {
		for _, side := range sides {
			side.run(ctx, meter, n, min(left, enqueueSlice), note)
		}
	}
	if err := insp.UnpauseQueue(bc.Queue); err != nil {
		return er, fmt.Errorf("unpause %s: %w", bc.Queue, err)
	}
	// Let the worker drain what was posted before anything else runs.
	for ctx.Err() == nil {
		qi, err := insp.GetQueueInfo(bc.Queue)
		if err != nil || qi.Pending+qi.Active == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	rawSide, batchedSide, apiSide := sides[0], sides[1], sides[2]
	er.RawCPU, er.RawBusy = rawSide.perOp()
	er.RawBatchedCPU, er.RawBatchedBusy = batchedSide.perOp()
	er.APICPU, er.APIBusy = apiSide.perOp()
	er.RawPerSec, er.RawBatchedPerSec, er.APIPerSec = rawSide.perSec(), batchedSide.perSec(), apiSide.perSec()
	er.RawErrors, er.APIErrors = rawSide.failed+batchedSide.failed, apiSide.failed
	if s, ok := firstErr.Load().(string); ok {
		er.FirstError = s
	}
	if er.RawPerSec > 0 {
		er.Ratio = roundTo(er.APIPerSec/er.RawPerSec, 2)
	}
	if er.RawBatchedPerSec > 0 {
		er.BatchedRatio = roundTo(er.APIPerSec/er.RawBatchedPerSec, 2)
	}
	er.WithinGoal = er.RawErrors+er.APIErrors == 0 && er.Ratio >= enqueueGoal
	return er, ctx.Err()
}

// loadSide is one side of a comparison run in turns: what it did and the
// CPU each process spent over all its turns.
type loadSide struct {
	op         func(context.Context) error
	ok, failed int64
	cpu        map[string]time.Duration
	wall       time.Duration
}

// run gives the side one turn of d.
func (s *loadSide) run(ctx context.Context, meter cpuMeter, n int, d time.Duration, note func(error)) {
	before := meter.sample()
	start := time.Now()
	ok, failed := closedLoop(ctx, n, d, s.op, note)
	s.wall += time.Since(start)
	if s.cpu == nil {
		s.cpu = map[string]time.Duration{}
	}
	for name, a := range meter.sample() {
		if b, found := before[name]; found {
			s.cpu[name] += a - b
		}
	}
	s.ok += ok
	s.failed += failed
}

func (s *loadSide) perSec() float64 {
	if s.wall <= 0 {
		return 0
	}
	return roundTo(float64(s.ok)/s.wall.Seconds(), 1)
}

// perOp is the side's CPU in milliseconds per operation by process
// (perThousand's seconds per 1,000), and the share of the machine's cores
// all of them kept busy over its turns.
func (s *loadSide) perOp() (map[string]float64, float64) {
	zero := map[string]time.Duration{}
	var total time.Duration
	for name, c := range s.cpu {
		zero[name] = 0
		total += c
	}
	if s.wall <= 0 {
		return perThousand(zero, s.cpu, int(s.ok)), 0
	}
	return perThousand(zero, s.cpu, int(s.ok)), roundTo(total.Seconds()/s.wall.Seconds()/float64(runtime.NumCPU()), 2)
}

// closedLoop runs op from n goroutines for d and counts the successes.
func closedLoop(ctx context.Context, n int, d time.Duration, op func(context.Context) error, note func(error)) (ok, failed int64) {
	var wg sync.WaitGroup
	var okN, failN atomic.Int64
	end := time.Now().Add(d)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := op(ctx); err != nil {
					failN.Add(1)
					note(err)
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}

func printCapacity(w io.Writer, r capacityReport) error {
	fmt.Fprintf(w, "crmq bench capacity: system:ping on queue %s, %s per phase after %s warm-up; status reads %s\n",
		r.Queue, r.Duration, r.Warmup, r.StatusPoll)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "raw asynq: concurrency %d, TaskCheckInterval %s; phases run one after the other\n\n", r.Concurrency, r.PollInterval)
	names := cpuNames(r.Steps)
	head := fmt.Sprintf("%6s %17s %17s %6s %6s", "rate", "raw p50/p99 ms", "crmq p50/p99 ms", "ratio", "errs")
	for _, n := range names {
		head += fmt.Sprintf(" %9s", n)
	}
	fmt.Fprintf(w, "%s %9s\n", head, "stmts/job")
	fmt.Fprintf(w, "%s\n", strings.Repeat(" ", 58)+"  CPU s per 1,000 jobs (crmq phase; raw phase: bench = asynq client+server)")
	for _, s := range r.Steps {
		line := fmt.Sprintf("%6d %17s %17s %6.2f %6d", s.Rate,
			fmt.Sprintf("%.1f/%.1f", s.Raw.P50MS, s.Raw.P99MS), fmt.Sprintf("%.1f/%.1f", s.CRMQ.P50MS, s.CRMQ.P99MS),
			s.P99Ratio, s.Raw.Errors+s.Raw.Dropped+s.CRMQ.Errors+s.CRMQ.Dropped)
		for _, n := range names {
			line += fmt.Sprintf(" %9s", fmt.Sprintf("%.3f", s.CRMQCPU[n]))
		}
		stm := "n/a"
		if s.StatementsPerJob >= 0 {
			stm = fmt.Sprintf("%.2f", s.StatementsPerJob)
		}
		fmt.Fprintf(w, "%s %9s\n", line, stm)
		if s.APIMSPerPost > 0 {
			fmt.Fprintf(w, "%6s api CPU per POST %.3f ms, per status read %.3f ms; %.2f status reads per job\n",
				"", s.APIMSPerPost, s.APIMSPerRead, s.ReadsPerJob)
		}
		if pt := s.CRMQ.Parts; pt != nil {
			fmt.Fprintf(w, "%6s crmq's parts, p50/p99: %s\n", "", pt)
		}
		fmt.Fprintf(w, "%6s host steal: raw phase %s, crmq phase %s; Redis background saves: raw phase %s, crmq phase %s\n", "",
			stealText(s.Raw.StealPct), stealText(s.CRMQ.StealPct), redisSavesText(s.Raw.RedisSaves), redisSavesText(s.CRMQ.RedisSaves))
		raw := fmt.Sprintf("%6s %17s %17s %6s %6s", "", "", "raw phase:", "", "")
		for _, n := range names {
			raw += fmt.Sprintf(" %9s", fmt.Sprintf("%.3f", s.RawCPU[n]))
		}
		fmt.Fprintf(w, "%s\n", raw)
	}
	if len(r.Steps) > 0 {
		last := r.Steps[len(r.Steps)-1]
		if len(last.Statements) > 0 {
			fmt.Fprintf(w, "\nstatements per job at %d/s (calls per job, execution ms per 1,000 jobs):\n", last.Rate)
			for _, s := range last.Statements {
				if s.PerJob < 0.01 {
					continue
				}
				fmt.Fprintf(w, "  %6.3f %8.1f  %s\n", s.PerJob, s.MSPer1000, s.Query)
			}
		}
	}
	verdict := "NOT met"
	if r.Capacity >= 1000 {
		verdict = "met"
	}
	fmt.Fprintf(w, "\ncapacity: %d jobs/s with crmq p99 within %.0fx of raw asynq (goal 1,000/s: %s)\n", r.Capacity, r.GoalRatio, verdict)
	if e := r.Enqueue; e != nil {
		verdict = "NOT met"
		if e.WithinGoal {
			verdict = "met"
		}
		fmt.Fprintf(w, "enqueue rate, %d clients for %s: API POST %.0f/s, raw Enqueue + INSERT %.0f/s, ratio %.2f (goal >= %.1f: %s)\n",
			e.Clients, e.Duration, e.APIPerSec, e.RawPerSec, e.Ratio, e.Goal, verdict)
		fmt.Fprintf(w, "  against raw Enqueue + crmq's shared INSERT statement %.0f/s: ratio %.2f\n", e.RawBatchedPerSec, e.BatchedRatio)
		for _, side := range []struct {
			name string
			cpu  map[string]float64
			busy float64
		}{{"API POST", e.APICPU, e.APIBusy}, {"raw", e.RawCPU, e.RawBusy}, {"raw, shared INSERT", e.RawBatchedCPU, e.RawBatchedBusy}} {
			if len(side.cpu) == 0 {
				continue
			}
			names := slices.Sorted(maps.Keys(side.cpu))
			parts := make([]string, 0, len(names))
			var sum float64
			for _, n := range names {
				parts = append(parts, fmt.Sprintf("%s %.3f", n, side.cpu[n]))
				sum += side.cpu[n]
			}
			fmt.Fprintf(w, "  %s CPU ms per op: %s (total %.3f); cores busy %.0f%%\n", side.name, strings.Join(parts, ", "), sum, side.busy*100)
		}
		if e.FirstError != "" {
			fmt.Fprintf(w, "enqueue first error: %s\n", e.FirstError)
		}
	}
	var phases []phaseResult
	var saved []string
	for _, s := range r.Steps {
		phases = append(phases, s.Raw, s.CRMQ)
		for _, p := range savedIn(s.Raw, s.CRMQ) {
			saved = append(saved, fmt.Sprintf("%s at %d/s", p, s.Rate))
		}
	}
	if n := stealNote(phases...); n != "" {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if n := redisSaveNote(saved); n != "" {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// cpuNames lists the processes measured, this one first.
func cpuNames(steps []capacityStep) []string {
	seen := map[string]bool{}
	var names []string
	for _, s := range steps {
		for n := range s.CRMQCPU {
			if !seen[n] && n != "bench" {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return append(names, "bench")
}
