package main

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/crmq/crmq/store"
)

// segmentList is the answer of GET /v1/segments.
type segmentList struct {
	Segments []store.Segment `json:"segments"`
}

// segmentID reads {id}; anything that is not a segment id is "no such
// segment", as an id of another org is.
func segmentID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("segment %q: %w", r.PathValue("id"), store.ErrNotFound)
	}
	return id, nil
}

// createSegment stores a segment and answers it with its membership
// computed.
func (s *server) createSegment(w http.ResponseWriter, r *http.Request) {
	var in store.SegmentInput
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.db.CreateSegment(r.Context(), orgFrom(r.Context()).ID, in, s.now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/segments/"+strconv.FormatInt(seg.ID, 10))
	writeJSON(w, http.StatusCreated, seg)
}

func (s *server) listSegments(w http.ResponseWriter, r *http.Request) {
	segs, err := s.db.Segments(r.Context(), orgFrom(r.Context()).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, segmentList{Segments: segs})
}

// getSegment answers a segment with the stats of its members.
func (s *server) getSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.db.SegmentDetail(r.Context(), orgFrom(r.Context()).ID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// segmentAccounts pages through a segment's members.
func (s *server) segmentAccounts(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.db.SegmentMembers(r.Context(), orgFrom(r.Context()).ID, id, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// putSegment replaces a segment's name, description and criteria and
// recomputes its membership.
func (s *server) putSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in store.SegmentInput
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	seg, err := s.db.UpdateSegment(r.Context(), orgFrom(r.Context()).ID, id, in, s.now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, seg)
}

func (s *server) deleteSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.db.DeleteSegment(r.Context(), orgFrom(r.Context()).ID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.removeExportFiles(r, orgFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
}
