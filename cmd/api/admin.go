package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/crmq/crmq/store"
)

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when both Postgres and Redis answer.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "redis": "ok"}
	ready := true
	if err := s.db.PingContext(ctx); err != nil {
		checks["postgres"], ready = "unreachable", false
	}
	if err := s.pingRedis(); err != nil {
		checks["redis"], ready = "unreachable", false
	}
	if !ready {
		w.Header().Set("Retry-After", "5")
		writeProblemBody(w, r, problem{
			Type: problemPrefix + "unavailable", Status: http.StatusServiceUnavailable,
			Detail: "a backing service is unreachable", Checks: checks,
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}

// maxOrgNameBytes bounds an org's name, which operators read in lists.
const maxOrgNameBytes = 100

type createOrgRequest struct {
	Name string `json:"name"`
}

type createOrgResponse struct {
	Org    store.Org `json:"org"`
	APIKey string    `json:"api_key"`
}

// createOrg makes an org and its first API key; the key is shown only here.
func (s *server) createOrg(w http.ResponseWriter, r *http.Request) {
	var body createOrgRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	name := strings.TrimSpace(body.Name)
	if name == "" || textProblem(name, maxOrgNameBytes, true) != "" {
		s.fail(w, r, invalid("bad org name", map[string]string{"name": "1 to 100 bytes of UTF-8 text without control characters"}))
		return
	}
	org, key, err := s.db.CreateOrgWithKey(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createOrgResponse{Org: org, APIKey: key})
}

type createKeyRequest struct {
	// Scopes absent (or null) gives the key every scope, including scopes
	// added later; a list gives it those alone.
	Scopes *[]string `json:"scopes"`
}

type createKeyResponse struct {
	Org    store.Org `json:"org"`
	APIKey string    `json:"api_key"`
	Scopes []string  `json:"scopes"` // null: every scope
}

// createKey issues another key for an org; the key is shown only here.
func (s *server) createKey(w http.ResponseWriter, r *http.Request) {
	orgID, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	var body createKeyRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		key    string
		scopes []string
		err    error
	)
	if body.Scopes == nil {
		key, err = s.db.CreateAPIKey(r.Context(), orgID)
	} else if scopes, err = store.ParseScopes(*body.Scopes); err == nil {
		key, err = s.db.CreateScopedAPIKey(r.Context(), orgID, scopes)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	org, err := s.db.OrgByID(r.Context(), orgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "api key issued", "org_id", orgID, "scopes", scopes, "request_id", requestID(r.Context()))
	writeJSON(w, http.StatusCreated, createKeyResponse{Org: org, APIKey: key, Scopes: scopes})
}
