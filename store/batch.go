package store

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// batcher groups concurrent calls of one kind into one statement, the way
// Postgres groups commits: a call that finds no batch running starts one at
// once (a lone call waits for nothing), and calls that arrive while a batch
// runs go together in the next. Under load a job-state write then costs a
// share of one statement, one round trip and one commit instead of a whole
// one each; unloaded, it costs what it did.
//
// A batch of one runs one's statement; a batch that fails is run again one
// call at a time, so a call's error is its own (a bad row cannot fail its
// neighbours) and every call sees the same errors it would alone.
//
// With linger set, a call that starts a batch less than twice linger after
// the previous call arrived (calls are coming steadily) waits for company
// first, as Postgres's commit_delay does: at 1,000 jobs/s a statement takes
// less time than the gap between two calls, so without it nearly every call
// ran alone. It waits linger, or, after a round of at least lingerCrowd
// calls (a round: the batches run from one start until no call waits),
// until as many calls have gathered as that round served: callers that
// come back as soon as they are served (a fixed set of clients, a
// worker's slots) are all there long before linger, and did wait for it
// whole (with 16 clients posting jobs, 2 ms idle of every 3.5). Smaller
// rounds are a trickle (two or three calls at 750 jobs/s), which the whole
// linger gathers best: ending it at their size made 13% more statements.
// A call after a quiet spell waits for nothing.
//
// With minRate set, a call also waits only while calls of its kind come at
// least that fast (the rate over about the last rateWindow, see
// callRate): below it the cores have room, a statement per call costs
// only CPU that is there, and the wait only adds latency (at 500 jobs/s on
// two cores, e2e p99 1.38-1.64x raw asynq with it, 1.21-1.30x without, in
// six alternated pairs); above it the shared statements leave the cores
// the room.
type batcher[In, Out any] struct {
	max     int
	linger  time.Duration
	minRate float64         // calls per second; 0: any rate
	key     func(In) string // calls with the same key never share a batch
	one     func(ctx context.Context, in In) (Out, error)
	many    func(ctx context.Context, in []In) ([]Out, []error, error) // results aligned with in

	mu       sync.Mutex
	pending  []*batchCall[In, Out]
	running  bool
	lastCall time.Time
	rate     callRate
	// While the first batch of a round lingers: gathered is closed once
	// target calls are pending. round counts the calls of the current
	// round, lastRound those of the previous one.
	gathered         chan struct{}
	target           int
	round, lastRound int
	counts           batchCounts
}

// batchCounts: calls served and statements run (a fallback counts one per call).
type batchCounts struct{ calls, statements atomic.Int64 }

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

// rateWindow is the time over which a batcher measures its call rate.
const rateWindow = 100 * time.Millisecond

// callRate is a rate measured over about the last window: each call counts
// one, decaying by e every window, so the count is about rate x window
// and a quiet spell empties it by itself. (At a steady rate r it settles
// at r x window + 1/2; for calls at random times at 500/s over 100 ms it
// wavers by about 10%.)
type callRate struct {
	count float64
	at    time.Time
}

// add counts one call at now and returns the rate in calls per second.
func (r *callRate) add(now time.Time, window time.Duration) float64 {
	r.count = r.count*math.Exp(-float64(now.Sub(r.at))/float64(window)) + 1
	r.at = now
	return r.count / window.Seconds()
}

// lingerCrowd is the smallest round after which a lingering batch runs
// as soon as as many calls have gathered.
const lingerCrowd = 4

// batchTimeout bounds one batch's statement: the callers' contexts may
// differ, so the batch runs on its own.
const batchTimeout = 30 * time.Second

func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	if err := ctx.Err(); err != nil {
		var zero Out
		return zero, err // nothing written
	}
	c := &batchCall[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		var wait time.Duration
		var gathered chan struct{}
		if now := time.Now(); b.linger > 0 {
			fast := b.rate.add(now, rateWindow) >= b.minRate
			if now.Sub(b.lastCall) < 2*b.linger && fast {
				wait = b.linger
				if b.lastRound >= lingerCrowd {
					gathered = make(chan struct{})
					b.gathered, b.target = gathered, b.lastRound
				}
			}
			b.lastCall = now
		}
		go b.loop(wait, gathered)
	} else if b.linger > 0 {
		b.lastCall = time.Now()
		b.rate.add(b.lastCall, rateWindow)
		if b.gathered != nil && len(b.pending) >= b.target {
			close(b.gathered)
			b.gathered = nil
		}
	}
	b.mu.Unlock()
	// The call waits for its batch even when ctx ends meanwhile: its write
	// may commit, and the caller must know whether it did (an inserted job
	// row whose task never reaches Redis is deleted by the enqueuer). The
	// batch's own timeout bounds the wait.
	<-c.done
	return c.out, c.err
}

// loop runs batches, the first after wait or once gathered is closed,
// until no call waits.
func (b *batcher[In, Out]) loop(wait time.Duration, gathered chan struct{}) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-gathered:
			t.Stop()
		}
	}
	for {
		b.mu.Lock()
		b.gathered = nil
		if len(b.pending) == 0 {
			b.running = false
			b.lastRound, b.round = b.round, 0
			b.mu.Unlock()
			return
		}
		batch, rest := b.take()
		b.pending = rest
		b.round += len(batch)
		b.mu.Unlock()
		b.run(batch)
	}
}

// take splits the pending calls into the next batch (at most max, distinct
// keys, in arrival order) and the rest. mu is held.
func (b *batcher[In, Out]) take() (batch, rest []*batchCall[In, Out]) {
	seen := map[string]bool{}
	for _, c := range b.pending {
		k := b.key(c.in)
		if len(batch) >= b.max || seen[k] {
			rest = append(rest, c)
			continue
		}
		seen[k] = true
		batch = append(batch, c)
	}
	return batch, rest
}

func (b *batcher[In, Out]) run(batch []*batchCall[In, Out]) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	b.counts.calls.Add(int64(len(batch)))
	if len(batch) > 1 {
		b.counts.statements.Add(1)
		in := make([]In, len(batch))
		for i, c := range batch {
			in[i] = c.in
		}
		outs, errs, err := b.many(ctx, in)
		if err == nil {
			for i, c := range batch {
				c.out, c.err = outs[i], errs[i]
				close(c.done)
			}
			return
		}
	}
	for _, c := range batch {
		b.counts.statements.Add(1)
		c.out, c.err = b.one(ctx, c.in)
		close(c.done)
	}
}
