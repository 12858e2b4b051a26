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

// createSummary checks the record may be summarized, counts the request
// against the user's daily limit (seed 000's consumption policy) and
// enqueues summary:generate. A refused enqueue gives the count back.
func (s *server) createSummary(w http.ResponseWriter, r *http.Request) {
	var body summaryRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	user := userID(r)
	fields := map[string]string{}
	if user == "" {
		fields["X-User-ID"] = "required: summaries are counted per user"
	}
	if !store.ValidModule(body.Module) {
		fields["module"] = "a built-in module or custom_<name>"
	}
	if body.RecordID == "" {
		fields["record_id"] = "required"
	} else if msg := textProblem(body.RecordID, maxIDBytes, false); msg != "" {
		fields["record_id"] = msg
	}
	if len(fields) > 0 {
		s.fail(w, r, invalid("bad summary request", fields))
		return
	}
	ctx := r.Context()
	org := orgFrom(ctx).ID
	state, err := s.db.RecordState(ctx, org, body.Module, body.RecordID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if state != "active" {
		writeProblem(w, r, http.StatusConflict, "record-not-summarizable",
			fmt.Sprintf("the record is in %s state; records in draft or incomplete state cannot be summarized", state), nil)
		return
	}
	if body.Module == "accounts" {
		has, err := s.db.AccountHasAssociatedRecords(ctx, org, body.RecordID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !has {
			writeProblem(w, r, http.StatusUnprocessableEntity, "no-associated-records",
				"an account summary needs at least one associated record (contact, deal, case, success plan, objective, KPI, playbook, project or activity)", nil)
			return
		}
	}
	hash, _, err := s.db.SummaryDataHash(ctx, org, body.Module, body.RecordID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now().UTC()
	counted, _, err := s.db.ConsumeSummary(ctx, org, user, body.Module, body.RecordID, hash, now, s.cfg.SummaryLimit)
	if errors.Is(err, store.ErrQuotaExceeded) {
		w.Header().Set("Retry-After", strconv.Itoa(secondsToMidnight(now)))
		writeProblem(w, r, http.StatusTooManyRequests, "quota-exceeded",
			fmt.Sprintf("the daily limit of %d summaries per user is reached; it resets at 00:00 UTC", s.cfg.SummaryLimit), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	task, err := jobs.NewSummaryTask(jobs.SummaryPayload{
		OrgID: org, UserID: user, Module: body.Module, RecordID: body.RecordID,
		Regenerate: body.Regenerate, Counted: counted,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, replayed, err := s.enq.Enqueue(ctx, jobs.Request{OrgID: org, UserID: user, IdempotencyKey: r.Header.Get("Idempotency-Key"), Task: task})
	if err != nil {
		if counted {
			if _, rerr := s.db.ReleaseSummaryConsumption(ctx, org, user, body.Module, body.RecordID, hash, now); rerr != nil {
				s.log.ErrorContext(ctx, "summary count not given back", "err", rerr)
			}
		}
		s.fail(w, r, err)
		return
	}
	usage, err := s.db.SummaryUsageOf(ctx, org, user, now, s.cfg.SummaryLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, summaryAccepted{
		accepted: acceptedHeaders(w, job, replayed),
		Counted:  counted, Usage: usage,
	})
}

func secondsToMidnight(now time.Time) int {
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	return int(next.Sub(now).Seconds()) + 1
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
	if list == nil {
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
	desc, ok := expansionText(sum)
	if !ok {
		writeProblem(w, r, http.StatusConflict, "no-expansion-section",
			"this summary has no Suggested Expansion Opportunities section (it is hidden for the org)", nil)
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

// expansionText joins the bullets of the Suggested Expansion
// Opportunities section; false when the summary has no such section.
func expansionText(sum store.Summary) (string, bool) {
	var sections []struct {
		Key     string `json:"key"`
		Bullets []struct {
			Text string `json:"text"`
		} `json:"bullets"`
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
			lines = append(lines, "- "+b.Text)
		}
		return strings.Join(lines, "\n"), len(lines) > 0
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
