package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/crmq/crmq/store"
)

// labelAccount writes an account's RFM label as the labelling step would.
func (e *apiEnv) labelAccount(t *testing.T, account, label string) {
	t.Helper()
	_, err := e.db.ExecContext(context.Background(), `
		INSERT INTO account_labels (org_id, technique, account_id, label, computed_at, run_id)
		SELECT $1, 'rfm', id, $3, now(), 'test' FROM accounts WHERE org_id = $1 AND external_id = $2
		ON CONFLICT (org_id, technique, account_id) DO UPDATE SET label = EXCLUDED.label`, e.orgA.ID, account, label)
	if err != nil {
		t.Fatal(err)
	}
}

// wantStatus stops the test, showing the body, unless r has status.
func wantStatus(t *testing.T, r *http.Response, status int) {
	t.Helper()
	if r.StatusCode != status {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, b)
	}
}

const zylkerSegment = `{"name": "Healthcare at risk (DE)", "description": "renewals first", "criteria": {"conditions": [
	{"field": "label.rfm", "op": "equals", "value": "At risk"},
	{"field": "industry", "op": "equals", "value": "Healthcare"},
	{"field": "country", "op": "equals", "value": "DE"}]}}`

// A client creates the seed's Zylker segment, reads it, pages its
// members, edits it and deletes it; another org sees none of it, and a
// key without abm is refused.
func TestSegmentsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.ingest(t, "accounts",
		`{"external_id":"H1","name":"Clinic One","industry":"Healthcare","country":"DE"}`,
		`{"external_id":"H2","name":"Clinic Two","industry":"Healthcare","country":"DE"}`,
		`{"external_id":"H3","name":"Clinic Three","industry":"Healthcare","country":"FR"}`,
		`{"external_id":"T1","name":"Techno","industry":"Technology","country":"DE"}`)
	e.ingest(t, "deals", `{"external_id":"d1","name":"renewal","account":"H1","stage":"Closed Won","amount":1200.25,"close_date":"2026-01-10"}`)
	for _, a := range []string{"H1", "H2", "H3", "T1"} {
		e.labelAccount(t, a, "At risk")
	}

	r := e.do(t, "POST", "/v1/segments", e.keyA, zylkerSegment)
	wantStatus(t, r, http.StatusCreated)
	seg := decode[store.Segment](t, r)
	if seg.MemberCount != 2 || seg.ComputedAt == nil || seg.Name != "Healthcare at risk (DE)" || len(seg.Criteria.Conditions) != 3 {
		t.Fatalf("created %+v, want 2 members computed", seg)
	}
	path := "/v1/segments/" + strconv.FormatInt(seg.ID, 10)
	if loc := r.Header.Get("Location"); loc != path {
		t.Errorf("Location %q, want %q", loc, path)
	}

	t.Run("the list and the segment with its stats", func(t *testing.T) {
		list := decode[segmentList](t, e.do(t, "GET", "/v1/segments", e.keyA, ""))
		if len(list.Segments) != 1 || list.Segments[0].ID != seg.ID {
			t.Fatalf("list %+v", list)
		}
		r := e.do(t, "GET", path, e.keyA, "")
		if r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		d := decode[store.SegmentDetail](t, r)
		st := d.Stats
		if d.Name != seg.Name || st.Members != 2 || st.WonRevenue.Total != "1200.25" || st.WonRevenue.Average == nil || *st.WonRevenue.Average != "600.13" ||
			st.Labels["rfm"].Labels["At risk"] != 2 || st.Labels["firmographics"].Unlabelled != 2 ||
			!slices.Equal(st.TopCountries, []store.ValueCount{{Value: "DE", Count: 2}}) {
			t.Errorf("detail %+v", d)
		}
	})
	t.Run("the members, a page at a time", func(t *testing.T) {
		first := decode[store.SegmentMemberPage](t, e.do(t, "GET", path+"/accounts?limit=1", e.keyA, ""))
		if len(first.Accounts) != 1 || first.Accounts[0].ID != "H1" || first.NextCursor == "" {
			t.Fatalf("first page %+v", first)
		}
		if l := first.Accounts[0].Labels["rfm"].Label; l == nil || *l != "At risk" || *first.Accounts[0].Name != "Clinic One" {
			t.Errorf("member %+v", first.Accounts[0])
		}
		second := decode[store.SegmentMemberPage](t, e.do(t, "GET", path+"/accounts?limit=1&cursor="+first.NextCursor, e.keyA, ""))
		if len(second.Accounts) != 1 || second.Accounts[0].ID != "H2" || second.NextCursor != "" {
			t.Fatalf("second page %+v", second)
		}
		wantProblem(t, e.do(t, "GET", path+"/accounts?cursor=nope", e.keyA, ""), 400, "validation")
		wantProblem(t, e.do(t, "GET", path+"/accounts?limit=0", e.keyA, ""), 400, "validation")
	})
	t.Run("a criteria error is a 400 naming the condition", func(t *testing.T) {
		p := wantProblem(t, e.do(t, "POST", "/v1/segments", e.keyA, `{"name": "Bad", "criteria": {"conditions": [
			{"field": "industry", "op": "equals", "value": "Healthcare"},
			{"field": "label.nosuch", "op": "is_empty"}]}}`), 400, "validation")
		if p.Errors["criteria.conditions[1].field"] == "" || len(p.Errors) != 1 {
			t.Errorf("errors %v, want criteria.conditions[1].field alone", p.Errors)
		}
		p = wantProblem(t, e.do(t, "POST", "/v1/segments", e.keyA, `{"name": ""}`), 400, "validation")
		if p.Errors["name"] == "" || p.Errors["criteria"] == "" {
			t.Errorf("errors %v, want name and criteria", p.Errors)
		}
		wantProblem(t, e.do(t, "POST", "/v1/segments", e.keyA, `{"name": "x", "criteria": {"conditions": []}, "owner": "me"}`), 400, "validation")
		wantProblem(t, e.do(t, "POST", "/v1/segments", e.keyA, `{"name": "x", "criteria": {"conditions": [{"field": "country", "op": "is_empty", "values": 1}]}}`), 400, "validation")
	})
	t.Run("a taken name is a 409", func(t *testing.T) {
		wantProblem(t, e.do(t, "POST", "/v1/segments", e.keyA, zylkerSegment), 409, "conflict")
	})
	t.Run("another org's segment is a 404", func(t *testing.T) {
		wantProblem(t, e.do(t, "GET", path, e.keyB, ""), 404, "not-found")
		wantProblem(t, e.do(t, "GET", path+"/accounts", e.keyB, ""), 404, "not-found")
		wantProblem(t, e.do(t, "PUT", path, e.keyB, zylkerSegment), 404, "not-found")
		wantProblem(t, e.do(t, "DELETE", path, e.keyB, ""), 404, "not-found")
		wantProblem(t, e.do(t, "GET", "/v1/segments/nope", e.keyA, ""), 404, "not-found")
		if list := decode[segmentList](t, e.do(t, "GET", "/v1/segments", e.keyB, "")); len(list.Segments) != 0 {
			t.Errorf("org b lists %+v", list)
		}
	})
	t.Run("a key without abm is a 403", func(t *testing.T) {
		key := e.scopedKey(t, store.ScopeABMSetup, store.ScopeRecordsRead)
		wantProblem(t, e.do(t, "POST", "/v1/segments", key, zylkerSegment), 403, "insufficient-scope")
		wantProblem(t, e.do(t, "GET", path, key, ""), 403, "insufficient-scope")
		if r := e.do(t, "GET", path, e.scopedKey(t, store.ScopeABM), ""); r.StatusCode != 200 {
			t.Errorf("a key with only abm: %d", r.StatusCode)
		}
	})

	// Editing recomputes: France instead of Germany.
	r = e.do(t, "PUT", path, e.keyA, `{"name": "Healthcare at risk (FR)", "criteria": {"conditions": [
		{"field": "label.rfm", "op": "equals", "value": "At risk"}, {"field": "country", "op": "equals", "value": "FR"}]}}`)
	wantStatus(t, r, http.StatusOK)
	if got := decode[store.Segment](t, r); got.MemberCount != 1 || got.Description != "" || got.Name != "Healthcare at risk (FR)" {
		t.Errorf("edited %+v, want one member and the description cleared", got)
	}
	page := decode[store.SegmentMemberPage](t, e.do(t, "GET", path+"/accounts", e.keyA, ""))
	if len(page.Accounts) != 1 || page.Accounts[0].ID != "H3" {
		t.Errorf("members after the edit %+v, want H3", page)
	}

	// Deleting releases the technique and its label.
	ctx := context.Background()
	if refs, err := e.db.SegmentsUsing(ctx, e.orgA.ID, "rfm", []string{"At risk"}); err != nil || len(refs) != 1 {
		t.Fatalf("before delete: %v, %v", refs, err)
	}
	if r := e.do(t, "DELETE", path, e.keyA, ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if refs, err := e.db.SegmentsUsing(ctx, e.orgA.ID, "rfm", nil); err != nil || len(refs) != 0 {
		t.Errorf("after delete: %v, %v", refs, err)
	}
	wantProblem(t, e.do(t, "GET", path, e.keyA, ""), 404, "not-found")
	wantProblem(t, e.do(t, "DELETE", path, e.keyA, ""), 404, "not-found")
}
