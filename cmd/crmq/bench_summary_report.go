package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/summary"
)

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
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
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
