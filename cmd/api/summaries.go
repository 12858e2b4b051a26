package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
)

type summaryRequest struct {
	Module     string `json:"module"`
	RecordID   string `json:"record_id"`
	Regenerate bool   `json:"regenerate"`
}

// summaryAccepted is the 202 of POST /v1/summaries: the job and what the
// request did to the user's daily count.
type summaryAccepted struct {
	accepted
	Counted bool               `json:"counted"`
	Usage   store.SummaryUsage `json:"usage"`
}

// createSummary admits a summary request (jobs.AdmitSummary: checks, the
// daily count of seed 000's consumption policy, the job) and answers 202.
func (s *server) createSummary(w http.ResponseWriter, r *http.Request) {
	var body summaryRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	adm, err := s.enq.AdmitSummary(ctx, jobs.SummaryRequest{
		OrgID: orgFrom(ctx).ID, UserID: userID(r), Module: body.Module, RecordID: body.RecordID, Regenerate: body.Regenerate,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Limit: s.cfg.SummaryLimit, Now: s.now(),
	})
	var quota *jobs.QuotaError
	switch {
	case errors.As(err, &quota):
		s.countQuota("summaries", "refused", 1)
		w.Header().Set("Retry-After", strconv.Itoa(int(quota.ResetAt.Sub(s.now()).Seconds())+1))
		writeProblem(w, r, http.StatusTooManyRequests, "quota-exceeded", quota.Error(), nil)
		return
	case errors.Is(err, jobs.ErrNotSummarizable):
		writeProblem(w, r, http.StatusConflict, "record-not-summarizable", err.Error(), nil)
		return
	case errors.Is(err, jobs.ErrNoAssociatedRecords):
		writeProblem(w, r, http.StatusUnprocessableEntity, "no-associated-records", err.Error(), nil)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	if adm.Counted && !adm.Replayed {
		s.countQuota("summaries", "consumed", 1)
	}
	writeJSON(w, http.StatusAccepted, summaryAccepted{
		accepted: acceptedHeaders(w, adm.Job, adm.Replayed),
		Counted:  adm.Counted, Usage: adm.Usage,
	})
}

func (s *server) getSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.db.Summary(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (s *server) latestSummary(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	sum, err := s.db.LatestSummary(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (s *server) savedSummaries(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	list, err := s.db.SavedSummaries(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(list) == 0 {
		// No saved summary: 404 when the org has no such record, like the
		// record's other routes, so a foreign id reads as unknown.
		if _, err := s.db.RecordState(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id")); err != nil {
			s.fail(w, r, err)
			return
		}
		list = []store.Summary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"summaries": list})
}

func (s *server) saveSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.db.MarkSummarySaved(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (s *server) summaryUsage(w http.ResponseWriter, r *http.Request) {
	user := userID(r)
	if user == "" {
		s.fail(w, r, invalid("X-User-ID is required", map[string]string{"X-User-ID": "required: usage is per user"}))
		return
	}
	u, err := s.db.SummaryUsageOf(r.Context(), orgFrom(r.Context()).ID, user, s.now().UTC(), s.cfg.SummaryLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *server) summaryFeedback(w http.ResponseWriter, r *http.Request) {
	var f store.Feedback
	if err := decodeJSON(r, &f); err != nil {
		s.fail(w, r, err)
		return
	}
	user := userID(r)
	if user == "" {
		s.fail(w, r, invalid("X-User-ID is required", map[string]string{"X-User-ID": "required: feedback is per user"}))
		return
	}
	if err := s.db.PutSummaryFeedback(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"), user, f); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) summaryFeedbackStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.db.SummaryFeedbackStats(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

type expansionRequest struct {
	Name string `json:"name"`
}

// createExpansion turns an account summary's Suggested Expansion
// Opportunities into an expansion deal on the account (seed 001). Calling
// it again for the same summary returns the same deal.
func (s *server) createExpansion(w http.ResponseWriter, r *http.Request) {
	var body expansionRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	name := strings.TrimSpace(body.Name)
	msg := textProblem(name, utf8.UTFMax*store.MaxExpansionName, true)
	if msg == "" && utf8.RuneCountInString(name) > store.MaxExpansionName {
		msg = fmt.Sprintf("longer than %d characters", store.MaxExpansionName)
	}
	if msg != "" {
		s.fail(w, r, invalid("bad expansion name", map[string]string{"name": msg}))
		return
	}
	ctx := r.Context()
	org := orgFrom(ctx).ID
	sum, err := s.db.Summary(ctx, org, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if sum.Module != "accounts" {
		writeProblem(w, r, http.StatusConflict, "not-an-account-summary", "expansion opportunities come from account summaries", nil)
		return
	}
	desc, found := expansionText(sum)
	switch {
	case !found:
		writeProblem(w, r, http.StatusConflict, "no-expansion-section",
			"this summary has no Suggested Expansion Opportunities section (it is hidden for the org)", nil)
		return
	case desc == "":
		writeProblem(w, r, http.StatusConflict, "no-expansion-suggestion",
			"this summary suggests no expansion: no bullet of its Suggested Expansion Opportunities section rests on a record", nil)
		return
	}
	if name == "" {
		name = "Expansion from account summary " + sum.CreatedAt.UTC().Format(time.DateOnly)
	}
	deal, created, err := s.db.CreateExpansionOpportunity(ctx, org, sum.ID, sum.RecordExternalID, name, desc)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/v1/modules/deals/records/"+fmt.Sprint(deal["id"]))
	writeJSON(w, status, deal)
}

type sectionSettings struct {
	Sections map[string]bool `json:"sections"`
}

// sectionUpdate is a PUT's body: a null visibility is an error, not false.
type sectionUpdate struct {
	Sections map[string]*bool `json:"sections"`
}

// getSummarySections and putSummarySections are the admin's section
// visibility for an org: hidden sections are not generated.
func (s *server) getSummarySections(w http.ResponseWriter, r *http.Request) {
	org, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	s.writeSummarySections(w, r, org)
}

func (s *server) putSummarySections(w http.ResponseWriter, r *http.Request) {
	org, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	var body sectionUpdate
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	vis, bad := sectionVisibility(body.Sections)
	if len(bad) > 0 {
		s.fail(w, r, invalid("bad sections", bad))
		return
	}
	if err := s.db.SetSummarySectionVisibility(r.Context(), org, vis); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSummarySections(w, r, org)
}

func (s *server) writeSummarySections(w http.ResponseWriter, r *http.Request, org int64) {
	vis, err := s.db.SummarySectionVisibility(r.Context(), org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sectionSettings{Sections: vis})
}

// pathOrg reads {org} and answers 404 for an org that does not exist.
func (s *server) pathOrg(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("org"), 10, 64)
	if err == nil {
		_, err = s.db.OrgByID(r.Context(), id)
	} else {
		err = fmt.Errorf("org %q: %w", r.PathValue("org"), store.ErrNotFound)
	}
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	return id, true
}

// expansionText joins the suggestions of the Suggested Expansion
// Opportunities section: the bullets that cite at least one record. A
// bullet citing nothing says there is nothing to suggest ("no activity
// notes ... mention expansion signals"); it is no deal description. found
// is false when the summary has no such section; the text is empty when
// the section suggests nothing.
func expansionText(sum store.Summary) (text string, found bool) {
	var sections []struct {
		Key     string       `json:"key"`
		Bullets []llm.Bullet `json:"bullets"`
	}
	if err := json.Unmarshal(sum.Sections, &sections); err != nil {
		return "", false
	}
	for _, sec := range sections {
		if sec.Key != llm.ExpansionOpportunities {
			continue
		}
		lines := make([]string, 0, len(sec.Bullets))
		for _, b := range sec.Bullets {
			if len(b.Sources) > 0 {
				lines = append(lines, "- "+b.Text)
			}
		}
		return strings.Join(lines, "\n"), true
	}
	return "", false
}

// sectionVisibility checks a PUT's sections: every key a section of some
// module, every value true or false.
func sectionVisibility(in map[string]*bool) (map[string]bool, map[string]string) {
	vis := make(map[string]bool, len(in))
	bad := map[string]string{}
	for k, v := range in {
		switch {
		case !slices.Contains(llm.SectionKeys, k):
			bad["sections."+k] = "unknown section; one of " + strings.Join(llm.SectionKeys, ", ")
		case v == nil:
			bad["sections."+k] = "must be true or false, not null"
		default:
			vis[k] = *v
		}
	}
	return vis, bad
}

// localeUpdate is a PUT's body: a field left out keeps its value.
type localeUpdate struct {
	Currency *string `json:"currency"`
	TimeZone *string `json:"time_zone"`
}

// getSummaryLocale and putSummaryLocale are the org's summary locale: the
// currency amounts are written in and the time zone contact timings are
// read in (USD and UTC unless set).
func (s *server) getSummaryLocale(w http.ResponseWriter, r *http.Request) {
	org, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	l, err := s.db.SummaryLocale(r.Context(), org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *server) putSummaryLocale(w http.ResponseWriter, r *http.Request) {
	org, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	var body localeUpdate
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := s.db.SummaryLocale(r.Context(), org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if body.Currency != nil {
		l.Currency = *body.Currency
	}
	if body.TimeZone != nil {
		l.TimeZone = *body.TimeZone
	}
	if bad := l.Validate(); len(bad) > 0 {
		s.fail(w, r, invalid("bad summary locale", bad))
		return
	}
	if err := s.db.SetSummaryLocale(r.Context(), org, l); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}
