package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// A worker killed with SIGKILL in the middle of a large export: the export
// is not ready and no file is published while it is dead; asynq gives the
// task back (1-2 minutes), another worker writes the file again, and the
// job ends with one complete file: the ZIP opens and holds every member.
func TestKilledWorkerExportEndsWithOneCompleteFile(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery (about 2 minutes)")
	}
	t.Parallel()
	const members = 400_000
	dir := t.TempDir()
	s := newSystem(t, "CRMQ_EXPORT_BUCKET=file://"+dir)
	s.startAPI()
	key := s.newOrg("export-crash")
	ctx := context.Background()
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO accounts (org_id, external_id, name, industry, website, attributes)
		SELECT o.id, 'acc-' || g, 'Account ' || g, 'Software', 'https://a' || g || '.example', jsonb_build_object('tier', g % 7)
		FROM generate_series(1, $1::int) g, (SELECT id FROM orgs WHERE name = 'export-crash') o`, members)
	if err != nil {
		t.Fatal(err)
	}
	var seg store.Segment
	if r := s.call("POST", "/v1/segments", key, map[string]any{"name": "Everyone", "criteria": map[string]any{"conditions": []any{}}}, &seg); r.StatusCode != 201 || seg.MemberCount != members {
		t.Fatalf("segment: %d %+v", r.StatusCode, seg)
	}

	w := s.start("worker")
	var acc struct {
		JobID    string `json:"job_id"`
		ExportID int64  `json:"export_id"`
	}
	if r := s.call("POST", fmt.Sprintf("/v1/segments/%d/exports", seg.ID), key, map[string]any{"fields": "all"}, &acc, "X-User-ID", "user-1"); r.StatusCode != 202 {
		t.Fatalf("export: %d", r.StatusCode)
	}
	// Kill it once it has written part of the rows.
	var j store.Job
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.call("GET", "/v1/jobs/"+acc.JobID, key, nil, &j)
		if j.State == store.JobRunning && j.Progress >= 10 {
			break
		}
		if j.State == store.JobSucceeded || time.Now().After(deadline) {
			t.Fatalf("could not catch the export mid-way: %+v", j)
		}
	}
	_ = w.Cmd.Process.Signal(syscall.SIGKILL)
	<-w.Done
	t.Logf("worker killed at %d%%", j.Progress)
	killed := time.Now()

	exportPath := fmt.Sprintf("/v1/exports/%d", acc.ExportID)
	var ex store.Export
	s.call("GET", exportPath, key, nil, &ex)
	if ex.Status == store.ExportReady {
		t.Fatalf("export ready after its worker died mid-way: %+v", ex)
	}
	if r := s.call("GET", exportPath+"/download", key, nil, nil); r.StatusCode != http.StatusConflict {
		t.Errorf("download of an unfinished export: %d, want 409", r.StatusCode)
	}
	if files := bucketFiles(t, dir); len(files) != 0 {
		t.Errorf("a file was published by the killed worker: %v", files)
	}

	s.start("worker")
	j = s.waitJob(key, acc.JobID, 4*time.Minute, store.JobSucceeded, store.JobFailed)
	if j.State != store.JobSucceeded || j.Attempts != 2 {
		t.Fatalf("after the crash: %+v, want succeeded on attempt 2", j)
	}
	final := time.Since(killed)
	s.call("GET", exportPath, key, nil, &ex)
	if ex.Status != store.ExportReady || ex.RowCount == nil || *ex.RowCount != members {
		t.Fatalf("export %+v", ex)
	}
	r := s.call("GET", exportPath+"/download", key, nil, nil)
	raw, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || int64(len(raw)) != *ex.SizeBytes {
		t.Fatalf("download: %d, %d bytes, export says %d", r.StatusCode, len(raw), *ex.SizeBytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil || len(zr.File) != 1 {
		t.Fatalf("zip: %v", err)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		lines++
	}
	if err := sc.Err(); err != nil { // includes the entry's CRC check
		t.Fatal(err)
	}
	rc.Close()
	if lines != members+1 {
		t.Errorf("the CSV has %d lines, want %d and a header", lines, members)
	}
	files := bucketFiles(t, dir)
	if len(files) != 1 || !strings.HasSuffix(files[0], fmt.Sprintf("/%d.zip", acc.ExportID)) {
		t.Errorf("bucket holds %v, want one complete file", files)
	}
	t.Logf("export, worker SIGKILL: accepted 1, succeeded 1 on attempt %d, lost 0, %d file(s) in the bucket, %d CSV lines for %d members; final %.1f s after the kill",
		j.Attempts, len(files), lines, members, final.Seconds())
}

// bucketFiles lists a local-directory bucket's files, without the
// attribute side files.
func bucketFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".attrs") {
			return err
		}
		out = append(out, strings.TrimPrefix(p, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
