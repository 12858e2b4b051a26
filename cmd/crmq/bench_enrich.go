package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich"
	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/enrich/sites"
)

const enrichBenchOrg = "bench-enrich"

type enrichBenchReport struct {
	Machine        string  `json:"machine"` // machineLine with the servers' versions, as the bench began
	Records        int     `json:"records"`
	Hosts          int     `json:"hosts"`
	HostDelayMS    float64 `json:"host_delay_ms"`
	Concurrency    int     `json:"concurrency"`
	Pages          int     `json:"pages"`
	CRMQSeconds    float64 `json:"crmq_seconds"`
	BareSeconds    float64 `json:"bare_seconds"`
	FloorSeconds   float64 `json:"politeness_floor_seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
	Ratio          float64 `json:"ratio_crmq_over_bare"`
	PeakHeapMB     float64 `json:"peak_heap_mb"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	Succeeded      int     `json:"succeeded"`
	FieldsWritten  int     `json:"fields_written"`
	BulkConcurrent int     `json:"bulk_concurrency"`
}

// runBenchEnrich bulk-enriches accounts whose websites are fixture sites
// served by this process on loopback, with politeness on, and times the
// same pages fetched bare (the same guarded client and delays, no parsing,
// no database) in the same run.
func runBenchEnrich(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	records := fs.Int("records", 200, "accounts to enrich in one bulk (at most 500)")
	hosts := fs.Int("hosts", 20, "fixture sites, each on its own loopback port (politeness is per host)")
	delay := fs.Duration("delay", 100*time.Millisecond, "politeness delay between two requests to one host")
	conc := fs.Int("concurrency", enrich.DefaultBulkConcurrency, "records crawled at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	c.detail = "Serves --hosts fixture sites on 127.0.0.1, upserts --records accounts of the org " + enrichBenchOrg + " pointing at them\n" +
		"(their fields emptied), runs enrich:bulk and its child enrich:record tasks through asynq in this process\n" +
		"(a queue of its own, the job-state middleware, --concurrency children at once) and then fetches the very pages it read,\n" +
		"bare, through the same guarded client with the same delays and concurrency. Prints records per second,\n" +
		"crmq / bare, the politeness floor (pages per host x delay) and this process's peak heap and RSS."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *records < 1 || *records > jobs.MaxEnrichBulk || *hosts < 1 || *hosts > 200 || *conc < 1 || *delay < 0 {
		return usagef(c.cmd, "want --records in [1, 500], --hosts in [1, 200], --concurrency >= 1, --delay >= 0")
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	machine := c.machine(ctx)
	org, err := db.OrgByName(ctx, enrichBenchOrg)
	if errors.Is(err, store.ErrNotFound) {
		org, err = db.CreateOrg(ctx, enrichBenchOrg)
	}
	if err != nil {
		return err
	}
	names := []string{"northwind", "bluefern", "pressly"}
	urls := make([]string, *hosts)
	for i := range urls {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: sites.Handler(names[i%len(names)]), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		urls[i] = "http://" + ln.Addr().String() + "/"
	}
	rows := make([]json.RawMessage, *records)
	ext := make([]string, *records)
	for i := range rows {
		ext[i] = fmt.Sprintf("bench-%d", i)
		rows[i], _ = json.Marshal(map[string]any{"external_id": ext[i], "name": ext[i], "website": urls[i%len(urls)], "attributes": map[string]any{}})
	}
	if _, err := db.UpsertRecords(ctx, org.ID, "accounts", rows); err != nil {
		return err
	}
	ids, err := db.EnrichAccountIDs(ctx, org.ID, ext)
	if err != nil {
		return err
	}
	if _, err := db.PutEnrichmentSettings(ctx, org.ID, store.DefaultEnrichFields, time.Now()); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	redisOpt, err := proc.RedisOpt(cfg)
	if err != nil {
		return err
	}
	allow, _ := fetch.ParseAllow("127.0.0.1/32")
	newClient := func() *fetch.Client {
		return fetch.New(fetch.Config{Allow: allow, HostDelay: *delay, MaxInflight: fetch.DefaultMaxInflight})
	}
	// The bulk runs as a worker runs it: the parent and its children are
	// asynq tasks behind the job-state middleware, on a queue of this
	// bench's own that only this process serves.
	const queue = "bench_enrich"
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	en := enrich.Enricher{Store: db, Now: time.Now, Log: c.logger(), Crawler: enrich.Crawler{Fetch: newClient(), Provider: offline.New()}}
	mux, err := workers.NewMux([]workers.Registration{
		workers.Register(jobs.EnrichRecordSpec, db, enrich.Record{Enricher: en, Queue: client}),
		workers.Register(jobs.EnrichBulkSpec, db, enrich.Bulk{Enricher: en, Queue: client, Concurrency: *conc}),
	}, workers.JobState(db, c.logger(), nil, nil))
	if err != nil {
		return err
	}
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: *conc + 1, Queues: map[string]int{queue: 1},
		TaskCheckInterval: cfg.PollInterval, IsFailure: workers.IsFailure, RetryDelayFunc: workers.RetryDelay,
		LogLevel: asynq.WarnLevel, Logger: proc.AsynqLogger{L: c.logger()}})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	defer srv.Shutdown()
	task, err := jobs.NewEnrichBulkTask(jobs.EnrichBulkPayload{OrgID: org.ID, AccountIDs: ids, QuotaDay: time.Now().UTC().Format(time.DateOnly)})
	if err != nil {
		return err
	}
	task.Queue = queue

	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	enq := &jobs.Enqueuer{DB: db, Client: client, Log: c.logger()}
	job, _, err := enq.Enqueue(ctx, jobs.Request{OrgID: org.ID, Task: task})
	for err == nil && !store.JobFinal(job.State) {
		time.Sleep(10 * time.Millisecond)
		job, err = db.Job(ctx, org.ID, job.ID)
	}
	crmq := time.Since(start)
	close(stop)
	sampler.Wait()
	if err != nil {
		return err
	}
	var res jobs.EnrichBulkResult
	if job.State != store.JobSucceeded || job.Result == nil || json.Unmarshal(*job.Result, &res) != nil {
		return fmt.Errorf("bulk job %s ended %s: %v", job.ID, job.State, job.Error)
	}
	jobID := job.ID

	// The pages the bulk read, fetched bare.
	recs, err := db.JobEnrichments(ctx, org.ID, jobID)
	if err != nil {
		return err
	}
	var pages [][]string
	perHost := map[string]int{}
	total := 0
	for _, r := range recs {
		var s struct {
			Pages []string `json:"pages"`
		}
		_ = json.Unmarshal(r.Site, &s)
		pages = append(pages, s.Pages)
		total += len(s.Pages)
		if r.Website != nil {
			perHost[*r.Website] += len(s.Pages)
		}
	}
	bareClient := newClient()
	slots := make(chan struct{}, *conc)
	var wg sync.WaitGroup
	start = time.Now()
	for _, ps := range pages {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, p := range ps {
				_, _ = bareClient.Get(ctx, p)
			}
		})
	}
	wg.Wait()
	bare := time.Since(start)
	floor := 0
	for _, n := range perHost {
		floor = max(floor, n)
	}
	rep := enrichBenchReport{Machine: machine, Records: *records, Hosts: *hosts, HostDelayMS: float64(delay.Milliseconds()), Concurrency: *conc,
		Pages: total, CRMQSeconds: crmq.Seconds(), BareSeconds: bare.Seconds(), FloorSeconds: float64(floor) * delay.Seconds(),
		RecordsPerSec: float64(*records) / crmq.Seconds(), Ratio: crmq.Seconds() / bare.Seconds(),
		PeakHeapMB: float64(peak) / (1 << 20), Succeeded: res.Succeeded, FieldsWritten: res.FieldsWritten, BulkConcurrent: *conc}
	rep.PeakRSSMB = peakRSSMB()
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(c.stdout, "machine: %s\n", rep.Machine)
	fmt.Fprintf(c.stdout, "%d records over %d hosts, host delay %v, %d at once: %d pages read, %d succeeded, %d fields written\n",
		rep.Records, rep.Hosts, *delay, rep.Concurrency, rep.Pages, rep.Succeeded, rep.FieldsWritten)
	fmt.Fprintf(c.stdout, "crmq bulk: %.2f s = %.1f records/s; bare fetch of the same pages: %.2f s; crmq / bare %.2f\n",
		rep.CRMQSeconds, rep.RecordsPerSec, rep.BareSeconds, rep.Ratio)
	fmt.Fprintf(c.stdout, "politeness floor (busiest host's pages x delay): %.2f s; peak heap %.1f MB, peak RSS %.0f MB\n",
		rep.FloorSeconds, rep.PeakHeapMB, rep.PeakRSSMB)
	return nil
}
