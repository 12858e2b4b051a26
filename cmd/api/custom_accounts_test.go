package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

// An org whose accounts are the custom module custom_clients, through the
// API: mapping, records, deals linked by the client_ref attribute, RFM and
// firmographics, a segment of a label and a custom field, its stats and
// members, an explanation addressed by the record's external id, the
// ABM account list, and an export of the segment whose CSV holds the
// module's mapped fields, the ABM labels and the attributes. Engagement
// and enrichment of the segment are refused with a 409 naming why.
func TestCustomAccountsModuleOverHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newExportEnv(t, exportBuckets["file"](t)) // org A holds the export env's data; this test uses org B
	key := e.keyB
	put := func(path, body string, status int) string {
		t.Helper()
		r := e.do(t, "PUT", path, key, body)
		b := readBody(r)
		if r.StatusCode != status {
			t.Fatalf("PUT %s: %d %s", path, r.StatusCode, b)
		}
		return b
	}
	put("/v1/abm/mapping", `{"roles": {"accounts": {"module": "custom_clients", "fields": {
		"industry": {"org_field": "attributes.sector"}, "country": {"org_field": "attributes.land"},
		"employees": {"org_field": "attributes.staff"}, "tier": {"org_field": "attributes.tier", "type": "text"}}}},
	 "lookups": {"accounts_contacts": "contacts.attributes.client_ref", "accounts_deals": "deals.attributes.client_ref"}}`, 200)
	put("/v1/modules/custom_clients/records", `[
		{"external_id":"C1","name":"Acme, Clinics","sector":"Healthcare","land":"DE","staff":4000,"tier":"gold"},
		{"external_id":"C2","name":"Beta Care","sector":"Healthcare","land":"FR","staff":500,"tier":"gold"},
		{"external_id":"C3","name":"Corner Shop","sector":"Retail","land":"DE","staff":40,"tier":"gold"},
		{"external_id":"C4","name":"No Country","sector":"Retail","staff":40,"tier":"gold"}]`, 200)
	day := func(ago int) string { return e.clock.now().AddDate(0, 0, -ago).Format(time.DateOnly) }
	put("/v1/modules/deals/records", `[
		{"external_id":"d1","attributes":{"client_ref":"C1"},"stage":"Closed Won","amount":900,"close_date":"`+day(10)+`"},
		{"external_id":"d2","attributes":{"client_ref":"C1"},"stage":"Closed Won","amount":100,"close_date":"`+day(40)+`"},
		{"external_id":"d3","attributes":{"client_ref":"C2"},"stage":"Closed Won","amount":50,"close_date":"`+day(300)+`"},
		{"external_id":"d4","attributes":{"client_ref":"C4"},"stage":"Closed Won","amount":5000,"close_date":"`+day(1)+`"}]`, 200)
	put("/v1/abm/global-criteria", `{"conditions":[{"field":"country","op":"is_not_empty"}]}`, 200)
	for _, name := range []string{"rfm", "firmographics"} {
		if r := e.do(t, "POST", "/v1/abm/techniques/"+name+"/activate", key, ""); r.StatusCode != 200 {
			t.Fatalf("activate %s: %d %s", name, r.StatusCode, readBody(r))
		}
	}
	p := wantProblem(t, e.do(t, "POST", "/v1/abm/techniques/engagement/activate", key, ""), 409, "custom-accounts-unsupported")
	if !strings.Contains(p.Detail, "custom_clients") {
		t.Errorf("engagement refusal: %+v", p)
	}
	var orgB int64
	if err := e.db.GetContext(ctx, &orgB, `SELECT id FROM orgs WHERE name = 'org-b'`); err != nil {
		t.Fatal(err)
	}
	ref := segment.Refresher{Store: e.db, Segments: e.db, Now: e.clock.now, Log: quiet}
	if _, err := ref.Run(ctx, workers.Job[jobs.SegmentRefreshPayload]{ID: "custom-1", Payload: jobs.SegmentRefreshPayload{OrgID: orgB}}); err != nil {
		t.Fatal(err)
	}

	// C1 (10 days, 2 deals, 1000) and C2 (300 days, 1 deal, 50), n = 2:
	// C1 scores 5 5 5 (Champions), C2 3 3 3 (unlabelled by the defaults).
	accounts := decode[store.ABMAccountPage](t, e.do(t, "GET", "/v1/abm/accounts", key, ""))
	if len(accounts.Accounts) != 3 || accounts.Accounts[0].ID != "C1" || accounts.Accounts[0].Labels["rfm"] != "Champions" ||
		accounts.Accounts[0].Labels["firmographics"] != "Enterprise" || accounts.Accounts[2].Labels["firmographics"] != "Small business" {
		t.Errorf("abm accounts: %+v", accounts)
	}

	r := e.do(t, "POST", "/v1/segments", key, `{"name": "Gold champions", "criteria": {"conditions": [
		{"field": "label.rfm", "op": "equals", "value": "Champions"},
		{"field": "tier", "op": "equals", "value": "gold"}], "pattern": "1 OR 2"}}`)
	seg := decode[store.Segment](t, r)
	if r.StatusCode != 201 || seg.MemberCount != 3 {
		t.Fatalf("segment: %d %+v", r.StatusCode, seg)
	}
	d := decode[store.SegmentDetail](t, e.do(t, "GET", fmt.Sprintf("/v1/segments/%d", seg.ID), key, ""))
	if d.Stats.Members != 3 || d.Stats.WonRevenue.Total != "1050.00" || *d.Stats.WonRevenue.Average != "350.00" ||
		d.Stats.Labels["rfm"].Labels["Champions"] != 1 || d.Stats.Labels["rfm"].Unlabelled != 2 ||
		fmt.Sprint(d.Stats.TopCountries) != "[{DE 2} {FR 1}]" {
		t.Errorf("segment stats: %+v", d.Stats)
	}
	members := decode[store.SegmentMemberPage](t, e.do(t, "GET", fmt.Sprintf("/v1/segments/%d/accounts?limit=2", seg.ID), key, ""))
	if len(members.Accounts) != 2 || members.NextCursor == "" || members.Accounts[0].ID != "C1" || *members.Accounts[0].Labels["rfm"].R != 5 ||
		*members.Accounts[1].Industry != "Healthcare" || *members.Accounts[1].Labels["firmographics"].Label != "Mid-market" {
		t.Errorf("members: %+v", members)
	}
	rest := decode[store.SegmentMemberPage](t, e.do(t, "GET", fmt.Sprintf("/v1/segments/%d/accounts?cursor=%s", seg.ID, members.NextCursor), key, ""))
	if len(rest.Accounts) != 1 || rest.Accounts[0].ID != "C3" || rest.NextCursor != "" {
		t.Errorf("second page: %+v", rest)
	}

	ex := decode[segment.Explanation](t, e.do(t, "GET", "/v1/accounts/C1/labels", key, ""))
	rfm := ex.Techniques[0]
	if !ex.InScope || rfm.Label == nil || *rfm.Label != "Champions" || fmt.Sprint(rfm.Scores) != "map[f:5 m:5 r:5]" ||
		fmt.Sprint(rfm.Values["recency_days"]) != "10" || fmt.Sprint(rfm.Values["monetary"]) != "1000" || rfm.Rule == nil || rfm.Rule.Index != 0 {
		t.Errorf("C1 explanation: %+v", rfm)
	}
	if firm := ex.Techniques[1]; firm.Label == nil || *firm.Label != "Enterprise" || fmt.Sprint(firm.Values["employees"]) != "4000" {
		t.Errorf("C1 firmographics: %+v", firm)
	}
	if ex := decode[segment.Explanation](t, e.do(t, "GET", "/v1/accounts/C4/labels", key, "")); ex.InScope {
		t.Errorf("C4 has no country: %+v", ex)
	}
	wantProblem(t, e.do(t, "GET", "/v1/accounts/C1/labels", e.keyA, ""), 404, "not-found") // org A has no account C1

	wantProblem(t, e.do(t, "POST", "/v1/enrichments/bulk", key, fmt.Sprintf(`{"segment_id": %d}`, seg.ID)), 409, "custom-accounts-unsupported")

	// The export: every field.
	r = e.do(t, "POST", fmt.Sprintf("/v1/segments/%d/exports", seg.ID), key, `{"fields": "all"}`)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("export: %d %s", r.StatusCode, readBody(r))
	}
	acc := decode[exportAccepted](t, r)
	deadline := time.Now().Add(20 * time.Second)
	for {
		x := decode[store.Export](t, e.do(t, "GET", acc.ExportURL, key, ""))
		if x.Status == store.ExportReady {
			break
		}
		if x.Status == store.ExportFailed || time.Now().After(deadline) {
			t.Fatalf("export %+v", x)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = e.do(t, "GET", acc.ExportURL+"/download", key, "")
	raw, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("download: %d %s", r.StatusCode, raw)
	}
	recs := readZIPCSV(t, raw)
	if len(recs) != 4 {
		t.Fatalf("CSV: %q", recs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	want := []string{"Account ID", "Account Name", "Industry", "Employees", "Country", "Tier", "Record State", "Created Time (UTC)", "Modified Time (UTC)",
		"RFM Label", "Firmographics Label", "RFM Recency Score", "RFM Frequency Score", "RFM Monetary Score", "RFM Recency (days)", "RFM Frequency", "RFM Monetary",
		"land", "sector", "staff", "tier"}
	if strings.Join(recs[0], "|") != strings.Join(want, "|") {
		t.Errorf("header %q", recs[0])
	}
	row := func(i int, names ...string) string {
		var out []string
		for _, n := range names {
			out = append(out, recs[i][col[n]])
		}
		return strings.Join(out, "|")
	}
	cols := []string{"Account ID", "Account Name", "Industry", "Employees", "Tier", "RFM Label", "Firmographics Label", "RFM Recency Score", "RFM Recency (days)", "RFM Monetary", "land"}
	for i, w := range []string{
		"C1|Acme, Clinics|Healthcare|4000|gold|Champions|Enterprise|5|10|1000.00|DE",
		"C2|Beta Care|Healthcare|500|gold||Mid-market|3|300|50.00|FR",
		"C3|Corner Shop|Retail|40|gold||Small business||||DE",
	} {
		if got := row(i+1, cols...); got != w {
			t.Errorf("row %d: %s, want %s", i+1, got, w)
		}
	}
}
