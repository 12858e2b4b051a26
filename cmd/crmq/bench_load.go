package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is one finished flight. observed is what a polling client saw,
// when it differs from the latency (crmq phase only).
type sample struct {
	lat, observed time.Duration
	// crmq's parts of lat, when known: the POST round trip, the row's
	// created_at -> started_at (enqueue, queue wait, admission, start)
	// and started_at -> finished_at (the handler and the finish).
	parts *[3]time.Duration
}

// tally collects one phase's outcomes from many goroutines.
type tally struct {
	mu       sync.Mutex
	lat, obs []time.Duration
	parts    [3][]time.Duration
	errors   int
	firstErr string
}

func (t *tally) ok(s sample) {
	t.mu.Lock()
	t.lat = append(t.lat, s.lat)
	if s.observed > 0 {
		t.obs = append(t.obs, s.observed)
	}
	if s.parts != nil {
		for i, d := range s.parts {
			t.parts[i] = append(t.parts[i], d)
		}
	}
	t.mu.Unlock()
}

func (t *tally) fail(err error) {
	t.mu.Lock()
	t.errors++
	if t.firstErr == "" {
		t.firstErr = oneLine(err.Error())
	}
	t.mu.Unlock()
}

// result sorts the latencies and reads percentiles by nearest rank.
func (t *tally) result(name string, sent, dropped int, window time.Duration) phaseResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := phaseResult{Name: name, Sent: sent, Count: len(t.lat), Errors: t.errors, Dropped: dropped, FirstError: t.firstErr}
	if window > 0 {
		r.AchievedRate = math.Round(float64(sent)/window.Seconds()*10) / 10
	}
	if len(t.lat) > 0 {
		slices.Sort(t.lat)
		r.P50MS, r.P99MS, r.MaxMS = ms(percentile(t.lat, 0.50)), ms(percentile(t.lat, 0.99)), ms(t.lat[len(t.lat)-1])
	}
	if len(t.obs) > 0 {
		slices.Sort(t.obs)
		r.ObservedP50MS, r.ObservedP99MS = ms(percentile(t.obs, 0.50)), ms(percentile(t.obs, 0.99))
	}
	if len(t.parts[0]) > 0 {
		r.Parts = &latencyParts{}
		for i, p := range []*[2]float64{&r.Parts.Post, &r.Parts.Queued, &r.Parts.Run} {
			slices.Sort(t.parts[i])
			*p = [2]float64{ms(percentile(t.parts[i], 0.50)), ms(percentile(t.parts[i], 0.99))}
		}
	}
	return r
}

// percentile of sorted values, nearest-rank: the smallest value with at
// least q of the values at or below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())/100) / 10
}

// phase is what one phase's generator and the ends of its flights share:
// the in-flight slots, the flights not yet ended, and the tally.
type phase struct {
	t       tally
	pending sync.WaitGroup
	slots   chan struct{}
	started int // flights started, warm-up included (CPU and statements are per started job)
}

func newPhase(maxInFlight int) *phase {
	return &phase{slots: make(chan struct{}, maxInFlight)}
}

// flight is one started job. It ends once, by whoever sees its end first
// (handler, poller, error or timeout); a later end is ignored.
type flight struct {
	t0       time.Time
	id       string
	posted   time.Duration // crmq: POST start -> 202 received
	next     time.Time     // crmq: next status poll
	measured bool          // false during the warm-up
	ended    atomic.Bool
	phase    *phase
	onEnd    func(err error) // preflight flights, which belong to no phase
}

func (f *flight) end(s sample, err error) {
	if !f.ended.CompareAndSwap(false, true) {
		return
	}
	if f.phase == nil {
		f.onEnd(err)
		return
	}
	if f.measured {
		if err != nil {
			f.phase.t.fail(err)
		} else {
			f.phase.t.ok(s)
		}
	}
	<-f.phase.slots
	f.phase.pending.Done()
}

// run starts flights at the bench rate: the warm-up first, whose flights
// count nowhere, then the measured window. start must not block.
func (p *phase) run(ctx context.Context, bc benchConfig, start func(f *flight)) (sent, dropped int, window time.Duration) {
	launch := func(measured bool) func(time.Time) {
		return func(t0 time.Time) {
			p.pending.Add(1)
			p.started++
			start(&flight{t0: t0, measured: measured, phase: p})
		}
	}
	if bc.Warmup > 0 {
		generate(ctx, bc.Rate, bc.Warmup, p.slots, launch(false))
	}
	return generate(ctx, bc.Rate, bc.Duration, p.slots, launch(true))
}

// generate calls start at rate per second for d. It is open loop: the
// schedule never waits for the system under test; a start that would
// exceed the in-flight cap (slots) is dropped and counted, not delayed.
// Ticks the runtime coalesces are caught up, so the rate holds. start must
// not block; whoever ends the flight frees its slot.
func generate(ctx context.Context, rate int, d time.Duration, slots chan struct{}, start func(t0 time.Time)) (sent, dropped int, window time.Duration) {
	total := int(float64(rate) * d.Seconds())
	period := time.Second / time.Duration(rate)
	tick := time.NewTicker(max(period, time.Millisecond))
	defer tick.Stop()
	begin := time.Now()
	launched := 0
	for launched < total {
		due := min(total, int(time.Since(begin).Seconds()*float64(rate))+1)
		for ; launched < due; launched++ {
			select {
			case slots <- struct{}{}:
				sent++
				start(time.Now())
			default:
				dropped++
			}
		}
		if launched == total {
			break
		}
		select {
		case <-ctx.Done():
			return sent, dropped, time.Since(begin)
		case <-tick.C:
		}
	}
	// The last start owns one period of the window.
	return sent, dropped, time.Since(begin) + period
}

// settle waits until every flight of the phase has ended or ctx ends.
func (p *phase) settle(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
