package main

import (
	"bytes"
	"net/http"
)

// hideMonitoringFailures keeps asynqmon's error answers from clients: its
// 5xx is plain text naming Redis' internal address. The client gets a 503
// problem; the log gets the original body.
func (s *server) hideMonitoringFailures(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &failureCatcher{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if cw.failed == 0 {
			return
		}
		s.log.ErrorContext(r.Context(), "monitoring failed", "status", cw.failed, "body", cw.body.String(),
			"path", r.URL.Path, "request_id", requestID(r.Context()))
		w.Header().Del("Content-Length")
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "Redis is unreachable", nil)
	})
}

// failureCatcher passes answers through, except a 5xx: it keeps that
// answer's status and the start of its body instead of sending them.
type failureCatcher struct {
	http.ResponseWriter
	wrote  bool
	failed int
	body   bytes.Buffer
}

const maxCaughtBody = 4 << 10

func (c *failureCatcher) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote = true
	if code >= 500 {
		c.failed = code
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *failureCatcher) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.failed != 0 {
		c.body.Write(b[:min(len(b), max(0, maxCaughtBody-c.body.Len()))])
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *failureCatcher) Unwrap() http.ResponseWriter { return c.ResponseWriter }
