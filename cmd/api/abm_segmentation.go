package main

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers/segment"
)

func (s *server) getGlobalCriteria(w http.ResponseWriter, r *http.Request) {
	c, err := s.db.GlobalCriteria(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// putGlobalCriteria sets which accounts take part in ABM; a criteria that
// does not check against the org's account fields is 400.
func (s *server) putGlobalCriteria(w http.ResponseWriter, r *http.Request) {
	var c criteria.Criteria
	if err := decodeJSON(r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.db.SetGlobalCriteria(r.Context(), orgFrom(r.Context()).ID, c); err != nil {
		s.fail(w, r, err)
		return
	}
	s.getGlobalCriteria(w, r)
}

// listABMAccounts lists the accounts inside the global criteria.
func (s *server) listABMAccounts(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.db.ABMAccounts(r.Context(), orgFrom(r.Context()).ID, s.now(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// pageLimit reads ?limit= of a paged list: 1 to store.MaxPageSize,
// store.DefaultPageSize when absent.
func pageLimit(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return store.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > store.MaxPageSize {
		return 0, invalid("bad limit", map[string]string{"limit": "an integer from 1 to " + strconv.Itoa(store.MaxPageSize)})
	}
	return n, nil
}

func (s *server) getTechniques(w http.ResponseWriter, r *http.Request) {
	views, err := s.abm.Views(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"techniques": views})
}

// techniqueAnswer is a technique after a change, with the refresh job the
// change started, if any.
type techniqueAnswer struct {
	segment.View
	Job *accepted `json:"refresh_job,omitempty"`
}

func (s *server) techniqueAnswer(w http.ResponseWriter, r *http.Request, v segment.View, job *store.Job, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans := techniqueAnswer{View: v}
	if job != nil {
		a := acceptedBody(*job)
		ans.Job = &a
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *server) putTechnique(w http.ResponseWriter, r *http.Request) {
	var in segment.View
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	v, job, err := s.abm.Put(r.Context(), orgFrom(r.Context()).ID, r.PathValue("technique"), in)
	s.techniqueAnswer(w, r, v, job, err)
}

func (s *server) activateTechnique(w http.ResponseWriter, r *http.Request) {
	v, job, err := s.abm.Activate(r.Context(), orgFrom(r.Context()).ID, r.PathValue("technique"))
	s.techniqueAnswer(w, r, v, job, err)
}

func (s *server) deactivateTechnique(w http.ResponseWriter, r *http.Request) {
	v, job, err := s.abm.Deactivate(r.Context(), orgFrom(r.Context()).ID, r.PathValue("technique"))
	s.techniqueAnswer(w, r, v, job, err)
}

// configureABM checks the setup, marks the org configured and enqueues the
// first full refresh (202).
func (s *server) configureABM(w http.ResponseWriter, r *http.Request) {
	job, err := s.abm.Configure(r.Context(), orgFrom(r.Context()).ID)
	var nr *segment.NotReadyError
	if errors.As(err, &nr) {
		writeProblem(w, r, http.StatusConflict, "abm-not-ready", nr.Error(), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedHeaders(w, job, false))
}

type refreshRequest struct {
	Technique string `json:"technique"`
}

// refreshABM enqueues segment:refresh for one technique or all (202).
func (s *server) refreshABM(w http.ResponseWriter, r *http.Request) {
	var body refreshRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	job, err := s.abm.Refresh(r.Context(), orgFrom(r.Context()).ID, body.Technique)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedHeaders(w, job, false))
}

// accountLabels explains every technique's label of an account.
func (s *server) accountLabels(w http.ResponseWriter, r *http.Request) {
	e, err := s.abm.Explain(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// accountRecommendations lists an account's recommendations (seed 004):
// type, product, purchase probability and evidence, most probable first.
func (s *server) accountRecommendations(w http.ResponseWriter, r *http.Request) {
	recs, err := s.db.AccountRecommendations(r.Context(), orgFrom(r.Context()).ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": r.PathValue("id"), "recommendations": recs})
}
