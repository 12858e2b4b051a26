package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmq/crmq/jobs"
)

// queueCollector exposes asynq queue stats from a snapshot refreshed every
// interval, because each GetQueueInfo runs a Lua script with MEMORY USAGE
// sampling on Redis: scrapes must not multiply that cost.
type queueCollector struct {
	insp *asynq.Inspector
	log  *slog.Logger

	mu    sync.RWMutex
	snap  []*asynq.QueueInfo
	at    time.Time
	scrOK bool

	size, latency, paused, processed, failed, age, up *prometheus.Desc
}

func newQueueCollector(insp *asynq.Inspector, log *slog.Logger) *queueCollector {
	l := []string{"queue"}
	return &queueCollector{
		insp:      insp,
		log:       log,
		size:      prometheus.NewDesc("crmq_queue_tasks", "Tasks in a queue by state.", []string{"queue", "state"}, nil),
		latency:   prometheus.NewDesc("crmq_queue_latency_seconds", "Age of the oldest pending task.", l, nil),
		paused:    prometheus.NewDesc("crmq_queue_paused", "1 when the queue is paused.", l, nil),
		processed: prometheus.NewDesc("crmq_queue_processed_total", "Tasks processed (succeeded or failed) since the queue existed.", l, nil),
		failed:    prometheus.NewDesc("crmq_queue_failed_total", "Tasks failed since the queue existed.", l, nil),
		age:       prometheus.NewDesc("crmq_queue_stats_age_seconds", "Age of the cached queue snapshot.", nil, nil),
		up:        prometheus.NewDesc("crmq_queue_stats_up", "1 when the last refresh of queue stats succeeded.", nil, nil),
	}
}

// run refreshes the snapshot until ctx ends.
func (c *queueCollector) run(ctx context.Context, every time.Duration) {
	c.refresh()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refresh()
		}
	}
}

func (c *queueCollector) refresh() {
	snap, err := c.fetch()
	if err != nil {
		c.log.Warn("queue stats refresh failed", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scrOK = err == nil
	if err == nil {
		c.snap, c.at = snap, time.Now()
	}
}

// fetch reads every crmq queue; a queue that never held a task does not
// exist in Redis yet and is reported as empty.
func (c *queueCollector) fetch() ([]*asynq.QueueInfo, error) {
	existing, err := c.insp.Queues()
	if err != nil {
		return nil, err
	}
	snap := make([]*asynq.QueueInfo, 0, len(jobs.Queues))
	for _, q := range jobs.Queues {
		if !slices.Contains(existing, q) {
			snap = append(snap, &asynq.QueueInfo{Queue: q})
			continue
		}
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			return nil, err
		}
		snap = append(snap, info)
	}
	return snap, nil
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.latency, c.paused, c.processed, c.failed, c.age, c.up} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	up := 0.0
	if c.scrOK {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if c.at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, time.Since(c.at).Seconds())
	for _, q := range c.snap {
		for state, n := range map[string]int{
			"pending": q.Pending, "active": q.Active, "scheduled": q.Scheduled, "retry": q.Retry,
			"archived": q.Archived, "completed": q.Completed, "aggregating": q.Aggregating,
		} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n), q.Queue, state)
		}
		paused := 0.0
		if q.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, q.Latency.Seconds(), q.Queue)
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q.Queue)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(q.ProcessedTotal), q.Queue)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(q.FailedTotal), q.Queue)
	}
}
