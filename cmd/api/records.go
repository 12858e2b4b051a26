package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmq/crmq/store"
)

var errTooManyRecords = fmt.Errorf("more than %d records in one request", store.MaxBatchRows)

// module reads {module} and answers 404 for a name that is neither a
// built-in module nor custom_*.
func (s *server) module(w http.ResponseWriter, r *http.Request) (string, bool) {
	m := r.PathValue("module")
	if !store.ValidModule(m) {
		writeProblem(w, r, http.StatusNotFound, "unknown-module",
			fmt.Sprintf("unknown module %q: built-in modules are %s; custom modules are named custom_<name>",
				m, strings.Join(store.BuiltinModules(), ", ")), nil)
		return "", false
	}
	return m, true
}

// upsertRecords stores a batch; every row gets its own result, and a bad
// row never drops the good ones. When no row could be stored the answer is
// a 400 problem carrying the same per-row results.
func (s *server) upsertRecords(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	rows, err := readRows(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.db.UpsertRecords(r.Context(), orgFrom(r.Context()).ID, module, rows)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Created+res.Updated == 0 {
		fields := make(map[string]string, res.Failed)
		for _, row := range res.Rows {
			fields["rows["+strconv.Itoa(row.Index)+"]"] = row.Error
		}
		writeProblem(w, r, http.StatusBadRequest, "validation", "no record was stored; every row has an error", fields)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// readRows reads a JSON array of records, or NDJSON (one record a line)
// when Content-Type says application/x-ndjson. A malformed NDJSON line is
// handed on as it is and comes back as that row's error; a malformed array
// is a 400 for the whole body, since nothing after the fault can be read.
func readRows(r *http.Request) ([]json.RawMessage, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-ndjson", "application/jsonl":
		return readNDJSON(r.Body)
	case "", "application/json":
		return readArray(r.Body)
	default:
		return nil, &badRequest{slug: "unsupported-media-type", detail: "Content-Type must be application/json (an array) or application/x-ndjson"}
	}
}

func readArray(body io.Reader) ([]json.RawMessage, error) {
	dec := json.NewDecoder(body)
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &badRequest{slug: "malformed-json", detail: "body must be a JSON array of records (or NDJSON with Content-Type application/x-ndjson)"}
	}
	var rows []json.RawMessage
	for dec.More() {
		if len(rows) == store.MaxBatchRows {
			return nil, errTooManyRecords
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		rows = append(rows, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &badRequest{slug: "malformed-json", detail: "body must hold a single JSON array"}
	}
	if len(rows) == 0 {
		return nil, invalid("no records", map[string]string{"(body)": "at least one record"})
	}
	return rows, nil
}

func readNDJSON(body io.Reader) ([]json.RawMessage, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var rows []json.RawMessage
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if len(rows) == store.MaxBatchRows {
			return nil, errTooManyRecords
		}
		rows = append(rows, json.RawMessage(bytes.Clone(line)))
	}
	if err := sc.Err(); err != nil {
		if bodyReadFailed(err) {
			return nil, err
		}
		return nil, &badRequest{slug: "malformed-json", detail: "NDJSON: " + err.Error()}
	}
	if len(rows) == 0 {
		return nil, invalid("no records", map[string]string{"(body)": "at least one record"})
	}
	return rows, nil
}

func (s *server) getRecord(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	rec, err := s.db.GetRecord(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

type recordList struct {
	Records    []store.Record `json:"records"`
	NextCursor string         `json:"next_cursor"`
}

func (s *server) listRecords(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.db.ListRecords(r.Context(), orgFrom(r.Context()).ID, module, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Records == nil {
		page.Records = []store.Record{}
	}
	writeJSON(w, http.StatusOK, recordList{Records: page.Records, NextCursor: page.NextCursor})
}

func (s *server) deleteRecord(w http.ResponseWriter, r *http.Request) {
	module, ok := s.module(w, r)
	if !ok {
		return
	}
	if err := s.db.DeleteRecord(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
