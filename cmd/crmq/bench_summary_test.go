package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// loadSummaryOrg writes a small CRM into a new org "demo", by hand rather
// than with demo.Seed, which takes about 40 s under -race: 11 accounts
// (acc-02 a draft, acc-05 without any associated record), 14 contacts
// (con-03 a draft), 12 leads and 12 deals, each with 20 to 40 activities,
// and cases and KPIs on the accounts.
func loadSummaryOrg(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	org, err := db.CreateOrg(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	at := func(hours int) string { return now.Add(-time.Duration(hours) * time.Hour).Format(time.RFC3339) }
	rows := map[string][]map[string]any{}
	add := func(module string, r map[string]any) { rows[module] = append(rows[module], r) }
	// Every record has enough activity that Generate's own work (prompt,
	// offline answer, validation) stands clear of the noise of the graph
	// read it repeats, also at p99, which of 40 records is the slowest.
	sentences := []string{"They are interested in adding seats for the support team.", "Issue was escalated to management on their side.",
		"Thanks, the onboarding went great.", "Asked for an update on the open request.", "Renewal is due next quarter.",
		"Budget approval delayed; they are evaluating Globex.", "The customer is considering a new region next year."}
	notes := make([]string, len(sentences))
	for i := range notes {
		notes[i] = strings.Join([]string{sentences[i], sentences[(i+2)%len(sentences)], sentences[(i+4)%len(sentences)]}, " ")
	}

	var withAccount []string // accounts that get associated records
	for i := 1; i <= 11; i++ {
		id := fmt.Sprintf("acc-%02d", i)
		r := map[string]any{"external_id": id, "name": "Account " + id, "industry": "Retail", "annual_revenue": 1_000_000 * i, "owner": "user-1"}
		if i == 2 {
			r["state"] = "draft"
		}
		add("accounts", r)
		if i != 5 {
			withAccount = append(withAccount, id)
		}
	}
	for i := 1; i <= 14; i++ {
		id, acc := fmt.Sprintf("con-%02d", i), withAccount[i%len(withAccount)]
		r := map[string]any{"external_id": id, "first_name": "Kim", "last_name": fmt.Sprint("Lee ", i), "title": "VP Sales",
			"email": id + "@example.com", "lifecycle_stage": "Customer", "account": acc}
		if i == 3 {
			r["state"] = "draft"
		}
		add("contacts", r)
		for k := range 20 {
			add("activities", map[string]any{"external_id": fmt.Sprintf("a-%s-%02d", id, k), "kind": "email", "medium": "email",
				"direction": []string{"signal", "follow_up"}[k%2], "occurred_at": at(30*i + 7*k), "subject": "Pricing for more seats",
				"notes": notes[k%len(notes)], "contact": id, "account": acc})
		}
	}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("lead-%02d", i)
		add("leads", map[string]any{"external_id": id, "first_name": "Sam", "last_name": fmt.Sprint("Ode ", i), "company": "Firm",
			"lead_source": []string{"Web", "Referral"}[i%2], "lead_status": "Contacted", "potential_value": 5000 * i})
		for k := range 20 {
			add("activities", map[string]any{"external_id": fmt.Sprintf("a-%s-%02d", id, k), "kind": "call", "medium": "call",
				"direction": "signal", "occurred_at": at(20*i + 5*k), "subject": "Inbound call", "notes": notes[k%len(notes)], "lead": id})
		}
	}
	for i := 1; i <= 12; i++ {
		id, acc := fmt.Sprintf("deal-%02d", i), withAccount[i%len(withAccount)]
		add("deals", map[string]any{"external_id": id, "name": "Deal " + id, "stage": []string{"Proposal", "Negotiation", "Closed Won"}[i%3],
			"amount": 10_000 * i, "close_date": now.AddDate(0, 0, i).Format(time.DateOnly), "account": acc, "contact": fmt.Sprintf("con-%02d", i)})
		for k := range 20 {
			add("activities", map[string]any{"external_id": fmt.Sprintf("a-%s-%02d", id, k), "kind": "meeting", "medium": "meeting",
				"direction": "follow_up", "occurred_at": at(10*i + 3*k), "subject": "Negotiation", "notes": notes[k%len(notes)], "deal": id})
		}
	}
	for i, acc := range withAccount {
		for k := range 40 {
			add("activities", map[string]any{"external_id": fmt.Sprintf("a-%s-%02d", acc, k), "kind": "meeting", "medium": "meeting",
				"direction": "follow_up", "occurred_at": at(9*k + i), "subject": "Business review", "notes": notes[k%len(notes)], "account": acc})
		}
		add("cases", map[string]any{"external_id": "case-" + acc, "subject": "Sync stopped", "status": "Open", "escalated": i%3 == 0, "account": acc})
		add("kpis", map[string]any{"external_id": "kpi-" + acc, "name": "Weekly active users", "status": "On Track", "target": 100, "actual": 40 + i, "account": acc})
	}
	for _, module := range []string{"accounts", "contacts", "leads", "deals", "cases", "kpis", "activities"} {
		batch := make([]json.RawMessage, len(rows[module]))
		for i, r := range rows[module] {
			if batch[i], err = json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		}
		res, err := db.UpsertRecords(ctx, org.ID, module, batch)
		if err != nil {
			t.Fatalf("upsert %s: %v", module, err)
		}
		for _, r := range res.Rows {
			if r.Status == store.RowError {
				t.Fatalf("upsert %s %s: %s", module, r.ExternalID, r.Error)
			}
		}
	}
}

func TestBenchSummaryOverAnOrgsRecords(t *testing.T) {
	db, url := storetest.NewDB(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("CRMQ_LOG_LEVEL", "warn")
	t.Setenv("CRMQ_SUMMARY_TOKEN_BUDGET", "20000")
	loadSummaryOrg(t, db)

	start := time.Now()
	code, stdout, stderr := crmq(t, "bench", "summary", "--records", "40", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout %s", code, stderr, stdout)
	}
	t.Logf("bench summary --records 40 took %s", time.Since(start))
	var rep summaryBenchReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}

	t.Run("the first active records of each module are picked, what accounts lack going to contacts", func(t *testing.T) {
		want := []modulePick{
			{Module: "accounts", Picked: 9, Active: 10, Skipped: 1, First: "acc-01", Last: "acc-11"},
			{Module: "contacts", Picked: 11, Active: 13, First: "con-01", Last: "con-12"},
			{Module: "leads", Picked: 10, Active: 12, First: "lead-01", Last: "lead-10"},
			{Module: "deals", Picked: 10, Active: 12, First: "deal-01", Last: "deal-10"},
		}
		if !reflect.DeepEqual(rep.Picked, want) {
			t.Errorf("picked %+v\nwant %+v", rep.Picked, want)
		}
	})
	t.Run("every picked record produced a summary", func(t *testing.T) {
		if rep.Summaries != 40 || rep.Errors != 0 {
			t.Fatalf("%d summaries, %d errors (first %q); want 40 and none", rep.Summaries, rep.Errors, rep.FirstError)
		}
		got := map[string]int{}
		for _, m := range rep.Modules {
			got[m.Module] = m.Summaries
		}
		if want := map[string]int{"accounts": 9, "contacts": 11, "leads": 10, "deals": 10, "all": 40}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("summaries per module %v, want %v", got, want)
		}
	})
	t.Run("percentiles are ordered and generate costs at least the graph read", func(t *testing.T) {
		for _, m := range rep.Modules {
			for name, s := range map[string]stepStats{"graph read": m.GraphRead, "generate": m.Generate} {
				if !(0 < s.P50MS && s.P50MS <= s.P99MS && s.P99MS <= s.MaxMS && 0 < s.MeanMS && s.MeanMS <= s.MaxMS && s.RecordsPerSec > 0) {
					t.Errorf("%s %s: %+v; want 0 < p50 <= p99 <= max, 0 < mean <= max, a rate", m.Module, name, s)
				}
			}
			if m.AllocsPerSummary <= m.AllocsPerGraphRead || m.AllocsPerGraphRead <= 0 {
				t.Errorf("%s: %.0f allocations per summary, %.0f per graph read", m.Module, m.AllocsPerSummary, m.AllocsPerGraphRead)
			}
		}
		all := rep.Modules[len(rep.Modules)-1]
		// Generating includes a graph read, so its median costs at least
		// the read's. The p99 of 40 samples is their single slowest, timed
		// in another pass: on a loaded machine either side's tail can be a
		// stall, so only its presence is checked.
		if all.Module != "all" || all.RatioP50 < 1 || all.RatioP99 <= 0 {
			t.Errorf("%s: generate / graph read %.2f at p50, %.2f at p99; want p50 >= 1 and a p99", all.Module, all.RatioP50, all.RatioP99)
		}
		t.Logf("graph read p50 %.3fms, generate p50 %.3fms, ratio %.2f at p50 and %.2f at p99, %.0f allocs per summary",
			all.GraphRead.P50MS, all.Generate.P50MS, all.RatioP50, all.RatioP99, all.AllocsPerSummary)
	})
	t.Run("prompts stay within the configured budget", func(t *testing.T) {
		if rep.BudgetTokens != 20000 || rep.BudgetFrom != "CRMQ_SUMMARY_TOKEN_BUDGET" {
			t.Errorf("budget %d from %q, want 20000 from the environment", rep.BudgetTokens, rep.BudgetFrom)
		}
		if rep.MaxPromptTokens <= 0 || rep.MaxPromptTokens > rep.BudgetTokens || !rep.WithinBudget {
			t.Errorf("max prompt %d tokens (%s), within %v", rep.MaxPromptTokens, rep.MaxPromptRef, rep.WithinBudget)
		}
	})
	t.Run("the 50,000-activity account fits the budget and says what it cut", func(t *testing.T) {
		s := rep.Scale
		if s.Error != "" || !s.WithinBudget || s.PromptTokens <= 0 || s.PromptTokens > 20000 || s.BudgetTokens != 20000 {
			t.Errorf("scale check %+v; want a prompt within 20000 tokens", s)
		}
		if s.ActivitiesTotal != 50000 || s.ActivitiesLoaded != store.ActivityCap || s.ActivitiesIncluded >= s.ActivitiesLoaded || s.TruncationNotes == 0 {
			t.Errorf("scale check %+v; want %d of 50000 loaded, fewer included, and truncation notes", s, store.ActivityCap)
		}
	})

	t.Run("--budget overrides the environment", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "bench", "summary", "--records", "4", "--budget", "6000", "--json")
		var rep summaryBenchReport
		if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if rep.BudgetTokens != 6000 || rep.BudgetFrom != "--budget" || rep.Summaries != 4 || rep.MaxPromptTokens > 6000 || rep.Scale.PromptTokens > 6000 {
			t.Errorf("budget %d from %q, %d summaries, max prompt %d, scale prompt %d",
				rep.BudgetTokens, rep.BudgetFrom, rep.Summaries, rep.MaxPromptTokens, rep.Scale.PromptTokens)
		}
	})
	t.Run("a missing org fails and says to seed it", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "bench", "summary", "--org", "nobody")
		if code != 1 || stdout != "" || !strings.Contains(stderr, `no org named "nobody": run `+"`crmq seed --org nobody`"+` first`) ||
			strings.Count(stderr, "\n") != 1 {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line saying to run crmq seed", code, stdout, stderr)
		}
	})
	t.Run("an org without records fails and says to seed it", func(t *testing.T) {
		if _, err := db.CreateOrg(context.Background(), "empty"); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := crmq(t, "bench", "summary", "--org", "empty")
		if code != 1 || stdout != "" || !strings.Contains(stderr, "crmq seed --org empty") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("usage mistakes exit 2", func(t *testing.T) {
		for _, args := range [][]string{{"--records", "0"}, {"--budget", "10"}, {"extra"}} {
			if code, _, stderr := crmq(t, append([]string{"bench", "summary"}, args...)...); code != 2 {
				t.Errorf("%v: exit %d, stderr %q; want 2", args, code, stderr)
			}
		}
	})
}

func TestSharesHandOutWhatAModuleLacks(t *testing.T) {
	for _, tc := range []struct {
		n     int
		avail []int
		want  []int
	}{
		{1000, []int{500, 500, 500, 500}, []int{250, 250, 250, 250}},
		{10, []int{9, 9, 9, 9}, []int{3, 3, 2, 2}},
		{1000, []int{178, 933, 289, 2874}, []int{178, 274, 274, 274}},
		{1000, []int{0, 100, 50, 2000}, []int{0, 100, 50, 850}},
		{40, []int{9, 13, 12, 12}, []int{9, 11, 10, 10}},
		{100, []int{1, 2, 3, 4}, []int{1, 2, 3, 4}},
		{3, []int{0, 0, 0, 0}, []int{0, 0, 0, 0}},
	} {
		if got := shares(tc.n, tc.avail); !slices.Equal(got, tc.want) {
			t.Errorf("shares(%d, %v) = %v, want %v", tc.n, tc.avail, got, tc.want)
		}
	}
}

func TestSummaryReportTable(t *testing.T) {
	step := func(p50, p99, max, mean, rate float64) stepStats {
		return stepStats{P50MS: p50, P99MS: p99, MaxMS: max, MeanMS: mean, RecordsPerSec: rate}
	}
	rep := summaryBenchReport{
		Org: "demo", Provider: "offline", BudgetTokens: 24000, BudgetFrom: "CRMQ_SUMMARY_TOKEN_BUDGET", RecordsAsked: 2,
		PickRule: summaryPickRule, Method: summaryMethod, Summaries: 2, MaxPromptTokens: 9000, MaxPromptRef: "accounts/acc-1", WithinBudget: true,
		Picked: []modulePick{{Module: "accounts", Picked: 1, Active: 3, Skipped: 2, First: "acc-1", Last: "acc-1"}, {Module: "leads"}},
		Modules: []moduleResult{{Module: "accounts", Summaries: 1, GraphRead: step(1.5, 2.25, 3, 1.75, 571.4),
			Generate: step(2, 3, 4.125, 2.5, 400), RatioP50: 1.33, RatioP99: 1.33, MaxPromptTokens: 9000, Truncated: 1,
			AllocsPerSummary: 12345, AllocsPerGraphRead: 2345}},
		Scale: scaleCheck{ActivitiesTotal: 50000, ActivitiesLoaded: 2000, RelatedRecords: 141, PromptTokens: 23961, BudgetTokens: 24000,
			WithinBudget: true, ActivitiesIncluded: 131, IncludedFrom: "2026-01-02", TruncationNotes: 8, GenerateMS: 7.5},
	}
	var b bytes.Buffer
	if err := printSummaryReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"org demo, 2 records asked, offline provider in-process, prompt budget 24000 tokens (CRMQ_SUMMARY_TOKEN_BUDGET)\n",
		"  accounts       1  acc-1 .. acc-1             of 3 active, 2 passed over without associated records\n",
		"  leads          0  -                          of 0 active\n",
		"step        module     count        p50        p99        max       mean     rec/s\n",
		"graph read  accounts       1    1.500ms    2.250ms    3.000ms    1.750ms     571.4\n",
		"generate    accounts       1    2.000ms    3.000ms    4.125ms    2.500ms     400.0\n",
		"module    gen/read p50 gen/read p99  max prompt  truncated  allocs/summary  allocs/read\n",
		"accounts          1.33         1.33        9000        1/1           12345         2345\n",
		"max prompt: 9000 tokens (accounts/acc-1) of the 24000-token budget: within budget\n",
		"50000-activity account (in memory; 2000 activities loaded, 141 associated records): prompt 23961 tokens of the 24000-token budget: within budget\n",
		"  131 of 50000 activities in the prompt, from 2026-01-02 on; 8 truncation notes; generate took 7.500ms\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
