package main

import (
	"net/http"

	"github.com/crmq/crmq/store"
)

// getABMMapping answers the org's module, field and lookup mapping with
// its defaults filled in, in the shape putABMMapping takes.
func (s *server) getABMMapping(w http.ResponseWriter, r *http.Request) {
	m, err := s.db.ABMMapping(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// putABMMapping replaces the org's mapping; a bad one is a 400 naming
// every problem (store.MappingErrors).
func (s *server) putABMMapping(w http.ResponseWriter, r *http.Request) {
	var in store.ABMMapping
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.db.SetABMMapping(r.Context(), orgFrom(r.Context()).ID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
