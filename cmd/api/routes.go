package main

import (
	"fmt"
	"net/http"

	"github.com/crmq/crmq/store"
)

// What a route asks of the caller, besides a scope an org key must carry
// (store.Scopes).
const (
	accessPublic = "public" // no key: probes and this API's document
	accessAdmin  = "admin"  // the admin key
	accessOrg    = "org"    // any key of the org, whatever its scopes
)

type route struct {
	pattern string // "METHOD /path" as net/http's ServeMux takes it
	// access is the scope an org key needs for the route, or accessPublic,
	// accessAdmin or accessOrg. routes() wraps the handler in the matching
	// check, so what the table says is what is enforced.
	access  string
	handler http.Handler
	query   []string // the query parameters the handler reads (kept equal to openapi.yaml)
}

// routeTable lists every route; openapi_test.go checks /openapi.yaml
// against it, so the document and the server cannot drift.
//
// Job status (a job, its events) and cancel are open to any key of the
// org: the job row says which org it belongs to, and whatever scope
// started a job, the client that holds it may follow or stop it.
func (s *server) routeTable() []route {
	rs := []route{
		{"GET /healthz", accessPublic, http.HandlerFunc(s.healthz), nil},
		{"GET /readyz", accessPublic, http.HandlerFunc(s.readyz), nil},
		{"GET /openapi.yaml", accessPublic, http.HandlerFunc(serveOpenAPI), nil},
		{"GET /metrics", accessAdmin, s.metrics, nil},

		{"POST /v1/admin/orgs", accessAdmin, http.HandlerFunc(s.createOrg), nil},
		{"POST /v1/admin/orgs/{org}/keys", accessAdmin, http.HandlerFunc(s.createKey), nil},
		{"GET /v1/admin/orgs/{org}/summary-sections", accessAdmin, http.HandlerFunc(s.getSummarySections), nil},
		{"PUT /v1/admin/orgs/{org}/summary-sections", accessAdmin, http.HandlerFunc(s.putSummarySections), nil},
		{"GET /v1/admin/orgs/{org}/summary-locale", accessAdmin, http.HandlerFunc(s.getSummaryLocale), nil},
		{"PUT /v1/admin/orgs/{org}/summary-locale", accessAdmin, http.HandlerFunc(s.putSummaryLocale), nil},

		{"POST /v1/jobs", store.ScopeJobs, http.HandlerFunc(s.createJob), nil},
		{"GET /v1/jobs/{id}", accessOrg, http.HandlerFunc(s.getJob), nil},
		{"GET /v1/jobs/{id}/events", accessOrg, http.HandlerFunc(s.jobEvents), nil},
		{"POST /v1/jobs/{id}/cancel", accessOrg, http.HandlerFunc(s.cancelJob), nil},

		{"PUT /v1/modules/{module}/records", store.ScopeRecordsWrite, http.HandlerFunc(s.upsertRecords), nil},
		{"GET /v1/modules/{module}/records", store.ScopeRecordsRead, http.HandlerFunc(s.listRecords), []string{"limit", "cursor"}},
		{"GET /v1/modules/{module}/records/{id}", store.ScopeRecordsRead, http.HandlerFunc(s.getRecord), nil},
		{"DELETE /v1/modules/{module}/records/{id}", store.ScopeRecordsWrite, http.HandlerFunc(s.deleteRecord), nil},
		{"GET /v1/modules/{module}/records/{id}/interactions", store.ScopeRecordsRead, http.HandlerFunc(s.interactions), []string{"view", "medium", "user", "from", "to", "preset", "limit"}},
		// A record's summaries are summaries, not record data: seed 000
		// gives generating and reading them to the Record Summary
		// permission alone.
		{"GET /v1/modules/{module}/records/{id}/summary", store.ScopeSummaries, http.HandlerFunc(s.latestSummary), nil},
		{"GET /v1/modules/{module}/records/{id}/summaries/saved", store.ScopeSummaries, http.HandlerFunc(s.savedSummaries), nil},

		{"POST /v1/summaries", store.ScopeSummaries, http.HandlerFunc(s.createSummary), nil},
		{"GET /v1/summaries/{id}", store.ScopeSummaries, http.HandlerFunc(s.getSummary), nil},
		{"POST /v1/summaries/{id}/save", store.ScopeSummaries, http.HandlerFunc(s.saveSummary), nil},
		{"POST /v1/summaries/{id}/feedback", store.ScopeSummaries, http.HandlerFunc(s.summaryFeedback), nil},
		// The deal it creates is the summary's own suggestion (seed 001),
		// one action of the summary feature, not a general record write.
		{"POST /v1/summaries/{id}/expansion-opportunities", store.ScopeSummaries, http.HandlerFunc(s.createExpansion), nil},
		{"GET /v1/summaries/feedback/stats", store.ScopeSummaries, http.HandlerFunc(s.summaryFeedbackStats), nil},
		{"GET /v1/usage/summaries", store.ScopeSummaries, http.HandlerFunc(s.summaryUsage), nil},

		// Setting the mapping is ABM setup (seed 004's "ABM for Zoho CRM
		// Setup" permission); reading it is ABM use.
		{"GET /v1/abm/mapping", store.ScopeABM, http.HandlerFunc(s.getABMMapping), nil},
		{"PUT /v1/abm/mapping", store.ScopeABMSetup, http.HandlerFunc(s.putABMMapping), nil},
		{"GET /v1/abm/global-criteria", store.ScopeABM, http.HandlerFunc(s.getGlobalCriteria), nil},
		{"PUT /v1/abm/global-criteria", store.ScopeABMSetup, http.HandlerFunc(s.putGlobalCriteria), nil},
		{"GET /v1/abm/accounts", store.ScopeABM, http.HandlerFunc(s.listABMAccounts), []string{"limit", "cursor"}},
		{"GET /v1/abm/techniques", store.ScopeABM, http.HandlerFunc(s.getTechniques), nil},
		{"PUT /v1/abm/techniques/{technique}", store.ScopeABMSetup, http.HandlerFunc(s.putTechnique), nil},
		{"POST /v1/abm/techniques/{technique}/activate", store.ScopeABMSetup, http.HandlerFunc(s.activateTechnique), nil},
		{"POST /v1/abm/techniques/{technique}/deactivate", store.ScopeABMSetup, http.HandlerFunc(s.deactivateTechnique), nil},
		{"POST /v1/abm/configure", store.ScopeABMSetup, http.HandlerFunc(s.configureABM), nil},
		{"POST /v1/abm/refresh", store.ScopeABMSetup, http.HandlerFunc(s.refreshABM), nil},
		{"GET /v1/accounts/{id}/labels", store.ScopeABM, http.HandlerFunc(s.accountLabels), nil},
		{"GET /v1/accounts/{id}/recommendations", store.ScopeABM, http.HandlerFunc(s.accountRecommendations), nil},

		// Segments are ABM use, not setup: the seed's ABM permission covers
		// segments.
		{"POST /v1/segments", store.ScopeABM, http.HandlerFunc(s.createSegment), nil},
		{"GET /v1/segments", store.ScopeABM, http.HandlerFunc(s.listSegments), nil},
		{"GET /v1/segments/{id}", store.ScopeABM, http.HandlerFunc(s.getSegment), nil},
		{"PUT /v1/segments/{id}", store.ScopeABM, http.HandlerFunc(s.putSegment), nil},
		{"DELETE /v1/segments/{id}", store.ScopeABM, http.HandlerFunc(s.deleteSegment), nil},
		{"GET /v1/segments/{id}/accounts", store.ScopeABM, http.HandlerFunc(s.segmentAccounts), []string{"limit", "cursor"}},

		{"POST /v1/segments/{id}/exports", store.ScopeExport, http.HandlerFunc(s.createExport), nil},
		{"GET /v1/exports", store.ScopeExport, http.HandlerFunc(s.listExports), []string{"segment_id", "from", "to", "sort", "limit", "cursor"}},
		{"GET /v1/exports/{id}", store.ScopeExport, http.HandlerFunc(s.getExport), nil},
		{"GET /v1/exports/{id}/download", store.ScopeExport, http.HandlerFunc(s.downloadExport), nil},
		{"GET /v1/exports/{id}/url", store.ScopeExport, http.HandlerFunc(s.signExport), nil},
		// Enrichment (seed 004): choosing the fields is setup; enriching,
		// reading proposals and applying them is the enrichment scope.
		{"GET /v1/enrichment/fields", store.ScopeEnrichment, http.HandlerFunc(s.enrichmentFields), nil},
		{"GET /v1/enrichment/settings", store.ScopeEnrichment, http.HandlerFunc(s.getEnrichmentSettings), nil},
		{"PUT /v1/enrichment/settings", store.ScopeABMSetup, http.HandlerFunc(s.putEnrichmentSettings), nil},
		{"GET /v1/enrichment/history", store.ScopeEnrichment, http.HandlerFunc(s.enrichmentHistory), []string{"limit", "cursor"}},
		{"GET /v1/enrichment/stats", store.ScopeEnrichment, http.HandlerFunc(s.enrichmentStats), []string{"days"}},
		{"POST /v1/enrichments", store.ScopeEnrichment, http.HandlerFunc(s.createEnrichment), nil},
		{"POST /v1/enrichments/bulk", store.ScopeEnrichment, http.HandlerFunc(s.createBulkEnrichment), nil},
		{"GET /v1/enrichments", store.ScopeEnrichment, http.HandlerFunc(s.listEnrichments), []string{"account_id", "job_id"}},
		{"GET /v1/enrichments/{id}", store.ScopeEnrichment, http.HandlerFunc(s.getEnrichment), nil},
		{"POST /v1/enrichments/{id}/apply", store.ScopeEnrichment, http.HandlerFunc(s.applyEnrichment), nil},
	}
	if s.monitoring != nil {
		// asynqmon routes on the full path: no StripPrefix.
		rs = append(rs, route{"/monitoring/", accessAdmin, s.hideMonitoringFailures(s.monitoring), nil})
	}
	return rs
}

// guard wraps a route's handler in the check its access asks for; an
// access that is none of the known values is an error, so a route can
// never be served without one.
func (s *server) guard(r route) (http.Handler, error) {
	switch {
	case r.access == accessPublic:
		return r.handler, nil
	case r.access == accessAdmin:
		return s.admin(r.handler), nil
	case r.access == accessOrg, store.KnownScope(r.access):
		return s.org(r.access, r.handler), nil
	}
	return nil, fmt.Errorf("route %q declares access %q: want a scope (%v), %q, %q or %q",
		r.pattern, r.access, store.Scopes(), accessPublic, accessAdmin, accessOrg)
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routeTable() {
		h, err := s.guard(r)
		if err != nil {
			panic(err) // a mistake in the table above; TestEveryRouteDeclaresItsAccess names it
		}
		mux.Handle(r.pattern, checkPath(r.pattern, h))
	}
	return s.observe(checkInput(mux))
}
