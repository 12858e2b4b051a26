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
		{"GET /v1/admin/orgs/{org}/summary-sections", s.admin(http.HandlerFunc(s.getSummarySections))},
		{"PUT /v1/admin/orgs/{org}/summary-sections", s.admin(http.HandlerFunc(s.putSummarySections))},

		{"POST /v1/jobs", s.org(s.createJob)},
		{"GET /v1/jobs/{id}", s.org(s.getJob)},
		{"GET /v1/jobs/{id}/events", s.org(s.jobEvents)},

		{"PUT /v1/modules/{module}/records", s.org(s.upsertRecords)},
		{"GET /v1/modules/{module}/records", s.org(s.listRecords)},
		{"GET /v1/modules/{module}/records/{id}", s.org(s.getRecord)},
		{"DELETE /v1/modules/{module}/records/{id}", s.org(s.deleteRecord)},
		{"GET /v1/modules/{module}/records/{id}/interactions", s.org(s.interactions)},
		{"GET /v1/modules/{module}/records/{id}/summary", s.org(s.latestSummary)},
		{"GET /v1/modules/{module}/records/{id}/summaries/saved", s.org(s.savedSummaries)},

		{"POST /v1/summaries", s.org(s.createSummary)},
		{"GET /v1/summaries/{id}", s.org(s.getSummary)},
		{"POST /v1/summaries/{id}/save", s.org(s.saveSummary)},
		{"POST /v1/summaries/{id}/feedback", s.org(s.summaryFeedback)},
		{"POST /v1/summaries/{id}/expansion-opportunities", s.org(s.createExpansion)},
		{"GET /v1/summaries/feedback/stats", s.org(s.summaryFeedbackStats)},
		{"GET /v1/usage/summaries", s.org(s.summaryUsage)},
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
