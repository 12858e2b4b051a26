package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/export"
)

func init() {
	// The S3 client of the s3 export bucket reads credentials from the
	// environment; the in-process server takes any. Host files stay out.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
}

// exportBuckets are the two kinds of export bucket the API tests run
// against: a local directory, and an in-process server speaking S3.
var exportBuckets = map[string]func(t *testing.T) string{
	"file": func(t *testing.T) string { return "file://" + t.TempDir() + "?no_tmp_dir=true" },
	"s3": func(t *testing.T) string {
		backend := s3mem.New()
		srv := httptest.NewServer(gofakes3.New(backend).Server())
		t.Cleanup(srv.Close)
		if err := backend.CreateBucket("exports"); err != nil {
			t.Fatal(err)
		}
		return "s3://exports?endpoint=" + url.QueryEscape(srv.URL) + "&region=us-east-1&use_path_style=true" +
			"&request_checksum_calculation=when_required&response_checksum_validation=when_required"
	},
}

// clock is a time the test moves; the API and the worker share it.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) now() time.Time  { return *c.t.Load() }
func (c *clock) set(t time.Time) { c.t.Store(&t) }

type exportEnv struct {
	*apiEnv
	clock  *clock
	bucket *blob.Bucket
	seg    int64
}

// newExportEnv serves the API with an export bucket, runs a worker with
// the export handlers and stores 250 accounts, 249 of them in the
// segment "Key accounts (EU)".
func newExportEnv(t *testing.T, bucketURL string) *exportEnv {
	t.Helper()
	ctx := context.Background()
	e := newAPI(t)
	c := &clock{}
	c.set(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC))
	b, err := export.OpenBucket(ctx, bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.s.exports, e.s.now = b, c.now
	e.rebuild(t)

	srv := asynq.NewServer(e.opt, asynq.Config{
		Concurrency: 2, Queues: map[string]int{"default": 1, "low": 1},
		TaskCheckInterval: 10 * time.Millisecond, Logger: nopLogger{},
	})
	mux, err := workers.NewMux([]workers.Registration{
		workers.Register(jobs.ExportSegmentSpec, e.db, export.Exporter{Store: e.db, Bucket: b, Now: c.now, Log: quiet}),
		workers.Register(jobs.ExportsExpireSpec, e.db, export.Expirer{Store: e.db, Bucket: b, Now: c.now}),
	}, workers.JobState(e.db, quiet, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	_, err = e.db.ExecContext(ctx, `
		INSERT INTO accounts (org_id, external_id, name, industry, annual_revenue, attributes)
		SELECT $1, 'acc-' || lpad(i::text, 4, '0'), CASE WHEN i = 7 THEN '@SUM(A1:A9)' ELSE 'Account ' || i END,
		       CASE WHEN i = 250 THEN 'Retail' ELSE 'Tech' END, i, jsonb_build_object('tier', 'gold')
		FROM generate_series(1, 250) i`, e.orgA.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cr criteria.Criteria
	if err := json.Unmarshal([]byte(`{"conditions": [{"field": "industry", "op": "equals", "value": "Tech"}]}`), &cr); err != nil {
		t.Fatal(err)
	}
	seg, err := e.db.CreateSegment(ctx, e.orgA.ID, store.SegmentInput{Name: "Key accounts (EU)", Criteria: &cr}, c.now())
	if err != nil {
		t.Fatal(err)
	}
	return &exportEnv{apiEnv: e, clock: c, bucket: b, seg: seg.ID}
}

// exportSegment posts an export and waits until it is ready.
func (e *exportEnv) exportSegment(t *testing.T, body string) store.Export {
	t.Helper()
	r := e.do(t, "POST", fmt.Sprintf("/v1/segments/%d/exports", e.seg), e.keyA, body, "X-User-ID", "user-1")
	if r.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("export: %d %s", r.StatusCode, b)
	}
	acc := decode[exportAccepted](t, r)
	if acc.ExportID == 0 || acc.JobID == "" || acc.ExportURL != fmt.Sprintf("/v1/exports/%d", acc.ExportID) {
		t.Fatalf("202 body %+v", acc)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ex := decode[store.Export](t, e.do(t, "GET", acc.ExportURL, e.keyA, ""))
		switch {
		case ex.Status == store.ExportReady:
			return ex
		case ex.Status == store.ExportFailed || time.Now().After(deadline):
			t.Fatalf("export %+v", ex)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readZIPCSV(t *testing.T, raw []byte) [][]string {
	t.Helper()
	_, recs, err := export.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// An export through the API: bad field lists are 400 naming the problem,
// the job makes a ready export whose download is the ZIP under a safe
// name, a pre-signed URL works where the bucket signs (S3) and is a clear
// 501 where it cannot (a local directory); on day 15 the download is 410.
func TestExportThroughTheAPI(t *testing.T) {
	t.Parallel()
	for name, bucketURL := range exportBuckets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newExportEnv(t, bucketURL(t))
			path := fmt.Sprintf("/v1/segments/%d/exports", e.seg)

			many := make([]string, 201)
			for i := range many {
				many[i] = "name"
			}
			b, _ := json.Marshal(map[string]any{"fields": many})
			wantProblem(t, e.do(t, "POST", path, e.keyA, string(b)), 400, "validation")
			p := wantProblem(t, e.do(t, "POST", path, e.keyA, `{"fields": ["name", "no_such_field"]}`), 400, "validation")
			if !strings.Contains(p.Errors["fields[1]"], "no_such_field") {
				t.Errorf("unknown field problem %+v", p)
			}
			wantProblem(t, e.do(t, "POST", path, e.keyA, `{}`), 400, "validation")
			wantProblem(t, e.do(t, "POST", path, e.keyA, `{"fields": "some"}`), 400, "malformed-json")
			wantProblem(t, e.do(t, "POST", "/v1/segments/999999/exports", e.keyA, `{"fields": "all"}`), 404, "not-found")
			wantProblem(t, e.do(t, "POST", path, e.keyB, `{"fields": "all"}`), 404, "not-found")

			ex := e.exportSegment(t, `{"fields": ["id", "name", "attributes.tier"], "excel": false}`)
			if *ex.RowCount != 249 || ex.UserID == nil || *ex.UserID != "user-1" || string(ex.Fields) != `["id","name","attributes.tier"]` {
				t.Fatalf("export %+v", ex)
			}
			dl := fmt.Sprintf("/v1/exports/%d/download", ex.ID)
			r := e.do(t, "GET", dl, e.keyA, "")
			if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/zip" {
				t.Fatalf("download: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
			}
			if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename=Key-accounts-EU-2026-04-01.zip` {
				t.Errorf("Content-Disposition %q", cd)
			}
			raw, _ := io.ReadAll(r.Body)
			recs := readZIPCSV(t, raw)
			if len(recs) != 250 || strings.Join(recs[0], "|") != "Account ID|Account Name|tier" || recs[7][1] != "'@SUM(A1:A9)" {
				t.Errorf("CSV: %d records, header %q, acc-0007 %q", len(recs), recs[0], recs[7])
			}
			wantProblem(t, e.do(t, "GET", dl, e.keyB, ""), 404, "not-found")

			r = e.do(t, "GET", fmt.Sprintf("/v1/exports/%d/url", ex.ID), e.keyA, "")
			if name == "file" {
				wantProblem(t, r, 501, "signed-url-unsupported")
			} else {
				u := decode[exportURL](t, r)
				if !u.ExpiresAt.Equal(e.clock.now().Add(15 * time.Minute)) {
					t.Errorf("signed URL expires %v", u.ExpiresAt)
				}
				resp, err := http.Get(u.URL)
				if err != nil {
					t.Fatal(err)
				}
				signed, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Equal(signed, raw) {
					t.Errorf("signed URL: %d, %d bytes", resp.StatusCode, len(signed))
				}
			}

			// Day 14 minus a second: still there. Day 15: gone, before and
			// after exports:expire removed the file.
			e.clock.set(ex.ReadyAt.Add(14*24*time.Hour - time.Second))
			if r := e.do(t, "GET", dl, e.keyA, ""); r.StatusCode != 200 {
				t.Errorf("day 14: %d", r.StatusCode)
			}
			e.clock.set(ex.ReadyAt.Add(15 * 24 * time.Hour))
			wantProblem(t, e.do(t, "GET", dl, e.keyA, ""), 410, "export-gone")
			if got := decode[store.Export](t, e.do(t, "GET", fmt.Sprintf("/v1/exports/%d", ex.ID), e.keyA, "")); got.Status != store.ExportExpired {
				t.Errorf("day 15 status %s", got.Status)
			}
			wantProblem(t, e.do(t, "GET", fmt.Sprintf("/v1/exports/%d/url", ex.ID), e.keyA, ""), 410, "export-gone")
		})
	}
}

// Deleting a segment makes its exports invalid: the download is 410 and
// the file is removed (the delete enqueues exports:expire).
func TestDeletingASegmentInvalidatesItsExports(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t, exportBuckets["file"](t))
	ex := e.exportSegment(t, `{"fields": "all"}`)
	if r := e.do(t, "DELETE", fmt.Sprintf("/v1/segments/%d", e.seg), e.keyA, ""); r.StatusCode != 204 {
		t.Fatalf("delete segment: %d", r.StatusCode)
	}
	wantProblem(t, e.do(t, "GET", fmt.Sprintf("/v1/exports/%d/download", ex.ID), e.keyA, ""), 410, "export-gone")
	got := decode[store.Export](t, e.do(t, "GET", fmt.Sprintf("/v1/exports/%d", ex.ID), e.keyA, ""))
	if got.Status != store.ExportInvalid {
		t.Errorf("status %s, want invalid", got.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := e.bucket.Exists(context.Background(), export.FileKey(e.orgA.ID, ex.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted segment's export file is still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The history: newest first by default, oldest first on request, by
// segment, by time, in pages.
func TestExportHistory(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t, exportBuckets["file"](t))
	start := e.clock.now()
	var ids []int64
	for i := range 3 {
		e.clock.set(start.Add(time.Duration(i) * time.Hour))
		ids = append(ids, e.exportSegment(t, `{"fields": ["id"]}`).ID)
	}
	list := func(q string) store.ExportPage {
		t.Helper()
		r := e.do(t, "GET", "/v1/exports"+q, e.keyA, "")
		if r.StatusCode != 200 {
			b, _ := io.ReadAll(r.Body)
			t.Fatalf("%s: %d %s", q, r.StatusCode, b)
		}
		return decode[store.ExportPage](t, r)
	}
	order := func(p store.ExportPage) []int64 {
		var out []int64
		for _, x := range p.Exports {
			out = append(out, x.ID)
		}
		return out
	}
	if got := order(list("")); fmt.Sprint(got) != fmt.Sprint([]int64{ids[2], ids[1], ids[0]}) {
		t.Errorf("default order %v", got)
	}
	if got := order(list("?sort=created_at")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("oldest first %v", got)
	}
	p1 := list("?sort=created_at&limit=2")
	p2 := list("?sort=created_at&limit=2&cursor=" + p1.NextCursor)
	if fmt.Sprint(order(p1), order(p2)) != fmt.Sprint(ids[:2], ids[2:]) || p2.NextCursor != "" {
		t.Errorf("pages %v %v", order(p1), order(p2))
	}
	from := url.QueryEscape(start.Add(30 * time.Minute).Format(time.RFC3339))
	to := url.QueryEscape(start.Add(90 * time.Minute).Format(time.RFC3339))
	if got := order(list("?from=" + from + "&to=" + to)); fmt.Sprint(got) != fmt.Sprint(ids[1:2]) {
		t.Errorf("from/to %v", got)
	}
	if got := list(fmt.Sprintf("?segment_id=%d", e.seg+1)); len(got.Exports) != 0 {
		t.Errorf("another segment's history %v", order(got))
	}
	h := list(fmt.Sprintf("?segment_id=%d&limit=1", e.seg)).Exports[0]
	if h.SegmentName != "Key accounts (EU)" || *h.RowCount != 249 || h.Status != store.ExportReady ||
		!h.HistoryUntil.Equal(h.CreatedAt.Add(90*24*time.Hour)) || *h.SizeBytes <= 0 {
		t.Errorf("history row %+v", h)
	}
	for _, q := range []string{"?sort=name", "?from=yesterday", "?limit=0", "?segment_id=x", "?cursor=nope"} {
		wantProblem(t, e.do(t, "GET", "/v1/exports"+q, e.keyA, ""), 400, "validation")
	}
	if got := decode[store.ExportPage](t, e.do(t, "GET", "/v1/exports", e.keyB, "")); len(got.Exports) != 0 {
		t.Errorf("another org sees %d exports", len(got.Exports))
	}
}
