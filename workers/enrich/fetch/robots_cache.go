package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RobotsFile is a robots.txt answer as read: its status and at most
// robotsMaxBytes of its body, and when it was read.
type RobotsFile struct {
	Status  int       `json:"status"`
	Body    []byte    `json:"body"`
	Fetched time.Time `json:"fetched"`
}

// RobotsCache keeps the robots.txt files one worker process read for the
// others, so a site is asked for it once a day, not once per process.
// Only answers the rules come from are kept (2xx, and 4xx meaning no
// rules); a 5xx, a 429 or a network failure is asked again next time.
type RobotsCache interface {
	Get(ctx context.Context, origin string) (RobotsFile, bool, error)
	Put(ctx context.Context, origin string, f RobotsFile, ttl time.Duration) error
}

// RedisRobots is a RobotsCache in Redis: one key per origin with the
// file's remaining time to live, so every process forgets it at once.
type RedisRobots struct {
	RDB    redis.UniversalClient
	Prefix string // key prefix; "crmq:robots:" when empty
}

func (r RedisRobots) key(origin string) string {
	p := r.Prefix
	if p == "" {
		p = "crmq:robots:"
	}
	return p + origin
}

// Get implements RobotsCache.
func (r RedisRobots) Get(ctx context.Context, origin string) (RobotsFile, bool, error) {
	b, err := r.RDB.Get(ctx, r.key(origin)).Bytes()
	if errors.Is(err, redis.Nil) {
		return RobotsFile{}, false, nil
	}
	if err != nil {
		return RobotsFile{}, false, fmt.Errorf("robots cache: %w", err)
	}
	var f RobotsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return RobotsFile{}, false, fmt.Errorf("robots cache %s: %w", origin, err)
	}
	return f, true, nil
}

// Put implements RobotsCache.
func (r RedisRobots) Put(ctx context.Context, origin string, f RobotsFile, ttl time.Duration) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := r.RDB.Set(ctx, r.key(origin), b, ttl).Err(); err != nil {
		return fmt.Errorf("robots cache: %w", err)
	}
	return nil
}
