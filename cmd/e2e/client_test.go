package e2e

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
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmq/crmq/client"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// An app uses the Go client against the running processes: it enqueues a
// ping and a summary, waits for each on the event stream, waits again
// through a proxy that cuts event streams (the client falls back to
// polling), and reads typed errors for bad input and unknown jobs.
func TestGoClientAgainstTheStack(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.startAPI()
	s.start("worker")
	key := s.newOrg("go-client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.client(key)

	a, err := c.Ping(ctx, "default", client.IdempotencyKey("ping-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Ping(ctx, "default", client.IdempotencyKey("ping-1"))
	if err != nil || again.JobID != a.JobID {
		t.Fatalf("the same idempotency key gave job %q (%v), want %q", again.JobID, err, a.JobID)
	}
	j, err := c.WaitJob(ctx, a.JobID)
	if err != nil || j.State != client.StateSucceeded || j.Type != "system:ping" || len(j.Result) == 0 {
		t.Fatalf("ping: %+v %v", j, err)
	}

	// A proxy in front of the API that answers 502 to event streams.
	api, _ := url.Parse(s.apiURL)
	var streams, polls atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(api)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			streams.Add(1)
			http.Error(w, "streams are not proxied", http.StatusBadGateway)
			return
		}
		if r.Method == "GET" {
			polls.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	viaProxy := client.New(proxy.URL, key, client.WithPollInterval(50*time.Millisecond))
	b, err := viaProxy.Ping(ctx, "low")
	if err != nil {
		t.Fatal(err)
	}
	j, err = viaProxy.WaitJob(ctx, b.JobID)
	if err != nil || j.State != client.StateSucceeded || streams.Load() != 1 || polls.Load() == 0 {
		t.Fatalf("through the proxy: %+v %v (%d streams, %d polls)", j, err, streams.Load(), polls.Load())
	}

	// The summary family: a record, its summary, the summary read back.
	s.call("PUT", "/v1/modules/accounts/records", key, []map[string]any{{"external_id": "acc-1", "name": "Acme", "industry": "Logistics"}}, nil)
	s.call("PUT", "/v1/modules/contacts/records", key, []map[string]any{{"external_id": "c-1", "first_name": "Ada", "last_name": "Stone", "account": "acc-1"}}, nil)
	sa, err := c.Summarize(ctx, client.SummaryRequest{Module: "accounts", RecordID: "acc-1"}, client.User("user-1"))
	if err != nil || !sa.Counted || sa.Usage.Used != 1 {
		t.Fatalf("summarize: %+v %v", sa, err)
	}
	if j, err = c.WaitJob(ctx, sa.JobID); err != nil || j.State != client.StateSucceeded {
		t.Fatalf("summary job: %+v %v", j, err)
	}

	// Typed errors.
	_, err = c.Summarize(ctx, client.SummaryRequest{Module: "nonsense", RecordID: "x"}, client.User("user-1"))
	var p *client.Problem
	if !errors.As(err, &p) || !errors.Is(err, client.ErrInvalid) || p.Errors["module"] == "" {
		t.Fatalf("bad module: %#v", err)
	}
	if _, err := c.WaitJob(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an unknown job: %v", err)
	}
	if _, err := client.New(s.apiURL, "not-a-key").Ping(ctx, ""); !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong key: %v", err)
	}
}

// An app uses the rest of the Go client against the running processes:
// it cancels a job, recomputes orphans, enriches an account from a site
// served on loopback and reads the enrichment, exports a segment, reads
// the export, downloads its ZIP, and gets typed errors for a finished
// job, unknown ids and the export of a deleted segment.
func TestGoClientCancelsOrphansEnrichesAndExports(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(sites.Handler("pressly"))
	t.Cleanup(site.Close)
	s := newSystem(t, "CRMQ_EXPORT_BUCKET=file://"+t.TempDir())
	s.startAPI()
	s.start("worker", "CRMQ_ENRICH_ALLOW_HOSTS=127.0.0.1/32", "CRMQ_ENRICH_HOST_DELAY=10ms")
	key := s.newOrg("go-client-families")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.client(key)
	var p *client.Problem

	// Cancel a ping that holds its worker slot for 20 s.
	held, err := c.Enqueue(ctx, client.Task{Type: "system:ping", Queue: "low", HoldMS: 20000})
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Cancel(ctx, held.JobID)
	if err != nil || j.ID != held.JobID || j.State != client.StateCancelled || j.FinishedAt == nil {
		t.Fatalf("cancel: %+v %v", j, err)
	}
	if j, err = c.WaitJob(ctx, held.JobID); err != nil || j.State != client.StateCancelled {
		t.Fatalf("the cancelled job: %+v %v", j, err)
	}
	if _, err := c.Cancel(ctx, held.JobID); !errors.As(err, &p) || !errors.Is(err, client.ErrConflict) || p.Slug() != "job-final" {
		t.Fatalf("cancel of a cancelled job: %#v", err)
	}
	if _, err := c.Cancel(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}

	// Records: two accounts with the fixture site, a contact, a lead.
	s.call("PUT", "/v1/modules/accounts/records", key, []map[string]any{
		{"external_id": "p1", "name": "Pressly", "website": site.URL},
		{"external_id": "p2", "name": "Pressly Two", "website": site.URL, "industry": "Design"},
	}, nil)
	s.call("PUT", "/v1/modules/contacts/records", key, []map[string]any{{"external_id": "c-1", "first_name": "Ada", "last_name": "Stone", "account": "p1"}}, nil)
	s.call("PUT", "/v1/modules/leads/records", key, []map[string]any{{"external_id": "l-1", "first_name": "Bo", "last_name": "Lane"}}, nil)

	// Orphans.
	a, err := c.RecomputeOrphans(ctx)
	if err != nil || a.JobID == "" || a.StatusURL == "" {
		t.Fatalf("recompute orphans: %+v %v", a, err)
	}
	j, err = c.WaitJob(ctx, a.JobID)
	var orphans jobs.OrphansResult
	if err != nil || j.State != client.StateSucceeded || j.Type != "orphans:recompute" || j.Queue != "low" || json.Unmarshal(j.Result, &orphans) != nil {
		t.Fatalf("orphans:recompute: %+v %v", j, err)
	}
	records := map[string]int{}
	for _, m := range orphans.Modules {
		records[m.Module] = m.Records
	}
	if records["contacts"] != 1 || records["leads"] != 1 {
		t.Fatalf("orphans:recompute looked at %v, want a contact and a lead", records)
	}

	// One account enriched, its enrichment read back.
	ea, err := c.Enrich(ctx, "p1", client.IdempotencyKey("enrich-p1"))
	if err != nil || ea.EnrichmentID == "" || ea.Records != 1 {
		t.Fatalf("enrich: %+v %v", ea, err)
	}
	if j, err = c.WaitJob(ctx, ea.JobID); err != nil || j.State != client.StateSucceeded || j.Type != "enrich:record" {
		t.Fatalf("enrich:record: %+v %v", j, err)
	}
	raw, err := c.Enrichment(ctx, ea.EnrichmentID)
	var e store.Enrichment
	if err != nil || json.Unmarshal(raw, &e) != nil || e.Account != "p1" || e.State != "succeeded" || e.Mode != "single" {
		t.Fatalf("enrichment: %s %v", raw, err)
	}
	found := false
	for _, pr := range e.Proposals {
		found = found || (pr.Field == "technologies" && pr.Found)
	}
	if !found {
		t.Fatalf("the enrichment found no technologies on the site: %s", raw)
	}
	if _, err := c.Enrichment(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an unknown enrichment: %v", err)
	}

	// A segment of both accounts, exported, read, downloaded.
	var seg store.Segment
	if r := s.call("POST", "/v1/segments", key, map[string]any{"name": "Everyone", "criteria": map[string]any{"conditions": []any{}}}, &seg); r.StatusCode != 201 || seg.MemberCount != 2 {
		t.Fatalf("segment: %d %+v", r.StatusCode, seg)
	}
	xa, err := c.ExportSegment(ctx, seg.ID, client.ExportRequest{Fields: []string{"id", "name"}}, client.User("user-1"))
	if err != nil || xa.ExportID == 0 || xa.ExportURL == "" {
		t.Fatalf("export: %+v %v", xa, err)
	}
	if j, err = c.WaitJob(ctx, xa.JobID); err != nil || j.State != client.StateSucceeded {
		t.Fatalf("export:segment: %+v %v", j, err)
	}
	x, err := c.Export(ctx, xa.ExportID)
	if err != nil || x.ID != xa.ExportID || x.SegmentID != seg.ID || x.SegmentName != "Everyone" || x.JobID != xa.JobID ||
		x.Status != "ready" || x.RowCount == nil || *x.RowCount != 2 || x.SizeBytes == nil || x.SHA256 == nil || x.ReadyAt == nil || x.DownloadUntil == nil {
		t.Fatalf("export row: %+v %v", x, err)
	}
	rc, err := c.Download(ctx, xa.ExportID)
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := io.ReadAll(rc)
	rc.Close()
	if sum := sha256.Sum256(zipped); err != nil || int64(len(zipped)) != *x.SizeBytes || hex.EncodeToString(sum[:]) != *x.SHA256 {
		t.Fatalf("download: %d bytes (%v), the export says %d bytes, sha256 %s", len(zipped), err, *x.SizeBytes, *x.SHA256)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil || len(zr.File) != 1 {
		t.Fatalf("zip: %v", err)
	}
	f, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != "Account ID,Account Name" ||
		strings.Join(rows[1], ",") != "p1,Pressly" || strings.Join(rows[2], ",") != "p2,Pressly Two" {
		t.Fatalf("the CSV: %q %v", rows, err)
	}
	if _, err := c.Export(ctx, xa.ExportID+1000); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an unknown export: %v", err)
	}

	// The segment deleted, its export can no longer be downloaded.
	if r := s.call("DELETE", fmt.Sprintf("/v1/segments/%d", seg.ID), key, nil, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete segment: %d", r.StatusCode)
	}
	if _, err := c.Download(ctx, xa.ExportID); !errors.As(err, &p) || !errors.Is(err, client.ErrGone) || p.Slug() != "export-gone" {
		t.Fatalf("download of a deleted segment's export: %#v", err)
	}
	if x, err := c.Export(ctx, xa.ExportID); err != nil || x.Status != "invalid" {
		t.Fatalf("the deleted segment's export: %+v %v", x, err)
	}
}
