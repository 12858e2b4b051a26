package fair

import (
	"encoding/json"
	"testing"

	"github.com/crmq/crmq/jobs"
)

// Every org task's payload has its org id read from its first bytes, and
// OrgOf answers what decoding the document would, whatever its shape.
func TestOrgOfReadsTheLeadingOrgLikeTheDecoder(t *testing.T) {
	must := func(task jobs.Task, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return task.Payload
	}
	marshal := func(v any) []byte {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	families := map[string][]byte{
		"ping":            must(jobs.NewPingTask(7, "", 0)),
		"summary":         marshal(jobs.SummaryPayload{OrgID: 7}),
		"enrich":          marshal(jobs.EnrichRecordPayload{OrgID: 7}),
		"enrich bulk":     marshal(jobs.EnrichBulkPayload{OrgID: 7}),
		"export":          marshal(jobs.ExportSegmentPayload{OrgID: 7}),
		"segment refresh": marshal(jobs.SegmentRefreshPayload{OrgID: 7}),
		"rfm":             must(jobs.NewRFMRefreshTask(7)),
		"orphans":         must(jobs.NewOrphansTask(7)),
		"prune":           must(jobs.NewPruneTask(7)),
		"exports expire":  must(jobs.NewExportsExpireTask(7)),
	}
	for name, p := range families {
		if org, ok := leadingOrg(p); !ok || org != 7 {
			t.Errorf("%s payload %s: leading org %d, fast %v", name, p, org, ok)
		}
	}
	decoded := func(p []byte) int64 {
		var v struct {
			OrgID int64 `json:"org_id"`
		}
		if json.Unmarshal(p, &v) != nil {
			return 0
		}
		return v.OrgID
	}
	for _, p := range []string{
		`{"org_id":42,"queue":"low"}`, `{"org_id":42}`, `{"org_id":-3}`, `{"org_id":0}`,
		`{"org_id":007}`, `{"org_id":+5}`, `{"org_id":1e3}`, `{"org_id":"7"}`, `{"org_id":9223372036854775808}`,
		`{"org_id": 42}`, `{"queue":"low","org_id":42}`, `{"org_id":}`, `{"org_id":-}`, `{}`, `x`, ``,
	} {
		if got, want := OrgOf([]byte(p)), decoded([]byte(p)); got != want {
			t.Errorf("OrgOf(%s) = %d, the decoder says %d", p, got, want)
		}
	}
}
