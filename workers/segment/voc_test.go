package segment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers/segment"
)

// labelledTexts are thirty customer texts labelled by hand (sentiment and
// intent as a reader would put them), to measure the analyser.
var labelledTexts = []struct{ text, sentiment, intent string }{
	{"I am tired of this process", "negative", "complaint"},
	{"Great support, thank you!", "positive", "feedback"},
	{"Please send us a quote for 20 more seats", "neutral", "purchase"},
	{"The export fails every night and nobody answers", "negative", "complaint"},
	{"How do I reset the password for a new user?", "neutral", "query"},
	{"We love the new dashboards, the team is very happy", "positive", "feedback"},
	{"Cancel my subscription NOW!!!", "negative", "complaint"},
	{"We want to buy the Analytics add-on this quarter", "neutral", "purchase"},
	{"Could you set up a call with your solutions team?", "neutral", "request"},
	{"The sync is terribly slow and it is unacceptable", "negative", "complaint"},
	{"Thanks for the quick fix, excellent work", "positive", "feedback"},
	{"What is the price of the premium support plan?", "neutral", "query"},
	{"Is there a way to export reports to Excel?", "neutral", "query"},
	{"We are disappointed with the onboarding", "negative", "complaint"},
	{"Happy to renew for another year, great partnership", "positive", "purchase"},
	{"Please update the billing address on our invoice", "neutral", "request"},
	{"The dashboard is broken again, this is frustrating", "negative", "complaint"},
	{"Your team did an amazing job with the rollout", "positive", "feedback"},
	{"When will the new API version be available?", "neutral", "query"},
	{"We need two additional licenses for the sales team", "neutral", "purchase"},
	{"Not happy with the response time on tickets", "negative", "complaint"},
	{"The training session was helpful and well organised", "positive", "feedback"},
	{"Can you send me the documentation link?", "neutral", "request"},
	{"We are considering moving to Brightline because support is poor", "negative", "complaint"},
	{"Meeting notes attached for the quarterly review", "neutral", "other"},
	{"The new release works perfectly, well done", "positive", "feedback"},
	{"Our invoice shows the wrong amount, please correct it", "negative", "complaint"},
	{"We would like to upgrade to the Enterprise plan", "neutral", "purchase"},
	{"Terrible experience with the last update, everything crashed", "negative", "complaint"},
	{"Thank you, the issue is resolved and we are satisfied", "positive", "feedback"},
}

// The analyser on the labelled texts: its sentiment and intent accuracy
// are reported (README quotes the figures) and must stay above a floor.
func TestVoCAnalyserAccuracy(t *testing.T) {
	a, err := segment.NewAnalyser(segment.DefaultVoC().VoCSettings)
	if err != nil {
		t.Fatal(err)
	}
	sent, intent := 0, 0
	for i, lt := range labelledTexts {
		got := a.Analyse(store.VoCText{ID: int64(i), Text: lt.text})
		if got.Sentiment == lt.sentiment {
			sent++
		} else {
			t.Logf("sentiment %q: %s (compound %.3f), labelled %s", lt.text, got.Sentiment, got.Compound, lt.sentiment)
		}
		if got.Intent == lt.intent {
			intent++
		} else {
			t.Logf("intent %q: %s, labelled %s", lt.text, got.Intent, lt.intent)
		}
	}
	n := len(labelledTexts)
	t.Logf("VoC on %d labelled texts: sentiment %d/%d (%.0f%%), intent %d/%d (%.0f%%)", n, sent, n, 100*float64(sent)/float64(n), intent, n, 100*float64(intent)/float64(n))
	if sent*100 < 70*n || intent*100 < 70*n {
		t.Errorf("accuracy below 70%%: sentiment %d/%d, intent %d/%d", sent, n, intent, n)
	}
}

// VoC end to end: texts from emails (through a contact) and cases are
// analysed once and cached, aggregated into shares and counts, labelled by
// criteria with an OR pattern, explained with quotes, and readable by
// segments as voc.* fields.
func TestVoCSharesLabelsAndCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`, `{"external_id":"beta","name":"Beta"}`)
	f.ingest(t, "contacts", `{"external_id":"c1","account":"acme","last_name":"A"}`)
	texts := []string{
		"We want to buy more seats from you", "We want to buy more seats from you", "We want to buy more seats from you",
		"Please send a quote for 10 seats, we compare with Brightline", "Please send a quote for 10 seats, we compare with Brightline",
		"Please send a quote for 10 seats, we compare with Brightline",
		"The export is broken and we are unhappy", "The export is broken and we are unhappy",
		"How do we add a new user?", "How do we add a new user?",
	}
	var acts []string
	for i, tx := range texts {
		acts = append(acts, act(fmt.Sprintf("e%d", i), "email", "signal", ago(float64(i+1)), "c1", "", tx))
	}
	acts = append(acts,
		act("fu", "email", "follow_up", ago(1), "c1", "Delivered", "We want to buy seats"), // ours, not the customer's
		act("old", "email", "signal", ago(400), "acc:beta", "", "Brightline Brightline"),   // outside the year
	)
	f.ingest(t, "activities", acts...)
	f.ingest(t, "cases", fmt.Sprintf(`{"external_id":"k1","account":"beta","subject":"We are unhappy, Brightline offers more","opened_at":%q}`, ago(3)))

	s := segment.VoC{VoCSettings: store.VoCSettings{Sources: store.VoCSources(), WindowDays: 365, Keywords: []string{"seats", "price"}, Competitors: []string{"Brightline"}}}
	c := func(field string, op criteria.Op, v string) criteria.Condition {
		return criteria.Condition{Field: field, Op: op, Value: json.RawMessage(v)}
	}
	labels := []segment.Label{
		{Name: "Switch risk", Criteria: criteria.Criteria{Conditions: []criteria.Condition{c("competitor.brightline", criteria.Gte, "1"), c("intent.complaint", criteria.Gte, "50")}}},
		{Name: "Ready to buy", Criteria: criteria.Criteria{Conditions: []criteria.Condition{c("intent.purchase", criteria.Gte, "90"), c("keyword.seats", criteria.Gt, "5")}, Pattern: "1 OR 2"}},
	}
	raw, _ := json.Marshal(s)
	if _, _, err := f.setup.Put(ctx, f.org, "voc", segment.View{Settings: raw, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	f.activate(t, "voc")
	res := f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"})
	if r := res.Techniques[0]; r.Analysed != 11 || r.Scored != 2 {
		t.Fatalf("first refresh %+v, want 11 texts analysed (10 emails, 1 case) and 2 accounts", r)
	}
	// The shares, by hand: 6 of 10 texts ask to buy, 2 complain, 2 ask.
	a, err := segment.NewAnalyser(s.VoCSettings)
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	for _, tx := range texts {
		if a.Analyse(store.VoCText{Text: tx}).Sentiment == "positive" {
			pos++
		}
	}
	got, _, label := f.result(t, "voc", "acme")
	intent := got["intent"].(map[string]any)
	if intent["purchase"] != 60.0 || intent["complaint"] != 20.0 || intent["query"] != 20.0 || got["texts"] != 10.0 {
		t.Errorf("acme intents %v texts %v, want purchase 60, complaint 20, query 20 of 10", intent, got["texts"])
	}
	if kw := got["keyword"].(map[string]any); kw["seats"] != 6.0 || kw["price"] != nil {
		t.Errorf("acme keywords %v, want seats 6", kw)
	}
	if comp := got["competitor"].(map[string]any); comp["brightline"] != 3.0 {
		t.Errorf("acme competitors %v, want brightline 3", comp)
	}
	if sh := got["sentiment"].(map[string]any); sh["positive"] != float64(pos*10) {
		t.Errorf("acme sentiment %v, want positive %d%%", sh, pos*10)
	}
	if label != "Ready to buy" {
		t.Errorf("acme label %q, want Ready to buy (seats mentioned 6 times)", label)
	}
	if _, _, l := f.result(t, "voc", "beta"); l != "Switch risk" {
		t.Errorf("beta label %q, want Switch risk (its case complains and names Brightline)", l)
	}

	e, err := f.setup.Explain(ctx, f.org, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, te := range e.Techniques {
		if te.Technique != "voc" {
			continue
		}
		quotes := te.Details.(map[string]any)["quotes"].([]store.VoCQuote)
		if len(quotes) != 3 || quotes[0].Intent != "purchase" || te.Rule == nil || te.Rule.Label.Name != "Ready to buy" {
			t.Errorf("explanation %+v, want the Ready to buy rule and three purchase texts", te)
		}
	}

	// Segments read the shares and counts.
	seg, err := f.db.CreateSegment(ctx, f.org, store.SegmentInput{Name: "Buyers naming Brightline", Criteria: &criteria.Criteria{Conditions: []criteria.Condition{
		c("voc.intent.purchase", criteria.Gte, "50"), c("voc.competitor.brightline", criteria.Gte, "3"), c("voc.keyword.seats", criteria.Equals, "6")}}}, today)
	if err != nil || seg.MemberCount != 1 {
		t.Fatalf("segment over voc fields: %+v %v, want acme alone", seg, err)
	}

	// The cache: nothing new, nothing analysed; one changed text, one.
	if r := f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc", Force: true}).Techniques[0]; r.Analysed != 0 {
		t.Errorf("forced refresh over unchanged texts analysed %d, want 0", r.Analysed)
	}
	f.ingest(t, "activities", act("e0", "email", "signal", ago(1), "c1", "", "This is terrible, cancel everything"))
	if r := f.refresh(t, jobs.SegmentRefreshPayload{Technique: "voc"}).Techniques[0]; r.Analysed != 1 {
		t.Errorf("refresh after one text changed analysed %d, want 1", r.Analysed)
	}
}

// The cache is read by windows of candidate texts: a window whose texts
// are all cached yields none but says where the next one starts, so the
// texts after it are still found, each once.
func TestVoCPendingWindowsPastCachedTexts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.ingest(t, "accounts", `{"external_id":"acme","name":"Acme"}`)
	var acts []string
	for i := range 7 {
		acts = append(acts, act(fmt.Sprintf("e%d", i), "email", "signal", ago(float64(i+1)), "acc:acme", "", "Please send a quote"))
	}
	f.ingest(t, "activities", acts...)
	s := segment.DefaultVoC().VoCSettings
	a, err := segment.NewAnalyser(s)
	if err != nil {
		t.Fatal(err)
	}
	now := f.ref.Now()
	pending := func() (ids []int64, windows int) {
		after := int64(0)
		for {
			texts, next, err := f.db.VoCPending(ctx, f.org, s, a.Key, "activity", after, 2, now)
			if err != nil {
				t.Fatal(err)
			}
			if next == 0 {
				return ids, windows
			}
			windows++
			for _, tx := range texts {
				ids = append(ids, tx.ID)
			}
			after = next
		}
	}
	all, windows := pending()
	if len(all) != 7 || windows != 4 {
		t.Fatalf("pending %v in %d windows, want 7 texts in 4 windows of 2", all, windows)
	}
	// Cache the first four: the first two windows hold nothing pending.
	var batch []store.VoCAnalysis
	for _, id := range all[:4] {
		var tx store.VoCText
		if err := f.db.GetContext(ctx, &tx, `SELECT 'activity' AS source, id, updated_at, '' AS text FROM activities WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, a.Analyse(tx))
	}
	if err := f.db.SaveVoCAnalyses(ctx, f.org, a.Key, batch); err != nil {
		t.Fatal(err)
	}
	rest, windows := pending()
	if fmt.Sprint(rest) != fmt.Sprint(all[4:]) || windows != 4 {
		t.Errorf("after caching four: pending %v in %d windows, want %v in 4", rest, windows, all[4:])
	}
}
