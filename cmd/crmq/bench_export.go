package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/export"
)

// exportBenchOrg is the org bench export fills; its size is checked, not
// assumed.
const exportBenchOrg = "bench-export"

// exportBenchFields are the columns both sides write.
var exportBenchFields = []string{"id", "name", "industry", "employees", "annual_revenue", "website", "city", "country", "owner", "created_at"}

// exportBenchSQL is the same rows and columns for the baseline, in the
// same order, as \copy reads them.
const exportBenchSQL = `SELECT a.external_id, a.name, a.industry, a.employees, a.annual_revenue, a.website, a.city, a.country, a.owner,
  (a.created_at AT TIME ZONE 'UTC')::timestamp(0)
  FROM segment_members m JOIN accounts a ON a.id = m.account_id WHERE m.org_id = %d AND m.segment_id = %d ORDER BY m.account_id`

type exportBenchReport struct {
	Machine        string    `json:"machine"` // machineLine with the servers' versions, as the bench began
	Accounts       int       `json:"accounts"`
	Members        int       `json:"segment_members"`
	Runs           int       `json:"runs"`
	Baseline       string    `json:"baseline"`
	BaselineMS     []float64 `json:"baseline_ms"`
	CRMQMS         []float64 `json:"crmq_ms"`
	BaselineMedian float64   `json:"baseline_median_ms"`
	CRMQMedian     float64   `json:"crmq_median_ms"`
	Ratio          float64   `json:"ratio"`
	GoalRatio      float64   `json:"goal_ratio"`
	BaselineBytes  int64     `json:"baseline_bytes"`
	CRMQBytes      int64     `json:"crmq_bytes"`
	Rows           int64     `json:"rows"`
	// CPU of the client side of each run, Postgres' excluded (it runs the
	// same query for both): this process for crmq, psql and zip for the
	// baseline. Less noisy than wall time on a shared machine.
	BaselineCPUMS []float64 `json:"baseline_client_cpu_ms"`
	CRMQCPUMS     []float64 `json:"crmq_client_cpu_ms"`
	PeakRSSMB     float64   `json:"peak_rss_mb"`
	GoalRSSMB     float64   `json:"goal_rss_mb"`
}

func runBenchExport(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	accounts := fs.Int("accounts", 1_000_000, "accounts of the bench org, all in its segment")
	runs := fs.Int("runs", 3, "timed runs of each side, after one warm-up run; the median is reported")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	c.detail = "Fills the org " + exportBenchOrg + " (in SQL, once; kept for later runs) with a segment of every account, and times,\n" +
		"alternating, in the same run:\n" +
		"  baseline: psql -c \"\\copy (same rows, same columns) TO STDOUT CSV HEADER\" | zip (when psql and zip are on PATH;\n" +
		"            otherwise Go's archive/zip with compress/flate's default level over the same streamed rows, and says so)\n" +
		"  crmq:     export:segment's handler, in this process, writing to a local-directory bucket\n" +
		"and prints both medians, crmq / baseline (goal: at most 0.7) and this process's peak RSS (goal: under 100 MB)."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *accounts < 10 || *runs < 1 || *runs > 20 {
		return usagef(c.cmd, "want --accounts >= 10 and --runs in [1, 20]")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, seg, err := fillExportBench(ctx, c, db, *accounts)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "crmq-bench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bucket, err := export.OpenBucket(ctx, "file://"+dir+"?no_tmp_dir=true&metadata=skip")
	if err != nil {
		return err
	}
	defer bucket.Close()
	x := export.Exporter{Store: db, Bucket: bucket, Now: time.Now, Log: c.logger()}

	rep := exportBenchReport{Machine: c.machine(ctx), Accounts: *accounts, Members: seg.MemberCount, Runs: *runs, GoalRatio: 0.7, GoalRSSMB: 100}
	query := fmt.Sprintf(exportBenchSQL, org, seg.ID)
	baseOut := filepath.Join(dir, "baseline.zip")
	var baseline func() error
	_, perr := exec.LookPath("psql")
	_, zerr := exec.LookPath("zip")
	if perr == nil && zerr == nil {
		rep.Baseline = `psql -c "\copy (...) TO STDOUT CSV HEADER" | zip -q out.zip - (Info-ZIP, default level)`
		baseline = func() error {
			_ = os.Remove(baseOut)
			cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", `psql -X -q "$DATABASE_URL" -c "$COPY" | zip -q "$OUT" -`)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+cfg.DatabaseURL, "COPY=\\copy ("+query+") TO STDOUT CSV HEADER", "OUT="+baseOut)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("baseline pipeline: %w: %s", err, stderr.String())
			}
			return nil
		}
	} else {
		rep.Baseline = "psql or zip not on PATH: Go archive/zip with compress/flate's default level over the same rows (lib/pq, encoding/csv)"
		baseline = func() error { return goBaseline(ctx, db, query, baseOut) }
	}
	p := jobs.ExportSegmentPayload{OrgID: org, SegmentID: seg.ID, Fields: jobs.ExportFields{Names: exportBenchFields}}
	var last jobs.ExportSegmentResult
	ours := func() error {
		res, err := x.Run(ctx, workers.Job[jobs.ExportSegmentPayload]{ID: "bench-" + uuid.NewString(), Payload: p})
		last = res
		return err
	}
	for i := 0; i <= *runs; i++ { // run 0 warms both
		for _, side := range []struct {
			fn       func() error
			out, cpu *[]float64
		}{{baseline, &rep.BaselineMS, &rep.BaselineCPUMS}, {ours, &rep.CRMQMS, &rep.CRMQCPUMS}} {
			cpu0 := cpuMS()
			start := time.Now()
			if err := side.fn(); err != nil {
				return err
			}
			if i > 0 {
				*side.out = append(*side.out, float64(time.Since(start).Microseconds())/1000)
				*side.cpu = append(*side.cpu, cpuMS()-cpu0)
			}
		}
	}
	if st, err := os.Stat(baseOut); err == nil {
		rep.BaselineBytes = st.Size()
	}
	rep.CRMQBytes, rep.Rows = last.Size, last.Rows
	rep.BaselineMedian, rep.CRMQMedian = median(rep.BaselineMS), median(rep.CRMQMS)
	rep.Ratio = rep.CRMQMedian / rep.BaselineMedian
	rep.PeakRSSMB = peakRSSMB()
	if _, err := db.ExecContext(ctx, `DELETE FROM exports WHERE org_id = $1`, org); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(c.stdout, "machine: %s\n", rep.Machine)
	fmt.Fprintf(c.stdout, "segment of %d accounts, %d columns, %d warm runs each (median)\n", rep.Members, len(exportBenchFields), rep.Runs)
	fmt.Fprintf(c.stdout, "baseline %s: %.0f ms  %v  (%d bytes)\n", rep.Baseline, rep.BaselineMedian, rep.BaselineMS, rep.BaselineBytes)
	fmt.Fprintf(c.stdout, "crmq export:segment (%d rows): %.0f ms  %v  (%d bytes)\n", rep.Rows, rep.CRMQMedian, rep.CRMQMS, rep.CRMQBytes)
	fmt.Fprintf(c.stdout, "client CPU per run (Postgres excluded): baseline %v ms, crmq %v ms\n", rep.BaselineCPUMS, rep.CRMQCPUMS)
	fmt.Fprintf(c.stdout, "ratio crmq / baseline: %.2f (goal <= %.1f); this process's peak RSS %.0f MB (goal < %.0f)\n",
		rep.Ratio, rep.GoalRatio, rep.PeakRSSMB, rep.GoalRSSMB)
	return nil
}

// cpuMS is the CPU time, user and system, of this process and its waited
// children so far.
func cpuMS() float64 {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	ms := func(tv syscall.Timeval) float64 { return float64(tv.Nano()) / 1e6 }
	return ms(self.Utime) + ms(self.Stime) + ms(kids.Utime) + ms(kids.Stime)
}

// fillExportBench creates the bench org with exactly the asked number of
// accounts and a segment of all of them, in SQL; kept for later runs.
func fillExportBench(ctx context.Context, c *cli, db *store.DB, accounts int) (int64, store.Segment, error) {
	org, err := db.OrgByName(ctx, exportBenchOrg)
	if err != nil {
		if org, err = db.CreateOrg(ctx, exportBenchOrg); err != nil {
			return 0, store.Segment{}, err
		}
	}
	var have int
	if err := db.GetContext(ctx, &have, `SELECT count(*) FROM accounts WHERE org_id = $1`, org.ID); err != nil {
		return 0, store.Segment{}, err
	}
	if have != accounts {
		c.logger().InfoContext(ctx, "filling the bench org", "accounts", accounts)
		for _, q := range []string{
			`DELETE FROM segments WHERE org_id = $1`,
			`DELETE FROM accounts WHERE org_id = $1`,
			`INSERT INTO accounts (org_id, external_id, name, industry, employees, annual_revenue, website, city, country, owner)
			 SELECT $1, 'acc-' || g, 'Account ' || g || CASE WHEN g % 100 = 0 THEN ', Inc.' ELSE '' END,
			        (ARRAY['Healthcare','Pharma','Retail','Logistics','Software'])[1 + g % 5],
			        10 + (g::bigint * 7919) % 20000, ((g::bigint * 104729) % 100000000) / 100.0,
			        'https://www.account' || g || '.example', (ARRAY['Berlin','Paris','Austin','Pune','Osaka'])[1 + g % 5],
			        (ARRAY['DE','FR','US','IN','JP'])[1 + g % 5], 'owner-' || (g % 50)
			 FROM generate_series(1, $2::int) g`,
		} {
			args := []any{org.ID}
			if strings.HasPrefix(q, "INSERT") {
				args = append(args, accounts)
			}
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				return 0, store.Segment{}, fmt.Errorf("fill bench org: %w", err)
			}
		}
		if _, err := db.ExecContext(ctx, `ANALYZE accounts`); err != nil {
			return 0, store.Segment{}, err
		}
	}
	segs, err := db.Segments(ctx, org.ID)
	if err != nil {
		return 0, store.Segment{}, err
	}
	for _, s := range segs {
		if s.Name == "bench all" && s.MemberCount == accounts {
			return org.ID, s, nil
		}
	}
	s, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: "bench all", Criteria: &criteria.Criteria{Conditions: []criteria.Condition{}}}, time.Now())
	if err == nil {
		_, err = db.ExecContext(ctx, `ANALYZE segment_members`)
	}
	return org.ID, s, err
}

// goBaseline is the fallback baseline: the same rows through lib/pq and
// encoding/csv into archive/zip with the standard library's default
// deflate level, in one goroutine.
func goBaseline(ctx context.Context, db *store.DB, query, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.DefaultCompression) })
	w, err := zw.Create("export.csv")
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	cells := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	rec := make([]string, len(cols))
	for i := range cells {
		dest[i] = &cells[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i, c := range cells {
			rec[i] = c.String
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return zw.Close()
}
