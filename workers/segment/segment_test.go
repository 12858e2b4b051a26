package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var today = time.Date(2026, 6, 30, 15, 0, 0, 0, time.UTC)

func TestDefaultsAreValid(t *testing.T) {
	if _, err := segment.CheckRFM(segment.DefaultRFM(), segment.DefaultRFMLabels()); err != nil {
		t.Fatalf("default RFM: %v", err)
	}
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "d")
	fields, err := db.AccountFields(context.Background(), org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := segment.CheckFirmographics(segment.DefaultFirmographicLabels(), fields); err != nil {
		t.Fatalf("default firmographics: %v", err)
	}
}

// The label rules over r, f and m, on every score combination of a 1-5
// scale: each label's own example lands on it, and first match wins.
func TestDefaultRFMLabelsOnScores(t *testing.T) {
	rules, err := segment.CheckRFM(segment.DefaultRFM(), segment.DefaultRFMLabels())
	if err != nil {
		t.Fatal(err)
	}
	label := func(r, f, m int) string {
		row := map[string]any{"r": r, "f": f, "m": m}
		for _, rule := range rules {
			if rule.Rule.Eval(row, today) {
				return rule.Name
			}
		}
		return ""
	}
	for _, tc := range []struct {
		r, f, m int
		want    string
	}{
		{5, 5, 5, "Champions"}, {4, 4, 4, "Champions"}, {3, 5, 1, "Loyal"}, {5, 3, 2, "Potential loyalists"},
		{4, 1, 5, "New customers"}, {2, 4, 2, "At risk"}, {1, 5, 5, "Can't lose them"}, {2, 2, 3, "Hibernating"},
		{1, 1, 1, "Lost"}, {3, 2, 3, ""},
	} {
		if got := label(tc.r, tc.f, tc.m); got != tc.want {
			t.Errorf("r=%d f=%d m=%d: %q, want %q", tc.r, tc.f, tc.m, got, tc.want)
		}
	}
}

type fixture struct {
	db    *store.DB
	org   int64
	setup segment.Setup
	ref   segment.Refresher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "zylker")
	now := func() time.Time { return today }
	return &fixture{db: db, org: org.ID, setup: segment.Setup{DB: db, Now: now}, ref: segment.Refresher{Store: db, Now: now, Log: quiet}}
}

func (f *fixture) ingest(t *testing.T, module string, rows ...string) {
	t.Helper()
	raw := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		raw[i] = json.RawMessage(r)
	}
	if res, err := f.db.UpsertRecords(context.Background(), f.org, module, raw); err != nil || res.Failed != 0 {
		t.Fatalf("%s: %+v %v", module, res, err)
	}
}

func (f *fixture) refresh(t *testing.T, p jobs.SegmentRefreshPayload) jobs.SegmentRefreshResult {
	t.Helper()
	p.OrgID = f.org
	res, err := f.ref.Run(context.Background(), workers.Job[jobs.SegmentRefreshPayload]{ID: fmt.Sprintf("job-%d", time.Now().UnixNano()), Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) labels(t *testing.T, technique string) map[string]string {
	t.Helper()
	var rows []struct {
		ID    string  `db:"external_id"`
		Label *string `db:"label"`
	}
	if err := f.db.SelectContext(context.Background(), &rows, `SELECT a.external_id, l.label FROM account_labels l JOIN accounts a ON a.id = l.account_id
		WHERE l.org_id = $1 AND l.technique = $2`, f.org, technique); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.ID] = ""
		if r.Label != nil {
			out[r.ID] = *r.Label
		}
	}
	return out
}

func cond(field string, op criteria.Op, value string) criteria.Condition {
	c := criteria.Condition{Field: field, Op: op}
	if value != "" {
		c.Value = json.RawMessage(value)
	}
	return c
}

// A refresh scores and labels the accounts in scope: default RFM labels,
// firmographic labels with an AND/OR pattern, accounts outside the global
// criteria left out. A second refresh with nothing changed skips.
func TestRefreshLabelsAccountsAndSkipsWhenNothingChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "accounts",
		`{"external_id":"champ","name":"Champ","industry":"Healthcare","employees":5000,"country":"DE"}`,
		`{"external_id":"lapsing","name":"Lapsing","industry":"Healthcare","employees":300,"country":"DE"}`,
		`{"external_id":"small","name":"Small","industry":"Retail","employees":20,"country":"FR"}`,
		`{"external_id":"nowhere","name":"Nowhere","industry":"Healthcare","employees":5000}`)
	var deals []string
	n := 0
	add := func(acc string, count, ageDays int, amount float64) {
		for range count {
			n++
			deals = append(deals, fmt.Sprintf(`{"external_id":"d%d","account":%q,"stage":"Closed Won","amount":%v,"close_date":%q}`,
				n, acc, amount, today.AddDate(0, 0, -ageDays).Format(time.DateOnly)))
		}
	}
	add("champ", 5, 3, 1000)
	add("lapsing", 3, 400, 100)
	add("small", 1, 30, 50)
	add("nowhere", 9, 1, 9999)
	f.ingest(t, "deals", deals...)
	if err := f.db.SetGlobalCriteria(ctx, f.org, criteria.Criteria{Conditions: []criteria.Condition{cond("country", criteria.IsNotEmpty, "")}}); err != nil {
		t.Fatal(err)
	}
	firm := []segment.Label{
		{Name: "Enterprise healthcare", Criteria: criteria.Criteria{Conditions: []criteria.Condition{
			cond("industry", criteria.Equals, `"healthcare"`), cond("employees", criteria.Gte, `1000`), cond("country", criteria.In, `["DE","AT"]`)},
			Pattern: "1 AND (2 OR 3)"}},
		{Name: "Everyone else", Criteria: criteria.Criteria{Conditions: []criteria.Condition{cond("employees", criteria.IsNotEmpty, "")}}},
	}
	if _, _, err := f.setup.Put(ctx, f.org, "firmographics", segment.View{Settings: json.RawMessage(`{}`), Labels: firm}); err != nil {
		t.Fatal(err)
	}
	for _, name := range segment.Names {
		if _, _, err := f.setup.Activate(ctx, f.org, name); err != nil {
			t.Fatal(err)
		}
	}
	res := f.refresh(t, jobs.SegmentRefreshPayload{})
	if res.Skipped || len(res.Techniques) != len(segment.Names) {
		t.Fatalf("first refresh: %+v", res)
	}
	// Three accounts in scope, so c/n is 1/3, 2/3 or 1 and scores
	// ceil(5c/3) are 2, 4 or 5. Recency: lapsing (400 days) 2, small (30)
	// 4, champ (3) 5; frequency: small (1 deal) 2, lapsing (3) 4, champ
	// (5) 5; monetary: small 50 -> 2, lapsing 300 -> 4, champ 5000 -> 5.
	// champ 5,5,5 Champions; lapsing 2,4,4 Can't lose them; small 4,2,2
	// Potential loyalists.
	rfm := f.labels(t, "rfm")
	want := map[string]string{"champ": "Champions", "lapsing": "Can't lose them", "small": "Potential loyalists"}
	if fmt.Sprint(rfm) != fmt.Sprint(want) {
		t.Errorf("rfm labels %v, want %v (nowhere has no country: out of scope)", rfm, want)
	}
	firmGot := f.labels(t, "firmographics")
	wantFirm := map[string]string{"champ": "Enterprise healthcare", "lapsing": "Enterprise healthcare", "small": "Everyone else"}
	if fmt.Sprint(firmGot) != fmt.Sprint(wantFirm) {
		t.Errorf("firmographic labels %v, want %v", firmGot, wantFirm)
	}
	views, err := f.setup.Views(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if v.State != store.TechniqueActive || v.RefreshedAt == nil {
			t.Errorf("%s after refresh: %+v", v.Technique, v)
		}
	}

	again := f.refresh(t, jobs.SegmentRefreshPayload{})
	if !again.Skipped || !again.Techniques[0].Skipped {
		t.Fatalf("refresh with nothing changed: %+v, want skipped", again)
	}
	f.ingest(t, "deals", `{"external_id":"d-new","account":"small","stage":"Closed Won","amount":5,"close_date":"2026-06-29"}`)
	if later := f.refresh(t, jobs.SegmentRefreshPayload{Technique: "rfm"}); later.Skipped || len(later.Techniques) != 1 {
		t.Fatalf("refresh after a new deal: %+v, want the rfm work done", later)
	}
}

// The seed's limits: edits are free before ABM is configured; after it,
// two edits or activations per technique per UTC day, renaming a label and
// deactivating exempt; a refreshing technique takes no edit.
func TestTechniqueEditLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	rfm := segment.DefaultRFM()
	put := func(scale int, labels []segment.Label) error {
		s := rfm
		s.Scale = scale
		raw, _ := json.Marshal(s)
		_, _, err := f.setup.Put(ctx, f.org, "rfm", segment.View{Settings: raw, Labels: labels})
		return err
	}
	noLabels := []segment.Label{}
	for i := range 4 {
		if err := put(3+i%2, noLabels); err != nil {
			t.Fatalf("edit %d before configuring: %v", i, err)
		}
	}
	if err := f.db.MarkABMConfigured(ctx, f.org, today); err != nil {
		t.Fatal(err)
	}
	if err := put(5, noLabels); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.setup.Activate(ctx, f.org, "rfm"); err != nil {
		t.Fatal(err)
	}
	labels := segment.DefaultRFMLabels()
	if err := put(5, labels); !errors.Is(err, store.ErrEditLimit) {
		t.Fatalf("third change of the day: %v, want ErrEditLimit", err)
	}
	if _, _, err := f.setup.Deactivate(ctx, f.org, "rfm"); err != nil {
		t.Fatalf("deactivate is exempt: %v", err)
	}
	// Renaming labels is exempt: write labels once more the next day, then rename.
	f.setup.Now = func() time.Time { return today.AddDate(0, 0, 1) }
	if err := put(5, labels); err != nil {
		t.Fatal(err)
	}
	renamed := segment.DefaultRFMLabels()
	renamed[0].Name = "Best customers"
	for range 3 {
		if err := put(5, renamed); err != nil {
			t.Fatalf("rename: %v", err)
		}
	}
	bad := append(segment.DefaultRFMLabels(), segment.DefaultRFMLabels()[0])
	bad[8].Name = "Ninth"
	var errs segment.Errors
	if err := put(5, bad); !errors.As(err, &errs) || errs["labels"] == "" {
		t.Fatalf("nine labels: %v, want a labels error", err)
	}
	if _, err := f.db.ExecContext(ctx, `UPDATE techniques SET state = 'refreshing', updated_at = $3 WHERE org_id = $1 AND technique = $2`, f.org, "rfm", today); err != nil {
		t.Fatal(err)
	}
	f.setup.Now = func() time.Time { return today.Add(time.Minute) }
	if err := put(4, renamed); !errors.Is(err, store.ErrTechniqueRefreshing) {
		t.Fatalf("edit while refreshing: %v, want ErrTechniqueRefreshing", err)
	}
}

// A segment locks what it reads: the label it names cannot change its
// criteria or its name, its technique cannot change settings or be
// deactivated; other labels stay editable; deleting the segment unlocks.
// A refresh recomputes the segment's membership.
func TestSegmentsLockTheirLabelsAndFollowRefreshes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "accounts", `{"external_id":"h1","name":"H1","industry":"Healthcare","country":"DE"}`, `{"external_id":"r1","name":"R1","industry":"Retail","country":"DE"}`)
	day := today.AddDate(0, 0, -400).Format(time.DateOnly)
	f.ingest(t, "deals",
		`{"external_id":"d1","account":"h1","stage":"Closed Won","amount":100,"close_date":"`+day+`"}`,
		`{"external_id":"d2","account":"h1","stage":"Closed Won","amount":100,"close_date":"`+day+`"}`,
		`{"external_id":"d3","account":"h1","stage":"Closed Won","amount":100,"close_date":"`+day+`"}`,
		`{"external_id":"d4","account":"r1","stage":"Closed Won","amount":9000,"close_date":"`+today.Format(time.DateOnly)+`"}`)
	if _, _, err := f.setup.Activate(ctx, f.org, "rfm"); err != nil {
		t.Fatal(err)
	}
	loyal := criteria.Criteria{Conditions: []criteria.Condition{cond("label.rfm", criteria.Equals, `"Loyal"`), cond("industry", criteria.Equals, `"Healthcare"`)}}
	seg, err := f.db.CreateSegment(ctx, f.org, store.SegmentInput{Name: "Loyal healthcare", Criteria: &loyal}, today)
	if err != nil {
		t.Fatal(err)
	}
	ref := f.ref
	ref.Segments = f.db
	res, err := ref.Run(ctx, workers.Job[jobs.SegmentRefreshPayload]{ID: "j", Payload: jobs.SegmentRefreshPayload{OrgID: f.org}})
	if err != nil || res.Segments != 1 {
		t.Fatalf("refresh: %+v, %v", res, err)
	}
	// Two accounts, so scores are ceil(5c/2): 3 or 5. h1 (400 days, 3
	// deals, 300) is r3 f5 m3: Loyal; r1 (today, 1 deal, 9000) r5 f3 m5:
	// Potential loyalists.
	if labels := f.labels(t, "rfm"); labels["h1"] != "Loyal" || labels["r1"] != "Potential loyalists" {
		t.Fatalf("labels %v", labels)
	}
	got, err := f.db.Segment(ctx, f.org, seg.ID)
	if err != nil || got.MemberCount != 1 {
		t.Fatalf("segment after the refresh: %+v, %v; want h1 alone", got, err)
	}
	view, err := f.setup.Views(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	rfm := view[0]
	edited := append([]segment.Label(nil), rfm.Labels...)
	edited[1].Criteria = criteria.Criteria{Conditions: []criteria.Condition{cond("r", criteria.Gte, "4")}} // Loyal
	var inUse *segment.InUseError
	if _, _, err := f.setup.Put(ctx, f.org, "rfm", segment.View{Settings: rfm.Settings, Labels: edited}); !errors.As(err, &inUse) || inUse.Segments[0] != "Loyal healthcare" {
		t.Fatalf("editing a label a segment names: %v, want technique-in-use naming the segment", err)
	}
	renamed := append([]segment.Label(nil), rfm.Labels...)
	renamed[1].Name = "Faithful"
	if _, _, err := f.setup.Put(ctx, f.org, "rfm", segment.View{Settings: rfm.Settings, Labels: renamed}); !errors.As(err, &inUse) {
		t.Fatalf("renaming a label a segment names: %v, want technique-in-use", err)
	}
	other := append([]segment.Label(nil), rfm.Labels...)
	other[7].Criteria = criteria.Criteria{Conditions: []criteria.Condition{cond("r", criteria.Equals, "1")}} // Lost
	if _, _, err := f.setup.Put(ctx, f.org, "rfm", segment.View{Settings: rfm.Settings, Labels: other}); err != nil {
		t.Fatalf("editing a label no segment names: %v", err)
	}
	if _, _, err := f.setup.Deactivate(ctx, f.org, "rfm"); !errors.As(err, &inUse) {
		t.Fatalf("deactivating a technique a segment reads: %v, want technique-in-use", err)
	}
	if err := f.db.DeleteSegment(ctx, f.org, seg.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.setup.Put(ctx, f.org, "rfm", segment.View{Settings: rfm.Settings, Labels: edited}); err != nil {
		t.Fatalf("after the segment is deleted: %v", err)
	}
}

// A technique another live job is refreshing is left to it, and the
// result says so; an inactive one is named too.
func TestRefreshNamesTheTechniquesItLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	if _, _, err := f.setup.Activate(ctx, f.org, "rfm"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ExecContext(ctx, `UPDATE techniques SET state = 'refreshing', refresh_job = 'other', updated_at = $2 WHERE org_id = $1`, f.org, today); err != nil {
		t.Fatal(err)
	}
	res := f.refresh(t, jobs.SegmentRefreshPayload{})
	notes := map[string]string{}
	for _, tr := range res.Techniques {
		notes[tr.Technique] = tr.Note
	}
	if notes["rfm"] != "being refreshed by job other" || notes["firmographics"] != "inactive" || notes["voc"] != "inactive" || len(res.Techniques) != len(segment.Names) {
		t.Fatalf("result %+v", res)
	}
}

// A custom attribute mapped to a system field feeds the criteria that
// name the field: employees read from attributes.headcount decide the
// firmographic label.
func TestMappedAttributeDecidesALabel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m := store.DefaultABMMapping()
	acc := m.Roles["accounts"]
	acc.Fields["employees"] = store.FieldMapping{OrgField: "attributes.headcount", Type: criteria.Number}
	m.Roles["accounts"] = acc
	if _, err := f.db.SetABMMapping(ctx, f.org, m); err != nil {
		t.Fatal(err)
	}
	f.ingest(t, "accounts",
		`{"external_id":"big","name":"Big","employees":5,"attributes":{"headcount":"12000"}}`,
		`{"external_id":"small","name":"Small","employees":5000,"attributes":{"headcount":20}}`)
	if _, _, err := f.setup.Activate(ctx, f.org, "firmographics"); err != nil {
		t.Fatal(err)
	}
	f.refresh(t, jobs.SegmentRefreshPayload{Technique: "firmographics"})
	got := f.labels(t, "firmographics")
	if got["big"] != "Enterprise" || got["small"] != "Small business" {
		t.Fatalf("labels %v: employees must come from attributes.headcount, not the column", got)
	}
}
