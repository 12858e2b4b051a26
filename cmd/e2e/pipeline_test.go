package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// touch is one activity as the test generated it.
type touch struct {
	record string // external id of the lead or contact
	at     time.Time
	signal bool
}

// The whole pipeline as an app drives it: ingest CRM data over HTTP,
// enqueue orphans:recompute over HTTP, poll the job to succeeded, read the
// orphan flags from the interactions endpoint and check each against an
// orphan computation done here, independently, from what was sent.
func TestPipelineIngestRecomputeOrphans(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	// The Procfile's three processes; the scheduler runs its default weekly
	// table, so the orphans run below is the one enqueued over HTTP.
	sched := s.start("scheduler", "CRMQ_CRON_ORPHANS=0 3 * * 1")
	key := s.newOrg("pipeline")

	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Now().UTC().Add(-90 * 24 * time.Hour).Truncate(time.Minute)
	put := func(module string, rows []map[string]any) {
		t.Helper()
		var res store.UpsertResult
		r := s.call("PUT", "/v1/modules/"+module+"/records", key, rows, &res)
		if r.StatusCode != 200 || res.Failed != 0 || res.Created != len(rows) {
			t.Fatalf("PUT %s: %d %+v", module, r.StatusCode, res)
		}
	}
	put("accounts", []map[string]any{{"external_id": "acc-1", "name": "Acme"}, {"external_id": "acc-2", "name": "Beta"}})

	records := map[string][]string{"contacts": nil, "leads": nil}
	var contacts, leads []map[string]any
	for i := range 30 {
		id := fmt.Sprintf("c-%02d", i)
		records["contacts"] = append(records["contacts"], id)
		contacts = append(contacts, map[string]any{"external_id": id, "last_name": id, "account": []string{"acc-1", "acc-2"}[i%2], "lifecycle_stage": "customer"})
	}
	for i := range 20 {
		id := fmt.Sprintf("l-%02d", i)
		records["leads"] = append(records["leads"], id)
		leads = append(leads, map[string]any{"external_id": id, "last_name": id, "lead_status": "Contacted"})
	}
	put("contacts", contacts)
	put("leads", leads)

	// Activities: per record a random walk of signals and follow-ups, each
	// at a distinct minute; some records end on unanswered signals.
	var touches []touch
	var activities []map[string]any
	n := 0
	for module, ids := range records {
		for _, id := range ids {
			at := base.Add(time.Duration(rng.IntN(600)) * time.Minute)
			for range 3 + rng.IntN(12) {
				at = at.Add(time.Duration(10+rng.IntN(5000)) * time.Minute)
				if at.After(time.Now().Add(-time.Hour)) {
					break
				}
				signal := rng.IntN(2) == 0
				touches = append(touches, touch{record: module + "/" + id, at: at, signal: signal})
				a := map[string]any{
					"external_id": fmt.Sprintf("act-%04d", n), "occurred_at": at.Format(time.RFC3339),
					"medium": "email", "kind": "email", "direction": "follow_up", "user_id": "user-1",
				}
				if signal {
					a["direction"], a["user_id"] = "signal", nil
				}
				if module == "contacts" {
					a["contact"] = id
				} else {
					a["lead"] = id
				}
				activities = append(activities, a)
				n++
			}
		}
	}
	put("activities", activities)

	job := s.enqueue(key, map[string]any{"type": "orphans:recompute"})
	done := s.waitJob(key, job.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	if done.State != store.JobSucceeded {
		t.Fatalf("orphans:recompute %+v error %v", done, done.Error)
	}
	var result struct {
		Modules []struct {
			Module     string    `json:"module"`
			Average    *float64  `json:"average_gap_seconds"`
			Records    int       `json:"records"`
			Orphans    int       `json:"orphans"`
			ComputedAt time.Time `json:"computed_at"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(*done.Result, &result); err != nil || len(result.Modules) != 2 {
		t.Fatalf("result %s: %v", *done.Result, err)
	}

	for _, m := range result.Modules {
		want := computeOrphans(touches, m.Module, records[m.Module], m.ComputedAt)
		if m.Average == nil || math.Abs(*m.Average-want.average) > 1e-3 {
			t.Fatalf("%s average %v, independent computation %v", m.Module, m.Average, want.average)
		}
		if m.Records != len(records[m.Module]) || m.Orphans != len(want.orphans) {
			t.Fatalf("%s: %d records, %d orphans; want %d, %d", m.Module, m.Records, m.Orphans, len(records[m.Module]), len(want.orphans))
		}
		orphansSeen := 0
		for _, id := range records[m.Module] {
			var trail struct {
				Orphan *struct {
					IsOrphan  bool       `json:"is_orphan"`
					OpenSince *time.Time `json:"open_since"`
				} `json:"orphan"`
			}
			s.call("GET", "/v1/modules/"+m.Module+"/records/"+id+"/interactions?limit=5000", key, nil, &trail)
			if trail.Orphan == nil {
				t.Fatalf("%s %s: no orphan state after the recompute", m.Module, id)
			}
			if trail.Orphan.IsOrphan != want.orphans[id] {
				t.Errorf("%s %s: is_orphan %v, independent computation %v", m.Module, id, trail.Orphan.IsOrphan, want.orphans[id])
			}
			if trail.Orphan.IsOrphan {
				orphansSeen++
			}
		}
		if orphansSeen == 0 || orphansSeen == len(records[m.Module]) {
			t.Fatalf("%s: %d orphans of %d: the data does not exercise both outcomes", m.Module, orphansSeen, len(records[m.Module]))
		}
	}

	select {
	case <-sched.Done:
		t.Fatalf("scheduler exited: %v", sched.Err)
	default:
	}

	// Deleting a contact deletes its trail and orphan state.
	if r := s.call("DELETE", "/v1/modules/contacts/records/c-00", key, nil, nil); r.StatusCode != 204 {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if r := s.call("GET", "/v1/modules/contacts/records/c-00/interactions", key, nil, nil); r.StatusCode != 404 {
		t.Fatalf("interactions of a deleted contact: %d", r.StatusCode)
	}
}

type orphanWant struct {
	average float64
	orphans map[string]bool
}

// computeOrphans is the orphan rule, written again from its statement in
// README: response gap = signal to the first later follow-up; average over
// the module; open gap = now minus the earliest signal after the record's
// last follow-up; orphan when the open gap exceeds the average.
func computeOrphans(all []touch, module string, ids []string, now time.Time) orphanWant {
	byRecord := map[string][]touch{}
	for _, tc := range all {
		byRecord[tc.record] = append(byRecord[tc.record], tc)
	}
	var sum float64
	var count int
	open := map[string]time.Time{}
	for _, id := range ids {
		ts := byRecord[module+"/"+id]
		sort.Slice(ts, func(i, j int) bool { return ts[i].at.Before(ts[j].at) })
		for i, tc := range ts {
			if !tc.signal {
				continue
			}
			answered := false
			for _, later := range ts[i+1:] {
				if !later.signal && later.at.After(tc.at) {
					sum += later.at.Sub(tc.at).Seconds()
					count++
					answered = true
					break
				}
			}
			if !answered {
				if _, ok := open[id]; !ok {
					open[id] = tc.at
				}
			}
		}
	}
	w := orphanWant{orphans: map[string]bool{}}
	if count > 0 {
		w.average = sum / float64(count)
	}
	for id, since := range open {
		w.orphans[id] = count > 0 && now.Sub(since).Seconds() > w.average
	}
	return w
}
