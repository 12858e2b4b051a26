package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/crmq/crmq/store"
)

// Limits on the text a request carries outside its body. Every path value
// and the X-User-ID and Idempotency-Key headers end up in a text column
// with a unique index (external ids, user ids, idempotency keys), so they
// share the store's bound for an external id.
//
// A query value is a filter (a user id, a medium, a date, a cursor), never
// stored. 1 KiB holds any of those, or a comma-separated list of several
// user ids; a longer list repeats the parameter (each value is checked on
// its own), so the cap bounds the work one value costs without limiting
// what a client can ask.
const (
	maxIDBytes         = store.MaxExternalIDBytes
	maxQueryValueBytes = 1024
)

// checkedHeaders reach the store; control characters (a tab, say) are
// refused in them besides what every value is refused for.
var checkedHeaders = []string{"X-User-ID", "Idempotency-Key"}

// textProblem says why s cannot be taken as a value the store compares or
// keeps, or "" when it can.
func textProblem(s string, maxBytes int, noControls bool) string {
	switch {
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character"
	case noControls && strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "contains a control character"
	case len(s) > maxBytes:
		return fmt.Sprintf("longer than %d bytes", maxBytes)
	}
	return ""
}

// checkInput refuses, before routing, X-User-ID and Idempotency-Key
// headers and query values that no handler could hand to the store.
func checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		for _, h := range checkedHeaders {
			for _, v := range r.Header.Values(h) {
				if msg := textProblem(v, maxIDBytes, true); msg != "" {
					fields[h] = msg
				}
			}
		}
		for name, values := range r.URL.Query() {
			for _, v := range values {
				if msg := textProblem(v, maxQueryValueBytes, false); msg != "" {
					fields[name] = msg
				}
			}
		}
		if len(fields) > 0 {
			writeProblem(w, r, http.StatusBadRequest, "validation", "a header or query parameter holds a value that cannot be taken", fields)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var wildcard = regexp.MustCompile(`\{([^{}]+)\}`)

// wildcards names a route pattern's path wildcards ({id}, {rest...}).
func wildcards(pattern string) []string {
	var names []string
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		if name := strings.TrimSuffix(m[1], "..."); name != "$" {
			names = append(names, name)
		}
	}
	return names
}

// checkPath refuses path values that no handler could hand to the store,
// for every wildcard of the route's pattern.
func checkPath(pattern string, next http.Handler) http.Handler {
	names := wildcards(pattern)
	if len(names) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fields := map[string]string{}
		for _, name := range names {
			if msg := textProblem(r.PathValue(name), maxIDBytes, false); msg != "" {
				fields[name] = msg
			}
		}
		if len(fields) > 0 {
			writeProblem(w, r, http.StatusBadRequest, "validation", "a path parameter holds a value that cannot be taken", fields)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readTimeout bounds the reading of a whole request (main's
// http.Server.ReadTimeout); the body's idle timeout never reads past it.
const readTimeout = 2 * time.Minute

// errBodyIdle: the client sent nothing of the body for the idle timeout.
var errBodyIdle = errors.New("request body stalled")

// idleBody moves the connection's read deadline to idle from now before
// each Read, so a client that stops sending mid-body loses the connection
// after the idle timeout instead of holding it for the whole readTimeout.
type idleBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	limit time.Time // the request's start plus readTimeout
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.idle <= 0 {
		return b.ReadCloser.Read(p)
	}
	deadline := time.Now().Add(b.idle)
	if deadline.After(b.limit) {
		deadline = b.limit
	}
	// A writer without deadlines (a test recorder) leaves readTimeout alone in charge.
	_ = b.rc.SetReadDeadline(deadline)
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays passed: the server gives up draining the
		// rest of the body and closes the connection after the answer.
		return n, fmt.Errorf("%w: %w", errBodyIdle, err)
	case err != nil:
		// The body is done; what the server reads next keeps readTimeout.
		_ = b.rc.SetReadDeadline(b.limit)
	}
	return n, err
}
