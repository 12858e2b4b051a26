package main

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers/segment"
)

// rfmBenchOrg is the org bench rfm fills; its size is checked, not assumed.
const rfmBenchOrg = "bench-rfm"

// rfmBenchReport is what bench rfm prints.
type rfmBenchReport struct {
	Machine      string    `json:"machine"` // machineLine with the servers' versions, as the bench began
	Accounts     int       `json:"accounts"`
	Deals        int       `json:"deals"`
	Runs         int       `json:"runs"`
	BareMS       []float64 `json:"bare_ms"`
	CRMQMS       []float64 `json:"crmq_ms"`
	BareMedianMS float64   `json:"bare_median_ms"`
	CRMQMedianMS float64   `json:"crmq_median_ms"`
	Ratio        float64   `json:"ratio"`
	GoalRatio    float64   `json:"goal_ratio"`
	PeakRSSMB    float64   `json:"peak_rss_mb"`
	Scored       int       `json:"scored"`
	Members      int       `json:"segment_members"`
	ScoreMS      []float64 `json:"score_ms"`      // of crmq's runs: scores and labels
	SegmentMS    []float64 `json:"segment_ms"`    // of crmq's runs: the segment's membership
	FirstBareMS  float64   `json:"first_bare_ms"` // the unmeasured first run: crmq writes every row there
	FirstCRMQMS  float64   `json:"first_crmq_ms"`
	Covers       string    `json:"covers"`
}

func runBenchRFM(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	accounts := fs.Int("accounts", 1_000_000, "accounts of the bench org")
	deals := fs.Int("deals", 10_000_000, "deals of the bench org (60% won, spread over the accounts and the last 3 years)")
	runs := fs.Int("runs", 3, "timed runs of each side, after one warm-up run; the median is reported")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	c.detail = "Fills the org " + rfmBenchOrg + " (in SQL, once; kept for later runs) and times, warm, in the same run:\n" +
		"  bare: one INSERT ... SELECT with three NTILE(5) windows over the won deals' per-account aggregates\n" +
		"  crmq: what segment:refresh does for RFM: scores with ties and the eight default labels in one statement\n" +
		"        (rows written only when they changed), then one segment's membership (label.rfm in lapsed labels)\n" +
		"and prints both medians and crmq / bare (goal: at most 1.3), and the first (cold) run of each."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *accounts < 10 || *deals < *accounts || *runs < 1 || *runs > 20 {
		return usagef(c.cmd, "want --accounts >= 10, --deals >= --accounts and --runs in [1, 20]")
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := fillRFMBench(ctx, c, db, *accounts, *deals)
	if err != nil {
		return err
	}
	rfm := segment.DefaultRFM()
	rules, err := segment.CheckRFM(rfm, segment.DefaultRFMLabels())
	if err != nil {
		return err
	}
	now := time.Now()
	segID, err := benchSegment(ctx, db, org, now)
	if err != nil {
		return err
	}
	bare := func() error { return benchBareNTILE(ctx, db, org) }
	var scored, members int
	var parts [2]float64
	ours := func() error {
		t0 := time.Now()
		run, err := db.ScoreAndLabelRFM(ctx, org, rfm.RFMSettings, rules, nil, now, fmt.Sprintf("bench-%d", time.Now().UnixNano()))
		if err != nil {
			return err
		}
		t1 := time.Now()
		scored = run.Scored
		members, err = db.RecomputeSegment(ctx, org, segID, now)
		parts = [2]float64{float64(t1.Sub(t0).Microseconds()) / 1000, float64(time.Since(t1).Microseconds()) / 1000}
		return err
	}
	rep := rfmBenchReport{Machine: c.machine(ctx), Accounts: *accounts, Deals: *deals, Runs: *runs, GoalRatio: 1.3,
		Covers: "crmq side: RFM scores, the 8 default labels and one segment's membership"}
	for i := 0; i <= *runs; i++ { // run 0 warms both
		for _, side := range []struct {
			fn  func() error
			out *[]float64
		}{{bare, &rep.BareMS}, {ours, &rep.CRMQMS}} {
			start := time.Now()
			if err := side.fn(); err != nil {
				return err
			}
			ms := float64(time.Since(start).Microseconds()) / 1000
			switch {
			case i > 0:
				*side.out = append(*side.out, ms)
				if side.out == &rep.CRMQMS {
					rep.ScoreMS, rep.SegmentMS = append(rep.ScoreMS, parts[0]), append(rep.SegmentMS, parts[1])
				}
			case side.out == &rep.BareMS:
				rep.FirstBareMS = ms
			default:
				rep.FirstCRMQMS = ms
			}
		}
	}
	rep.Scored, rep.Members = scored, members
	rep.BareMedianMS, rep.CRMQMedianMS = median(rep.BareMS), median(rep.CRMQMS)
	rep.Ratio = rep.CRMQMedianMS / rep.BareMedianMS
	rep.PeakRSSMB = peakRSSMB()
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(c.stdout, "machine: %s\n", rep.Machine)
	fmt.Fprintf(c.stdout, "accounts %d, deals %d, %d warm runs each (median)\n", rep.Accounts, rep.Deals, rep.Runs)
	fmt.Fprintf(c.stdout, "bare INSERT..SELECT, 3 x NTILE(5): %.0f ms  %v\n", rep.BareMedianMS, rep.BareMS)
	fmt.Fprintf(c.stdout, "crmq RFM refresh (%d accounts, segment of %d): %.0f ms  %v\n", rep.Scored, rep.Members, rep.CRMQMedianMS, rep.CRMQMS)
	fmt.Fprintf(c.stdout, "  of which scores and labels %v ms, segment membership %v ms\n", rep.ScoreMS, rep.SegmentMS)
	fmt.Fprintf(c.stdout, "first (cold) runs: bare %.0f ms, crmq %.0f ms (crmq writes every row then; later runs only changed rows)\n", rep.FirstBareMS, rep.FirstCRMQMS)
	fmt.Fprintf(c.stdout, "ratio crmq / bare: %.2f (goal <= %.1f); this process's peak RSS %.0f MB\n%s\n", rep.Ratio, rep.GoalRatio, rep.PeakRSSMB, rep.Covers)
	return nil
}

// fillRFMBench creates the bench org with exactly the asked sizes, in SQL;
// an org already of that size is reused.
func fillRFMBench(ctx context.Context, c *cli, db *store.DB, accounts, deals int) (int64, error) {
	org, err := db.OrgByName(ctx, rfmBenchOrg)
	if err != nil {
		if org, err = db.CreateOrg(ctx, rfmBenchOrg); err != nil {
			return 0, err
		}
	}
	var haveA, haveD int
	if err := db.GetContext(ctx, &haveA, `SELECT count(*) FROM accounts WHERE org_id = $1`, org.ID); err != nil {
		return 0, err
	}
	if err := db.GetContext(ctx, &haveD, `SELECT count(*) FROM deals WHERE org_id = $1`, org.ID); err != nil {
		return 0, err
	}
	if haveA == accounts && haveD == deals {
		return org.ID, nil
	}
	c.logger().InfoContext(ctx, "filling the bench org", "accounts", accounts, "deals", deals)
	steps := []string{
		`DELETE FROM segment_members WHERE org_id = $1`,
		`DELETE FROM account_labels WHERE org_id = $1`,
		`DELETE FROM deals WHERE org_id = $1`,
		`DELETE FROM accounts WHERE org_id = $1`,
		`INSERT INTO accounts (org_id, external_id, name, industry, employees, country)
		 SELECT $1, 'a' || g, 'Account ' || g, (ARRAY['Healthcare','Pharma','Retail','Logistics','Software'])[1 + g % 5],
		        10 + (g::bigint * 7919) % 20000, CASE WHEN g % 10 = 0 THEN NULL ELSE (ARRAY['DE','FR','US','IN','JP'])[1 + g % 5] END
		 FROM generate_series(1, $2::int) g`,
		`INSERT INTO deals (org_id, external_id, account_id, name, stage, amount, close_date)
		 SELECT $1, 'd' || g, a0.first + (hashint4(g) & 2147483647) % $2::int, 'Deal ' || g,
		        CASE WHEN g % 10 < 6 THEN 'Closed Won' WHEN g % 10 < 8 THEN 'Closed Lost' ELSE 'Negotiation' END,
		        ((hashint4((g::bigint * 31 % 2147483647)::int) & 2147483647) % 100000) / 100.0 + 100,
		        current_date - ((hashint4((g::bigint * 17 % 2147483647)::int) & 2147483647) % 1095)
		 FROM generate_series(1, $3::int) g, (SELECT min(id) AS first FROM accounts WHERE org_id = $1) a0`,
		`ANALYZE accounts`,
		`ANALYZE deals`,
	}
	for _, q := range steps {
		var err error
		switch {
		case q == `ANALYZE accounts` || q == `ANALYZE deals`:
			_, err = db.ExecContext(ctx, q)
		case len(q) > 20 && q[:20] == "INSERT INTO accounts":
			_, err = db.ExecContext(ctx, q, org.ID, accounts)
		case len(q) > 17 && q[:17] == "INSERT INTO deals":
			_, err = db.ExecContext(ctx, q, org.ID, accounts, deals)
		default:
			_, err = db.ExecContext(ctx, q, org.ID)
		}
		if err != nil {
			return 0, fmt.Errorf("fill bench org: %w", err)
		}
	}
	return org.ID, nil
}

// benchBareNTILE is the baseline: the same aggregates and three NTILE(5)
// windows, written with one INSERT ... SELECT into a scratch table.
func benchBareNTILE(ctx context.Context, db *store.DB, org int64) error {
	_, err := db.ExecContext(ctx, `CREATE UNLOGGED TABLE IF NOT EXISTS bench_rfm_bare (account_id bigint, r int, f int, m int)`)
	if err == nil {
		_, err = db.ExecContext(ctx, `TRUNCATE bench_rfm_bare`)
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `
			INSERT INTO bench_rfm_bare (account_id, r, f, m)
			SELECT account_id, ntile(5) OVER (ORDER BY last_at), ntile(5) OVER (ORDER BY freq), ntile(5) OVER (ORDER BY money)
			FROM (SELECT account_id, max(close_date) AS last_at, count(*) AS freq, sum(amount) AS money
			      FROM deals WHERE org_id = $1 AND stage = 'Closed Won' AND account_id IS NOT NULL
			      GROUP BY account_id) agg`, org)
	}
	if err != nil {
		return fmt.Errorf("bare ntile statement: %w", err)
	}
	return nil
}

// benchSegment returns the bench org's segment of lapsed RFM labels,
// creating it once.
func benchSegment(ctx context.Context, db *store.DB, org int64, now time.Time) (int64, error) {
	segs, err := db.Segments(ctx, org)
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		if s.Name == "bench lapsed" {
			return s.ID, nil
		}
	}
	c := criteria.Criteria{Conditions: []criteria.Condition{{Field: "label.rfm", Op: criteria.In,
		Value: json.RawMessage(`["At risk", "Can't lose them", "Hibernating", "Lost"]`)}}}
	s, err := db.CreateSegment(ctx, org, store.SegmentInput{Name: "bench lapsed", Criteria: &c}, now)
	return s.ID, err
}

// peakRSSMB is this process's peak resident set so far, in MB (0 when the
// system does not say).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
