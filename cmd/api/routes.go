package main

import "net/http"

// routes lists every route; openapi_test.go checks /openapi.yaml against it.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /openapi.yaml", serveOpenAPI)
	mux.Handle("GET /metrics", s.admin(s.metrics))
	if s.monitoring != nil {
		mux.Handle("/monitoring/", s.admin(s.monitoring))
	}

	mux.Handle("POST /v1/admin/orgs", s.admin(http.HandlerFunc(s.createOrg)))

	mux.Handle("POST /v1/jobs", s.org(s.createJob))
	mux.Handle("GET /v1/jobs/{id}", s.org(s.getJob))
	mux.Handle("GET /v1/jobs/{id}/events", s.org(s.jobEvents))

	mux.Handle("GET /v1/modules/{module}/records/{id}/interactions", s.org(s.interactions))

	return s.observe(mux)
}
