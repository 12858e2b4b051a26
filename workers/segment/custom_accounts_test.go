package segment_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
)

// customClientsMapping makes the custom module custom_clients play the
// accounts role: industry, country and employees read from attributes,
// a custom field tier, and deals (and contacts) reaching a client through
// the attribute client_ref holding its external id.
const customClientsMapping = `{"roles": {"accounts": {"module": "custom_clients", "fields": {
	"industry": {"org_field": "attributes.sector"}, "country": {"org_field": "attributes.land"},
	"employees": {"org_field": "attributes.staff"}, "tier": {"org_field": "attributes.tier", "type": "text"}}}},
 "lookups": {"accounts_contacts": "contacts.attributes.client_ref", "accounts_deals": "deals.attributes.client_ref"}}`

// wonDeal is a won deal of a custom client (attribute lookup) days old.
func wonDeal(id, client string, days int, amount float64) string {
	return fmt.Sprintf(`{"external_id":%q,"name":"deal","attributes":{"client_ref":%q},"stage":"Closed Won","amount":%v,"close_date":%q}`,
		id, client, amount, today.AddDate(0, 0, -days).Format("2006-01-02"))
}

// customClients sets up the hand-made dataset of a custom accounts
// module. Scored (won deals, in scope, active): C1..C4, n = 4.
//
//	      recency  freq  monetary    r f m    RFM label             employees  firmographics
//	C1    5        2     1500        5 4 5    Champions             4000       Enterprise
//	C2    5        1     1500        5 3 5    Potential loyalists   500        Mid-market
//	C3    40       3     300         3 5 3    Loyal                 40         Small business
//	C4    200      1     50          2 3 2    At risk               "many"     (none: not a number)
//	C5    -        -     -           no score (only a lost deal)    1000       Enterprise
//	C7    no country: outside the global criteria (its big deal does not count)
//	C8    a draft: not segmented
//
// Scores are ceil(5 * c / 4), c the accounts no better: the ties (C1 and
// C2 at 5 days and 1500; C2 and C4 at one deal) share a score. A built-in
// account C1 with a typed deal, a record C6 of another custom module and
// a deal naming no client do not count.
func customClients(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	var m store.ABMMapping
	if err := json.Unmarshal([]byte(customClientsMapping), &m); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SetABMMapping(ctx, f.org, m); err != nil {
		t.Fatal(err)
	}
	f.ingest(t, "custom_clients",
		`{"external_id":"C1","name":"Acme Clinics","sector":"Healthcare","land":"DE","staff":4000,"tier":"gold"}`,
		`{"external_id":"C2","name":"Beta Care","sector":"Healthcare","land":"FR","staff":"500","tier":"gold"}`,
		`{"external_id":"C3","name":"Corner Shop","sector":"Retail","land":"DE","staff":40,"tier":"silver"}`,
		`{"external_id":"C4","name":"Delta Stores","sector":"Retail","land":"US","staff":"many","tier":"gold"}`,
		`{"external_id":"C5","name":"Echo Power","sector":"Energy","land":"DE","staff":1000,"tier":"gold"}`,
		`{"external_id":"C7","name":"Nowhere Ltd","sector":"Healthcare","staff":10,"tier":"gold"}`,
		`{"external_id":"C8","name":"Draft Co","sector":"Healthcare","land":"DE","staff":10,"tier":"gold","state":"draft"}`)
	f.ingest(t, "accounts", `{"external_id":"C1","name":"Built-in namesake","country":"DE"}`)
	f.ingest(t, "custom_partners", `{"external_id":"C6","name":"Another module","land":"DE","staff":5000,"tier":"gold"}`)
	f.ingest(t, "deals",
		wonDeal("d1", "C1", 5, 1000), wonDeal("d2", "C1", 20, 500),
		wonDeal("d3", "C2", 5, 1500),
		wonDeal("d4", "C3", 40, 100), wonDeal("d5", "C3", 60, 100), wonDeal("d6", "C3", 90, 100),
		wonDeal("d7", "C4", 200, 50),
		`{"external_id":"d8","name":"lost","attributes":{"client_ref":"C5"},"stage":"Closed Lost","amount":70,"close_date":"2026-06-01"}`,
		wonDeal("d9", "C7", 1, 99999), wonDeal("d10", "C8", 1, 99999), wonDeal("d11", "NOPE", 1, 99999),
		`{"external_id":"d12","name":"typed","account":"C1","stage":"Closed Won","amount":77777,"close_date":"2026-06-29"}`)
	if err := f.db.SetGlobalCriteria(ctx, f.org, criteria.Criteria{Conditions: []criteria.Condition{cond("country", criteria.IsNotEmpty, "")}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{store.TechniqueRFM, store.TechniqueFirmographics} {
		if _, _, err := f.setup.Activate(ctx, f.org, name); err != nil {
			t.Fatal(name, err)
		}
	}
}

// recordResults reads a technique's results of the custom records.
func (f *fixture) recordResults(t *testing.T, technique string) map[string]string {
	t.Helper()
	var rows []struct {
		ID      string  `db:"external_id"`
		Label   *string `db:"label"`
		R, F, M *int
	}
	if err := f.db.SelectContext(context.Background(), &rows, `SELECT a.external_id, l.label, l.r, l.f, l.m FROM account_labels l JOIN records a ON a.id = l.record_id
		WHERE l.org_id = $1 AND l.technique = $2`, f.org, technique); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		s := ""
		if r.Label != nil {
			s = *r.Label
		}
		if r.R != nil {
			s += fmt.Sprintf(" %d%d%d", *r.R, *r.F, *r.M)
		}
		out[r.ID] = s
	}
	return out
}

func wantMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// An org whose accounts are a custom module, end to end: RFM over deals
// linked by an attribute, firmographics over mapped attributes, the
// ABM account list, a segment of a label and a field with its stats and
// members, the explanation, membership after an edit, and the export's
// rows. The behavioural techniques are refused with a reason.
func TestCustomAccountsModuleIsSegmented(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ref.Segments = f.db
	customClients(t, f)
	res := f.refresh(t, jobs.SegmentRefreshPayload{})
	if fmt.Sprint(res.Techniques[3:]) != "[{rfm 1 false 4 0 4 0 0  <nil>} {firmographics 1 false 0 5 0 0 0  <nil>}]" {
		t.Fatalf("refresh: %+v", res)
	}
	wantMap(t, "rfm", f.recordResults(t, store.TechniqueRFM), map[string]string{
		"C1": "Champions 545", "C2": "Potential loyalists 535", "C3": "Loyal 353", "C4": "At risk 232"})
	wantMap(t, "firmographics", f.recordResults(t, store.TechniqueFirmographics), map[string]string{
		"C1": "Enterprise", "C2": "Mid-market", "C3": "Small business", "C4": "", "C5": "Enterprise"})
	if n := f.labels(t, store.TechniqueRFM); len(n) != 0 {
		t.Errorf("built-in accounts labelled: %v", n)
	}

	page, err := f.db.ABMAccounts(ctx, f.org, today, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range page.Accounts {
		ids = append(ids, a.ID+"/"+a.Labels["rfm"])
	}
	if got := strings.Join(ids, ","); got != "C1/Champions,C2/Potential loyalists,C3/Loyal,C4/At risk,C5/" || *page.Accounts[0].Industry != "Healthcare" || *page.Accounts[1].Country != "FR" {
		t.Errorf("abm accounts: %s %+v", got, page.Accounts)
	}

	var cr criteria.Criteria
	if err := json.Unmarshal([]byte(`{"conditions": [
		{"field": "label.rfm", "op": "in", "value": ["Champions", "Potential loyalists"]},
		{"field": "tier", "op": "equals", "value": "gold"}]}`), &cr); err != nil {
		t.Fatal(err)
	}
	seg, err := f.db.CreateSegment(ctx, f.org, store.SegmentInput{Name: "Gold buyers", Criteria: &cr}, today)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.db.SegmentDetail(ctx, f.org, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := d.Stats
	if st.Members != 2 || st.WonRevenue.Total != "3000.00" || *st.WonRevenue.Average != "1500.00" ||
		fmt.Sprint(st.Labels["rfm"]) != "{map[Champions:1 Potential loyalists:1] 0}" ||
		fmt.Sprint(st.Labels["firmographics"]) != "{map[Enterprise:1 Mid-market:1] 0}" ||
		fmt.Sprint(st.TopIndustries) != "[{Healthcare 2}]" || fmt.Sprint(st.TopCountries) != "[{DE 1} {FR 1}]" {
		t.Errorf("stats: %+v", st)
	}
	members := func() string {
		p, err := f.db.SegmentMembers(ctx, f.org, seg.ID, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range p.Accounts {
			l := m.Labels["rfm"]
			out = append(out, fmt.Sprintf("%s %s %s %d%d%d %s", m.ID, *m.Name, *l.Label, *l.R, *l.F, *l.M, *m.Labels["firmographics"].Label))
		}
		return strings.Join(out, "; ")
	}
	if got := members(); got != "C1 Acme Clinics Champions 545 Enterprise; C2 Beta Care Potential loyalists 535 Mid-market" {
		t.Errorf("members: %s", got)
	}

	ex, err := f.setup.Explain(ctx, f.org, "C2")
	if err != nil {
		t.Fatal(err)
	}
	rfm, firm := ex.Techniques[0], ex.Techniques[1]
	if !ex.InScope || rfm.Label == nil || *rfm.Label != "Potential loyalists" || rfm.Rule == nil || rfm.Rule.Index != 2 ||
		fmt.Sprint(rfm.Scores) != "map[f:3 m:5 r:5]" ||
		fmt.Sprintf("%v %v %v", rfm.Values["recency_days"], rfm.Values["frequency"], rfm.Values["monetary"]) != "5 1 1500.00" {
		t.Errorf("C2 rfm explanation: %+v rule %+v", rfm, rfm.Rule)
	}
	if firm.Label == nil || *firm.Label != "Mid-market" || firm.Rule == nil || firm.Rule.Index != 1 || fmt.Sprint(firm.Values["employees"]) != "500" {
		t.Errorf("C2 firmographics explanation: %+v", firm)
	}
	if ex, err := f.setup.Explain(ctx, f.org, "C5"); err != nil || ex.Techniques[0].Label != nil || !strings.Contains(ex.Techniques[0].Note, "no qualifying deal") {
		t.Errorf("C5: %+v %v", ex, err)
	}
	if ex, err := f.setup.Explain(ctx, f.org, "C7"); err != nil || ex.InScope || !strings.Contains(ex.Techniques[0].Note, "outside the global criteria") {
		t.Errorf("C7: %+v %v", ex, err)
	}
	if _, err := f.setup.Explain(ctx, f.org, "NOPE"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown record: %v", err)
	}

	// The export of the segment: the module's mapped fields, the ABM
	// fields and every attribute of the members.
	cat, err := f.db.ExportCatalog(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	all, err := cat.All(ctx, f.db, f.org, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "id,name,industry,employees,country,tier,state,created_at,updated_at,"+
		"label.rfm,label.firmographics,score.rfm.r,score.rfm.f,score.rfm.m,rfm.recency_days,rfm.frequency,rfm.monetary,"+
		"attributes.land,attributes.sector,attributes.staff,attributes.tier" {
		t.Errorf("all fields: %s", got)
	}
	sel, err := cat.Select([]string{"id", "name", "industry", "tier", "label.rfm", "label.firmographics", "score.rfm.r", "rfm.recency_days", "attributes.staff"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Select([]string{"website"}); !errors.Is(err, store.ErrInvalidExportFields) {
		t.Errorf("an unmapped built-in column: %v", err)
	}
	var out bytes.Buffer
	if _, err := f.db.ExportCSV(ctx, f.org, seg.ID, sel, &out); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range recs {
		rows = append(rows, strings.Join(r, "|"))
	}
	if got := strings.Join(rows, "\n"); got != "C1|Acme Clinics|Healthcare|gold|Champions|Enterprise|5|5|4000\n"+
		"C2|Beta Care|Healthcare|gold|Potential loyalists|Mid-market|5|5|500" {
		t.Errorf("export rows:\n%s", got)
	}

	// An edit: C3 turns gold and buys again today. Recomputed: C3 scores
	// 5 5 5 (Champions), C1 and C2 move to 4 (the ties again share), and
	// the segment gains C3.
	f.ingest(t, "custom_clients", `{"external_id":"C3","name":"Corner Shop","sector":"Retail","land":"DE","staff":40,"tier":"gold"}`)
	f.ingest(t, "deals", wonDeal("d13", "C3", 1, 5000))
	if res := f.refresh(t, jobs.SegmentRefreshPayload{}); res.Skipped || res.Segments != 1 {
		t.Fatalf("refresh after the edit: %+v", res)
	}
	wantMap(t, "rfm after the edit", f.recordResults(t, store.TechniqueRFM), map[string]string{
		"C1": "Champions 444", "C2": "Potential loyalists 434", "C3": "Champions 555", "C4": "At risk 232"})
	if got := members(); got != "C1 Acme Clinics Champions 444 Enterprise; C2 Beta Care Potential loyalists 434 Mid-market; C3 Corner Shop Champions 555 Small business" {
		t.Errorf("members after the edit: %s", got)
	}

	// The behavioural techniques reach accounts by typed lookups: refused.
	for _, name := range []string{store.TechniqueEngagement, store.TechniqueVoC, store.TechniqueRecommendations} {
		if _, _, err := f.setup.Activate(ctx, f.org, name); !errors.Is(err, store.ErrCustomAccounts) {
			t.Errorf("activating %s: %v", name, err)
		}
	}
	if _, err := f.db.SegmentAccountIDs(ctx, f.org, seg.ID, 500); !errors.Is(err, store.ErrCustomAccounts) {
		t.Errorf("enriching a segment of records: %v", err)
	}
}

// The accounts role moving from the built-in module to a custom one: the
// next refresh drops the built-in accounts' results and memberships, and
// nothing reads them meanwhile.
func TestAccountsRoleMovingToACustomModule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ref.Segments = f.db
	f.ingest(t, "accounts", `{"external_id":"A1","name":"Built-in","country":"DE","employees":5000}`)
	f.ingest(t, "deals", `{"external_id":"bd","name":"deal","account":"A1","stage":"Closed Won","amount":10,"close_date":"2026-06-01"}`)
	for _, name := range []string{store.TechniqueRFM, store.TechniqueFirmographics} {
		if _, _, err := f.setup.Activate(ctx, f.org, name); err != nil {
			t.Fatal(err)
		}
	}
	f.refresh(t, jobs.SegmentRefreshPayload{})
	var cr criteria.Criteria
	if err := json.Unmarshal([]byte(`{"conditions": [{"field": "label.firmographics", "op": "equals", "value": "Enterprise"}]}`), &cr); err != nil {
		t.Fatal(err)
	}
	seg, err := f.db.CreateSegment(ctx, f.org, store.SegmentInput{Name: "Enterprise", Criteria: &cr}, today)
	if err != nil || seg.MemberCount != 1 {
		t.Fatalf("segment %+v %v", seg, err)
	}
	customClients(t, f)
	p, err := f.db.SegmentMembers(ctx, f.org, seg.ID, 10, "")
	if err != nil || len(p.Accounts) != 0 {
		t.Errorf("members read before the refresh: %+v %v", p, err)
	}
	f.refresh(t, jobs.SegmentRefreshPayload{})
	var kinds []string
	if err := f.db.SelectContext(ctx, &kinds, `SELECT DISTINCT CASE WHEN account_id IS NULL THEN 'record' ELSE 'account' END FROM account_labels WHERE org_id = $1
		UNION SELECT DISTINCT CASE WHEN account_id IS NULL THEN 'member record' ELSE 'member account' END FROM segment_members WHERE org_id = $1 ORDER BY 1`, f.org); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(kinds) != "[member record record]" {
		t.Errorf("rows left: %v", kinds)
	}
	if d, err := f.db.SegmentDetail(ctx, f.org, seg.ID); err != nil || d.Stats.Members != 2 {
		t.Errorf("C1 and C5 are Enterprise: %+v %v", d.Stats, err)
	}
}
