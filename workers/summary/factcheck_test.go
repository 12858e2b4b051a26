package summary_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/llm/gemini"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

// geminiServer speaks the Gemini REST protocol's generateContent and
// answers every request with answer as the model's text.
func geminiServer(t *testing.T, answer string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		text, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":`+string(text)+`}],"role":"model"},"finishReason":"STOP","index":0}],`+
			`"usageMetadata":{"promptTokenCount":900,"candidatesTokenCount":80,"totalTokenCount":980},"modelVersion":"gemini-test"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A bullet of any provider that states a number the facts do not hold is
// dropped and counted, like an unknown ref; the amounts and dates the
// facts hold stand, written with currency and separators or not.
func TestEveryProvidersNumbersAreChecked(t *testing.T) {
	g := store.SummaryGraph{
		Subject: rec("deals", "d-1", 0, "", store.Record{"name": "deal d-1", "stage": "Proposal", "amount": n("130745.76"),
			"close_date": date(today.AddDate(0, 1, 0))}),
		Related: []store.GraphRecord{}, Activities: []store.GraphRecord{}, Org: map[string]any{},
	}
	answer := `{"sections":[` +
		`{"key":"overview","bullets":[` +
		`{"text":"deal d-1 is worth USD 130,745.76 and closes on ` + date(today.AddDate(0, 1, 0)) + `.","sources":["deals/d-1"]},` +
		`{"text":"deal d-1 is worth USD 250,000.00.","sources":["deals/d-1"]},` +
		`{"text":"The buyer signed on 2025-04-31.","sources":["deals/d-1"]}]},` +
		`{"key":"deal_progress","bullets":[{"text":"Stage Proposal, 130745.76 in value.","sources":["deals/d-1"]}]}]}`
	srv := geminiServer(t, answer)
	p, err := gemini.New(context.Background(), gemini.Config{APIKey: "test-key", Model: "gemini-test", BaseURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := summary.Generate(context.Background(), &fakeGraphs{g: g}, p, input("deals", "d-1", nil))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	var kept []string
	for _, s := range res.Sections {
		for _, b := range s.Bullets {
			kept = append(kept, b.Text)
		}
	}
	all := strings.Join(kept, "\n")
	if strings.Contains(all, "250,000") || strings.Contains(all, "2025-04-31") {
		t.Errorf("an invented amount or date stands:\n%s", all)
	}
	if !strings.Contains(all, "worth USD 130,745.76 and closes on") || !strings.Contains(all, "Stage Proposal, 130745.76 in value.") {
		t.Errorf("a bullet stating the facts' own numbers was dropped:\n%s", all)
	}
	if res.Dropped != 2 {
		t.Errorf("dropped = %d, want 2 (the invented amount and the invented date)", res.Dropped)
	}
}

// The offline provider never trips the check: its numbers are the facts'.
func TestOfflineAnswersPassTheNumberCheck(t *testing.T) {
	for _, fx := range realistic() {
		req, resp := offlineAnswer(t, fx.graph, fx.module, 0)
		if _, dropped := summary.Validate(resp.Answer, req); dropped != 0 {
			t.Errorf("%s: validation dropped %d things of the offline answer", fx.module, dropped)
		}
	}
}

// A bullet of any provider naming a person, account, deal or product the
// facts do not hold is dropped and counted like an invented number; the
// names the facts hold stand, whichever case or place in the sentence.
func TestEveryProvidersNamesAreChecked(t *testing.T) {
	g := store.SummaryGraph{
		Subject: rec("deals", "d-1", 0, "", store.Record{"name": "Northwind Renewal", "stage": "Proposal",
			"amount": n("36000.00"), "account": "acc-1", "contact": "c-1", "close_date": date(today.AddDate(0, 1, 0))}),
		Related: []store.GraphRecord{
			rec("accounts", "acc-1", 1, "deals/d-1", store.Record{"name": "Northwind Traders", "city": "north bay"}),
			rec("contacts", "c-1", 1, "deals/d-1", store.Record{"first_name": "Alpha", "last_name": "Buyer", "title": "VP Operations"}),
			rec("deal_line_items", "li-1", 1, "deals/d-1", store.Record{"deal": "d-1", "product": "p-1", "quantity": n("3")}),
			rec("products", "p-1", 2, "deal_line_items/li-1", store.Record{"name": "Widget Suite"}),
		},
		Activities: []store.GraphRecord{}, Org: map[string]any{},
	}
	answer := func(bullets ...string) string {
		var b strings.Builder
		b.WriteString(`{"sections":[{"key":"overview","bullets":[`)
		for i, text := range bullets {
			if i > 0 {
				b.WriteString(",")
			}
			js, _ := json.Marshal(text)
			b.WriteString(`{"text":` + string(js) + `,"sources":["deals/d-1","contacts/c-1"]}`)
		}
		b.WriteString(`]}]}`)
		return b.String()
	}
	generate := func(t *testing.T, ans string) (kept []string, res summary.Result) {
		t.Helper()
		srv := geminiServer(t, ans)
		p, err := gemini.New(context.Background(), gemini.Config{APIKey: "test-key", Model: "gemini-test", BaseURL: srv.URL, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res, err = summary.Generate(context.Background(), &fakeGraphs{g: g}, p, input("deals", "d-1", nil))
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		for _, s := range res.Sections {
			if s.Key == "overview" {
				for _, b := range s.Bullets {
					kept = append(kept, b.Text)
				}
			}
		}
		return kept, res
	}

	t.Run("real names stand", func(t *testing.T) {
		real := []string{
			"Northwind Renewal (Proposal) with Northwind Traders is worth USD 36,000.00; the buyer is Alpha Buyer, VP Operations.",
			"Alpha Buyer owns the evaluation of Widget Suite for North Bay.",
			"Schedule a call with Alpha before June ends.",
		}
		kept, res := generate(t, answer(real...))
		if !slices.Equal(kept, real) || res.Dropped != 0 || res.Drops.Names != 0 {
			t.Errorf("kept %q, drops %+v; want every bullet kept", kept, res.Drops)
		}
	})
	t.Run("an invented contact, account, deal or product name is caught", func(t *testing.T) {
		invented := []string{
			"The buyer is Omega Buyer, VP Operations.",       // a contact the facts do not hold
			"Alpha Buyer also speaks for Southgate Traders.", // an account
			"Northwind Expansion is the next deal to open.",  // a deal
			"Alpha Buyer asked for a Gizmo Suite quote.",     // a product
			"Omega Zeta raised a churn risk.",                // the second word gives away a name that opens the sentence
		}
		kept, res := generate(t, answer(append([]string{"Alpha Buyer is the buyer."}, invented...)...))
		if !slices.Equal(kept, []string{"Alpha Buyer is the buyer."}) {
			t.Errorf("kept %q, want only the bullet with real names", kept)
		}
		if res.Drops.Names != len(invented) || res.Dropped != len(invented) {
			t.Errorf("drops %+v (dropped %d), want %d names", res.Drops, res.Dropped, len(invented))
		}
	})
}
