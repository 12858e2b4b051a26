package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"

	"github.com/crmq/crmq/cmd/internal/config"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/segment"
)

// server holds what the handlers share. Handlers decode, validate, call one
// function that does the work and write the answer; errors go through fail.
type server struct {
	cfg        config.Config
	db         *store.DB
	enq        *jobs.Enqueuer
	pingRedis  func() error
	log        *slog.Logger
	now        func() time.Time
	metrics    http.Handler
	monitoring http.Handler
	reqDur     *prometheus.HistogramVec
	quota      *prometheus.CounterVec // by quota (summaries, enrichments) and outcome (consumed, refused); may be nil
	keys       *keyCache
	abm        segment.Setup // ABM techniques, configuration and explanations
	exports    *blob.Bucket  // segment export files
}

type ctxKey int

const (
	orgKey ctxKey = iota
	requestIDKey
	logInfoKey
)

// countQuota counts n units of a daily quota consumed or refused.
func (s *server) countQuota(quota, outcome string, n int) {
	if s.quota != nil && n > 0 {
		s.quota.WithLabelValues(quota, outcome).Add(float64(n))
	}
}

func orgFrom(ctx context.Context) store.Org {
	o, _ := ctx.Value(orgKey).(store.Org)
	return o
}

// logInfo collects, for the request's log line, what inner handlers learn
// (the authenticated org).
type logInfo struct{ orgID int64 }

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// statusWriter remembers the status for logs and metrics, and turns the
// mux's plain-text 404 and 405 answers into problem+json.
type statusWriter struct {
	http.ResponseWriter
	r           *http.Request
	status      int
	swallowBody bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	ct := w.Header().Get("Content-Type")
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && strings.HasPrefix(ct, "text/plain") {
		w.swallowBody = true
		w.Header().Del("X-Content-Type-Options")
		slug, detail := "not-found", "no such route"
		if code == http.StatusMethodNotAllowed {
			slug, detail = "method-not-allowed", "method not allowed on this route; see the Allow header"
		}
		writeProblem(w.ResponseWriter, w.r, code, slug, detail, nil)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallowBody {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines (SSE).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pollRoute is the route apps poll; its answers below 400 are logged at
// debug level: the access log was 4.6% of the API's CPU at 750 jobs/s with
// one POST and one poll per job, grows with every poll, and a poll's line
// says nothing the crmq_http_request_duration_seconds histogram (requests
// by route and status) does not.
const pollRoute = "GET /v1/jobs/{id}"

// observe assigns a request id, limits the body, recovers panics, logs one
// line per request and records its duration by route pattern.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !safeRequestID.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		info := &logInfo{}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(context.WithValue(ctx, logInfoKey, info))
		r.Body = &idleBody{
			ReadCloser: http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes),
			rc:         http.NewResponseController(w),
			idle:       s.cfg.BodyIdleTimeout,
			limit:      start.Add(readTimeout),
		}
		sw := &statusWriter{ResponseWriter: w, r: r}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "panic", p, "stack", string(debug.Stack()), "request_id", id)
				if sw.status == 0 {
					writeProblem(sw, r, http.StatusInternalServerError, "internal", "internal error", nil)
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			if s.reqDur != nil {
				s.reqDur.WithLabelValues(route, http.StatusText(sw.status)).Observe(d.Seconds())
			}
			level := slog.LevelInfo
			if route == pollRoute && sw.status < 400 {
				level = slog.LevelDebug
			}
			if h := s.log.Handler(); h.Enabled(r.Context(), level) {
				// A record of its own, without the caller's PC that
				// Logger.Log takes on every call (runtime.Callers: 2% of
				// the API's CPU at 1,000 POSTs/s), nor boxed arguments.
				rec := slog.NewRecord(time.Now(), level, "http", 0)
				rec.AddAttrs(slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
					slog.Int("status", sw.status), slog.Duration("duration", d), slog.String("request_id", id), slog.Int64("org_id", info.orgID))
				_ = h.Handle(r.Context(), rec)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// bearer returns the credential of an Authorization header, accepting HTTP
// Basic too (password = key) so a browser can open /monitoring. The scheme
// is case-insensitive (RFC 9110 section 11.1).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, k, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(k)
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

// org authenticates an org key, checks that it carries scope (any key of
// the org passes when scope is accessOrg) and puts the org in the context.
func (s *server) org(scope string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmq"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <org API key>", nil)
			return
		}
		g, err := s.grantByKey(r.Context(), key)
		if errors.Is(err, store.ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmq", error="invalid_token"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "unknown or revoked API key", nil)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if info, ok := r.Context().Value(logInfoKey).(*logInfo); ok {
			info.orgID = g.Org.ID
		}
		if scope != accessOrg && !g.Allows(scope) {
			// RFC 6750 section 3.1 names the error and the scope too.
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="crmq", error="insufficient_scope", scope=%q`, scope))
			writeProblemBody(w, r, problem{
				Type: problemPrefix + "insufficient-scope", Status: http.StatusForbidden,
				Detail: fmt.Sprintf("this API key lacks the %q scope this route needs; an operator can issue a key with it", scope),
				Scope:  scope,
			})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), orgKey, g.Org)))
	})
}

// grantByKey resolves a key through the cache when there is one.
func (s *server) grantByKey(ctx context.Context, key string) (store.KeyGrant, error) {
	if s.keys != nil {
		return s.keys.grant(ctx, key)
	}
	return s.db.GrantByKey(ctx, key)
}

// admin requires the admin key (constant-time compare). An org key on an
// admin route is 403: authenticated, but not allowed. When Postgres cannot
// say whose a key is, a key of the org-key shape is still 403 (it is not
// the admin key either way) and any other key is 503, never a 401 that
// would call a good key bad.
func (s *server) admin(h http.Handler) http.Handler {
	want := []byte(s.cfg.AdminKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if subtle.ConstantTimeCompare([]byte(key), want) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		if key != "" {
			_, err := s.grantByKey(r.Context(), key)
			switch {
			case err == nil:
				writeProblem(w, r, http.StatusForbidden, "forbidden", "this route needs the admin key", nil)
				return
			case errors.Is(err, store.ErrNotFound):
				// An unknown key: 401 below.
			case store.OrgKeyShaped(key):
				s.log.WarnContext(r.Context(), "org key lookup failed on an admin route", "err", err, "request_id", requestID(r.Context()))
				writeProblem(w, r, http.StatusForbidden, "forbidden", "this route needs the admin key", nil)
				return
			default:
				s.log.ErrorContext(r.Context(), "key lookup failed on an admin route", "err", err, "request_id", requestID(r.Context()))
				w.Header().Set("Retry-After", "5")
				writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "the key cannot be checked now (PostgreSQL is unreachable); retry later", nil)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="crmq admin", charset="UTF-8"`)
		writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "this route needs the admin key (Bearer, or Basic with the key as password)", nil)
	})
}

// userID reads the acting user of the calling app; empty when absent.
// checkInput has already refused a value the store could not take.
func userID(r *http.Request) string { return r.Header.Get("X-User-ID") }
