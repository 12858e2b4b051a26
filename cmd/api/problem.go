package main

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers/segment"
)

// problem is an RFC 9457 problem details body. Type is a stable URN a
// client can switch on; README lists them.
type problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	// Checks is an extension member of /readyz's 503: each dependency's state.
	Checks map[string]string `json:"checks,omitempty"`
	// Scope is an extension member of insufficient-scope: the scope the
	// route needs.
	Scope string `json:"scope,omitempty"`
	// Segments is an extension member of technique-in-use: the segments
	// that lock the technique or its labels.
	Segments []string `json:"segments,omitempty"`
	// Remaining is an extension member of an enrichment quota-exceeded:
	// the records the org may still enrich today.
	Remaining *int `json:"remaining,omitempty"`
}

const problemPrefix = "urn:crmq:problem:"

func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, detail string, fields map[string]string) {
	writeProblemBody(w, r, problem{Type: problemPrefix + slug, Status: status, Detail: detail, Errors: fields})
}

// writeProblemBody writes p, filling in what every problem carries.
func writeProblemBody(w http.ResponseWriter, r *http.Request, p problem) {
	p.Title = http.StatusText(p.Status)
	p.Instance = r.URL.Path
	p.RequestID = requestID(r.Context())
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// textErrorCodes are the Postgres errors bad text in a request raises:
// character_not_in_repertoire (a NUL, invalid UTF-8), invalid_text_representation,
// untranslatable_character (\u0000 in jsonb), string_data_right_truncation and
// program_limit_exceeded (an index row too large). The edge checks should
// stop such text first; this keeps a miss a 400, not a 500.
var textErrorCodes = map[pq.ErrorCode]bool{"22021": true, "22P02": true, "22P05": true, "22001": true, "54000": true}

// badRequest is an error the client made in the request itself.
type badRequest struct {
	slug   string
	detail string
	fields map[string]string
}

func (e *badRequest) Error() string { return e.detail }

func invalid(detail string, fields map[string]string) error {
	return &badRequest{slug: "validation", detail: detail, fields: fields}
}

// fail maps an error to its problem response in one place.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		bad          *badRequest
		fe           jobs.FieldErrors
		tooLarge     *http.MaxBytesError
		netErr       *net.OpError
		feedbackErrs store.FeedbackErrors
		segErrs      segment.Errors
		critErrs     criteria.Errors
		inUse        *segment.InUseError
		mappingErrs  store.MappingErrors
		segmentErrs  store.SegmentErrors
		exportErrs   store.ExportFieldErrors
		enrichErrs   store.EnrichmentErrors
		pqErr        *pq.Error
	)
	switch {
	case errors.Is(err, errBodyIdle):
		// The client stalled mid-body; the connection cannot be reused.
		w.Header().Set("Connection", "close")
		writeProblem(w, r, http.StatusRequestTimeout, "request-timeout",
			fmt.Sprintf("the request body stalled for more than %s", s.cfg.BodyIdleTimeout), nil)
	case errors.As(err, &bad):
		writeProblem(w, r, http.StatusBadRequest, bad.slug, bad.detail, bad.fields)
	case errors.As(err, &fe):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the request has invalid fields", fe)
	case errors.As(err, &tooLarge):
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-large",
			fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit), nil)
	case errors.Is(err, errTooManyRecords), errors.Is(err, store.ErrBatchTooLarge):
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-large", errTooManyRecords.Error()+"; split the batch", nil)
	case errors.Is(err, store.ErrInvalidCursor):
		writeProblem(w, r, http.StatusBadRequest, "validation", "cursor is not one this API issued", map[string]string{"cursor": "invalid"})
	case errors.Is(err, store.ErrInvalidModule):
		writeProblem(w, r, http.StatusNotFound, "unknown-module", err.Error(), nil)
	case errors.As(err, &feedbackErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the feedback has invalid fields", feedbackErrs)
	case errors.As(err, &mappingErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the mapping is invalid; errors names each problem", mappingErrs)
	case errors.As(err, &segmentErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the segment is invalid; errors names each problem", segmentErrs)
	case errors.As(err, &exportErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the export's fields are invalid; errors names each problem", exportErrs)
	case errors.Is(err, store.ErrExportGone):
		writeProblem(w, r, http.StatusGone, "export-gone", err.Error(), nil)
	case errors.Is(err, store.ErrExportNotReady):
		writeProblem(w, r, http.StatusConflict, "export-not-ready", err.Error(), nil)
	case errors.As(err, &enrichErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the enrichment request is invalid; errors names each problem", enrichErrs)
	case errors.Is(err, store.ErrCustomAccounts):
		writeProblem(w, r, http.StatusConflict, "custom-accounts-unsupported", err.Error(), nil)
	case errors.Is(err, store.ErrEnrichmentNotApplicable):
		writeProblem(w, r, http.StatusConflict, "enrichment-not-applicable", err.Error(), nil)
	case errors.Is(err, store.ErrUnknownScope), errors.Is(err, store.ErrNoScopes):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the request has invalid fields", map[string]string{"scopes": err.Error()})
	case errors.Is(err, store.ErrInvalidQuery):
		writeProblem(w, r, http.StatusBadRequest, "validation", err.Error(), nil)
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such resource in this org", nil)
	case errors.As(err, &segErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the technique has invalid fields", segErrs)
	case errors.As(err, &critErrs):
		writeProblem(w, r, http.StatusBadRequest, "validation", "the criteria has invalid conditions", critErrs)
	case errors.Is(err, segment.ErrUnknownTechnique):
		writeProblem(w, r, http.StatusNotFound, "unknown-technique", "techniques are rfm, firmographics, engagement, voc and recommendations", nil)
	case errors.Is(err, store.ErrTechniqueRefreshing):
		writeProblem(w, r, http.StatusConflict, "technique-refreshing", "the technique is refreshing; try again when its refresh job ends", nil)
	case errors.As(err, &inUse):
		writeProblemBody(w, r, problem{Type: problemPrefix + "technique-in-use", Status: http.StatusConflict, Detail: inUse.Error(), Segments: inUse.Segments})
	case errors.Is(err, store.ErrEditLimit):
		now := s.now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		w.Header().Set("Retry-After", strconv.Itoa(int(midnight.Sub(now).Seconds())+1))
		writeProblem(w, r, http.StatusTooManyRequests, "technique-edit-limit",
			"once ABM is configured a technique takes two edits or activations per UTC day (renaming labels and deactivating are free); it resets at 00:00 UTC", nil)
	case errors.Is(err, store.ErrJobFinal):
		writeProblem(w, r, http.StatusConflict, "job-final", err.Error(), nil)
	case errors.Is(err, jobs.ErrIdempotencyMismatch):
		writeProblem(w, r, http.StatusUnprocessableEntity, "idempotency-mismatch", err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, http.StatusConflict, "conflict", err.Error(), nil)
	case errors.As(err, &pqErr) && textErrorCodes[pqErr.Code]:
		s.log.WarnContext(r.Context(), "text refused by postgres", "err", err, "code", string(pqErr.Code), "request_id", requestID(r.Context()))
		writeProblem(w, r, http.StatusBadRequest, "invalid-text",
			"the request holds text the database cannot take: invalid UTF-8, a NUL character, or a value too long", nil)
	case errors.Is(err, jobs.ErrUnavailable), errors.As(err, &netErr), errors.Is(err, driver.ErrBadConn):
		s.log.ErrorContext(r.Context(), "dependency unavailable", "err", err, "request_id", requestID(r.Context()))
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "unavailable",
			"a backing service (Redis or PostgreSQL) is unreachable; nothing was accepted, retry later", nil)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
	default:
		s.log.ErrorContext(r.Context(), "internal error", "err", err, "request_id", requestID(r.Context()))
		writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error; the request id identifies it in the logs", nil)
	}
}

// decodeJSON reads exactly one JSON value into dst, rejecting unknown
// fields, trailing data and bodies over the limit set by the middleware.
func decodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &badRequest{slug: "unsupported-media-type", detail: "Content-Type must be application/json"}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if bodyReadFailed(err) {
			return err
		}
		return &badRequest{slug: "malformed-json", detail: "body must hold a single JSON value"}
	}
	return nil
}

// jsonError turns encoding/json's errors into client-facing ones.
func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		unknownFd = "json: unknown field "
	)
	switch {
	case bodyReadFailed(err):
		return err
	case errors.Is(err, io.EOF):
		return &badRequest{slug: "malformed-json", detail: "request body is empty"}
	case errors.As(err, &syntax):
		return &badRequest{slug: "malformed-json", detail: fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &badRequest{slug: "malformed-json", detail: "malformed JSON: body ends too early"}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return invalid("a field has the wrong type", map[string]string{field: "must be " + typeErr.Type.String()})
	case strings.HasPrefix(err.Error(), unknownFd):
		name := strings.Trim(strings.TrimPrefix(err.Error(), unknownFd), `"`)
		return invalid("unknown field "+name, map[string]string{name: "unknown field"})
	default:
		return &badRequest{slug: "malformed-json", detail: err.Error()}
	}
}

// bodyReadFailed tells a body that could not be read (over the limit,
// stalled) from a body that is not JSON; fail answers each on its own.
func bodyReadFailed(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge) || errors.Is(err, errBodyIdle)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
