package fair

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// sendCmd queues one command on c and returns it (its error is known once
// the pipeline ran).
type sendCmd func(ctx context.Context, c redis.Cmdable) redis.Cmder

// sender sends the limiter's commands nobody waits for (marks, releases)
// in the background, many in one round trip: the commands that arrive
// within sendLinger of the first, or while a pipeline is on its way, go
// together. Under load a mark or a release then costs the API or worker a
// share of one round trip instead of a whole one. Past maxQueued commands
// waiting, a command is sent by its caller, which slows it to what Redis
// takes. A command that fails is logged; the limiter does not depend on
// it (a lost mark is made when the task is first refused, a lost release
// ends with its lease).
type sender struct {
	rdb  redis.UniversalClient
	log  *slog.Logger
	what string // names the commands in the log

	// gather, when set, is asked for more commands each time a pipeline
	// is made (the marks, grouped); poke says one has some.
	gather func() []sendCmd

	mu      sync.Mutex
	queue   []sendCmd
	running bool
}

const (
	sendLinger    = 5 * time.Millisecond
	sendMaxQueued = 4096
	sendTimeout   = 5 * time.Second
)

func newSender(rdb redis.UniversalClient, log *slog.Logger, what string) *sender {
	return &sender{rdb: rdb, log: log, what: what}
}

// send queues cmd, or runs it at once when too many wait.
func (s *sender) send(ctx context.Context, cmd sendCmd) {
	s.mu.Lock()
	if len(s.queue) >= sendMaxQueued {
		s.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		defer cancel()
		s.report(rctx, cmd(rctx, s.rdb).Err(), 1)
		return
	}
	s.queue = append(s.queue, cmd)
	s.start()
	s.mu.Unlock()
}

// poke makes sure a pipeline is on its way or coming, for what gather
// holds.
func (s *sender) poke() {
	s.mu.Lock()
	s.start()
	s.mu.Unlock()
}

// start starts the loop unless it runs; mu is held.
func (s *sender) start() {
	if !s.running {
		s.running = true
		go s.loop()
	}
}

// loop sends pipelines until nothing waits.
func (s *sender) loop() {
	time.Sleep(sendLinger)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		if s.gather != nil {
			batch = append(batch, s.gather()...)
		}
		if len(batch) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.run(batch)
	}
}

func (s *sender) run(batch []sendCmd) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	for i, c := range batch {
		cmds[i] = c(ctx, pipe)
	}
	if _, err := pipe.Exec(ctx); err == nil {
		return
	}
	failed := 0
	var last error
	for i, c := range cmds {
		err := c.Err()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// A script Redis does not hold yet (a restart, a flush): sent
			// alone, Script.Run loads it.
			err = batch[i](ctx, s.rdb).Err()
		}
		if err != nil {
			failed, last = failed+1, err
		}
	}
	s.report(ctx, last, failed)
}

func (s *sender) report(ctx context.Context, err error, n int) {
	if err != nil && s.log != nil {
		s.log.WarnContext(ctx, "per-org limiter: commands not sent", "what", s.what, "count", n, "err", err)
	}
}

// flush waits until every command queued so far was sent (at shutdown).
func (s *sender) flush() {
	for {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
