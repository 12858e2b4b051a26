package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// zylkerAccount is an account of the hand-made Zylker dataset (seed 004:
// Zylker targets healthcare accounts at risk, country by country).
type zylkerAccount struct {
	id, industry, country, state string
	rfm, firmographics           string // the labels the labelling step would give
	won                          []float64
}

// The dataset. Global criteria: country is not empty (the seed's Zylker
// setup). H5 has no country, so it is outside ABM; H7 is a draft.
var zylkerAccounts = []zylkerAccount{
	{id: "H1", industry: "Healthcare", country: "DE", rfm: "At risk", firmographics: "Mid-market", won: []float64{1000}},
	{id: "H2", industry: "Healthcare", country: "DE", rfm: "At risk", firmographics: "Enterprise", won: []float64{3000, 500.50}},
	{id: "H3", industry: "Healthcare", country: "FR", rfm: "At risk", won: []float64{200}},
	{id: "H4", industry: "Healthcare", country: "DE", rfm: "Champions", firmographics: "Enterprise", won: []float64{9000}},
	{id: "H5", industry: "Healthcare", rfm: "At risk", won: []float64{400}},
	{id: "H6", industry: "Healthcare", country: "DE", rfm: "At risk"},
	{id: "H7", industry: "Healthcare", country: "DE", state: "draft", rfm: "At risk"},
	{id: "T1", industry: "Technology", country: "US", rfm: "At risk", won: []float64{50}},
	{id: "T2", industry: "Technology", country: "GB", rfm: "At risk"},
	{id: "E1", industry: "Energy", country: "US", rfm: "At risk"},
	{id: "F1", industry: "Finance", country: "US", rfm: "At risk"},
	{id: "M1", industry: "Media", country: "GB", rfm: "At risk"},
	{id: "R1", industry: "Retail", country: "US", rfm: "At risk"},
}

var (
	zylkerCriteria = crit(`{"conditions": [
		{"field": "label.rfm", "op": "equals", "value": "At risk"},
		{"field": "industry", "op": "equals", "value": "Healthcare"},
		{"field": "country", "op": "equals", "value": "DE"}]}`)
	// "at risk" compares as the criteria language compares text.
	atRiskCriteria = crit(`{"conditions": [{"field": "label.rfm", "op": "equals", "value": "at risk"}]}`)
)

func crit(s string) *criteria.Criteria {
	var c criteria.Criteria
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		panic(err)
	}
	return &c
}

// seedZylker stores the dataset, sets the global criteria, scores RFM
// with store.ScoreRFM inside it and writes the labels as the labelling
// step would.
func seedZylker(t *testing.T, db *store.DB, orgID int64) {
	t.Helper()
	ctx := context.Background()
	var accounts, deals []json.RawMessage
	for _, a := range zylkerAccounts {
		row := map[string]any{"external_id": a.id, "name": "Account " + a.id, "industry": a.industry}
		if a.country != "" {
			row["country"] = a.country
		}
		if a.state != "" {
			row["state"] = a.state
		}
		b, _ := json.Marshal(row)
		accounts = append(accounts, b)
		for i, amount := range a.won {
			deals = append(deals, json.RawMessage(fmt.Sprintf(`{"external_id":"%s-won-%d","name":"deal","account":%q,"stage":"Closed Won","amount":%v,"close_date":%q}`,
				a.id, i, a.id, amount, rfmToday.AddDate(0, 0, -100*(i+1)).Format(time.DateOnly))))
		}
	}
	// Deals that are not won revenue: open, lost, and a won draft.
	deals = append(deals,
		json.RawMessage(`{"external_id":"H1-open","name":"deal","account":"H1","stage":"Negotiation","amount":5000}`),
		json.RawMessage(`{"external_id":"H1-lost","name":"deal","account":"H1","stage":"Closed Lost","amount":700}`),
		json.RawMessage(`{"external_id":"H2-draft","name":"deal","account":"H2","stage":"Closed Won","amount":800,"state":"draft"}`))
	if res, err := db.UpsertRecords(ctx, orgID, "accounts", accounts); err != nil || res.Failed != 0 {
		t.Fatalf("accounts: %+v %v", res, err)
	}
	if res, err := db.UpsertRecords(ctx, orgID, "deals", deals); err != nil || res.Failed != 0 {
		t.Fatalf("deals: %+v %v", res, err)
	}
	zylker := criteria.Criteria{Conditions: []criteria.Condition{{Field: "country", Op: criteria.IsNotEmpty}}}
	if err := db.SetGlobalCriteria(ctx, orgID, zylker); err != nil {
		t.Fatal(err)
	}
	scope, err := db.ScopeFilter(ctx, orgID, rfmToday)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ScoreRFM(ctx, orgID, autoRFM, scope, rfmToday, "run-1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range zylkerAccounts {
		setLabel(t, db, orgID, store.TechniqueRFM, a.id, a.rfm)
		if a.firmographics != "" {
			setLabel(t, db, orgID, store.TechniqueFirmographics, a.id, a.firmographics)
		}
	}
}

// setLabel writes an account's label as the labelling step would,
// keeping the scores ScoreRFM wrote.
func setLabel(t *testing.T, db *store.DB, orgID int64, technique, account, label string) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `
		INSERT INTO account_labels (org_id, technique, account_id, label, computed_at, run_id)
		SELECT $1, $2, id, $4, now(), 'labels' FROM accounts WHERE org_id = $1 AND external_id = $3
		ON CONFLICT (org_id, technique, account_id) DO UPDATE SET label = EXCLUDED.label`, orgID, technique, account, label)
	if err != nil {
		t.Fatal(err)
	}
}

// members reads a segment's materialised membership by external id.
func members(t *testing.T, db *store.DB, segmentID int64) []string {
	t.Helper()
	var ids []string
	err := db.SelectContext(context.Background(), &ids, `
		SELECT a.external_id FROM segment_members m JOIN accounts a ON a.id = m.account_id
		WHERE m.segment_id = $1 ORDER BY 1`, segmentID)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func createSegment(t *testing.T, db *store.DB, orgID int64, name string, c *criteria.Criteria) store.Segment {
	t.Helper()
	s, err := db.CreateSegment(context.Background(), orgID, store.SegmentInput{Name: name, Criteria: c}, rfmToday)
	if err != nil {
		t.Fatalf("create segment %s: %v", name, err)
	}
	return s
}

// The seed's Zylker case: healthcare accounts at risk in Germany. The
// segment combines an RFM label, a field condition and another; accounts
// outside the global criteria (H5, no country) or not active (H7) are
// never members, even when the rule alone would take them.
func TestSegmentMembershipIsTheRuleInsideTheGlobalCriteria(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "zylker")
	seedZylker(t, db, org.ID)

	seg := createSegment(t, db, org.ID, "Healthcare at risk (DE)", zylkerCriteria)
	if got := members(t, db, seg.ID); !slices.Equal(got, []string{"H1", "H2", "H6"}) {
		t.Fatalf("members %v, want [H1 H2 H6]", got)
	}
	if seg.MemberCount != 3 || seg.ComputedAt == nil || !seg.ComputedAt.Equal(rfmToday) {
		t.Errorf("member_count %d, computed_at %v; want 3 as of %v", seg.MemberCount, seg.ComputedAt, rfmToday)
	}

	healthcare := createSegment(t, db, org.ID, "Healthcare at risk", crit(`{"conditions": [
		{"field": "label.rfm", "op": "equals", "value": "At risk"},
		{"field": "industry", "op": "equals", "value": "healthcare"}]}`))
	if got := members(t, db, healthcare.ID); !slices.Equal(got, []string{"H1", "H2", "H3", "H6"}) {
		t.Fatalf("members %v, want [H1 H2 H3 H6]: H5 has no country, H7 is a draft", got)
	}

	// A firmographic label with an RFM score: pattern over three kinds.
	enterprise := createSegment(t, db, org.ID, "Enterprise or big spenders", crit(`{"conditions": [
		{"field": "label.firmographics", "op": "equals", "value": "Enterprise"},
		{"field": "rfm.monetary", "op": "gte", "value": 1000},
		{"field": "country", "op": "equals", "value": "DE"}],
		"pattern": "(1 OR 2) AND 3"}`))
	if got := members(t, db, enterprise.ID); !slices.Equal(got, []string{"H1", "H2", "H4"}) {
		t.Fatalf("members %v, want [H1 H2 H4]", got)
	}
	if _, err := db.Segment(ctx, org.ID, enterprise.ID); err != nil {
		t.Fatal(err)
	}
}

// Membership is materialised: it follows the results only when the
// segments are recomputed, which the refresh does after every run.
func TestSegmentsFollowTheResultsWhenRecomputed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "recompute")
	seedZylker(t, db, org.ID)
	zylker := createSegment(t, db, org.ID, "Healthcare at risk (DE)", zylkerCriteria)
	spenders := createSegment(t, db, org.ID, "Spenders", crit(`{"conditions": [{"field": "rfm.monetary", "op": "gte", "value": 1000}]}`))
	if got := members(t, db, spenders.ID); !slices.Equal(got, []string{"H1", "H2", "H4"}) {
		t.Fatalf("spenders %v, want [H1 H2 H4]", got)
	}

	// T1 wins a big deal and RFM is scored again, which clears the labels
	// of the accounts it scores; the labelling step then labels H1 Loyal
	// and H4 at risk.
	deal := json.RawMessage(`{"external_id":"T1-big","name":"deal","account":"T1","stage":"Closed Won","amount":2000,"close_date":"2026-06-01"}`)
	if res, err := db.UpsertRecords(ctx, org.ID, "deals", []json.RawMessage{deal}); err != nil || res.Failed != 0 {
		t.Fatalf("deal: %+v %v", res, err)
	}
	scope, err := db.ScopeFilter(ctx, org.ID, rfmToday)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ScoreRFM(ctx, org.ID, autoRFM, scope, rfmToday, "run-2"); err != nil {
		t.Fatal(err)
	}
	setLabel(t, db, org.ID, store.TechniqueRFM, "H1", "Loyal")
	for _, a := range []string{"H2", "H3", "H4", "H6"} {
		setLabel(t, db, org.ID, store.TechniqueRFM, a, "At risk")
	}
	if got := members(t, db, zylker.ID); !slices.Equal(got, []string{"H1", "H2", "H6"}) {
		t.Fatalf("before recomputing, members %v, want the last computed [H1 H2 H6]", got)
	}

	later := rfmToday.Add(time.Hour)
	n, err := db.RecomputeSegments(ctx, org.ID, later)
	if err != nil || n != 2 {
		t.Fatalf("recomputed %d, %v; want 2", n, err)
	}
	if got := members(t, db, zylker.ID); !slices.Equal(got, []string{"H2", "H4", "H6"}) {
		t.Errorf("zylker members %v, want [H2 H4 H6]: H1 is now Loyal, H4 at risk", got)
	}
	if got := members(t, db, spenders.ID); !slices.Equal(got, []string{"H1", "H2", "H4", "T1"}) {
		t.Errorf("spenders %v, want [H1 H2 H4 T1]: T1 now has 2,050 won", got)
	}
	for _, id := range []int64{zylker.ID, spenders.ID} {
		s, err := db.Segment(ctx, org.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.MemberCount != len(members(t, db, id)) || s.ComputedAt == nil || !s.ComputedAt.Equal(later) {
			t.Errorf("segment %s: member_count %d, computed_at %v", s.Name, s.MemberCount, s.ComputedAt)
		}
	}

	// Editing the criteria recomputes at once.
	edited, err := db.UpdateSegment(ctx, org.ID, zylker.ID, store.SegmentInput{Name: "Healthcare at risk (FR)", Criteria: crit(`{"conditions": [
		{"field": "label.rfm", "op": "equals", "value": "At risk"}, {"field": "country", "op": "equals", "value": "FR"}]}`)}, later)
	if err != nil {
		t.Fatal(err)
	}
	if got := members(t, db, zylker.ID); !slices.Equal(got, []string{"H3"}) || edited.MemberCount != 1 || edited.Name != "Healthcare at risk (FR)" {
		t.Errorf("after the edit: members %v, segment %+v; want [H3]", got, edited)
	}
}

// The stats of GET /v1/segments/{id}, on known answers.
func TestSegmentStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "stats")
	seedZylker(t, db, org.ID)

	t.Run("Zylker: labels, won revenue over members without deals too", func(t *testing.T) {
		seg := createSegment(t, db, org.ID, "Healthcare at risk (DE)", zylkerCriteria)
		// A blank label is no label, as the criteria language reads it.
		setLabel(t, db, org.ID, store.TechniqueFirmographics, "H6", " \t")
		d, err := db.SegmentDetail(ctx, org.ID, seg.ID)
		if err != nil {
			t.Fatal(err)
		}
		st := d.Stats
		if d.ID != seg.ID || st.Members != 3 {
			t.Fatalf("segment %d, members %d; want 3", d.ID, st.Members)
		}
		want := map[string]store.LabelCounts{
			"rfm":           {Labels: map[string]int{"At risk": 3}},
			"firmographics": {Labels: map[string]int{"Mid-market": 1, "Enterprise": 1}, Unlabelled: 1},
			// the behavioural techniques did not run: every member unlabelled
			"engagement": {Unlabelled: 3}, "voc": {Unlabelled: 3}, "recommendations": {Unlabelled: 3},
		}
		if !maps.EqualFunc(st.Labels, want, func(a, b store.LabelCounts) bool {
			return a.Unlabelled == b.Unlabelled && maps.Equal(a.Labels, b.Labels)
		}) {
			t.Errorf("labels %+v, want %+v", st.Labels, want)
		}
		// H1 1,000 + H2 3,000 + 500.50; not H1's open or lost deal, not
		// H2's draft; H6 has none and counts as zero: 4,500.50 / 3.
		if st.WonRevenue.Total != "4500.50" || st.WonRevenue.Average == nil || *st.WonRevenue.Average != "1500.17" {
			t.Errorf("won revenue %s, average %v; want 4500.50 and 1500.17", st.WonRevenue.Total, st.WonRevenue.Average)
		}
	})
	t.Run("top five industries and countries, ties by name", func(t *testing.T) {
		seg := createSegment(t, db, org.ID, "At risk", atRiskCriteria)
		d, err := db.SegmentDetail(ctx, org.ID, seg.ID)
		if err != nil {
			t.Fatal(err)
		}
		st := d.Stats
		wantIndustries := []store.ValueCount{{Value: "Healthcare", Count: 4}, {Value: "Technology", Count: 2},
			{Value: "Energy", Count: 1}, {Value: "Finance", Count: 1}, {Value: "Media", Count: 1}} // not Retail, sixth
		wantCountries := []store.ValueCount{{Value: "US", Count: 4}, {Value: "DE", Count: 3}, {Value: "GB", Count: 2}, {Value: "FR", Count: 1}}
		if st.Members != 10 || !slices.Equal(st.TopIndustries, wantIndustries) || !slices.Equal(st.TopCountries, wantCountries) {
			t.Errorf("members %d, industries %v, countries %v; want 10, %v, %v", st.Members, st.TopIndustries, st.TopCountries, wantIndustries, wantCountries)
		}
		// H1 1,000 + H2 3,500.50 + H3 200 + T1 50 over 10 members.
		if st.WonRevenue.Total != "4750.50" || st.WonRevenue.Average == nil || *st.WonRevenue.Average != "475.05" {
			t.Errorf("won revenue %s, average %v; want 4750.50 and 475.05", st.WonRevenue.Total, st.WonRevenue.Average)
		}
		if rfm := st.Labels["rfm"]; rfm.Labels["At risk"] != 10 || rfm.Unlabelled != 0 {
			t.Errorf("rfm labels %+v", rfm)
		}
	})
	t.Run("no members", func(t *testing.T) {
		seg := createSegment(t, db, org.ID, "Nobody", crit(`{"conditions": [{"field": "industry", "op": "equals", "value": "Mining"}]}`))
		d, err := db.SegmentDetail(ctx, org.ID, seg.ID)
		if err != nil {
			t.Fatal(err)
		}
		st := d.Stats
		if st.Members != 0 || st.WonRevenue.Total != "0" || st.WonRevenue.Average != nil || len(st.TopIndustries) != 0 || st.Labels["rfm"].Unlabelled != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("another org's segment is not found", func(t *testing.T) {
		other, _ := storetest.NewOrg(t, db, "stats-other")
		seg := createSegment(t, db, org.ID, "Mine", atRiskCriteria)
		if _, err := db.SegmentDetail(ctx, other.ID, seg.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("detail: %v, want ErrNotFound", err)
		}
		if _, err := db.SegmentMembers(ctx, other.ID, seg.ID, 10, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("members: %v, want ErrNotFound", err)
		}
		if err := db.DeleteSegment(ctx, other.ID, seg.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete: %v, want ErrNotFound", err)
		}
		if _, err := db.UpdateSegment(ctx, other.ID, seg.ID, store.SegmentInput{Name: "x", Criteria: atRiskCriteria}, rfmToday); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update: %v, want ErrNotFound", err)
		}
	})
}

// The member list pages by account id with an opaque cursor, every
// member once, with its labels per technique.
func TestSegmentMembersPageWithACursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "members")
	seedZylker(t, db, org.ID)
	seg := createSegment(t, db, org.ID, "At risk", atRiskCriteria)

	var got []string
	byID := map[string]store.SegmentMember{}
	cursor, pages := "", 0
	for {
		page, err := db.SegmentMembers(ctx, org.ID, seg.ID, 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Accounts) > 3 {
			t.Fatalf("page of %d", len(page.Accounts))
		}
		for _, m := range page.Accounts {
			got = append(got, m.ID)
			byID[m.ID] = m
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	want := []string{"H1", "H2", "H3", "H6", "T1", "T2", "E1", "F1", "M1", "R1"} // stored in this order
	if !slices.Equal(got, want) || pages != 4 {
		t.Fatalf("members %v over %d pages, want %v over 4", got, pages, want)
	}
	h1 := byID["H1"]
	if h1.Name == nil || *h1.Name != "Account H1" || *h1.Industry != "Healthcare" || *h1.Country != "DE" {
		t.Errorf("H1 %+v", h1)
	}
	rfm, firmo := h1.Labels["rfm"], h1.Labels["firmographics"]
	if rfm.Label == nil || *rfm.Label != "At risk" || rfm.R == nil || rfm.F == nil || rfm.M == nil ||
		firmo.Label == nil || *firmo.Label != "Mid-market" || firmo.R != nil {
		t.Errorf("H1 labels %+v %+v", rfm, firmo)
	}
	if l, ok := byID["H3"].Labels["firmographics"]; !ok || l.Label != nil {
		t.Errorf("H3 firmographics %+v (present %v), want a null label", l, ok)
	}
	if _, err := db.SegmentMembers(ctx, org.ID, seg.ID, 3, "not-a-cursor"); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
	}
}

// SegmentsUsing tells the technique editor which segments hold a
// technique, or some of its labels, and stops telling once they are gone.
func TestSegmentsUsingTechniquesAndLabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "using")
	seedZylker(t, db, org.ID)
	zylker := createSegment(t, db, org.ID, "Healthcare at risk (DE)", zylkerCriteria) // label.rfm equals At risk
	prefix := createSegment(t, db, org.ID, "Starts with at", crit(`{"conditions": [{"field": "label.rfm", "op": "starts_with", "value": " AT"}]}`))
	notChampions := createSegment(t, db, org.ID, "Not champions", crit(`{"conditions": [{"field": "label.rfm", "op": "not_equals", "value": "Champions"}]}`))
	score := createSegment(t, db, org.ID, "High recency score", crit(`{"conditions": [{"field": "score.rfm.r", "op": "gte", "value": 4}]}`))
	raw := createSegment(t, db, org.ID, "Bought this year", crit(`{"conditions": [{"field": "rfm.recency_days", "op": "lt", "value": 365}]}`))
	firmo := createSegment(t, db, org.ID, "Enterprise", crit(`{"conditions": [{"field": "label.firmographics", "op": "in", "value": ["Enterprise", "Mid-market"]}, {"field": "country", "op": "is_not_empty"}], "pattern": "NOT 1 OR 2"}`))
	fieldsOnly := createSegment(t, db, org.ID, "Germany", crit(`{"conditions": [{"field": "country", "op": "equals", "value": "DE"}]}`))
	_ = fieldsOnly

	ids := func(refs []store.SegmentRef) []int64 {
		out := []int64{}
		for _, r := range refs {
			out = append(out, r.ID)
		}
		return out
	}
	cases := []struct {
		name      string
		technique string
		labels    []string
		want      []int64
	}{
		{"any use of rfm: its label, its scores, its raw values", "rfm", nil, []int64{zylker.ID, prefix.ID, notChampions.ID, score.ID, raw.ID}},
		{"the label At risk: named by equals, matched by the prefix, and the negative condition", "rfm", []string{"At risk"}, []int64{zylker.ID, prefix.ID, notChampions.ID}},
		{"Champions: only the negative condition names it (not_equals depends on every label)", "rfm", []string{"Champions"}, []int64{notChampions.ID}},
		{"Attentive matches the prefix alone", "rfm", []string{"Loyal", "Attentive"}, []int64{prefix.ID, notChampions.ID}},
		{"firmographics wide, also under NOT", "firmographics", nil, []int64{firmo.ID}},
		{"a firmographic label named by in", "firmographics", []string{"mid-market"}, []int64{firmo.ID}},
		{"a firmographic label no condition names", "firmographics", []string{"Small"}, []int64{}},
		{"a technique no segment reads", "engagement", nil, []int64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refs, err := db.SegmentsUsing(ctx, org.ID, c.technique, c.labels)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(refs); !slices.Equal(got, c.want) {
				t.Errorf("SegmentsUsing(%s, %v) = %v, want %v", c.technique, c.labels, got, c.want)
			}
		})
	}
	refs, _ := db.SegmentsUsing(ctx, org.ID, "rfm", []string{"At risk"})
	if len(refs) == 0 || refs[0].Name != zylker.Name {
		t.Errorf("refs %+v do not name the segment", refs)
	}

	if err := db.DeleteSegment(ctx, org.ID, zylker.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSegment(ctx, org.ID, notChampions.ID); err != nil {
		t.Fatal(err)
	}
	refs, err := db.SegmentsUsing(ctx, org.ID, "rfm", []string{"At risk"})
	if err != nil || !slices.Equal(ids(refs), []int64{prefix.ID}) {
		t.Errorf("after deleting two: %v, %v; want only the prefix segment", ids(refs), err)
	}
	if got := members(t, db, zylker.ID); len(got) != 0 {
		t.Errorf("a deleted segment kept members %v", got)
	}
	other, _ := storetest.NewOrg(t, db, "using-other")
	if refs, err := db.SegmentsUsing(ctx, other.ID, "rfm", nil); err != nil || len(refs) != 0 {
		t.Errorf("another org: %v, %v", refs, err)
	}
}

// What a segment must be: every problem is named, a criteria error names
// its condition, names are unique per org whatever their case, and an
// org has at most MaxSegments.
func TestSegmentInputIsChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "checked")

	var se store.SegmentErrors
	_, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: " padded", Description: "bell\a", Criteria: crit(`{"conditions": [
		{"field": "country", "op": "equals", "value": "DE"},
		{"field": "label.rfm", "op": "gt", "value": 3},
		{"field": "label.nosuch", "op": "is_empty"}]}`)}, rfmToday)
	if !errors.As(err, &se) || !errors.Is(err, store.ErrInvalidSegment) {
		t.Fatalf("err %v, want SegmentErrors", err)
	}
	for _, k := range []string{"name", "description", "criteria.conditions[1].op", "criteria.conditions[2].field"} {
		if se[k] == "" {
			t.Errorf("errors %v do not name %s", se, k)
		}
	}
	if len(se) != 4 {
		t.Errorf("errors %v, want exactly four", se)
	}
	for name, in := range map[string]store.SegmentInput{
		"no criteria":      {Name: "x"},
		"an empty name":    {Name: "", Criteria: atRiskCriteria},
		"a long name":      {Name: strings.Repeat("é", 101), Criteria: atRiskCriteria},
		"a control char":   {Name: "a\tb", Criteria: atRiskCriteria},
		"a bad pattern":    {Name: "x", Criteria: crit(`{"conditions": [{"field": "country", "op": "is_empty"}], "pattern": "1 AND 2"}`)},
		"a long describer": {Name: "x", Description: strings.Repeat("a", 1001), Criteria: atRiskCriteria},
	} {
		if _, err := db.CreateSegment(ctx, org.ID, in, rfmToday); !errors.Is(err, store.ErrInvalidSegment) {
			t.Errorf("%s: %v, want ErrInvalidSegment", name, err)
		}
	}
	if _, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: strings.Repeat("é", 100), Description: "two\nlines", Criteria: crit(`{"conditions": []}`)}, rfmToday); err != nil {
		t.Errorf("a 100-character name, a two-line description, no conditions: %v", err)
	}

	first := createSegment(t, db, org.ID, "At risk", atRiskCriteria)
	if _, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: "AT RISK", Criteria: atRiskCriteria}, rfmToday); !errors.Is(err, store.ErrConflict) {
		t.Errorf("the same name in another case: %v, want ErrConflict", err)
	}
	second := createSegment(t, db, org.ID, "Other", atRiskCriteria)
	if _, err := db.UpdateSegment(ctx, org.ID, second.ID, store.SegmentInput{Name: "at risk", Criteria: atRiskCriteria}, rfmToday); !errors.Is(err, store.ErrConflict) {
		t.Errorf("renaming onto a taken name: %v, want ErrConflict", err)
	}
	other, _ := storetest.NewOrg(t, db, "checked-other")
	createSegment(t, db, other.ID, "At risk", atRiskCriteria) // names are per org

	for i := 3; i < store.MaxSegments; i++ {
		createSegment(t, db, org.ID, fmt.Sprintf("segment %d", i), atRiskCriteria)
	}
	if _, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: "one too many", Criteria: atRiskCriteria}, rfmToday); !errors.Is(err, store.ErrConflict) {
		t.Errorf("segment %d: %v, want ErrConflict", store.MaxSegments+1, err)
	}
	if err := db.DeleteSegment(ctx, org.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	createSegment(t, db, org.ID, "one too many", atRiskCriteria) // a place was freed
	list, err := db.Segments(ctx, org.ID)
	if err != nil || len(list) != store.MaxSegments {
		t.Fatalf("%d segments, %v", len(list), err)
	}
}

// A segment whose criteria the mapping no longer supports keeps its last
// membership and computed_at, and the recomputation names it; the org's
// other segments are recomputed all the same.
func TestRecomputeKeepsASegmentTheMappingBroke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "broken")
	if _, err := db.SetABMMapping(ctx, org.ID, mappingOf(t, `{"roles": {"accounts": {"fields": {
		"tier": {"org_field": "attributes.tier", "type": "text"}}}}}`)); err != nil {
		t.Fatal(err)
	}
	rows := []json.RawMessage{
		json.RawMessage(`{"external_id": "G", "country": "DE", "attributes": {"tier": "gold"}}`),
		json.RawMessage(`{"external_id": "S", "country": "DE", "attributes": {"tier": "silver"}}`)}
	if res, err := db.UpsertRecords(ctx, org.ID, "accounts", rows); err != nil || res.Failed != 0 {
		t.Fatalf("accounts: %+v %v", res, err)
	}
	gold := createSegment(t, db, org.ID, "Gold", crit(`{"conditions": [{"field": "tier", "op": "equals", "value": "gold"}]}`))
	germany := createSegment(t, db, org.ID, "Germany", crit(`{"conditions": [{"field": "country", "op": "equals", "value": "DE"}]}`))
	if _, err := db.SetABMMapping(ctx, org.ID, mappingOf(t, `{}`)); err != nil { // tier is gone
		t.Fatal(err)
	}
	rows = append(rows, json.RawMessage(`{"external_id": "N", "country": "DE", "attributes": {"tier": "gold"}}`))
	if res, err := db.UpsertRecords(ctx, org.ID, "accounts", rows); err != nil || res.Failed != 0 {
		t.Fatalf("accounts: %+v %v", res, err)
	}

	n, err := db.RecomputeSegments(ctx, org.ID, rfmToday.Add(time.Hour))
	if n != 1 || !errors.Is(err, criteria.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("segment %d", gold.ID)) {
		t.Fatalf("recomputed %d, %v; want 1 and an error naming segment %d", n, err, gold.ID)
	}
	if got := members(t, db, germany.ID); !slices.Equal(got, []string{"G", "N", "S"}) {
		t.Errorf("germany %v, want [G N S]", got)
	}
	s, err := db.Segment(ctx, org.ID, gold.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := members(t, db, gold.ID); !slices.Equal(got, []string{"G"}) || s.ComputedAt == nil || !s.ComputedAt.Equal(rfmToday) {
		t.Errorf("gold: members %v as of %v, want its last [G] as of %v", got, s.ComputedAt, rfmToday)
	}
}

// Creations racing for the last places of an org take exactly those.
func TestConcurrentCreationsKeepTheSegmentLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "race")
	for i := 2; i < store.MaxSegments; i++ {
		createSegment(t, db, org.ID, fmt.Sprintf("segment %d", i), crit(`{"conditions": []}`))
	}
	const racers = 8
	errs := make(chan error, racers)
	for i := range racers {
		go func() {
			_, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: fmt.Sprintf("racer %d", i), Criteria: crit(`{"conditions": []}`)}, rfmToday)
			errs <- err
		}()
	}
	created := 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			created++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racer: %v", err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM segments WHERE org_id = $1`, org.ID); err != nil || created != 2 || n != store.MaxSegments {
		t.Fatalf("%d racers created, the org has %d segments (%v); want 2 and %d", created, n, err, store.MaxSegments)
	}
}

// A technique edit checks the segments that read it under the org's lock,
// the lock a segment write holds: a segment that commits while the edit
// waits is seen, not slipped past.
func TestATechniqueEditSeesASegmentCommittedWhileItWaited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "edit-race")
	seedZylker(t, db, org.ID)

	// A segment write in flight: it holds the org's lock, as
	// CreateSegment and UpdateSegment do, and reads label.rfm "At risk".
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, org.ID); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(atRiskCriteria)
	if _, err := tx.ExecContext(ctx, `INSERT INTO segments (org_id, name, description, criteria) VALUES ($1, 'Lapsed', '', $2)`, org.ID, raw); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := db.WriteTechnique(ctx, org.ID, store.TechniqueRFM, store.TechniqueWrite{
			Labels: json.RawMessage(`[]`), Now: rfmToday, Guard: &store.UseGuard{Labels: []string{"At risk"}}})
		done <- err
	}()
	// Commit only once the edit waits for the lock.
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("the edit finished while a segment write held the org's lock: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if err := db.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var inUse *store.InUseError
	if err := <-done; !errors.As(err, &inUse) || !slices.Equal(inUse.Segments, []string{"Lapsed"}) {
		t.Fatalf("edit after a segment committed: %v; want the segment named in an InUseError", err)
	}
}
