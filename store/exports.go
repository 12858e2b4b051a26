package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Export statuses, as the history shows them.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportReady   = "ready"
	ExportFailed  = "failed"
	ExportExpired = "expired"
	ExportInvalid = "invalid"
)

// How long an export can be downloaded and how long its history row is
// kept (seed 004: "the export history will be available for 90 days, and
// the option to download will be there only for two weeks").
const (
	ExportDownloadFor = 14 * 24 * time.Hour
	ExportHistoryFor  = 90 * 24 * time.Hour
)

// Export is one row of the export history.
type Export struct {
	ID          int64           `json:"id"`
	SegmentID   int64           `json:"segment_id"`
	SegmentName string          `json:"segment_name"`
	JobID       string          `json:"job_id"`
	UserID      *string         `json:"user_id"`
	Fields      json.RawMessage `json:"fields"` // "all" or the names asked for
	Excel       bool            `json:"excel"`
	Status      string          `json:"status"`
	Progress    int             `json:"progress"` // of the job, 0-100
	RowCount    *int64          `json:"row_count"`
	SizeBytes   *int64          `json:"size_bytes"`
	SHA256      *string         `json:"sha256"`
	Error       *string         `json:"error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ReadyAt     *time.Time      `json:"ready_at"`
	// DownloadUntil is when the file stops being downloadable; nil until ready.
	DownloadUntil *time.Time `json:"download_until"`
	// HistoryUntil is when the row leaves the history.
	HistoryUntil time.Time `json:"history_until"`
	OrgID        int64     `json:"-"`
	FileKey      *string   `json:"-"`
}

// Downloadable tells whether the file may be downloaded at now.
func (e Export) Downloadable(now time.Time) bool {
	return e.Status == ExportReady && e.FileKey != nil && e.DownloadUntil != nil && now.Before(*e.DownloadUntil)
}

// exportColumns reads an export with the state of its job: while the
// export is not ready the job row says best whether it waits, runs or
// failed (a job the reconciler failed never reached the export row).
const exportColumns = `e.id, e.org_id, e.segment_id, e.segment_name, e.job_id, e.user_id, e.fields, e.excel,
	CASE WHEN e.status IN ('ready', 'expired', 'invalid', 'failed') THEN e.status
	     WHEN j.state IN ('failed', 'cancelled') THEN 'failed'
	     WHEN j.state = 'running' OR e.status = 'running' THEN 'running'
	     ELSE 'queued' END AS status,
	coalesce(j.progress, 0) AS progress, e.row_count, e.size_bytes, e.sha256,
	coalesce(e.error, CASE WHEN j.state IN ('failed', 'cancelled') THEN coalesce(j.error, j.state) END) AS error,
	e.created_at, e.ready_at, e.download_until, e.file_key`

const exportFrom = ` FROM exports e LEFT JOIN jobs j ON j.id = e.job_id`

type exportRow struct {
	ID            int64      `db:"id"`
	OrgID         int64      `db:"org_id"`
	SegmentID     int64      `db:"segment_id"`
	SegmentName   string     `db:"segment_name"`
	JobID         string     `db:"job_id"`
	UserID        *string    `db:"user_id"`
	Fields        []byte     `db:"fields"`
	Excel         bool       `db:"excel"`
	Status        string     `db:"status"`
	Progress      int        `db:"progress"`
	RowCount      *int64     `db:"row_count"`
	SizeBytes     *int64     `db:"size_bytes"`
	SHA256        *string    `db:"sha256"`
	Error         *string    `db:"error"`
	CreatedAt     time.Time  `db:"created_at"`
	ReadyAt       *time.Time `db:"ready_at"`
	DownloadUntil *time.Time `db:"download_until"`
	FileKey       *string    `db:"file_key"`
}

func (r exportRow) export() Export {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	e := Export{ID: r.ID, OrgID: r.OrgID, SegmentID: r.SegmentID, SegmentName: r.SegmentName, JobID: r.JobID,
		UserID: r.UserID, Fields: r.Fields, Excel: r.Excel, Status: r.Status, Progress: r.Progress,
		RowCount: r.RowCount, SizeBytes: r.SizeBytes, SHA256: r.SHA256, Error: r.Error,
		CreatedAt: r.CreatedAt.UTC(), ReadyAt: utc(r.ReadyAt), DownloadUntil: utc(r.DownloadUntil),
		HistoryUntil: r.CreatedAt.UTC().Add(ExportHistoryFor), FileKey: r.FileKey}
	if e.Status == ExportReady {
		e.Progress = 100
	}
	return e
}

// ExportRequest is an export as asked for: the job that runs it, the
// segment, the fields ("all" or a list, as JSON) and the excel option.
type ExportRequest struct {
	JobID     string
	OrgID     int64
	SegmentID int64
	UserID    string
	Fields    json.RawMessage
	Excel     bool
	Now       time.Time
}

// EnsureExport writes the export row of a job unless it exists and
// returns the row. The API writes it after the job is enqueued and the
// worker writes it too if the API did not get that far, so neither order
// leaves a row without a job. A segment that no longer exists gives an
// invalid export.
func (db *DB) EnsureExport(ctx context.Context, r ExportRequest) (Export, error) {
	var user *string
	if r.UserID != "" {
		user = &r.UserID
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO exports (org_id, segment_id, segment_name, job_id, user_id, fields, excel, status, created_at)
		SELECT $1, $2, coalesce(s.name, ''), $3, $4, $5, $6, CASE WHEN s.id IS NULL THEN 'invalid' ELSE 'queued' END, $7
		FROM (SELECT 1) one LEFT JOIN segments s ON s.org_id = $1 AND s.id = $2
		ON CONFLICT (job_id) DO NOTHING`, r.OrgID, r.SegmentID, r.JobID, user, []byte(r.Fields), r.Excel, r.Now)
	if err != nil {
		return Export{}, fmt.Errorf("export of job %s: %w", r.JobID, err)
	}
	return db.ExportByJob(ctx, r.OrgID, r.JobID)
}

// ExportByJob reads the export a job runs.
func (db *DB) ExportByJob(ctx context.Context, orgID int64, jobID string) (Export, error) {
	var r exportRow
	err := db.GetContext(ctx, &r, `SELECT `+exportColumns+exportFrom+` WHERE e.org_id = $1 AND e.job_id = $2`, orgID, jobID)
	if err != nil {
		return Export{}, notFound(err, "export of job "+jobID)
	}
	return r.export(), nil
}

// Export reads one export of the org; ErrNotFound when there is none (or
// it left the history).
func (db *DB) Export(ctx context.Context, orgID, id int64) (Export, error) {
	var r exportRow
	err := db.GetContext(ctx, &r, `SELECT `+exportColumns+exportFrom+` WHERE e.org_id = $1 AND e.id = $2`, orgID, id)
	if err != nil {
		return Export{}, notFound(err, fmt.Sprintf("export %d", id))
	}
	return r.export(), nil
}

// StartExport marks the export running for a new attempt (clearing what a
// failed one left) and returns it. An export that is ready, expired or
// invalid is returned as it is, for the worker to decide.
func (db *DB) StartExport(ctx context.Context, id int64) (Export, error) {
	_, err := db.ExecContext(ctx, `
		UPDATE exports SET status = 'running', error = NULL, files_removed = false, row_count = NULL, size_bytes = NULL, sha256 = NULL, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'running', 'failed')`, id)
	if err != nil {
		return Export{}, fmt.Errorf("start export %d: %w", id, err)
	}
	var r exportRow
	if err := db.GetContext(ctx, &r, `SELECT `+exportColumns+exportFrom+` WHERE e.id = $1`, id); err != nil {
		return Export{}, notFound(err, fmt.Sprintf("export %d", id))
	}
	return r.export(), nil
}

// ExportFile is a complete file of an export, as written.
type ExportFile struct {
	Rows   int64
	Size   int64
	SHA256 string
}

// RecordExportFile records the complete file of a running export (still
// under its temporary key): its rows, size and checksum. ErrConflict when
// the export is no longer running (its segment was deleted meanwhile).
func (db *DB) RecordExportFile(ctx context.Context, id int64, f ExportFile) error {
	res, err := db.ExecContext(ctx, `
		UPDATE exports SET row_count = $2, size_bytes = $3, sha256 = $4, updated_at = now()
		WHERE id = $1 AND status = 'running'`, id, f.Rows, f.Size, f.SHA256)
	return oneRow(res, err, id)
}

// PublishExport marks a running export ready once its file is published
// under key, downloadable until readyAt plus ExportDownloadFor.
// ErrConflict when the export is no longer running.
func (db *DB) PublishExport(ctx context.Context, id int64, key string, readyAt time.Time) error {
	res, err := db.ExecContext(ctx, `
		UPDATE exports SET status = 'ready', file_key = $2, ready_at = $3, download_until = $4, updated_at = now()
		WHERE id = $1 AND status = 'running' AND size_bytes IS NOT NULL`, id, key, readyAt, readyAt.Add(ExportDownloadFor))
	return oneRow(res, err, id)
}

// FailExport marks an export failed with a reason, unless it already ended.
func (db *DB) FailExport(ctx context.Context, id int64, reason string) error {
	_, err := db.ExecContext(ctx, `
		UPDATE exports SET status = 'failed', error = $2, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'running')`, id, reason)
	if err != nil {
		return fmt.Errorf("fail export %d: %w", id, err)
	}
	return nil
}

func oneRow(res interface{ RowsAffected() (int64, error) }, err error, id int64) error {
	if err != nil {
		return fmt.Errorf("export %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("export %d is no longer running: %w", id, ErrConflict)
	}
	return nil
}

// ExportQuery filters and orders the history.
type ExportQuery struct {
	SegmentID int64      // 0: every segment
	From, To  *time.Time // created_at in [From, To)
	Desc      bool       // newest first
	Limit     int
	Cursor    string
}

// ExportPage is one page of the history.
type ExportPage struct {
	Exports    []Export `json:"exports"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

const exportCursorPrefix = "e1:"

func encodeExportCursor(e Export) string {
	return base64.RawURLEncoding.EncodeToString([]byte(exportCursorPrefix +
		strconv.FormatInt(e.CreatedAt.UnixMicro(), 10) + ":" + strconv.FormatInt(e.ID, 10)))
}

func decodeExportCursor(c string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	rest, ok := strings.CutPrefix(string(b), exportCursorPrefix)
	if err != nil || !ok {
		return time.Time{}, 0, fmt.Errorf("cursor %q: %w", c, ErrInvalidCursor)
	}
	ts, id, ok := strings.Cut(rest, ":")
	us, err1 := strconv.ParseInt(ts, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, 0, fmt.Errorf("cursor %q: %w", c, ErrInvalidCursor)
	}
	return time.UnixMicro(us), n, nil
}

// Exports lists the org's export history, filtered and ordered by q,
// q.Limit at a time (clamped as other pages are).
func (db *DB) Exports(ctx context.Context, orgID int64, q ExportQuery) (ExportPage, error) {
	limit, _, err := pageOf(q.Limit, "")
	if err != nil {
		return ExportPage{}, err
	}
	args := []any{orgID}
	where := []string{"e.org_id = $1"}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.SegmentID != 0 {
		add("e.segment_id = ?", q.SegmentID)
	}
	if q.From != nil {
		add("e.created_at >= ?", *q.From)
	}
	if q.To != nil {
		add("e.created_at < ?", *q.To)
	}
	order, cmp := "ASC", ">"
	if q.Desc {
		order, cmp = "DESC", "<"
	}
	if q.Cursor != "" {
		at, id, err := decodeExportCursor(q.Cursor)
		if err != nil {
			return ExportPage{}, err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(e.created_at, e.id) %s ($%d, $%d)", cmp, len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	var rows []exportRow
	err = db.SelectContext(ctx, &rows, `SELECT `+exportColumns+exportFrom+` WHERE `+strings.Join(where, " AND ")+
		` ORDER BY e.created_at `+order+`, e.id `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return ExportPage{}, fmt.Errorf("exports of org %d: %w", orgID, err)
	}
	page := ExportPage{Exports: make([]Export, 0, len(rows))}
	for i, r := range rows {
		if i == limit {
			page.NextCursor = encodeExportCursor(page.Exports[i-1])
			break
		}
		page.Exports = append(page.Exports, r.export())
	}
	return page, nil
}

// ExportFileToRemove is an export whose files must go: its published key
// (if any) and its temporary key.
type ExportFileToRemove struct {
	ID      int64
	FileKey *string
}

// ExportsToClean lists, at most limit at a time, the org's exports whose
// files must be removed at now: ready ones past their download window,
// invalid and failed ones that still name a file, and every row past its
// history window. The worker removes the files, then calls
// ExportFilesRemoved.
func (db *DB) ExportsToClean(ctx context.Context, orgID int64, now time.Time, limit int) ([]ExportFileToRemove, error) {
	var rows []struct {
		ID      int64   `db:"id"`
		FileKey *string `db:"file_key"`
	}
	err := db.SelectContext(ctx, &rows, `
		SELECT id, file_key FROM exports
		WHERE org_id = $1 AND (
		      (status = 'ready' AND download_until <= $2)
		   OR (status IN ('invalid', 'failed') AND NOT files_removed)
		   OR created_at <= $3)
		ORDER BY id LIMIT $4`, orgID, now, now.Add(-ExportHistoryFor), limit)
	if err != nil {
		return nil, fmt.Errorf("exports to clean of org %d: %w", orgID, err)
	}
	out := make([]ExportFileToRemove, len(rows))
	for i, r := range rows {
		out[i] = ExportFileToRemove{ID: r.ID, FileKey: r.FileKey}
	}
	return out, nil
}

// ExportFilesRemoved records that an export's files are gone: a row past
// its history window at now is deleted, a ready one past its download
// window becomes expired, and any other forgets its file (its size and
// row count stay in the history). It returns
// whether the row was deleted.
func (db *DB) ExportFilesRemoved(ctx context.Context, orgID, id int64, now time.Time) (bool, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM exports WHERE org_id = $1 AND id = $2 AND created_at <= $3`,
		orgID, id, now.Add(-ExportHistoryFor))
	if err != nil {
		return false, fmt.Errorf("delete export %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	_, err = db.ExecContext(ctx, `
		UPDATE exports SET file_key = NULL, files_removed = true,
		       status = CASE WHEN status = 'ready' AND download_until <= $3 THEN 'expired' ELSE status END,
		       updated_at = now()
		WHERE org_id = $1 AND id = $2`, orgID, id, now)
	if err != nil {
		return false, fmt.Errorf("export %d files removed: %w", id, err)
	}
	return false, nil
}

// ErrExportGone: the export's file can no longer be downloaded (past its
// two weeks, or its segment was deleted).
var ErrExportGone = errors.New("export no longer downloadable")

// ErrExportNotReady: the export's file is not written yet (or the export
// failed).
var ErrExportNotReady = errors.New("export not ready")
