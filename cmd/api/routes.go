package main

import "net/http"

type route struct {
	pattern string // "METHOD /path" as net/http's ServeMux takes it
	handler http.Handler
}

// routeTable lists every route; openapi_test.go checks /openapi.yaml
// against it, so the document and the server cannot drift.
func (s *server) routeTable() []route {
	rs := []route{
		{"GET /healthz", http.HandlerFunc(s.healthz)},
		{"GET /readyz", http.HandlerFunc(s.readyz)},
		{"GET /openapi.yaml", http.HandlerFunc(serveOpenAPI)},
		{"GET /metrics", s.admin(s.metrics)},

		{"POST /v1/admin/orgs", s.admin(http.HandlerFunc(s.createOrg))},

		{"POST /v1/jobs", s.org(s.createJob)},
		{"GET /v1/jobs/{id}", s.org(s.getJob)},
		{"GET /v1/jobs/{id}/events", s.org(s.jobEvents)},

		{"PUT /v1/modules/{module}/records", s.org(s.upsertRecords)},
		{"GET /v1/modules/{module}/records", s.org(s.listRecords)},
		{"GET /v1/modules/{module}/records/{id}", s.org(s.getRecord)},
		{"DELETE /v1/modules/{module}/records/{id}", s.org(s.deleteRecord)},
		{"GET /v1/modules/{module}/records/{id}/interactions", s.org(s.interactions)},
	}
	if s.monitoring != nil {
		// asynqmon routes on the full path: no StripPrefix.
		rs = append(rs, route{"/monitoring/", s.admin(s.monitoring)})
	}
	return rs
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routeTable() {
		mux.Handle(r.pattern, r.handler)
	}
	return s.observe(mux)
}
