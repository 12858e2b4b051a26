package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/export"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var day0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	// The S3 client reads credentials from the environment; the in-process
	// server accepts any. Host files must not leak in.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	os.Exit(m.Run())
}

// buckets are the two kinds of export bucket every test runs against: a
// local directory and an in-process server speaking the S3 protocol.
var buckets = []struct {
	name string
	open func(t *testing.T) *blob.Bucket
}{
	{"file", func(t *testing.T) *blob.Bucket {
		return openBucket(t, "file://"+t.TempDir()+"?no_tmp_dir=true")
	}},
	{"s3", func(t *testing.T) *blob.Bucket {
		backend := s3mem.New()
		srv := httptest.NewServer(gofakes3.New(backend).Server())
		t.Cleanup(srv.Close)
		if err := backend.CreateBucket("exports"); err != nil {
			t.Fatal(err)
		}
		return openBucket(t, "s3://exports?endpoint="+url.QueryEscape(srv.URL)+"&region=us-east-1&use_path_style=true"+
			"&request_checksum_calculation=when_required&response_checksum_validation=when_required")
	}},
}

func openBucket(t *testing.T, u string) *blob.Bucket {
	t.Helper()
	b, err := export.OpenBucket(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// forEachBucket runs fn as a subtest per bucket kind.
func forEachBucket(t *testing.T, fn func(t *testing.T, b *blob.Bucket)) {
	for _, bk := range buckets {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			fn(t, bk.open(t))
		})
	}
}

type fixture struct {
	db  *store.DB
	org int64
	seg store.Segment
}

// The formula-like and awkward values the demo accounts carry.
const (
	evilName = `=HYPERLINK("http://evil.test","click")`
	oddNote  = "a,b \"quoted\"\nsecond line"
)

// newFixture stores n plain accounts in industry Tech, one awkward Tech
// account (acc-evil) and two accounts in another industry, labels some,
// and makes the segment "Tech / EU" of the Tech accounts.
func newFixture(t *testing.T, n int) fixture {
	t.Helper()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "exporter")
	_, err := db.ExecContext(ctx, `
		INSERT INTO accounts (org_id, external_id, name, industry, employees, annual_revenue, country, attributes)
		SELECT $1, 'acc-' || lpad(i::text, 6, '0'), 'Account ' || i, 'Tech', i, i * 10.5, 'DE',
		       jsonb_build_object('tier', CASE WHEN i % 2 = 0 THEN 'gold' ELSE 'silver' END)
		FROM generate_series(1, $2) i`, org.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `
		INSERT INTO accounts (org_id, external_id, name, industry, annual_revenue, country, attributes) VALUES
		($1, 'acc-evil', $2, 'Tech', -1500.50, '+49 30', jsonb_build_object('note', $3::text, 'tier', '@gold', 'cmd', '-2+3')),
		($1, 'other-1', 'Other 1', 'Retail', 1, 'FR', '{"secret": "not in segment"}'),
		($1, 'other-2', 'Other 2', 'Retail', 2, 'FR', '{}')`, org.ID, evilName, oddNote)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `
		INSERT INTO account_labels (org_id, technique, account_id, label, r, f, m, raw, last_purchase, frequency, monetary, computed_at, run_id)
		SELECT $1, 'rfm', id, 'At risk', 2, 4, 3, '{"recency_days": 120, "frequency": 7, "monetary": 950.5}',
		       $2::date - 120, 7, 950.5, now(), 'run'
		FROM accounts WHERE org_id = $1 AND external_id IN ('acc-000001', 'acc-evil')`, org.ID, day0.UTC().Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	var c criteria.Criteria
	if err := json.Unmarshal([]byte(`{"conditions": [{"field": "industry", "op": "equals", "value": "Tech"}]}`), &c); err != nil {
		t.Fatal(err)
	}
	seg, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: "Tech / EU", Criteria: &c}, day0)
	if err != nil {
		t.Fatal(err)
	}
	if seg.MemberCount != n+1 {
		t.Fatalf("segment has %d members, want %d", seg.MemberCount, n+1)
	}
	return fixture{db: db, org: org.ID, seg: seg}
}

func (f fixture) exporter(b *blob.Bucket, now func() time.Time) export.Exporter {
	return export.Exporter{Store: f.db, Bucket: b, Now: now, Log: quiet}
}

func (f fixture) run(t *testing.T, x export.Exporter, jobID string, fields jobs.ExportFields, excel bool) (jobs.ExportSegmentResult, error) {
	t.Helper()
	p := jobs.ExportSegmentPayload{OrgID: f.org, SegmentID: f.seg.ID, UserID: "user-1", Fields: fields, Excel: excel}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return x.Run(context.Background(), workers.Job[jobs.ExportSegmentPayload]{ID: jobID, Payload: p})
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// readExport reads the published file of an export and returns its only
// entry's name and bytes, checking the row's size and checksum.
func readExport(t *testing.T, f fixture, b *blob.Bucket, jobID string) (store.Export, string, []byte) {
	t.Helper()
	ctx := context.Background()
	ex, err := f.db.ExportByJob(ctx, f.org, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != store.ExportReady || ex.FileKey == nil {
		t.Fatalf("export is %s (file %v), want ready with a file", ex.Status, ex.FileKey)
	}
	raw, err := b.ReadAll(ctx, *ex.FileKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if int64(len(raw)) != *ex.SizeBytes || hex.EncodeToString(sum[:]) != *ex.SHA256 {
		t.Fatalf("file has %d bytes, sha %x; the row says %d, %s", len(raw), sum, *ex.SizeBytes, *ex.SHA256)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("the ZIP does not open: %v", err)
	}
	if len(zr.File) != 1 {
		t.Fatalf("ZIP has %d entries, want 1", len(zr.File))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc) // checks the entry's CRC
	if err != nil {
		t.Fatalf("ZIP entry: %v", err)
	}
	return ex, zr.File[0].Name, body
}

func parseCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = 0 // every record as long as the header
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	return recs
}

func byID(recs [][]string, col int, id string) []string {
	for _, r := range recs[1:] {
		if r[col] == id {
			return r
		}
	}
	return nil
}

// A selected-fields export of a segment: the ZIP opens, the CSV parses,
// the header is the fields' display names in the order asked, there is one
// row per member and no other account, and formula-like values are
// neutralised while a negative amount stays a number.
func TestSelectedFieldsExportIsACompleteCSVInAZIP(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		f := newFixture(t, 1500)
		fields := jobs.ExportFields{Names: []string{"label.rfm", "name", "id", "annual_revenue", "attributes.note", "attributes.tier", "country", "score.rfm.r", "rfm.monetary", "attributes.cmd", "attributes.linkedin"}}
		res, err := f.run(t, f.exporter(b, fixed(day0)), "job-sel", fields, false)
		if err != nil {
			t.Fatal(err)
		}
		ex, entry, body := readExport(t, f, b, "job-sel")
		if entry != "Tech-EU-2026-03-02.csv" {
			t.Errorf("entry %q", entry)
		}
		if bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
			t.Error("byte-order mark without the excel option")
		}
		recs := parseCSV(t, body)
		wantHeader := []string{"RFM Label", "Account Name", "Account ID", "Annual Revenue", "note", "tier", "Country", "RFM Recency Score", "RFM Monetary", "cmd", "LinkedIn profile"}
		if !slices.Equal(recs[0], wantHeader) {
			t.Errorf("header %q, want %q", recs[0], wantHeader)
		}
		if got := len(recs) - 1; got != f.seg.MemberCount || int64(got) != res.Rows || *ex.RowCount != res.Rows {
			t.Errorf("%d rows, result says %d, row says %d; the segment has %d", got, res.Rows, *ex.RowCount, f.seg.MemberCount)
		}
		if byID(recs, 2, "other-1") != nil {
			t.Error("an account outside the segment was exported")
		}
		evil := byID(recs, 2, "acc-evil")
		want := []string{"At risk", "'" + evilName, "acc-evil", "-1500.50", oddNote, "'@gold", "'+49 30", "2", "950.5", "'-2+3", ""}
		if !slices.Equal(evil, want) {
			t.Errorf("acc-evil row\n %q\nwant\n %q", evil, want)
		}
		plain := byID(recs, 2, "acc-000002")
		if want := []string{"", "Account 2", "acc-000002", "21.00", "", "gold", "DE", "", "", "", ""}; !slices.Equal(plain, want) {
			t.Errorf("acc-000002 row %q, want %q", plain, want)
		}
		if ex.DownloadUntil == nil || !ex.DownloadUntil.Equal(day0.Add(14*24*time.Hour)) {
			t.Errorf("download until %v", ex.DownloadUntil)
		}
		if ok, _ := b.Exists(context.Background(), *ex.FileKey+".part"); ok {
			t.Error("the temporary file is still there after publishing")
		}
	})
}

// An all-fields export carries every account column, the ABM fields and
// every attribute any member has, and the excel option adds the BOM.
func TestAllFieldsExportCarriesEveryFieldAndTheBOM(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		f := newFixture(t, 20)
		if _, err := f.run(t, f.exporter(b, fixed(day0)), "job-all", jobs.ExportFields{All: true}, true); err != nil {
			t.Fatal(err)
		}
		_, _, body := readExport(t, f, b, "job-all")
		rest, ok := bytes.CutPrefix(body, []byte("\xEF\xBB\xBF"))
		if !ok {
			t.Fatal("no byte-order mark with the excel option")
		}
		recs := parseCSV(t, rest)
		for _, h := range []string{"Account ID", "Account Name", "Industry", "Employees", "Annual Revenue", "Website", "Account Owner",
			"Created Time (UTC)", "RFM Label", "Firmographics Label", "RFM Recency Score", "RFM Recency (days)", "cmd", "note", "tier"} {
			if !slices.Contains(recs[0], h) {
				t.Errorf("header lacks %q: %q", h, recs[0])
			}
		}
		if slices.Contains(recs[0], "secret") {
			t.Error("an attribute only a non-member has became a column")
		}
		// Recency in days is counted to the day the segment was computed
		// (day0), from the stored last purchase 120 days before it.
		id, days := slices.Index(recs[0], "Account ID"), slices.Index(recs[0], "RFM Recency (days)")
		for _, r := range recs[1:] {
			if r[id] == "acc-000001" && r[days] != "120" {
				t.Errorf("acc-000001 recency %q days, want 120", r[days])
			}
		}
		if len(recs)-1 != f.seg.MemberCount {
			t.Errorf("%d rows, want %d", len(recs)-1, f.seg.MemberCount)
		}
	})
}

// The behavioural techniques' labels, scores and VoC shares and counts
// are columns like RFM's: named one by one, or in an all-fields export
// (VoC's keyword and competitor counts for the org's own lists), and empty
// for an account a technique did not label.
func TestBehaviouralLabelsAndScoresAreExportColumns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 3)
	if _, err := f.db.WriteTechnique(ctx, f.org, store.TechniqueVoC, store.TechniqueWrite{Now: day0,
		Settings: json.RawMessage(`{"sources": ["email"], "window_days": 365, "keywords": ["Seats", "price"], "competitors": ["Brightline"]}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := f.db.ExecContext(ctx, `
		INSERT INTO account_labels (org_id, technique, account_id, label, score, raw, computed_at, run_id)
		SELECT $1, t.technique, a.id, t.label, t.score, t.raw::jsonb, now(), 'run'
		FROM accounts a, (VALUES
			('engagement', 'Engaged', 72, '{"raw_points": 30}'),
			('voc', 'Ready to buy', NULL, '{"texts": 10, "intent": {"purchase": 60, "query": 20}, "sentiment": {"positive": 50, "negative": 30, "neutral": 20, "net": 20},
			  "keyword": {"seats": 6}, "competitor": {"brightline": 3}}'),
			('recommendations', 'Hot prospect', 85, '{"recommendations": 4}')) AS t (technique, label, score, raw)
		WHERE a.org_id = $1 AND a.external_id = 'acc-000001'`, f.org)
	if err != nil {
		t.Fatal(err)
	}
	b := buckets[0].open(t)
	names := []string{"id", "label.engagement", "score.engagement", "label.voc", "voc.texts", "voc.intent.purchase", "voc.intent.complaint",
		"voc.sentiment.negative", "voc.sentiment.net", "voc.keyword.seats", "voc.keyword.price", "voc.competitor.brightline",
		"label.recommendations", "score.recommendations"}
	if _, err := f.run(t, f.exporter(b, fixed(day0)), "job-behaviour", jobs.ExportFields{Names: names}, false); err != nil {
		t.Fatal(err)
	}
	_, _, body := readExport(t, f, b, "job-behaviour")
	recs := parseCSV(t, body)
	wantHeader := []string{"Account ID", "Engagement Label", "Engagement Score", "VoC Label", "VoC Texts", "VoC Intent purchase (%)",
		"VoC Intent complaint (%)", "VoC Sentiment negative (%)", "VoC Sentiment net (%)", "VoC Keyword seats (mentions)",
		"VoC Keyword price (mentions)", "VoC Competitor brightline (mentions)", "Recommendations Label", "Recommendations Top Probability"}
	if !slices.Equal(recs[0], wantHeader) {
		t.Errorf("header\n %q\nwant\n %q", recs[0], wantHeader)
	}
	want := []string{"acc-000001", "Engaged", "72", "Ready to buy", "10", "60", "0", "30", "20", "6", "0", "3", "Hot prospect", "85"}
	if got := byID(recs, 0, "acc-000001"); !slices.Equal(got, want) {
		t.Errorf("acc-000001 row\n %q\nwant\n %q", got, want)
	}
	if got, want := byID(recs, 0, "acc-000002"), append([]string{"acc-000002"}, make([]string, len(names)-1)...); !slices.Equal(got, want) {
		t.Errorf("an account no technique labelled: %q, want empty cells", got)
	}
	if _, err := f.run(t, f.exporter(b, fixed(day0)), "job-behaviour-all", jobs.ExportFields{All: true}, false); err != nil {
		t.Fatal(err)
	}
	_, _, body = readExport(t, f, b, "job-behaviour-all")
	header := parseCSV(t, body)[0]
	for _, h := range wantHeader {
		if !slices.Contains(header, h) {
			t.Errorf("the all-fields header lacks %q", h)
		}
	}
	cat, err := f.db.ExportCatalog(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Select([]string{"voc.keyword.invoice"}); !errors.Is(err, store.ErrInvalidExportFields) {
		t.Errorf("a keyword outside the org's list: %v, want an invalid field", err)
	}
}

// A write that fails half way leaves nothing under its key, on both
// kinds of bucket: a truncated file is never there to be published.
func TestAFailedWriteLeavesNoFile(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		boom := errors.New("connection lost")
		big := strings.Repeat("x", 1000)
		_, err := export.Write(context.Background(), b, "exports/1/9.zip.part", export.Source{
			Headers: [][]byte{[]byte("a")}, Entry: "a.csv", Modified: day0,
			Copy: func(ctx context.Context, w io.Writer) (int64, error) {
				for i := range 20000 { // ~20 MB of CSV: several chunks and upload parts
					if _, err := io.WriteString(w, big+"\n"); err != nil {
						return int64(i), err
					}
				}
				return 20000, boom
			},
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err %v, want %v", err, boom)
		}
		if ok, err := b.Exists(context.Background(), "exports/1/9.zip.part"); ok || err != nil {
			t.Fatalf("a failed write left a file (exists %v, err %v)", ok, err)
		}
	})
}

// A retried job writes over its own keys and ends with one complete file;
// a task delivered again after its export was published does not write
// again.
func TestARetriedExportEndsWithOneCompleteFile(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		ctx := context.Background()
		f := newFixture(t, 300)
		x := f.exporter(b, fixed(day0))
		fields := jobs.ExportFields{Names: []string{"id", "name"}}
		// An earlier attempt that died while writing: a row left running
		// and garbage under the temporary key.
		ex, err := f.db.EnsureExport(ctx, store.ExportRequest{JobID: "job-retry", OrgID: f.org, SegmentID: f.seg.ID, Fields: json.RawMessage(`["id","name"]`), Now: day0})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.StartExport(ctx, ex.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteAll(ctx, export.FileKey(f.org, ex.ID)+".part", []byte("truncated"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.run(t, x, "job-retry", fields, false); err != nil {
			t.Fatal(err)
		}
		got, _, body := readExport(t, f, b, "job-retry")
		if got.ID != ex.ID || len(parseCSV(t, body))-1 != 301 {
			t.Fatalf("export %d with %d rows", got.ID, len(parseCSV(t, body))-1)
		}
		again, err := f.run(t, x, "job-retry", fields, false)
		if err != nil || again.Rows != 301 || again.SHA256 != *got.SHA256 {
			t.Fatalf("redelivered: %+v, %v", again, err)
		}
		var keys []string
		it := b.List(&blob.ListOptions{Prefix: fmt.Sprintf("exports/%d/", f.org)})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(obj.Key, ".attrs") {
				keys = append(keys, obj.Key)
			}
		}
		if want := []string{export.FileKey(f.org, ex.ID)}; !slices.Equal(keys, want) {
			t.Errorf("bucket holds %q, want %q", keys, want)
		}
	})
}

// Deleting the segment makes its exports invalid; an export of it that
// had not run fails at once, with the reason, and is not retried.
func TestAnExportOfADeletedSegmentIsInvalid(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		ctx := context.Background()
		f := newFixture(t, 10)
		x := f.exporter(b, fixed(day0))
		if _, err := f.run(t, x, "job-done", jobs.ExportFields{All: true}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.EnsureExport(ctx, store.ExportRequest{JobID: "job-late", OrgID: f.org, SegmentID: f.seg.ID, Fields: json.RawMessage(`"all"`), Now: day0}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.DeleteSegment(ctx, f.org, f.seg.ID); err != nil {
			t.Fatal(err)
		}
		for _, job := range []string{"job-done", "job-late"} {
			ex, err := f.db.ExportByJob(ctx, f.org, job)
			if err != nil || ex.Status != store.ExportInvalid {
				t.Errorf("%s: %s, %v; want invalid", job, ex.Status, err)
			}
		}
		_, err := f.run(t, x, "job-late", jobs.ExportFields{All: true}, false)
		if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "deleted") {
			t.Errorf("run after delete: %v", err)
		}
	})
}

// The clock moves: on day 15 a ready export's file is gone and it shows
// expired; on day 91 its history row is gone too. An invalid export's file
// is removed at once. Running the task twice, or two at once, changes
// nothing more.
func TestExpiryOnDay15AndDay91(t *testing.T) {
	t.Parallel()
	forEachBucket(t, func(t *testing.T, b *blob.Bucket) {
		ctx := context.Background()
		f := newFixture(t, 30)
		fields := jobs.ExportFields{Names: []string{"id"}}
		if _, err := f.run(t, f.exporter(b, fixed(day0)), "job-old", fields, false); err != nil {
			t.Fatal(err)
		}
		// A second segment whose export becomes invalid.
		other, err := f.db.CreateSegment(ctx, f.org, store.SegmentInput{Name: "All", Criteria: &criteria.Criteria{Conditions: []criteria.Condition{}}}, day0)
		if err != nil {
			t.Fatal(err)
		}
		p := jobs.ExportSegmentPayload{OrgID: f.org, SegmentID: other.ID, Fields: fields}
		if _, err := f.exporter(b, fixed(day0.Add(24*time.Hour))).Run(ctx, workers.Job[jobs.ExportSegmentPayload]{ID: "job-gone", Payload: p}); err != nil {
			t.Fatal(err)
		}
		gone, _, _ := readExport(t, f, b, "job-gone")
		if err := f.db.DeleteSegment(ctx, f.org, other.ID); err != nil {
			t.Fatal(err)
		}
		old, _, _ := readExport(t, f, b, "job-old")

		expire := func(at time.Time) jobs.ExportsExpireResult {
			t.Helper()
			res, err := export.Expirer{Store: f.db, Bucket: b, Now: fixed(at)}.Run(ctx, workers.Job[jobs.OrgPayload]{ID: "x", Payload: jobs.OrgPayload{OrgID: f.org}})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		exists := func(key string) bool {
			ok, err := b.Exists(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}

		// Day 13: the invalid export's file goes, the ready one stays.
		if res := expire(day0.Add(13 * 24 * time.Hour)); res.FilesRemoved != 1 || res.RowsDeleted != 0 {
			t.Errorf("day 13: %+v", res)
		}
		if exists(*gone.FileKey) || !exists(*old.FileKey) {
			t.Errorf("day 13: invalid file there %v, ready file there %v", exists(*gone.FileKey), exists(*old.FileKey))
		}
		if res := expire(day0.Add(13 * 24 * time.Hour)); res != (jobs.ExportsExpireResult{}) {
			t.Errorf("day 13 again: %+v", res)
		}
		// Day 15: the ready export expired.
		if res := expire(day0.Add(15 * 24 * time.Hour)); res.FilesRemoved != 1 {
			t.Errorf("day 15: %+v", res)
		}
		ex, err := f.db.ExportByJob(ctx, f.org, "job-old")
		if err != nil || ex.Status != store.ExportExpired || ex.Downloadable(day0.Add(15*24*time.Hour)) || exists(*old.FileKey) {
			t.Errorf("day 15: %s, %v, file there %v", ex.Status, err, exists(*old.FileKey))
		}
		if ex.RowCount == nil || *ex.RowCount != 31 {
			t.Errorf("the history lost the row count: %v", ex.RowCount)
		}
		// Day 90 (plus a minute) for the first export, not the second.
		res := expire(day0.Add(90*24*time.Hour + time.Minute))
		if res.RowsDeleted != 1 {
			t.Errorf("day 90: %+v", res)
		}
		if _, err := f.db.ExportByJob(ctx, f.org, "job-old"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("day 90: the first export is still in the history: %v", err)
		}
		// Day 91: both gone, twice in parallel.
		done := make(chan jobs.ExportsExpireResult, 2)
		for range 2 {
			go func() {
				r, err := export.Expirer{Store: f.db, Bucket: b, Now: fixed(day0.Add(91 * 24 * time.Hour))}.Run(ctx, workers.Job[jobs.OrgPayload]{Payload: jobs.OrgPayload{OrgID: f.org}})
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
		}
		a, c := <-done, <-done
		if a.RowsDeleted+c.RowsDeleted != 1 {
			t.Errorf("day 91 twice at once: %+v, %+v", a, c)
		}
		page, err := f.db.Exports(ctx, f.org, store.ExportQuery{})
		if err != nil || len(page.Exports) != 0 {
			t.Errorf("day 91: history %+v, %v", page.Exports, err)
		}
	})
}

// The table of awkward cells, exported as account names through the
// whole path (Postgres, lib/pq, the CSV writer, the ZIP), reads back as
// the cell test expects; a NULL is an empty field.
func TestDataCellsFollowTheHeaderRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "cells")
	ids := map[string]string{}
	i := 0
	for in := range export.CellCases {
		i++
		id := fmt.Sprintf("cell-%02d", i)
		ids[id] = in
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (org_id, external_id, name) VALUES ($1, $2, $3)`, org.ID, id, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (org_id, external_id, name, industry) VALUES ($1, 'cell-null', 'x', NULL)`, org.ID); err != nil {
		t.Fatal(err)
	}
	seg, err := db.CreateSegment(ctx, org.ID, store.SegmentInput{Name: "Cells", Criteria: &criteria.Criteria{Conditions: []criteria.Condition{}}}, day0)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{db: db, org: org.ID, seg: seg}
	b := openBucket(t, "file://"+t.TempDir())
	if _, err := f.run(t, f.exporter(b, fixed(day0)), "job-cells", jobs.ExportFields{Names: []string{"id", "name", "industry"}}, false); err != nil {
		t.Fatal(err)
	}
	_, _, body := readExport(t, f, b, "job-cells")
	recs := parseCSV(t, body)
	if len(recs) != len(ids)+2 {
		t.Fatalf("%d records for %d accounts", len(recs)-1, len(ids)+1)
	}
	// No cell holds CRLF, so every CRLF ends a record, and every record
	// ends with one.
	if n := bytes.Count(body, []byte("\r\n")); n != len(recs) {
		t.Errorf("%d CRLFs for %d records", n, len(recs))
	}
	for _, r := range recs[1:] {
		if r[0] == "cell-null" {
			if r[2] != "" {
				t.Errorf("NULL industry written as %q", r[2])
			}
			continue
		}
		in := ids[r[0]]
		if want := export.CellCases[in]; r[1] != want {
			t.Errorf("%q: exported as %q, the header rule writes %q", in, r[1], want)
		}
	}
}

// failingWriter takes n bytes, then fails.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// cancelWriter cancels its context at the first write.
type cancelWriter context.CancelFunc

func (w cancelWriter) Write(p []byte) (int, error) {
	w()
	return len(p), nil
}

// The COPY runs on kept connections: one that failed half way (its
// writer failed, its context was cancelled) is not handed to the next
// export, which reads every row, and none is held after its export.
func TestAFailedCopyDoesNotSpoilTheNext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 3000)
	cat, err := f.db.ExportCatalog(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := cat.Select([]string{"id", "name", "attributes.tier"})
	if err != nil {
		t.Fatal(err)
	}
	whole := func() {
		t.Helper()
		var out bytes.Buffer
		n, err := f.db.ExportCSV(ctx, f.org, f.seg.ID, cols, &out)
		if err != nil || n != 3001 || bytes.Count(out.Bytes(), []byte("\n")) != 3001 {
			t.Fatalf("whole export after a failed one: %d rows, %d lines, %v", n, bytes.Count(out.Bytes(), []byte("\n")), err)
		}
	}
	for range 5 { // more than the connections kept
		if _, err := f.db.ExportCSV(ctx, f.org, f.seg.ID, cols, &failingWriter{n: 2000}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("writer failing: %v", err)
		}
		whole()
		cctx, cancel := context.WithCancel(ctx)
		if _, err := f.db.ExportCSV(cctx, f.org, f.seg.ID, cols, cancelWriter(cancel)); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled half way: %v", err)
		}
		whole()
	}
}
