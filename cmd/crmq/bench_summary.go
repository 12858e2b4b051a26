package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

// summaryModules are the modules a summary bench draws records from, in
// the order their shares are handed out and their rows are printed.
var summaryModules = []string{"accounts", "contacts", "leads", "deals"}

// scaleActivities is the activity count of the synthetic account.
const scaleActivities = 50_000

// modulePick says which records of one module were measured.
type modulePick struct {
	Module string `json:"module"`
	Picked int    `json:"picked"`
	Active int    `json:"active"` // active records of the module in the org
	// Accounts only: active accounts passed over for having no associated
	// record (the API refuses to summarise them).
	Skipped int    `json:"skipped_without_associated_records,omitempty"`
	First   string `json:"first,omitempty"` // external ids of the first and last picked
	Last    string `json:"last,omitempty"`
	ids     []string
}

// stepStats is one step's wall time over a set of records.
type stepStats struct {
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
	// RecordsPerSec is count / sum of the step's times: what one goroutine
	// doing only this step would achieve.
	RecordsPerSec float64 `json:"records_per_sec"`
}

// moduleResult is the measurement of one module, or of every record ("all").
type moduleResult struct {
	Module    string    `json:"module"`
	Summaries int       `json:"summaries"`
	GraphRead stepStats `json:"graph_read"` // store.SummaryGraph alone
	Generate  stepStats `json:"generate"`   // summary.Generate: graph read, prompt, offline answer, validation
	// Generate / graph read, at p50 and at p99.
	RatioP50        float64 `json:"ratio_p50"`
	RatioP99        float64 `json:"ratio_p99"`
	MaxPromptTokens int     `json:"max_prompt_tokens"`
	// Truncated counts summaries whose prompt left out activities or
	// associated records (summary.Truncation says so).
	Truncated          int     `json:"truncated"`
	AllocsPerSummary   float64 `json:"allocs_per_summary"`
	AllocsPerGraphRead float64 `json:"allocs_per_graph_read"`
}

// scaleCheck is the budget check on the synthetic 50,000-activity account.
type scaleCheck struct {
	ActivitiesTotal    int    `json:"activities_total"`
	ActivitiesLoaded   int    `json:"activities_loaded"`
	RelatedRecords     int    `json:"related_records"`
	PromptTokens       int    `json:"prompt_tokens"`
	BudgetTokens       int    `json:"budget_tokens"`
	WithinBudget       bool   `json:"within_budget"`
	ActivitiesIncluded int    `json:"activities_included"`
	IncludedFrom       string `json:"included_from,omitempty"`
	// TruncationNotes counts the entries of summary.Truncation that tell the
	// reader something was left out: each section marked cut, and the note
	// on associated records when there is one.
	TruncationNotes int     `json:"truncation_notes"`
	GenerateMS      float64 `json:"generate_ms"`
	Error           string  `json:"error,omitempty"`
}

// summaryBenchReport is what bench summary prints, as a table or as JSON.
type summaryBenchReport struct {
	Org          string       `json:"org"`
	Provider     string       `json:"provider"`
	BudgetTokens int          `json:"budget_tokens"`
	BudgetFrom   string       `json:"budget_from"`
	RecordsAsked int          `json:"records_asked"`
	PickRule     string       `json:"pick_rule"`
	Picked       []modulePick `json:"picked"`
	Method       string       `json:"method"`
	Summaries    int          `json:"summaries"`
	Errors       int          `json:"errors"`
	FirstError   string       `json:"first_error,omitempty"`
	// Modules holds one entry per module that had records, then "all".
	Modules         []moduleResult `json:"modules"`
	MaxPromptTokens int            `json:"max_prompt_tokens"`
	MaxPromptRef    string         `json:"max_prompt_ref,omitempty"`
	WithinBudget    bool           `json:"within_budget"`
	Scale           scaleCheck     `json:"scale_check"`
}

const (
	summaryPickRule = "the first active records of each module by external id (accounts: only those with an " +
		"associated record, as the API asks); an even share of --records each, what one module lacks going to the others"
	summaryMethod = "in-process, one goroutine, no asynq; a warm-up pass runs Generate once per record untimed, " +
		"then each record runs both steps back to back 3 times, the order alternating, and counts each step's median"
)

func runBenchSummary(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	orgName := fs.String("org", defaultOrg, "org whose records are summarised (crmq seed loads the demo org)")
	records := fs.Int("records", 1000, "records to summarise, shared evenly among accounts, contacts, leads and deals")
	budget := fs.Int("budget", 0, "prompt budget in estimated tokens (default $CRMQ_SUMMARY_TOKEN_BUDGET, as the worker)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	c.detail = "Times, per record and in this process, the two steps of a summary with the offline provider:\n" +
		"  graph read: store.SummaryGraph alone, the SQL floor every summary pays\n" +
		"  generate:   summary.Generate, which reads the graph again, builds the prompt within the\n" +
		"              budget, composes the offline answer and validates it\n" +
		"and prints p50, p99, max, mean and records/s per step and module, generate / graph read at\n" +
		"p50 and p99, the largest prompt against the budget, how many prompts were truncated and heap\n" +
		"allocations per summary. Then checks the budget on an in-memory account with 50,000 activities.\n" +
		"Summaries are neither stored nor counted. Exit 1 when a summary failed or a prompt exceeded\n" +
		"the budget (the report is still printed)."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *records < 1 || *records > 100_000 {
		return usagef(c.cmd, "--records must be in [1, 100000]")
	}
	if *budget != 0 && (*budget < 1000 || *budget > 2_000_000) {
		return usagef(c.cmd, "--budget must be in [1000, 2000000], as CRMQ_SUMMARY_TOKEN_BUDGET")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	rep := summaryBenchReport{Org: *orgName, Provider: offline.New().Name(), RecordsAsked: *records,
		BudgetTokens: cfg.SummaryBudget, BudgetFrom: "CRMQ_SUMMARY_TOKEN_BUDGET", PickRule: summaryPickRule, Method: summaryMethod}
	if *budget != 0 {
		rep.BudgetTokens, rep.BudgetFrom = *budget, "--budget"
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := db.OrgByName(ctx, *orgName)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no org named %q: run `crmq seed --org %s` first to load the demo data: %w", *orgName, *orgName, err)
	}
	if err != nil {
		return err
	}
	if rep.Picked, err = pickSummaryRecords(ctx, db, org.ID, *records); err != nil {
		return err
	}
	targets := interleave(rep.Picked)
	if len(targets) == 0 {
		return fmt.Errorf("org %q has no active account with associated records, contact, lead or deal: run `crmq seed --org %s` first",
			org.Name, org.Name)
	}
	// The worker reads the org's visibility before every summary; it is
	// read once here, so neither step's time includes it.
	visible, err := db.SummarySectionVisibility(ctx, org.ID)
	if err != nil {
		return err
	}
	b := summaryBench{db: db, orgID: org.ID, visible: visible, budget: rep.BudgetTokens, today: time.Now()}
	c.logger().InfoContext(ctx, "bench summary: measuring", "org", org.Name, "records", len(targets), "budget", rep.BudgetTokens)
	samples, err := b.run(ctx, targets)
	if err != nil {
		return err
	}
	rep.tally(samples)
	rep.Scale = checkScale(ctx, rep.BudgetTokens, b.today)

	if *asJSON {
		err = printJSON(c.stdout, rep)
	} else {
		err = printSummaryReport(c.stdout, rep)
	}
	if err != nil {
		return err
	}
	switch {
	case rep.Errors > 0:
		return fmt.Errorf("bench summary: %d of %d record(s) failed, first: %s", rep.Errors, len(targets), rep.FirstError)
	case !rep.WithinBudget:
		return fmt.Errorf("bench summary: a prompt of %d tokens (%s) exceeds the %d-token budget", rep.MaxPromptTokens, rep.MaxPromptRef, rep.BudgetTokens)
	case rep.Scale.Error != "":
		return fmt.Errorf("bench summary: the %d-activity account: %s", scaleActivities, rep.Scale.Error)
	case !rep.Scale.WithinBudget:
		return fmt.Errorf("bench summary: the %d-activity account's prompt of %d tokens exceeds the %d-token budget",
			scaleActivities, rep.Scale.PromptTokens, rep.BudgetTokens)
	}
	return nil
}

// pickSummaryRecords picks up to n records of the org over summaryModules.
// Paging a module costs one query per 1,000 records and keeps only ids.
func pickSummaryRecords(ctx context.Context, db *store.DB, orgID int64, n int) ([]modulePick, error) {
	picks := make([]modulePick, len(summaryModules))
	avail := make([]int, len(summaryModules))
	for i, module := range summaryModules {
		ids, err := activeIDs(ctx, db, orgID, module)
		if err != nil {
			return nil, err
		}
		picks[i] = modulePick{Module: module, Active: len(ids)}
		if module == "accounts" {
			// Checked in order, only as far as the most accounts n could take.
			var with []string
			for _, id := range ids {
				if len(with) == n {
					break
				}
				has, err := db.AccountHasAssociatedRecords(ctx, orgID, id)
				if err != nil {
					return nil, err
				}
				if has {
					with = append(with, id)
				} else {
					picks[i].Skipped++
				}
			}
			ids = with
		}
		picks[i].ids = ids
		avail[i] = len(ids)
	}
	for i, k := range shares(n, avail) {
		p := &picks[i]
		p.ids = p.ids[:k]
		p.Picked = k
		if k > 0 {
			p.First, p.Last = p.ids[0], p.ids[k-1]
		}
	}
	return picks, nil
}

// activeIDs lists the external ids of the module's active records, sorted.
func activeIDs(ctx context.Context, db *store.DB, orgID int64, module string) ([]string, error) {
	var ids []string
	cursor := ""
	for {
		page, err := db.ListRecords(ctx, orgID, module, store.MaxPageSize, cursor)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Records {
			if id, _ := r["id"].(string); id != "" && r["state"] == "active" {
				ids = append(ids, id)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.Sort(ids)
	return ids, nil
}

// shares splits n over modules that hold avail[i] records each: an even
// share each (the first ones one more while a remainder lasts), and what
// a module lacks handed out the same way among those that have more.
func shares(n int, avail []int) []int {
	out := make([]int, len(avail))
	left := n
	for left > 0 {
		var open []int
		for i := range avail {
			if out[i] < avail[i] {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		each, extra := left/len(open), left%len(open)
		for k, i := range open {
			want := each
			if k < extra {
				want++
			}
			give := min(want, avail[i]-out[i])
			out[i] += give
			left -= give
		}
	}
	return out
}

// summaryTarget is one record to summarise.
type summaryTarget struct{ module, id string }

// interleave takes the modules' records in turn, so that drift over the
// run (heap growth, background vacuum) spreads over every module rather
// than landing on the one measured last.
func interleave(picks []modulePick) []summaryTarget {
	var out []summaryTarget
	for i := 0; ; i++ {
		added := false
		for _, p := range picks {
			if i < len(p.ids) {
				out = append(out, summaryTarget{p.Module, p.ids[i]})
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// summaryBench runs the two steps against one org.
type summaryBench struct {
	db      *store.DB
	orgID   int64
	visible map[string]bool
	budget  int
	today   time.Time
}

// summarySample is one record's measurement.
type summarySample struct {
	target                 summaryTarget
	graph, generate        time.Duration // medians of summaryRuns
	graphAlloc, generAlloc uint64        // heap allocations, all runs together
	promptTokens           int
	truncated              bool
	err                    error
}

// summaryRuns is how many times each step runs per record; the record's
// time for the step is the median of its runs.
const summaryRuns = 3

// run measures every target. The two steps run interleaved per record
// rather than as two passes, after an untimed warm-up pass:
//   - Two passes would time the first on colder caches than the second
//     (Postgres' buffers, the OS page cache, the pool's connections and
//     the Go heap all warm up during the first), which would flatter
//     whichever pass runs second. The warm-up pass reads every record's
//     rows once, so both steps are timed with warm caches.
//   - Back to back per record, both steps see the same moment: a GC
//     cycle, an autovacuum or a noisy neighbour lands on both alike.
//   - The order alternates, so neither step is always the one that runs
//     just after the other has touched the same rows.
//   - Each step runs summaryRuns times and the median counts: a single
//     stall of the machine then moves neither step's time, where with one
//     run it could make the baseline's p99 (the max, for under 100
//     records) exceed Generate's although Generate does the same read.
func (b summaryBench) run(ctx context.Context, targets []summaryTarget) ([]summarySample, error) {
	p := offline.New()
	warm := make([]error, len(targets))
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, warm[i] = summary.Generate(ctx, b.db, p, b.input(t))
	}
	out := make([]summarySample, len(targets))
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := summarySample{target: t, err: warm[i]}
		var graphs, gens [summaryRuns]time.Duration
		for j := 0; j < summaryRuns && s.err == nil; j++ {
			graph := func() error {
				d, allocs, err := timed(func() error {
					_, err := b.db.SummaryGraph(ctx, b.orgID, t.module, t.id)
					return err
				})
				graphs[j], s.graphAlloc = d, s.graphAlloc+allocs
				return err
			}
			generate := func() error {
				var res summary.Result
				d, allocs, err := timed(func() error {
					var err error
					res, err = summary.Generate(ctx, b.db, p, b.input(t))
					return err
				})
				gens[j], s.generAlloc = d, s.generAlloc+allocs
				s.promptTokens, s.truncated = res.Usage.PromptTokens, truncated(res.Truncation)
				return err
			}
			first, second := graph, generate
			if (i+j)%2 == 1 {
				first, second = generate, graph
			}
			if s.err = first(); s.err == nil {
				s.err = second()
			}
		}
		s.graph, s.generate = median(graphs[:]), median(gens[:])
		out[i] = s
	}
	return out, nil
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func (b summaryBench) input(t summaryTarget) summary.Input {
	return summary.Input{OrgID: b.orgID, Module: t.module, ID: t.id, Visible: b.visible, BudgetTokens: b.budget, Today: b.today}
}

// timed runs fn once and returns its wall time and the heap allocations
// made meanwhile (process-wide, so the pool's own goroutines count too).
// ReadMemStats stops the world, so it is called outside the timed span.
func timed(fn func() error) (time.Duration, uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := fn()
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.Mallocs - before.Mallocs, err
}

func truncated(t summary.Truncation) bool {
	return t.Related != nil || slices.ContainsFunc(t.Sections, func(c summary.SectionCut) bool { return c.Cut })
}

// tally fills the report from the samples: per module, then all together.
func (r *summaryBenchReport) tally(samples []summarySample) {
	r.WithinBudget = true
	byModule := map[string][]summarySample{}
	var ok []summarySample
	for _, s := range samples {
		if s.err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = s.err.Error()
			}
			continue
		}
		ok = append(ok, s)
		byModule[s.target.module] = append(byModule[s.target.module], s)
		if s.promptTokens > r.MaxPromptTokens {
			r.MaxPromptTokens, r.MaxPromptRef = s.promptTokens, summary.Ref(s.target.module, s.target.id)
		}
	}
	r.Summaries = len(ok)
	r.WithinBudget = r.MaxPromptTokens <= r.BudgetTokens
	r.Modules = []moduleResult{}
	for _, m := range summaryModules {
		if len(byModule[m]) > 0 {
			r.Modules = append(r.Modules, moduleOf(m, byModule[m]))
		}
	}
	if len(ok) > 0 {
		r.Modules = append(r.Modules, moduleOf("all", ok))
	}
}

func moduleOf(name string, ss []summarySample) moduleResult {
	m := moduleResult{Module: name, Summaries: len(ss)}
	graph, gen := make([]time.Duration, len(ss)), make([]time.Duration, len(ss))
	var graphAlloc, genAlloc uint64
	for i, s := range ss {
		graph[i], gen[i] = s.graph, s.generate
		graphAlloc += s.graphAlloc
		genAlloc += s.generAlloc
		m.MaxPromptTokens = max(m.MaxPromptTokens, s.promptTokens)
		if s.truncated {
			m.Truncated++
		}
	}
	var gp50, gp99, rp50, rp99 time.Duration
	m.GraphRead, gp50, gp99 = stepOf(graph)
	m.Generate, rp50, rp99 = stepOf(gen)
	m.RatioP50, m.RatioP99 = ratio(rp50, gp50), ratio(rp99, gp99)
	runs := float64(summaryRuns * len(ss))
	m.AllocsPerSummary = math.Round(float64(genAlloc) / runs)
	m.AllocsPerGraphRead = math.Round(float64(graphAlloc) / runs)
	return m
}

// stepOf sorts ds and summarises them; it returns p50 and p99 unrounded too.
func stepOf(ds []time.Duration) (stepStats, time.Duration, time.Duration) {
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	p50, p99 := percentile(ds, 0.50), percentile(ds, 0.99)
	s := stepStats{P50MS: msMicro(p50), P99MS: msMicro(p99), MaxMS: msMicro(ds[len(ds)-1]), MeanMS: msMicro(sum / time.Duration(len(ds)))}
	if sum > 0 {
		s.RecordsPerSec = math.Round(float64(len(ds))/sum.Seconds()*10) / 10
	}
	return s, p50, p99
}

// msMicro is d in milliseconds to the microsecond: a graph read can take
// less than the 0.1 ms that ms keeps.
func msMicro(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return math.Round(float64(a)/float64(b)*100) / 100
}

// checkScale summarises the synthetic account through summary.Generate,
// with its graph served from memory.
func checkScale(ctx context.Context, budget int, today time.Time) scaleCheck {
	g := scaleGraph(scaleActivities, today)
	sc := scaleCheck{ActivitiesTotal: g.ActivityTotal, ActivitiesLoaded: len(g.Activities), RelatedRecords: len(g.Related), BudgetTokens: budget}
	in := summary.Input{OrgID: 1, Module: "accounts", ID: g.Subject.ID, BudgetTokens: budget, Today: today}
	start := time.Now()
	res, err := summary.Generate(ctx, memGraph(g), offline.New(), in)
	sc.GenerateMS = msMicro(time.Since(start))
	if err != nil {
		sc.Error = err.Error()
		return sc
	}
	sc.PromptTokens = res.Usage.PromptTokens
	sc.WithinBudget = sc.PromptTokens <= budget
	for _, c := range res.Truncation.Sections {
		if c.Cut {
			sc.TruncationNotes++
		}
		if c.ActivitiesIncluded >= sc.ActivitiesIncluded {
			sc.ActivitiesIncluded, sc.IncludedFrom = c.ActivitiesIncluded, c.IncludedFrom
		}
	}
	if res.Truncation.Related != nil {
		sc.TruncationNotes++
	}
	return sc
}

// memGraph serves one in-memory graph as summary.Graphs.
type memGraph store.SummaryGraph

func (g memGraph) SummaryGraph(context.Context, int64, string, string) (store.SummaryGraph, error) {
	return store.SummaryGraph(g), nil
}

// scaleGraph is an account with total activities of which it holds the
// newest store.ActivityCap, as store.SummaryGraph loads them, and 100
// contacts besides deals, cases, a success plan and KPIs: the shape of
// the big account of workers/summary's tests, whose fixtures a command
// cannot import. Values come from a fixed seed, so every run is the same.
func scaleGraph(total int, today time.Time) store.SummaryGraph {
	r := rand.New(rand.NewPCG(50_000, 7))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
	const acc, ref = "acc-scale", "accounts/acc-scale"
	rec := func(module, id string, level int, parent string, at time.Time, f store.Record) store.GraphRecord {
		f["id"], f["state"], f["created_at"], f["updated_at"] = id, "active", stamp(at.AddDate(0, 0, -30)), stamp(at)
		return store.GraphRecord{Module: module, ID: id, Level: level, Parent: parent, Fields: f, UpdatedAt: at}
	}
	num := func(lo, hi int) any { return json.Number(fmt.Sprintf("%d.%02d", lo+r.IntN(hi-lo), r.IntN(100))) }
	g := store.SummaryGraph{
		Subject: rec("accounts", acc, 0, "", today.AddDate(0, 0, -1), store.Record{"name": "Scale Test Logistics",
			"industry": "Logistics", "employees": json.Number("18000"), "annual_revenue": json.Number("910000000.00"),
			"product_family": "Analytics", "city": "Rotterdam", "country": "Netherlands", "owner": "user-1"}),
		Org:      map[string]any{"account_won_revenue": json.Number("412000.00"), "org_won_revenue": json.Number("9100000.00")},
		DataAsOf: today.AddDate(0, 0, -1), DataHash: "scale",
	}
	first := []string{"Ada", "Bruno", "Chloe", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Ines", "Jonas"}
	last := []string{"Alvarez", "Brandt", "Chen", "Dubois", "Eriksen", "Fischer", "Gallo", "Haddad", "Ivanova", "Jensen"}
	for i := range 100 {
		g.Related = append(g.Related, rec("contacts", fmt.Sprintf("sc-c-%03d", i), 1, ref, today.AddDate(0, 0, -i%90), store.Record{
			"first_name": pick(first...), "last_name": pick(last...), "title": pick("VP Sales", "Director of IT", "Engineer", ""),
			"account": acc}))
	}
	for i := range 20 {
		g.Related = append(g.Related, rec("deals", fmt.Sprintf("sc-d-%02d", i), 1, ref, today.AddDate(0, 0, -3*i), store.Record{
			"name": fmt.Sprintf("Scale deal %d", i), "stage": pick("Proposal", "Negotiation", "Closed Won", "Closed Lost"),
			"deal_type": pick("new", "expansion", "renewal"), "amount": num(1000, 200000),
			"close_date": today.AddDate(0, 0, 60-7*i).Format(time.DateOnly), "account": acc}))
	}
	for i := range 10 {
		g.Related = append(g.Related, rec("cases", fmt.Sprintf("sc-cs-%02d", i), 1, ref, today.AddDate(0, 0, -5*i), store.Record{
			"subject": pick("Sync stopped", "Slow dashboards", "Invoice question"), "status": pick("Open", "Closed", "Escalated"),
			"priority": pick("Low", "High"), "escalated": r.IntN(4) == 0, "account": acc}))
	}
	g.Related = append(g.Related, rec("success_plans", "sc-sp", 1, ref, today.AddDate(0, 0, -40), store.Record{
		"name": "Scale success plan", "status": "Active", "account": acc}))
	for i := range 10 {
		g.Related = append(g.Related, rec("kpis", fmt.Sprintf("sc-k-%02d", i), 1, ref, today.AddDate(0, 0, -2*i), store.Record{
			"name": fmt.Sprintf("KPI %d", i), "status": pick(store.KPIStatuses()...), "target": num(100, 500),
			"actual": num(0, 600), "unit": pick("users", "%", "hours"), "comment": pick("Trending to target.", "Behind plan.", ""), "account": acc}))
	}
	notes := []string{"They are interested in adding seats for the support team.", "Issue was escalated to management on their side.",
		"Sponsor left the company; churn risk if nobody picks this up.", "Thanks, the onboarding went great.",
		"Asked for an update on the open request.", "Renewal is due next quarter.", ""}
	for i := range min(total, store.ActivityCap) {
		at := today.Add(-time.Duration(i) * 37 * time.Minute)
		g.Activities = append(g.Activities, rec("activities", fmt.Sprintf("sc-a-%05d", i), 2, "success_plans/sc-sp", at, store.Record{
			"occurred_at": stamp(at), "kind": "cs_activity", "medium": pick("email", "call", "meeting", "survey", "visit"),
			"direction": pick("signal", "follow_up"), "subject": pick("Business review", "KPI check-in", "Pricing for more seats"),
			"notes": pick(notes...), "account": acc, "success_plan": "sc-sp", "contact": fmt.Sprintf("sc-c-%03d", r.IntN(100))}))
	}
	g.ActivityTotal = total
	return g
}

func printSummaryReport(w io.Writer, r summaryBenchReport) error {
	fmt.Fprintf(w, "crmq bench summary: org %s, %d records asked, %s provider in-process, prompt budget %d tokens (%s)\n",
		r.Org, r.RecordsAsked, r.Provider, r.BudgetTokens, r.BudgetFrom)
	fmt.Fprintf(w, "picked: %s\n", r.PickRule)
	for _, p := range r.Picked {
		span := "-"
		if p.Picked > 0 {
			span = p.First + " .. " + p.Last
		}
		fmt.Fprintf(w, "  %-9s %6d  %-26s of %d active", p.Module, p.Picked, span, p.Active)
		if p.Skipped > 0 {
			fmt.Fprintf(w, ", %d passed over without associated records", p.Skipped)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "method: %s\n", r.Method)
	fmt.Fprintf(w, "graph read = store.SummaryGraph alone; generate = summary.Generate (graph read + prompt + offline answer + validation)\n")
	fmt.Fprintf(w, "percentiles by nearest rank over records: below 100 records, p99 is the max\n\n")

	const row = "%-11s %-9s %6v %10v %10v %10v %10v %9v\n"
	fmt.Fprintf(w, row, "step", "module", "count", "p50", "p99", "max", "mean", "rec/s")
	for _, step := range []string{"graph read", "generate"} {
		for _, m := range r.Modules {
			s := m.GraphRead
			if step == "generate" {
				s = m.Generate
			}
			fmt.Fprintf(w, row, step, m.Module, m.Summaries, fmtMS(s.P50MS), fmtMS(s.P99MS), fmtMS(s.MaxMS), fmtMS(s.MeanMS),
				fmt.Sprintf("%.1f", s.RecordsPerSec))
		}
	}
	fmt.Fprintln(w)
	const row2 = "%-9s %12v %12v %11v %10v %15v %12v\n"
	fmt.Fprintf(w, row2, "module", "gen/read p50", "gen/read p99", "max prompt", "truncated", "allocs/summary", "allocs/read")
	for _, m := range r.Modules {
		fmt.Fprintf(w, row2, m.Module, fmt.Sprintf("%.2f", m.RatioP50), fmt.Sprintf("%.2f", m.RatioP99), m.MaxPromptTokens,
			fmt.Sprintf("%d/%d", m.Truncated, m.Summaries), int64(m.AllocsPerSummary), int64(m.AllocsPerGraphRead))
	}
	fmt.Fprintf(w, "\nmax prompt: %d tokens (%s) of the %d-token budget: %s\n", r.MaxPromptTokens, r.MaxPromptRef, r.BudgetTokens, within(r.WithinBudget))
	fmt.Fprintf(w, "summaries: %d of %d picked records", r.Summaries, r.Summaries+r.Errors)
	if r.Errors > 0 {
		fmt.Fprintf(w, "; %d failed, first: %s", r.Errors, r.FirstError)
	}
	fmt.Fprintln(w)

	s := r.Scale
	fmt.Fprintf(w, "\n%d-activity account (in memory; %d activities loaded, %d associated records): ",
		s.ActivitiesTotal, s.ActivitiesLoaded, s.RelatedRecords)
	if s.Error != "" {
		fmt.Fprintf(w, "failed: %s\n", s.Error)
		return nil
	}
	fmt.Fprintf(w, "prompt %d tokens of the %d-token budget: %s\n", s.PromptTokens, s.BudgetTokens, within(s.WithinBudget))
	fmt.Fprintf(w, "  %d of %d activities in the prompt", s.ActivitiesIncluded, s.ActivitiesTotal)
	if s.IncludedFrom != "" {
		fmt.Fprintf(w, ", from %s on", s.IncludedFrom)
	}
	_, err := fmt.Fprintf(w, "; %d truncation notes; generate took %s\n", s.TruncationNotes, fmtMS(s.GenerateMS))
	return err
}

func fmtMS(v float64) string { return fmt.Sprintf("%.3fms", v) }

func within(ok bool) string {
	if ok {
		return "within budget"
	}
	return "OVER BUDGET"
}
