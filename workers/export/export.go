package export

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"
	kflate "github.com/klauspost/compress/flate"
	"gocloud.dev/blob"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// Tuning of the pipeline. Chunks of CSV pass from the reading goroutine to
// the compressing one; chunkCount of them exist, so memory is bounded
// whatever the segment size.
const (
	chunkSize  = 256 << 10
	chunkCount = 4
	// klauspost level 3: on the bench's million rows (122 MB of CSV) it
	// took 249 ms for 16.8 MB, level 5 407 ms for 17.7 MB, level 1 207 ms
	// for 18.5 MB (best of three each, one process, same data).
	flateLevel    = 3
	progressEvery = 50_000
	// uploadPart is the part size of a multipart upload (S3's minimum is
	// 5 MiB); two parts in flight keep the upload's memory near 10 MiB.
	uploadPart        = 5 << 20
	uploadConcurrency = 2
)

// Exporter is the export:segment task.
type Exporter struct {
	Store  *store.DB
	Bucket *blob.Bucket
	Now    func() time.Time
	Log    *slog.Logger
}

// Run implements workers.Handler: it writes the file under the export's
// temporary key, records its rows, size and checksum, copies it to the
// published key, checks the copy's size and only then marks the export
// ready. A crash at any point leaves the export not ready; the next
// attempt writes over the same keys.
func (x Exporter) Run(ctx context.Context, job workers.Job[jobs.ExportSegmentPayload]) (jobs.ExportSegmentResult, error) {
	if x.Bucket == nil {
		return jobs.ExportSegmentResult{}, errNoBucket
	}
	p := job.Payload
	fields, _ := p.Fields.MarshalJSON()
	ex, err := x.Store.EnsureExport(ctx, store.ExportRequest{
		JobID: job.ID, OrgID: p.OrgID, SegmentID: p.SegmentID, UserID: p.UserID, Fields: fields, Excel: p.Excel, Now: x.Now(),
	})
	if err != nil {
		return jobs.ExportSegmentResult{}, err
	}
	if ex, err = x.Store.StartExport(ctx, ex.ID); err != nil {
		return jobs.ExportSegmentResult{}, err
	}
	switch ex.Status {
	case store.ExportReady: // a redelivered task whose export was published
		return resultOf(ex), nil
	case store.ExportInvalid:
		return jobs.ExportSegmentResult{}, fmt.Errorf("segment %d was deleted; its exports are invalid: %w", p.SegmentID, asynq.SkipRetry)
	case store.ExportExpired:
		return jobs.ExportSegmentResult{}, fmt.Errorf("export %d has expired: %w", ex.ID, asynq.SkipRetry)
	}
	res, err := x.export(ctx, job, ex)
	if err != nil {
		if errors.Is(err, asynq.SkipRetry) || errors.Is(err, workers.ErrCancelled) {
			if ferr := x.Store.FailExport(context.WithoutCancel(ctx), ex.ID, err.Error()); ferr != nil {
				x.log().WarnContext(ctx, "export failure not recorded", "export_id", ex.ID, "err", ferr)
			}
		}
		return res, err
	}
	return res, nil
}

func (x Exporter) log() *slog.Logger {
	if x.Log == nil {
		return slog.Default()
	}
	return x.Log
}

func resultOf(ex store.Export) jobs.ExportSegmentResult {
	r := jobs.ExportSegmentResult{ExportID: ex.ID}
	if ex.RowCount != nil {
		r.Rows = *ex.RowCount
	}
	if ex.SizeBytes != nil {
		r.Size = *ex.SizeBytes
	}
	if ex.SHA256 != nil {
		r.SHA256 = *ex.SHA256
	}
	return r
}

func (x Exporter) export(ctx context.Context, job workers.Job[jobs.ExportSegmentPayload], ex store.Export) (jobs.ExportSegmentResult, error) {
	p := job.Payload
	seg, err := x.Store.Segment(ctx, p.OrgID, p.SegmentID)
	if errors.Is(err, store.ErrNotFound) {
		return jobs.ExportSegmentResult{}, fmt.Errorf("segment %d was deleted; its exports are invalid: %w", p.SegmentID, asynq.SkipRetry)
	}
	if err != nil {
		return jobs.ExportSegmentResult{}, err
	}
	cat, err := x.Store.ExportCatalog(ctx, p.OrgID)
	if err != nil {
		return jobs.ExportSegmentResult{}, err
	}
	var cols []store.ExportField
	if p.Fields.All {
		cols, err = cat.All(ctx, x.Store, p.OrgID, p.SegmentID)
	} else {
		cols, err = cat.Select(p.Fields.Names)
		if errors.Is(err, store.ErrInvalidExportFields) { // the mapping changed since the request
			err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
	}
	if err != nil {
		return jobs.ExportSegmentResult{}, err
	}

	now := x.Now().UTC()
	tmp, final := tempKey(p.OrgID, ex.ID), FileKey(p.OrgID, ex.ID)
	progress := func(rows int64) error {
		if seg.MemberCount <= 0 {
			return nil
		}
		return job.Progress(ctx, int(min(99, rows*100/int64(seg.MemberCount))))
	}
	file, err := Write(ctx, x.Bucket, tmp, Source{
		Copy: func(ctx context.Context, w io.Writer) (int64, error) {
			return x.Store.ExportCSV(ctx, p.OrgID, p.SegmentID, cols, w)
		},
		Headers:  headers(cols),
		Entry:    SafeName(seg.Name, now) + ".csv",
		Excel:    p.Excel,
		Modified: now,
		Progress: progress,
	})
	if err != nil {
		return jobs.ExportSegmentResult{}, err
	}
	res := jobs.ExportSegmentResult{ExportID: ex.ID, Rows: file.Rows, Size: file.Size, SHA256: file.SHA256, Columns: len(cols)}
	if err := x.Store.RecordExportFile(ctx, ex.ID, file); err != nil {
		return res, x.abandon(ctx, ex, err)
	}
	if err := x.publish(ctx, tmp, final, file.Size); err != nil {
		return res, err
	}
	if err := x.Store.PublishExport(ctx, ex.ID, final, x.Now()); err != nil {
		return res, x.abandon(ctx, ex, err)
	}
	if err := deleteIfThere(ctx, x.Bucket, tmp); err != nil {
		x.log().WarnContext(ctx, "temporary export file left; exports:expire removes it", "key", tmp, "err", err)
	}
	return res, nil
}

// publish copies the complete temporary file to its published key and
// checks the copy's size.
func (x Exporter) publish(ctx context.Context, tmp, final string, size int64) error {
	if err := x.Bucket.Copy(ctx, final, tmp, nil); err != nil {
		return fmt.Errorf("publish export file: %w", err)
	}
	a, err := x.Bucket.Attributes(ctx, final)
	if err != nil {
		return fmt.Errorf("published export file: %w", err)
	}
	if a.Size != size {
		return fmt.Errorf("published export file has %d bytes, %d were written", a.Size, size)
	}
	return nil
}

// abandon removes the files of an export that stopped being running
// while it was written (its segment was deleted) and fails the attempt
// for good; any other error is returned to be retried.
func (x Exporter) abandon(ctx context.Context, ex store.Export, err error) error {
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	bg := context.WithoutCancel(ctx)
	for _, k := range []string{tempKey(ex.OrgID, ex.ID), FileKey(ex.OrgID, ex.ID)} {
		if derr := deleteIfThere(bg, x.Bucket, k); derr != nil {
			x.log().WarnContext(ctx, "export file left; exports:expire removes it", "key", k, "err", derr)
		}
	}
	return fmt.Errorf("segment %d was deleted during the export; its exports are invalid: %w", ex.SegmentID, asynq.SkipRetry)
}

func headers(cols []store.ExportField) [][]byte {
	out := make([][]byte, len(cols))
	for i, c := range cols {
		out[i] = []byte(c.Header)
	}
	return out
}

// SafeName is a file name made of a segment's name and a date: letters,
// digits, '-', '_' and '.' kept, anything else a '-', at most 80
// characters, never empty.
func SafeName(segment string, at time.Time) string {
	var b strings.Builder
	dash := false
	for _, r := range segment {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.')
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 80 {
			break
		}
	}
	name := strings.Trim(b.String(), "-.")
	if name == "" {
		name = "segment"
	}
	return name + "-" + at.UTC().Format("2006-01-02")
}

// Source is what Write reads: the rows (a function writing them to w as
// Postgres's COPY ... TO STDOUT (FORMAT csv) does, without a header, and
// returning how many it wrote), the header, the ZIP entry's name and
// time, the excel option, and a progress callback called about every
// progressEvery rows.
type Source struct {
	Copy     func(ctx context.Context, w io.Writer) (int64, error)
	Headers  [][]byte
	Entry    string
	Excel    bool
	Modified time.Time
	Progress func(rows int64) error
}

// Write streams src as one CSV inside a ZIP to key. Reading (Postgres's
// COPY, the CSV's conversion) runs in its own goroutine and hands chunks of CSV to the
// compressor over a channel, so the two overlap. The blob is written
// under ctx's child: on any error that context is cancelled before the
// writer is closed, which aborts the write (no object appears under key).
func Write(ctx context.Context, b *blob.Bucket, key string, src Source) (store.ExportFile, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := b.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType: "application/zip", BufferSize: uploadPart, MaxConcurrency: uploadConcurrency,
	})
	if err != nil {
		return store.ExportFile{}, fmt.Errorf("open export file: %w", err)
	}
	sum := sha256.New()
	out := &countingWriter{w: bw, h: sum}
	rows, err := writeZip(wctx, out, src)
	if err != nil {
		cancel()
		_ = bw.Close()
		return store.ExportFile{}, err
	}
	if err := bw.Close(); err != nil {
		return store.ExportFile{}, fmt.Errorf("write export file: %w", err)
	}
	return store.ExportFile{Rows: rows, Size: out.n, SHA256: hex.EncodeToString(sum.Sum(nil))}, nil
}

type countingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// chunkResult is what the reading goroutine ends with.
type chunkResult struct {
	rows int64
	err  error
}

func writeZip(ctx context.Context, w io.Writer, src Source) (int64, error) {
	zw := zip.NewWriter(w)
	// Per writer: registering at package level panics, Deflate is taken.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return kflate.NewWriter(w, flateLevel)
	})
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: src.Entry, Method: zip.Deflate, Modified: src.Modified})
	if err != nil {
		return 0, fmt.Errorf("zip entry: %w", err)
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	full := make(chan []byte, chunkCount)
	free := make(chan []byte, chunkCount)
	for range chunkCount {
		free <- make([]byte, 0, chunkSize+4096)
	}
	done := make(chan chunkResult, 1)
	go func() {
		defer close(full)
		n, err := readCSV(rctx, src, full, free)
		done <- chunkResult{n, err}
	}()

	var werr error
	for c := range full {
		if werr == nil {
			if _, werr = fw.Write(c); werr != nil {
				stop() // the reader stops at its next chunk
			}
		}
		free <- c[:0]
	}
	r := <-done
	if werr != nil {
		return 0, fmt.Errorf("compress export: %w", werr)
	}
	if r.err != nil {
		return 0, r.err
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("close zip: %w", err)
	}
	return r.rows, nil
}

// readCSV runs the COPY and turns its stream into chunks of the export's
// CSV, after the header.
func readCSV(ctx context.Context, src Source, full chan<- []byte, free <-chan []byte) (int64, error) {
	w := &chunkWriter{ctx: ctx, full: full, free: free, progress: src.Progress}
	w.csv.buf = <-free
	if src.Excel {
		w.csv.buf = append(w.csv.buf, bom...)
	}
	w.csv.buf = appendRecord(w.csv.buf, src.Headers)
	n, err := src.Copy(ctx, w)
	if err != nil {
		return n, err
	}
	if err := w.csv.end(); err != nil {
		return n, fmt.Errorf("export rows: %w", err)
	}
	if w.csv.rows != n {
		return n, fmt.Errorf("export rows: %d records in the CSV for %d rows copied: %w", w.csv.rows, n, errMalformedCopy)
	}
	if len(w.csv.buf) > 0 {
		select {
		case full <- w.csv.buf:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// chunkWriter is the io.Writer a COPY writes to: it converts the stream
// (pgCSV) into the current chunk and hands each full chunk to the
// compressor, reporting progress every progressEvery records.
type chunkWriter struct {
	ctx      context.Context
	csv      pgCSV
	full     chan<- []byte
	free     <-chan []byte
	progress func(rows int64) error
	reported int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if err := w.csv.write(p); err != nil {
		return 0, err
	}
	if len(w.csv.buf) >= chunkSize {
		select {
		case w.full <- w.csv.buf:
		case <-w.ctx.Done():
			return 0, w.ctx.Err()
		}
		select {
		case w.csv.buf = <-w.free:
		case <-w.ctx.Done():
			return 0, w.ctx.Err()
		}
	}
	if w.progress != nil && w.csv.rows-w.reported >= progressEvery {
		w.reported = w.csv.rows
		if err := w.progress(w.csv.rows); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
