package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	Machine      string       `json:"machine"` // machineLine with the servers' versions, as the bench began
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
	rep := summaryBenchReport{Machine: c.machine(ctx), Org: *orgName, Provider: offline.New().Name(), RecordsAsked: *records,
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

// median of a sample (its upper middle for an even count); zero for none.
func median[T cmp.Ordered](xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
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
