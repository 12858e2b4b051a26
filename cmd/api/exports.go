package main

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gocloud.dev/blob"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/export"
)

// signedURLFor is the longest a pre-signed download URL lives (never past
// the export's own download window).
const signedURLFor = 15 * time.Minute

type exportRequest struct {
	Fields *jobs.ExportFields `json:"fields"`
	Excel  bool               `json:"excel"`
}

// exportAccepted is the 202 of POST /v1/segments/{id}/exports.
type exportAccepted struct {
	accepted
	ExportID  int64  `json:"export_id"`
	ExportURL string `json:"export_url"`
}

// createExport admits an export of a segment (jobs.AdmitExport) and
// answers 202 with the job and the export.
func (s *server) createExport(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var body exportRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.Fields == nil {
		s.fail(w, r, jobs.FieldErrors{"fields": `required: "all", or a list of 1 to 200 field names`})
		return
	}
	ctx := r.Context()
	adm, err := s.enq.AdmitExport(ctx, jobs.ExportRequest{
		ExportSegmentPayload: jobs.ExportSegmentPayload{OrgID: orgFrom(ctx).ID, SegmentID: id, UserID: userID(r), Fields: *body.Fields, Excel: body.Excel},
		IdempotencyKey:       r.Header.Get("Idempotency-Key"),
		Now:                  s.now(),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := "/v1/exports/" + strconv.FormatInt(adm.Export.ID, 10)
	writeJSON(w, http.StatusAccepted, exportAccepted{accepted: acceptedHeaders(w, adm.Job, adm.Replayed), ExportID: adm.Export.ID, ExportURL: u})
}

// exportView is an export as of now: a ready export past its download
// window reads expired even before exports:expire removed its file.
func exportView(e store.Export, now time.Time) store.Export {
	if e.Status == store.ExportReady && !e.Downloadable(now) {
		e.Status = store.ExportExpired
	}
	return e
}

// listExports is the export history.
func (s *server) listExports(w http.ResponseWriter, r *http.Request) {
	q, err := exportQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.db.Exports(r.Context(), orgFrom(r.Context()).ID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	for i := range page.Exports {
		page.Exports[i] = exportView(page.Exports[i], now)
	}
	writeJSON(w, http.StatusOK, page)
}

func exportQuery(r *http.Request) (store.ExportQuery, error) {
	v := r.URL.Query()
	fe := jobs.FieldErrors{}
	q := store.ExportQuery{Desc: true, Cursor: v.Get("cursor")}
	if s := v.Get("segment_id"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			fe["segment_id"] = "a segment id"
		}
		q.SegmentID = id
	}
	for _, k := range []string{"from", "to"} {
		s := v.Get(k)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			fe[k] = "an RFC 3339 time or a YYYY-MM-DD date (UTC)"
			continue
		}
		if k == "from" {
			q.From = &t
		} else {
			q.To = &t
		}
	}
	switch v.Get("sort") {
	case "", "-created_at":
	case "created_at":
		q.Desc = false
	default:
		fe["sort"] = "created_at (oldest first) or -created_at (newest first, the default)"
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageSize {
			fe["limit"] = fmt.Sprintf("an integer from 1 to %d", store.MaxPageSize)
		}
		q.Limit = n
	}
	if len(fe) > 0 {
		return q, fe
	}
	return q, nil
}

// exportOf reads the export {id} of the caller's org.
func (s *server) exportOf(r *http.Request) (store.Export, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return store.Export{}, fmt.Errorf("export %q: %w", r.PathValue("id"), store.ErrNotFound)
	}
	e, err := s.db.Export(r.Context(), orgFrom(r.Context()).ID, id)
	if err != nil {
		return store.Export{}, err
	}
	return exportView(e, s.now()), nil
}

func (s *server) getExport(w http.ResponseWriter, r *http.Request) {
	e, err := s.exportOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// downloadable returns the export if its file may be downloaded now:
// ErrExportGone past its two weeks or when its segment was deleted,
// ErrExportNotReady while it is queued or running, or when it failed.
func (s *server) downloadable(r *http.Request) (store.Export, error) {
	e, err := s.exportOf(r)
	if err != nil {
		return e, err
	}
	switch {
	case e.Status == store.ExportExpired:
		return e, fmt.Errorf("export %d could be downloaded for two weeks, until %s: %w", e.ID, e.DownloadUntil.Format(time.RFC3339), store.ErrExportGone)
	case e.Status == store.ExportInvalid:
		return e, fmt.Errorf("export %d is invalid: its segment was deleted: %w", e.ID, store.ErrExportGone)
	case e.Status != store.ExportReady:
		return e, fmt.Errorf("export %d is %s: %w", e.ID, e.Status, store.ErrExportNotReady)
	case s.exports == nil:
		return e, errors.New("no export bucket configured")
	}
	return e, nil
}

// contentDisposition names the download: the segment's name and the day
// the file was made, reduced to a safe ASCII file name.
func contentDisposition(e store.Export) string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": export.SafeName(e.SegmentName, *e.ReadyAt) + ".zip"})
}

// downloadExport streams the export's ZIP.
func (s *server) downloadExport(w http.ResponseWriter, r *http.Request) {
	e, err := s.downloadable(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.exports.NewReader(r.Context(), *e.FileKey, nil)
	if export.IsNotFound(err) { // removed by exports:expire a moment ago
		s.fail(w, r, fmt.Errorf("export %d: its file was removed: %w", e.ID, store.ErrExportGone))
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("open export file: %w", err))
		return
	}
	defer rd.Close()
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	h.Set("Content-Disposition", contentDisposition(e))
	if e.SHA256 != nil {
		h.Set("ETag", `"`+*e.SHA256+`"`)
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rd); err != nil {
		s.log.WarnContext(r.Context(), "export download cut short", "export_id", e.ID, "err", err)
	}
}

// exportURL is the answer of GET /v1/exports/{id}/url.
type exportURL struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// signExport answers a pre-signed URL of the export's file, where the
// bucket can sign one (S3); a local-directory bucket cannot, and says so
// with 501: /download serves the file instead.
func (s *server) signExport(w http.ResponseWriter, r *http.Request) {
	e, err := s.downloadable(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	ttl := min(signedURLFor, e.DownloadUntil.Sub(now))
	u, err := s.exports.SignedURL(r.Context(), *e.FileKey, &blob.SignedURLOptions{Expiry: ttl})
	if export.IsUnimplemented(err) {
		writeProblem(w, r, http.StatusNotImplemented, "signed-url-unsupported",
			"the export bucket (a local directory) cannot sign URLs; download the file from "+
				"/v1/exports/"+strconv.FormatInt(e.ID, 10)+"/download instead", nil)
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("sign export URL: %w", err))
		return
	}
	if _, perr := url.Parse(u); perr != nil {
		s.fail(w, r, fmt.Errorf("signed URL: %w", perr))
		return
	}
	writeJSON(w, http.StatusOK, exportURL{URL: u, ExpiresAt: now.Add(ttl).UTC().Truncate(time.Second)})
}

// removeExportFiles enqueues exports:expire for the org after a segment
// was deleted: its exports are already invalid (410), and the task removes
// their files now rather than at the next hourly tick. If Redis refuses,
// the hourly tick does it.
func (s *server) removeExportFiles(r *http.Request, orgID int64) {
	task, err := jobs.NewExportsExpireTask(orgID)
	if err == nil {
		_, _, err = s.enq.Enqueue(r.Context(), jobs.Request{OrgID: orgID, Task: task})
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "export files of a deleted segment left for the hourly exports:expire", "org_id", orgID, "err", err)
	}
}
