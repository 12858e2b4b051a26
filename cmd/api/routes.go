package main

import "net/http"

type route struct {
	pattern string // "METHOD /path" as net/http's ServeMux takes it
	handler http.Handler
	query   []string // the query parameters the handler reads (kept equal to openapi.yaml)
}

// routeTable lists every route; openapi_test.go checks /openapi.yaml
// against it, so the document and the server cannot drift.
func (s *server) routeTable() []route {
	rs := []route{
		{"GET /healthz", http.HandlerFunc(s.healthz), nil},
		{"GET /readyz", http.HandlerFunc(s.readyz), nil},
		{"GET /openapi.yaml", http.HandlerFunc(serveOpenAPI), nil},
		{"GET /metrics", s.admin(s.metrics), nil},

		{"POST /v1/admin/orgs", s.admin(http.HandlerFunc(s.createOrg)), nil},
		{"GET /v1/admin/orgs/{org}/summary-sections", s.admin(http.HandlerFunc(s.getSummarySections)), nil},
		{"PUT /v1/admin/orgs/{org}/summary-sections", s.admin(http.HandlerFunc(s.putSummarySections)), nil},

		{"POST /v1/jobs", s.org(s.createJob), nil},
		{"GET /v1/jobs/{id}", s.org(s.getJob), nil},
		{"GET /v1/jobs/{id}/events", s.org(s.jobEvents), nil},
		{"POST /v1/jobs/{id}/cancel", s.org(s.cancelJob), nil},

		{"PUT /v1/modules/{module}/records", s.org(s.upsertRecords), nil},
		{"GET /v1/modules/{module}/records", s.org(s.listRecords), []string{"limit", "cursor"}},
		{"GET /v1/modules/{module}/records/{id}", s.org(s.getRecord), nil},
		{"DELETE /v1/modules/{module}/records/{id}", s.org(s.deleteRecord), nil},
		{"GET /v1/modules/{module}/records/{id}/interactions", s.org(s.interactions), []string{"view", "medium", "user", "from", "to", "preset", "limit"}},
		{"GET /v1/modules/{module}/records/{id}/summary", s.org(s.latestSummary), nil},
		{"GET /v1/modules/{module}/records/{id}/summaries/saved", s.org(s.savedSummaries), nil},

		{"POST /v1/summaries", s.org(s.createSummary), nil},
		{"GET /v1/summaries/{id}", s.org(s.getSummary), nil},
		{"POST /v1/summaries/{id}/save", s.org(s.saveSummary), nil},
		{"POST /v1/summaries/{id}/feedback", s.org(s.summaryFeedback), nil},
		{"POST /v1/summaries/{id}/expansion-opportunities", s.org(s.createExpansion), nil},
		{"GET /v1/summaries/feedback/stats", s.org(s.summaryFeedbackStats), nil},
		{"GET /v1/usage/summaries", s.org(s.summaryUsage), nil},
	}
	if s.monitoring != nil {
		// asynqmon routes on the full path: no StripPrefix.
		rs = append(rs, route{"/monitoring/", s.admin(s.hideMonitoringFailures(s.monitoring)), nil})
	}
	return rs
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routeTable() {
		mux.Handle(r.pattern, checkPath(r.pattern, r.handler))
	}
	return s.observe(checkInput(mux))
}
