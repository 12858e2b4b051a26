package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"
)

// outcome is how a scenario's accepted jobs ended, read from their rows:
// the figures docs/RELIABILITY.md reports.
type outcome struct {
	Accepted  int `db:"accepted"`
	Succeeded int `db:"succeeded"`
	Failed    int `db:"failed"`
	Cancelled int `db:"cancelled"`
	Open      int `db:"open"`     // not final when the wait ended: lost
	RanAgain  int `db:"ranagain"` // attempts > 1
	// First and All are from the instant settle was given to the first
	// job final and to every job final (All is zero if some stayed open).
	First, All time.Duration
}

// Final is the number of jobs in a final state.
func (o outcome) Final() int { return o.Succeeded + o.Failed + o.Cancelled }

// settle polls the rows of ids (errors, as while Postgres is away, are
// polled through) until every one is final or within has passed, and
// times both from `from`.
func settle(t *testing.T, s *system, ids []string, from time.Time, within time.Duration) outcome {
	t.Helper()
	var o outcome
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.db.GetContext(ctx, &o, `
			SELECT count(*) AS accepted,
			       count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
			       count(*) FILTER (WHERE state = 'failed') AS failed,
			       count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
			       count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed', 'cancelled')) AS open,
			       count(*) FILTER (WHERE attempts > 1) AS ranagain
			FROM jobs WHERE id = ANY($1)`, pq.StringArray(ids))
		cancel()
		if err == nil {
			if o.First == 0 && o.Final() > 0 {
				o.First = time.Since(from)
			}
			if o.Open == 0 && o.Accepted == len(ids) {
				o.All = time.Since(from)
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A row missing altogether is lost as well.
	o.Open += len(ids) - o.Accepted
	o.Accepted = len(ids)
	return o
}

// log writes the outcome as the one figures line of a scenario.
func (o outcome) log(t *testing.T, scenario, since string) {
	t.Helper()
	all := fmt.Sprintf("%.1f s", o.All.Seconds())
	if o.All == 0 {
		all = "never (within the wait)"
	}
	t.Logf("%s: accepted %d, final %d (succeeded %d, failed %d, cancelled %d), lost %d, ran again %d; "+
		"first job final %.1f s and every job final %s after %s",
		scenario, o.Accepted, o.Final(), o.Succeeded, o.Failed, o.Cancelled, o.Open, o.RanAgain,
		o.First.Seconds(), all, since)
}
