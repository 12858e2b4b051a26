package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// A new user sets ABM up over HTTP and the worker process refreshes it:
// global criteria, techniques activated, configure (202 + job), the
// segment:refresh job succeeds, a segment's membership follows, and a
// second refresh with nothing changed skips its work.
func TestSegmentationThroughTheWorker(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	key := s.newOrg("abm")
	put := func(path, body string) {
		t.Helper()
		var v any
		if r := s.call("PUT", path, key, json.RawMessage(body), &v); r.StatusCode != 200 {
			t.Fatalf("PUT %s: %d %v", path, r.StatusCode, v)
		}
	}
	put("/v1/modules/accounts/records", `[{"external_id":"h1","name":"H1","industry":"Healthcare","employees":3000,"country":"DE"},
		{"external_id":"h2","name":"H2","industry":"Healthcare","employees":50,"country":"DE"},
		{"external_id":"x","name":"X","industry":"Retail","employees":50}]`)
	var deals []string
	for i := range 6 {
		acc, age := "h1", 3
		if i%2 == 1 {
			acc, age = "h2", 300
		}
		deals = append(deals, fmt.Sprintf(`{"external_id":"d%d","account":%q,"stage":"Closed Won","amount":100,"close_date":%q}`,
			i, acc, time.Now().AddDate(0, 0, -age).Format(time.DateOnly)))
	}
	put("/v1/modules/deals/records", "["+strings.Join(deals, ",")+"]")
	put("/v1/abm/global-criteria", `{"conditions":[{"field":"country","op":"is_not_empty"}]}`)
	for _, tech := range []string{"rfm", "firmographics"} {
		var v struct {
			Job *accepted `json:"refresh_job"`
		}
		if r := s.call("POST", "/v1/abm/techniques/"+tech+"/activate", key, nil, &v); r.StatusCode != 200 || v.Job == nil {
			t.Fatalf("activate %s: %d %+v, want its refresh job", tech, r.StatusCode, v)
		}
		// Each activation refreshes its technique; wait, so the refresh
		// configure starts finds both techniques free.
		if j := s.waitJob(key, v.Job.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed); j.State != store.JobSucceeded {
			t.Fatalf("activation refresh of %s: %+v", tech, j)
		}
	}
	var seg store.Segment
	if r := s.call("POST", "/v1/segments", key, json.RawMessage(`{"name":"Enterprise healthcare","criteria":{"conditions":[
		{"field":"label.firmographics","op":"equals","value":"Enterprise"},{"field":"industry","op":"equals","value":"Healthcare"}]}}`), &seg); r.StatusCode != 201 {
		t.Fatalf("create segment: %d %+v", r.StatusCode, seg)
	}
	var a accepted
	if r := s.call("POST", "/v1/abm/configure", key, nil, &a); r.StatusCode != 202 {
		t.Fatalf("configure: %d", r.StatusCode)
	}
	j := s.waitJob(key, a.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	var res jobs.SegmentRefreshResult
	ran := 0 // the two activated techniques; the three behavioural ones are inactive
	if j.Result != nil && json.Unmarshal(*j.Result, &res) == nil {
		for _, tr := range res.Techniques {
			if !tr.Skipped {
				ran++
			}
		}
	}
	if j.State != store.JobSucceeded || len(res.Techniques) != 5 || ran != 2 || res.Segments != 1 {
		t.Fatalf("configure's refresh: %+v (result %+v)", j, res)
	}
	if r := s.call("GET", fmt.Sprintf("/v1/segments/%d", seg.ID), key, nil, &seg); r.StatusCode != 200 || seg.MemberCount != 1 {
		t.Fatalf("segment after the refresh: %d %+v, want h1 alone", r.StatusCode, seg)
	}
	if r := s.call("POST", "/v1/abm/refresh", key, nil, &a); r.StatusCode != 202 {
		t.Fatalf("refresh: %d", r.StatusCode)
	}
	j = s.waitJob(key, a.JobID, 60*time.Second, store.JobSucceeded, store.JobFailed)
	res = jobs.SegmentRefreshResult{}
	if j.State != store.JobSucceeded || json.Unmarshal(*j.Result, &res) != nil || !res.Skipped {
		t.Fatalf("refresh with nothing changed: %+v (result %+v), want skipped", j, res)
	}
}
