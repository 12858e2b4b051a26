package main

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// enrichAccepted is the 202 of an enrichment request.
type enrichAccepted struct {
	accepted
	EnrichmentID string `json:"enrichment_id,omitempty"` // single: GET /v1/enrichments/{id} once the job ends
	Records      int    `json:"records"`
	Remaining    int    `json:"remaining_today"`
}

type enrichSingleBody struct {
	AccountID string `json:"account_id"`
}

type enrichBulkBody struct {
	AccountIDs []string `json:"account_ids"`
	SegmentID  int64    `json:"segment_id"`
}

type enrichFieldsBody struct {
	Fields []string `json:"fields"`
}

func (s *server) enrichmentFields(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"fields": store.EnrichFields, "min": store.MinEnrichFields, "max": store.MaxEnrichFields})
}

func (s *server) getEnrichmentSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.db.EnrichmentSettings(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) putEnrichmentSettings(w http.ResponseWriter, r *http.Request) {
	var body enrichFieldsBody
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.db.PutEnrichmentSettings(r.Context(), orgFrom(r.Context()).ID, body.Fields, s.now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// createEnrichment enriches one account: 202, task enrich:record.
func (s *server) createEnrichment(w http.ResponseWriter, r *http.Request) {
	var body enrichSingleBody
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.AccountID == "" {
		s.fail(w, r, invalid("the request has invalid fields", map[string]string{"account_id": "name the account (its external id)"}))
		return
	}
	s.admitEnrich(w, r, jobs.EnrichRequest{AccountIDs: []string{body.AccountID}})
}

// createBulkEnrichment enriches up to 500 accounts: 202, task enrich:bulk.
func (s *server) createBulkEnrichment(w http.ResponseWriter, r *http.Request) {
	var body enrichBulkBody
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	s.admitEnrich(w, r, jobs.EnrichRequest{Bulk: true, AccountIDs: body.AccountIDs, SegmentID: body.SegmentID})
}

func (s *server) admitEnrich(w http.ResponseWriter, r *http.Request, req jobs.EnrichRequest) {
	ctx := r.Context()
	req.OrgID, req.UserID, req.IdempotencyKey = orgFrom(ctx).ID, userID(r), r.Header.Get("Idempotency-Key")
	req.Limit, req.Now = s.cfg.EnrichDailyLimit, s.now()
	adm, err := s.enq.AdmitEnrich(ctx, req)
	var quota *store.EnrichQuotaError
	if errors.As(err, &quota) {
		s.countQuota("enrichments", "refused", 1)
		now := s.now().UTC()
		reset := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		w.Header().Set("Retry-After", strconv.Itoa(int(reset.Sub(now).Seconds())+1))
		writeProblemBody(w, r, problem{Type: problemPrefix + "quota-exceeded", Status: http.StatusTooManyRequests, Detail: quota.Error(),
			Remaining: &quota.Remaining})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !adm.Replayed {
		s.countQuota("enrichments", "consumed", adm.Records)
	}
	out := enrichAccepted{accepted: acceptedHeaders(w, adm.Job, adm.Replayed), Records: adm.Records, Remaining: adm.Remaining}
	if !req.Bulk {
		out.EnrichmentID = adm.Job.ID
	}
	writeJSON(w, http.StatusAccepted, out)
}

func (s *server) getEnrichment(w http.ResponseWriter, r *http.Request) {
	e, err := s.db.GetEnrichment(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// listEnrichments lists an account's enrichments or a bulk job's records.
func (s *server) listEnrichments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	account, job := q.Get("account_id"), q.Get("job_id")
	if (account == "") == (job == "") {
		s.fail(w, r, invalid("name account_id or job_id", map[string]string{"account_id": "one of account_id and job_id is required"}))
		return
	}
	var list []store.Enrichment
	var err error
	if account != "" {
		list, err = s.db.AccountEnrichments(r.Context(), orgFrom(r.Context()).ID, account)
	} else {
		list, err = s.db.JobEnrichments(r.Context(), orgFrom(r.Context()).ID, job)
		if list == nil {
			list = []store.Enrichment{}
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"enrichments": list})
}

// applyEnrichment writes the accepted fields of a single enrichment.
func (s *server) applyEnrichment(w http.ResponseWriter, r *http.Request) {
	var body enrichFieldsBody
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	changes, err := s.db.ApplyEnrichment(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"), body.Fields, userID(r), s.now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": changes})
}

func (s *server) enrichmentHistory(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.db.EnrichmentHistory(r.Context(), orgFrom(r.Context()).ID, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// enrichmentStats counts enriched records per UTC day, mode, outcome and
// reason over the last days (30 by default, at most 366).
func (s *server) enrichmentStats(w http.ResponseWriter, r *http.Request) {
	days := 30
	if d := r.URL.Query().Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 366 {
			s.fail(w, r, invalid("bad days", map[string]string{"days": "an integer from 1 to 366"}))
			return
		}
		days = n
	}
	now := s.now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day()-days+1, 0, 0, 0, 0, time.UTC)
	stats, err := s.db.EnrichmentStats(r.Context(), orgFrom(r.Context()).ID, since)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	used, err := s.db.EnrichmentUsage(r.Context(), orgFrom(r.Context()).ID, now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": days, "stats": stats, "used_today": used, "limit": s.cfg.EnrichDailyLimit})
}
