package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers/segment"
)

// behaviourTechniques are timed in this order, as segment:refresh runs them.
var behaviourTechniques = []string{store.TechniqueRFM, store.TechniqueFirmographics,
	store.TechniqueEngagement, store.TechniqueVoC, store.TechniqueRecommendations}

// techniqueTimes is one technique's (or the segment's) measured runs.
type techniqueTimes struct {
	Name     string    `json:"name"`
	FirstMS  float64   `json:"first_ms"` // the unmeasured first run (cold: VoC analyses every text, every row is written)
	RunsMS   []float64 `json:"runs_ms"`
	MedianMS float64   `json:"median_ms"`
	// What the last run did (accounts scored or labelled, rows written;
	// texts analysed in the first run; recommendations; members).
	Scored          int `json:"scored,omitempty"`
	Written         int `json:"written_last,omitempty"`
	FirstAnalysed   int `json:"first_analysed,omitempty"`
	Recommendations int `json:"recommendations,omitempty"`
	Members         int `json:"members,omitempty"`
}

// behaviourBenchReport is what bench behaviour prints.
type behaviourBenchReport struct {
	Machine       string           `json:"machine"` // machineLine with the servers' versions, as the bench began
	Fill          behaviourFill    `json:"fill"`
	Runs          int              `json:"runs"`
	Parts         []techniqueTimes `json:"parts"`
	TotalMedianMS float64          `json:"total_median_ms"` // sum of the parts' medians
	PeakRSSMB     float64          `json:"peak_rss_mb"`
	FirstRSSMB    float64          `json:"peak_rss_after_first_mb"`
	Covers        string           `json:"covers"`
}

func runBenchBehaviour(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	accounts := fs.Int("accounts", 1_000_000, "accounts of the bench org (as bench rfm)")
	deals := fs.Int("deals", 10_000_000, "deals of the bench org (as bench rfm)")
	scale := fs.Float64("scale", 0.1, "the demo's proportions of contacts, activities and cases per account and line items per deal, times this")
	items := fs.Float64("items-per-deal", demoItemsPerDeal, "line items per deal (the demo's 2 by default: recommendations read them)")
	runs := fs.Int("runs", 3, "timed runs, after one first (cold) run; the median is reported (0: the first run alone)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fillOnly := fs.Bool("fill-only", false, "fill the bench org and stop")
	only := fs.String("only", "", "time only these techniques (comma-separated; the segment's membership is then not timed)")
	recChunk := fs.Int("rec-chunk", 0, "accounts per chunk of the recommendations refresh (0: the worker's default)")
	c.detail = "Fills the org " + rfmBenchOrg + " as bench rfm does, then adds (in SQL, once; kept for later runs) 20 products,\n" +
		"line items, contacts, activities (signals and follow-ups over the eleven mediums, customer texts) and cases\n" +
		"in the demo's proportions times --scale (per account: 4.7 contacts, 99 activities over 540 days, 1.6 cases)\n" +
		"and --items-per-deal line items (the demo's 2). It activates the five techniques and times, in this process as the worker runs them,\n" +
		"a full refresh of each (rfm, firmographics, engagement, voc, recommendations) and one segment's membership\n" +
		"over labels of all of them: a first run (VoC analyses every text), then --runs warm runs (median),\n" +
		"and the process's peak RSS."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	techs := behaviourTechniques
	if *only != "" {
		techs = strings.Split(*only, ",")
		for _, t := range techs {
			if !slices.Contains(behaviourTechniques, t) {
				return usagef(c.cmd, "--only: %q is not one of %s", t, strings.Join(behaviourTechniques, ", "))
			}
		}
	}
	if *accounts < 10 || *deals < *accounts || *runs < 0 || *runs > 20 || !(*scale > 0 && *scale <= 1) || !(*items >= 0 && *items <= 10) {
		return usagef(c.cmd, "want --accounts >= 10, --deals >= --accounts, --runs in [0, 20], --scale in (0, 1] and --items-per-deal in [0, 10]")
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := fillRFMBench(ctx, c, db, *accounts, *deals)
	if err != nil {
		return err
	}
	rep := behaviourBenchReport{Machine: c.machine(ctx), Runs: *runs,
		Covers: "each technique as segment:refresh computes it (forced: no skip), then one segment's membership; the process's peak RSS is the worker's for this work"}
	if rep.Fill, err = fillBehaviourBench(ctx, c, db, org, *accounts, *deals, *scale, *items); err != nil {
		return err
	}
	if *fillOnly {
		f := rep.Fill
		fmt.Fprintf(c.stdout, "filled: %d products, %d line items, %d contacts, %d activities, %d cases\n", f.Products, f.Items, f.Contacts, f.Activities, f.Cases)
		return nil
	}
	now := time.Now()
	segID, err := benchBehaviourSetup(ctx, db, org, now)
	if err != nil {
		return err
	}
	// The refresher's log shows a long refresh's heartbeat.
	ref := segment.Refresher{Store: db, Now: func() time.Time { return now }, Log: c.logger(), RecommendChunk: *recChunk}
	parts := make([]techniqueTimes, len(techs)+1)
	for i := 0; i <= *runs; i++ {
		runID := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		for k, name := range techs {
			c.logger().InfoContext(ctx, "refresh", "technique", name, "run", i)
			start := time.Now()
			run, err := ref.RefreshTechnique(ctx, org, name, now, runID)
			if err != nil {
				return err
			}
			ms := float64(time.Since(start).Microseconds()) / 1000
			c.logger().InfoContext(ctx, "refreshed", "technique", name, "run", i, "ms", ms, "analysed", run.Analysed,
				"scored", max(run.Scored, run.Labelled), "written", run.Written, "recommendations", run.Recommendations, "peak_rss_mb", peakRSSMB())
			p := &parts[k]
			p.Name = name
			if i == 0 {
				p.FirstMS, p.FirstAnalysed = ms, run.Analysed
			} else {
				p.RunsMS = append(p.RunsMS, ms)
			}
			p.Scored, p.Written, p.Recommendations = max(run.Scored, run.Labelled), run.Written, run.Recommendations
		}
		if *only != "" {
			continue
		}
		start := time.Now()
		members, err := db.RecomputeSegment(ctx, org, segID, now)
		if err != nil {
			return err
		}
		ms := float64(time.Since(start).Microseconds()) / 1000
		c.logger().InfoContext(ctx, "segment recomputed", "run", i, "ms", ms, "members", members)
		p := &parts[len(parts)-1]
		p.Name, p.Members = "segment membership", members
		if i == 0 {
			p.FirstMS = ms
			rep.FirstRSSMB = peakRSSMB()
		} else {
			p.RunsMS = append(p.RunsMS, ms)
		}
	}
	if *only != "" {
		parts = parts[:len(techs)]
	}
	for i := range parts {
		parts[i].MedianMS = median(parts[i].RunsMS)
		rep.TotalMedianMS += parts[i].MedianMS
	}
	rep.Parts = parts
	rep.PeakRSSMB = peakRSSMB()
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	f := rep.Fill
	fmt.Fprintf(c.stdout, "machine: %s\n", rep.Machine)
	fmt.Fprintf(c.stdout, "scale %g, %g line items per deal: %d accounts, %d deals, %d products, %d line items, %d contacts, %d activities, %d cases\n",
		f.Scale, f.ItemsPerDeal, f.Accounts, f.Deals, f.Products, f.Items, f.Contacts, f.Activities, f.Cases)
	fmt.Fprintf(c.stdout, "%-20s %10s %12s  %s\n", "part", "first ms", "median ms", "warm runs ms")
	for _, p := range rep.Parts {
		fmt.Fprintf(c.stdout, "%-20s %10.0f %12.0f  %v\n", p.Name, p.FirstMS, p.MedianMS, p.RunsMS)
	}
	fmt.Fprintf(c.stdout, "total of the medians %.0f ms; peak RSS %.0f MB (%.0f MB after the first run)\n", rep.TotalMedianMS, rep.PeakRSSMB, rep.FirstRSSMB)
	for _, p := range rep.Parts {
		fmt.Fprintf(c.stdout, "  %s: scored %d, written in the last run %d, analysed in the first %d, recommendations %d, members %d\n",
			p.Name, p.Scored, p.Written, p.FirstAnalysed, p.Recommendations, p.Members)
	}
	fmt.Fprintln(c.stdout, rep.Covers)
	return nil
}

// benchBehaviourSetup activates the five techniques of the bench org (VoC
// with the bench texts' competitors) and returns the id of a segment over
// labels of all of them, creating it once.
func benchBehaviourSetup(ctx context.Context, db *store.DB, org int64, now time.Time) (int64, error) {
	setup := segment.Setup{DB: db, Now: func() time.Time { return now }}
	views, err := setup.Views(ctx, org)
	if err != nil {
		return 0, err
	}
	for _, v := range views {
		if v.Technique == store.TechniqueVoC {
			var s segment.VoC
			if err := json.Unmarshal(v.Settings, &s); err != nil {
				return 0, err
			}
			if !slices.Equal(s.Competitors, benchCompetitors) {
				s.Competitors = benchCompetitors
				if v.Settings, err = json.Marshal(s); err != nil {
					return 0, err
				}
				if _, _, err := setup.Put(ctx, org, v.Technique, v); err != nil {
					return 0, fmt.Errorf("bench voc settings: %w", err)
				}
			}
		}
		if v.State == store.TechniqueInactive {
			if _, _, err := setup.Activate(ctx, org, v.Technique); err != nil {
				return 0, fmt.Errorf("bench activate %s: %w", v.Technique, err)
			}
		}
	}
	segs, err := db.Segments(ctx, org)
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		if s.Name == "bench behaviour" {
			return s.ID, nil
		}
	}
	cond := func(field string, op criteria.Op, v string) criteria.Condition {
		return criteria.Condition{Field: field, Op: op, Value: json.RawMessage(v)}
	}
	c := criteria.Criteria{Pattern: "(1 OR 2) AND 3 AND 4", Conditions: []criteria.Condition{
		cond("label.engagement", criteria.In, `["Engaged", "Hot"]`),
		cond("voc.sentiment.negative", criteria.Gte, `50`),
		cond("label.recommendations", criteria.Equals, `"Hot prospect"`),
		cond("label.rfm", criteria.In, `["At risk", "Can't lose them", "Hibernating", "Lost"]`)}}
	s, err := db.CreateSegment(ctx, org, store.SegmentInput{Name: "bench behaviour", Criteria: &c}, now)
	return s.ID, err
}
