package summary_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
	"github.com/crmq/crmq/workers/summary"
)

// The offline provider's own words: everything capitalised it may write
// that is not copied from the facts or a section title. The KPI status
// words are there because the KPI rule names the statuses it looks for
// ("No objective KPI is On Track or Completed ..."); a KPI's own status is
// checked by the offline package's KPI tests.
var templateWords = setOf(strings.Fields(`Track Completed Achievements Active Activities Activity A Act Annual Business Carry Clear Close Director Health It Its Keep Last Objectives Single-threaded Stalled Unanswered
	Competitor Contact Conversion Cumulative Deal Email Engagement Escalated Executive Internal KPI KPIs Key Latest
	Lead Lifecycle Main Milestones Next No Nothing Objective On Open Origin Other Overdue Potential Preferred Product
	Project Purchases Qualify Related Resolve Signals Stage Success The Title Too Won UTC`)...)

var (
	numberRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?`)
	nameRE   = regexp.MustCompile(`\p{Lu}[\p{L}\p{N}'’-]*`)
)

func setOf(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

type fixture struct {
	module string
	graph  store.SummaryGraph
}

func realistic() []fixture {
	return []fixture{
		{"accounts", accountGraph()}, {"contacts", contactGraph()}, {"leads", leadGraph()},
		{"deals", dealGraph()}, {"custom_competitors", customGraph()},
	}
}

func offlineAnswer(t testing.TB, g store.SummaryGraph, module string, budget int) (llm.Request, llm.Response) {
	t.Helper()
	asked, _ := summary.Sections(module, nil)
	req, _, err := summary.BuildPrompt(g, module, asked, budget, today)
	if err != nil {
		t.Fatalf("BuildPrompt: %v", err)
	}
	resp, err := offline.New().Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return req, resp
}

// inventedFacts lists what an answer states that the facts do not hold:
// a number, date or judgement word that is not the fact it claims to state
// (claims_test.go), a number no claim covers that is not a field value of
// a record the bullet cites, capitalised name-like words (beyond titles
// and template words) not in the facts' JSON, sources that are not refs of
// the facts, empty sections; and anything Validate would drop.
func inventedFacts(t testing.TB, req llm.Request, resp llm.Response) []string {
	js := renderJSON(t, req.Facts)
	names := setOf(nameRE.FindAllString(js, -1)...)
	figs, _ := req.Facts.Org[crm.Figures].(map[string]any)
	byRef := map[string]llm.Record{req.Facts.Subject.Ref: req.Facts.Subject}
	ids := map[string]bool{}
	for _, r := range append(append([]llm.Record{req.Facts.Subject}, req.Facts.Related...), req.Facts.Activities...) {
		byRef[r.Ref] = r
		ids[r.Ref[strings.IndexByte(r.Ref, '/')+1:]] = true
	}
	for _, s := range req.Sections {
		for _, w := range nameRE.FindAllString(s.Title, -1) {
			names[w] = true
		}
	}
	refs := map[string]bool{req.Facts.Subject.Ref: true}
	for _, r := range append(req.Facts.Related, req.Facts.Activities...) {
		refs[r.Ref] = true
	}
	var bad []string
	for _, s := range resp.Answer.Sections {
		if len(s.Bullets) == 0 {
			bad = append(bad, s.Key+": no bullet")
		}
		for _, b := range s.Bullets {
			// A number either states a fact a claim names, or is a field
			// value of a record the bullet cites.
			var cited []llm.Record
			for _, src := range b.Sources {
				if r, ok := byRef[src]; ok {
					cited = append(cited, r)
				}
			}
			c := &claimCtx{figs: figs, subject: req.Facts.Subject, cited: cited}
			b.Text = plainAmounts(b.Text, factText(figs[crm.FigCurrency]))
			wrong, covered := c.checkClaims(b.Text)
			for _, w := range wrong {
				bad = append(bad, fmt.Sprintf("%s: %s: %q", s.Key, w, b.Text))
			}
			fields := citedNumbers(cited, ids)
			for _, ix := range numberRE.FindAllStringIndex(b.Text, -1) {
				num := b.Text[ix[0]:ix[1]]
				if !slices.ContainsFunc(covered, func(sp [2]int) bool { return sp[0] <= ix[0] && ix[1] <= sp[1] }) && !fields[num] {
					bad = append(bad, fmt.Sprintf("%s: number %s is no fact a claim names nor a field of a cited record: %q", s.Key, num, b.Text))
				}
			}
			for _, w := range nameRE.FindAllString(b.Text, -1) {
				if !names[w] && !templateWords[w] {
					bad = append(bad, fmt.Sprintf("%s: name %q is not in the facts: %q", s.Key, w, b.Text))
				}
			}
			for _, src := range b.Sources {
				if !refs[src] {
					bad = append(bad, fmt.Sprintf("%s: source %s is not in the facts: %q", s.Key, src, b.Text))
				}
			}
		}
	}
	if _, dropped := summary.Validate(resp.Answer, req); dropped != 0 {
		bad = append(bad, fmt.Sprintf("validation dropped %d things", dropped))
	}
	return bad
}

var groupedRE = regexp.MustCompile(`(\d),(\d{3})\b`)

// plainAmounts reads amounts as the facts hold them: "USD 130,745.76" is
// 130745.76, the currency code being the facts' and the separators every
// third digit. Any other comma or code stays and is checked as it is.
func plainAmounts(text, currency string) string {
	if currency != "" {
		text = regexp.MustCompile(`\b`+regexp.QuoteMeta(currency)+` (-?\d)`).ReplaceAllString(text, "$1")
	}
	for {
		next := groupedRE.ReplaceAllString(text, "$1$2")
		if next == text {
			return text
		}
		text = next
	}
}

func checkNoInventedFacts(t *testing.T, req llm.Request, resp llm.Response) {
	t.Helper()
	for _, b := range inventedFacts(t, req, resp) {
		t.Error(b)
	}
}

func TestOfflineInventsNoFacts(t *testing.T) {
	for _, fx := range realistic() {
		t.Run("the offline "+fx.module+" summary states only what the facts hold", func(t *testing.T) {
			req, resp := offlineAnswer(t, fx.graph, fx.module, 0)
			checkNoInventedFacts(t, req, resp)
		})
	}
	r := rand.New(rand.NewPCG(2025, 6))
	for i := range 40 {
		for _, module := range []string{"accounts", "contacts", "leads", "deals", "custom_assets"} {
			g := randomGraph(r, module)
			budget := 2500 + r.IntN(30000)
			t.Run(fmt.Sprintf("random %s graph %d within %d tokens invents nothing", module, i, budget), func(t *testing.T) {
				req, resp := offlineAnswer(t, g, module, budget)
				checkNoInventedFacts(t, req, resp)
			})
		}
	}
	t.Run("the check catches an invented number, name and source", func(t *testing.T) {
		req, resp := offlineAnswer(t, accountGraph(), "accounts", 0)
		resp.Answer.Sections[0].Bullets = append(resp.Answer.Sections[0].Bullets,
			llm.Bullet{Text: "Revenue grew 37.5% under Gregory.", Sources: []string{"accounts/acc-404"}})
		bad := inventedFacts(t, req, resp)
		for _, w := range []string{"number 37.5", `name "Revenue"`, `name "Gregory"`, "source accounts/acc-404"} {
			found := false
			for _, b := range bad {
				found = found || strings.Contains(b, w)
			}
			if !found {
				t.Errorf("the check missed %s: %v", w, bad)
			}
		}
	})
}

// The check reads each number and judgement word as the fact it claims to
// state: a count off by one, a trend or engagement word the window counts
// do not give, or a decision-maker the title does not make is caught,
// though each such digit or word appears elsewhere in the facts.
func TestTheInventionCheckReadsClaimsAsTheirFacts(t *testing.T) {
	for _, c := range []struct {
		module, from, to, want string
	}{
		{"accounts", "Open cases: 2", "Open cases: 3", "open_cases"},
		{"accounts", "escalated: 1", "escalated: 2", "escalated_cases"},
		{"accounts", "Active projects: 1", "Active projects: 0", "active_projects"},
		{"accounts", "Open opportunities: 1", "Open opportunities: 2", "open_deals"},
		{"accounts", "(rising)", "(falling)", `says "falling" of 6 against 2`},
		{"accounts", "engagement level: medium", "engagement level: high", `engagement "high" of 6`},
		{"accounts", "(105.6% of target)", "(95% of target)", "says of a KPI"},
		{"contacts", "email 4, call 1", "email 4, call 4", "signals_by_channel[call]"},
		{"contacts", "Title VP Operations: a senior title, likely a decision-maker",
			"Title IT Manager: a senior title, likely a decision-maker", `calls title "IT Manager" senior`},
		{"leads", "(47 of 200)", "(48 of 200)", "source_converted"},
		{"deals", "days in this stage: 14", "days in this stage: 4", "days_in_stage"},
		{"deals", "probability 75%", "probability 7%", "probability"},
	} {
		t.Run(fmt.Sprintf("%s: %q for %q is caught", c.module, c.to, c.from), func(t *testing.T) {
			var g store.SummaryGraph
			for _, fx := range realistic() {
				if fx.module == c.module {
					g = fx.graph
				}
			}
			req, resp := offlineAnswer(t, g, c.module, 0)
			if bad := inventedFacts(t, req, resp); len(bad) > 0 {
				t.Fatalf("the true answer fails: %v", bad)
			}
			changed := false
			for i, s := range resp.Answer.Sections {
				for j, b := range s.Bullets {
					if strings.Contains(b.Text, c.from) {
						resp.Answer.Sections[i].Bullets[j].Text = strings.Replace(b.Text, c.from, c.to, 1)
						changed = true
					}
				}
			}
			if !changed {
				t.Fatalf("no bullet says %q", c.from)
			}
			bad := inventedFacts(t, req, resp)
			if !slices.ContainsFunc(bad, func(b string) bool { return strings.Contains(b, c.want) }) {
				t.Errorf("not caught (want %q): %v", c.want, bad)
			}
		})
	}
}

// TestOfflineSummariesSayWhatTheFactsHold pins what each module's summary
// states: the figures workers/summary computes reach the text under the
// names llm/offline reads them by.
func TestOfflineSummariesSayWhatTheFactsHold(t *testing.T) {
	want := map[string]map[string][]string{
		"accounts": {
			llm.AccountHighlights: {"industry: Logistics", "employees: 1200", "location: Leeds, United Kingdom",
				"Annual revenue: USD 48,000,000.00", "Product family: Analytics",
				"Won revenue: USD 52,000.00, 5% of the organisation's won revenue (USD 1,040,000.00)",
				"Analytics: USD 30,000.00 (line items: 1); Logistics Suite: USD 22,000.00 (line items: 1)",
				"Open cases: 2, escalated: 1", "Active projects: 1, red: 1", "open expansion opportunities: 1",
				"6 activities in the last 30 days against 2 in the 30 days before (rising); engagement level: medium"},
			llm.KeyStakeholders: {"Priya Raman — VP Operations", "Tom Becker — IT Manager", "Internal owners: Dana Whitfield"},
			llm.KPIProgress:     {"Forecast accuracy: 95.00/90.00 % (105.6% of target), Completed", "Weekly active users: 420.00/500.00 users (84% of target), On Track"},
			llm.RelationalHealth: {"Executive engagement: Priya Raman (VP Operations)",
				// a-1's thanks are in a rep's follow-up: no customer sentiment.
				"No notes of the customer's own signals mention positive relationship signals."},
			llm.RisksAndBlockers:       {"Escalated case: “Sync with ERP stopped”", "Dashboards in use", "Data migration", "“Issue was escalated to management on their side.”"},
			llm.ExpansionOpportunities: {"“They are interested in adding seats for the support team.”", "“The customer is considering a new region next year.”", "Open expansion opportunity: Northwind - expansion 2025"},
			llm.StrategicValue:         {"Objective achieved: Automate onboarding", "Won deal: Northwind - new 2024 (USD 52,000.00, closed 2024-11-20)"},
			llm.StrategicNextSteps:     {"Resolve the risks", "Qualify the expansion signal", "Train admins"},
			llm.ImmediateActions:       {"Overdue playbook task: Train admins (due 2025-05-23, owner Dana Whitfield, In Progress)", "Next step on Northwind - expansion 2025", "Pricing call"},
			llm.ExecutiveSummary: {"Health: at risk. It has escalated cases: 1, among them “Sync with ERP stopped”.",
				"Northwind Traders (Logistics, Leeds)", "Engagement: medium, rising"},
		},
		"contacts": {
			llm.Overview:           {"Priya Raman — VP Operations at Northwind Traders; lifecycle stage: Customer", "phone: +44-20-5550-0101"},
			llm.DecisionPower:      {"a senior title, likely a decision-maker", "Contact on deal Northwind - expansion 2025 (Negotiation, USD 36,000.00)"},
			llm.RecentInteractions: {"Activities: 10 in total; latest on 2025-05-27"},
			llm.ContactPreferences: {"Preferred channel: email (signals by channel: email 4, call 1; signals: 5)", "mostly in the morning", "most often on Tuesday (Tuesday 3"},
		},
		"leads": {
			llm.Overview:      {"Marco Bianchi — Bianchi Freight; status: Contacted"},
			llm.Qualification: {"Potential value: USD 125,000.00", "Origin (lead source): Referral", "Referral leads convert at 23.5% in this organisation (47 of 200)", "Conversion probability: 23.5%", "New on 2025-04-23, Contacted on 2025-05-08"},
		},
		"deals": {
			llm.DealProgress:    {"Stage: Negotiation, probability 75%; value: USD 36,000.00; days in this stage: 14; close date: 2025-07-15 (days to close: 43)", "Milestones: Qualification on 2025-03-03, Needs Analysis on 2025-03-20, Proposal on 2025-04-14, Negotiation on 2025-05-19", "Key decision makers: Priya Raman (VP Operations); Tom Becker (IT Manager)", "Next step: Pricing call"},
			llm.DealRisks:       {"Competitor: Globex", "“Budget approval delayed to next quarter; they are also evaluating Globex.”"},
			llm.PipelineMetrics: {"Cumulative open pipeline value: USD 1,250,000.00; this deal is 2.9% of it", "Engagement score: 14"},
		},
		"custom_competitors": {
			llm.Overview: {"Globex — founded: 1998; threat: high; website: https://globex.example"},
		},
	}
	for _, fx := range realistic() {
		_, resp := offlineAnswer(t, fx.graph, fx.module, 0)
		for _, s := range resp.Answer.Sections {
			for _, w := range want[fx.module][s.Key] {
				t.Run(fmt.Sprintf("the %s %s section says %q", fx.module, s.Key, w), func(t *testing.T) {
					var b strings.Builder
					for _, x := range s.Bullets {
						b.WriteString(x.Text + "\n")
					}
					if !strings.Contains(b.String(), w) {
						t.Errorf("missing in\n%s", b.String())
					}
				})
			}
		}
	}
}

// TestOfflineCountsMatchCitedRecords keeps the status rules of the figures
// (workers/summary) and of the offline provider's lists in step: a count
// stated in Account Highlights equals the records its bullet cites (up to
// the five listed).
func TestOfflineCountsMatchCitedRecords(t *testing.T) {
	countRE := regexp.MustCompile(`^(Open cases|Active projects|Open opportunities): (\d+)`)
	prefixOf := map[string]string{"Open cases": "cases/", "Active projects": "projects/", "Open opportunities": "deals/"}
	graphs := []store.SummaryGraph{accountGraph()}
	r := rand.New(rand.NewPCG(11, 12))
	for range 30 {
		graphs = append(graphs, randomGraph(r, "accounts"))
	}
	for i, g := range graphs {
		t.Run(fmt.Sprintf("account graph %d states counts that match the records it lists", i), func(t *testing.T) {
			req, resp := offlineAnswer(t, g, "accounts", 100000)
			seen := 0
			for _, b := range resp.Answer.Sections[0].Bullets {
				m := countRE.FindStringSubmatch(b.Text)
				if m == nil {
					continue
				}
				seen++
				n, _ := strconv.Atoi(m[2])
				listed := 0
				for _, src := range b.Sources {
					if strings.HasPrefix(src, prefixOf[m[1]]) {
						listed++
					}
				}
				if listed != min(n, 5) {
					t.Errorf("%q cites %d records", b.Text, listed)
				}
			}
			// A count is stated when it is not zero, never only to say zero.
			figs := req.Facts.Org["figures"].(map[string]any)
			nonzero := 0
			for _, k := range []string{crm.FigOpenCases, crm.FigActiveProjects, crm.FigOpenDeals} {
				if figs[k] != 0 {
					nonzero++
				}
			}
			if seen != nonzero {
				t.Errorf("%d count bullets in %s, %d counts are not zero", seen, req.Facts.Subject.Ref, nonzero)
			}
			overdue := 0
			for _, b := range bulletsOf(resp, llm.ImmediateActions) {
				if strings.HasPrefix(b.Text, "Overdue playbook task") {
					overdue++
				}
			}
			if want := min(figs["overdue_playbook_tasks"].(int), 5); overdue != want {
				t.Errorf("%d overdue tasks listed, figure says %v", overdue, figs["overdue_playbook_tasks"])
			}
		})
	}
}
