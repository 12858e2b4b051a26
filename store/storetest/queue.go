package storetest

import (
	"testing"

	"github.com/hibiken/asynq"
)

// Queue is a test's own Redis DB as asynq sees it: the connection option,
// a client and an inspector, closed when the test ends.
type Queue struct {
	URL       string
	Opt       asynq.RedisConnOpt
	Client    *asynq.Client
	Inspector *asynq.Inspector
}

// NewQueue claims a Redis DB for the test (see RedisURL) and opens asynq
// on it.
func NewQueue(t testing.TB) Queue {
	t.Helper()
	url := RedisURL(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	q := Queue{URL: url, Opt: opt, Client: asynq.NewClient(opt), Inspector: asynq.NewInspector(opt)}
	t.Cleanup(func() {
		q.Client.Close()
		q.Inspector.Close()
	})
	return q
}
