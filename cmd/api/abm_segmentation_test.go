package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

type techniquesBody struct {
	Techniques []segment.View `json:"techniques"`
}

// GET shows each technique with its defaults in the shape PUT takes; a
// client changes a setting and puts the view back.
func TestTechniquesGetChangePut(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	got := decode[techniquesBody](t, e.do(t, "GET", "/v1/abm/techniques", e.keyA, ""))
	if len(got.Techniques) != 5 || got.Techniques[0].Technique != "rfm" || len(got.Techniques[0].Labels) != 8 || len(got.Techniques[1].Labels) != 3 ||
		len(got.Techniques[2].Labels) != 5 || len(got.Techniques[4].Labels) != 2 {
		t.Fatalf("defaults: %+v", got)
	}
	rfm := got.Techniques[0]
	var settings map[string]any
	_ = json.Unmarshal(rfm.Settings, &settings)
	if settings["mode"] != "automatic" || settings["scale"] != float64(5) || settings["recency_field"] != "close_date" {
		t.Fatalf("default rfm settings: %s", rfm.Settings)
	}
	settings["scale"] = 3
	rfm.Settings, _ = json.Marshal(settings)
	rfm.Labels = rfm.Labels[:2]
	body, _ := json.Marshal(rfm)
	r := e.do(t, "PUT", "/v1/abm/techniques/rfm", e.keyA, string(body))
	if r.StatusCode != 200 {
		t.Fatalf("PUT back: %d %s", r.StatusCode, readBody(r))
	}
	again := decode[techniquesBody](t, e.do(t, "GET", "/v1/abm/techniques", e.keyA, ""))
	var s2 map[string]any
	_ = json.Unmarshal(again.Techniques[0].Settings, &s2)
	if s2["scale"] != float64(3) || len(again.Techniques[0].Labels) != 2 || again.Techniques[0].Version != 1 {
		t.Fatalf("after PUT: %s %+v", again.Techniques[0].Settings, again.Techniques[0])
	}
	p := wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/rfm", e.keyA, `{"settings":{"mode":"sometimes","scale":9,"recency_field":"x","frequency":"deals","monetary_field":"amount"},"labels":[]}`), 400, "validation")
	for _, k := range []string{"settings.mode", "settings.scale", "settings.recency_field"} {
		if p.Errors[k] == "" {
			t.Errorf("no error for %s: %v", k, p.Errors)
		}
	}
	p = wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/firmographics", e.keyA, `{"settings":{},"labels":[{"name":"Only","criteria":{"conditions":[{"field":"industry","op":"gt","value":3}]}}]}`), 400, "validation")
	if p.Errors["labels"] == "" || !strings.Contains(p.Errors["labels[0].criteria.conditions[0].op"]+p.Errors["labels[0].criteria.conditions[0]"], "") {
		t.Errorf("one firmographic label: %v", p.Errors)
	}
	wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/voodoo", e.keyA, string(body)), 404, "unknown-technique")
}

// The limits answer with their status and problem type.
func TestTechniqueLimitsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	wantProblem(t, e.do(t, "POST", "/v1/abm/configure", e.keyA, ""), 409, "abm-not-ready")
	for _, name := range segment.Names {
		if r := e.do(t, "POST", "/v1/abm/techniques/"+name+"/activate", e.keyA, ""); r.StatusCode != 200 {
			t.Fatalf("activate %s: %d %s", name, r.StatusCode, readBody(r))
		}
	}
	r := e.do(t, "POST", "/v1/abm/configure", e.keyA, "")
	if r.StatusCode != 202 {
		t.Fatalf("configure: %d %s", r.StatusCode, readBody(r))
	}
	view := decode[techniquesBody](t, e.do(t, "GET", "/v1/abm/techniques", e.keyA, "")).Techniques[1]
	put := func(v segment.View) *http.Response {
		b, _ := json.Marshal(v)
		return e.do(t, "PUT", "/v1/abm/techniques/firmographics", e.keyA, string(b))
	}
	edit := func(lo int) segment.View {
		v := view
		v.Labels = append([]segment.Label(nil), view.Labels...)
		v.Labels[2].Criteria.Conditions = append(v.Labels[2].Criteria.Conditions[:0:0], v.Labels[2].Criteria.Conditions...)
		v.Labels[2].Criteria.Conditions[0].Value = json.RawMessage(fmt.Sprintf("[%d,99]", lo))
		return v
	}
	// Each edit of an active technique enqueues its refresh; no worker runs,
	// so mark it active again between edits, as a finished refresh would.
	active := func() {
		if _, err := e.db.ExecContext(context.Background(), `UPDATE techniques SET state = 'active' WHERE org_id = $1`, e.orgA.ID); err != nil {
			t.Fatal(err)
		}
	}
	if r := put(edit(2)); r.StatusCode != 200 {
		t.Fatalf("first edit after configuring: %d %s", r.StatusCode, readBody(r))
	}
	// Activations before configuring did not count: a second edit is
	// allowed, the third change of the day is refused.
	active()
	if r := put(edit(3)); r.StatusCode != 200 {
		t.Fatalf("second edit: %d %s", r.StatusCode, readBody(r))
	}
	active()
	r = put(edit(4))
	wantProblem(t, r, 429, "technique-edit-limit")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 86401 {
		t.Errorf("Retry-After %q, want the seconds to midnight UTC", r.Header.Get("Retry-After"))
	}
	renamed := edit(3) // the labels as stored, one renamed
	renamed.Labels[0].Name = "Large enterprise"
	if r := put(renamed); r.StatusCode != 200 {
		t.Fatalf("rename is free: %d %s", r.StatusCode, readBody(r))
	}
	if _, err := e.db.ExecContext(context.Background(), `UPDATE techniques SET state = 'refreshing', updated_at = now() WHERE org_id = $1`, e.orgA.ID); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, put(renamed), 409, "technique-refreshing")
	active()
	if r := e.do(t, "POST", "/v1/abm/techniques/firmographics/deactivate", e.keyA, ""); r.StatusCode != 200 {
		t.Fatalf("deactivate is free: %d %s", r.StatusCode, readBody(r))
	}
	if r := e.do(t, "POST", "/v1/abm/refresh", e.keyA, `{"technique":"rfm"}`); r.StatusCode != 202 {
		t.Fatalf("refresh: %d %s", r.StatusCode, readBody(r))
	}
	if r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"segment:refresh","technique":"firmographics"}`); r.StatusCode != 202 {
		t.Fatalf("POST /v1/jobs segment:refresh: %d %s", r.StatusCode, readBody(r))
	}
	wantProblem(t, e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"segment:refresh","technique":"nosuch"}`), 400, "validation")
}

// GET /v1/accounts/{id}/labels explains each label with the values, the
// scores and the rule that decided it.
func TestAccountLabelsExplain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newAPI(t)
	e.ingest(t, "accounts",
		`{"external_id":"acc-1","name":"Acme","industry":"Healthcare","employees":4000,"country":"DE"}`,
		`{"external_id":"acc-2","name":"Beta","industry":"Retail","employees":40,"country":"FR"}`,
		`{"external_id":"acc-3","name":"Gamma","industry":"Retail","employees":40}`)
	e.ingest(t, "deals",
		`{"external_id":"d1","account":"acc-1","stage":"Closed Won","amount":900,"close_date":"`+time.Now().AddDate(0, 0, -10).Format(time.DateOnly)+`"}`,
		`{"external_id":"d2","account":"acc-1","stage":"Closed Won","amount":100,"close_date":"`+time.Now().AddDate(0, 0, -40).Format(time.DateOnly)+`"}`)
	if r := e.do(t, "PUT", "/v1/abm/global-criteria", e.keyA, `{"conditions":[{"field":"country","op":"is_not_empty"}]}`); r.StatusCode != 200 {
		t.Fatalf("global criteria: %d %s", r.StatusCode, readBody(r))
	}
	wantProblem(t, e.do(t, "PUT", "/v1/abm/global-criteria", e.keyA, `{"conditions":[{"field":"country; DROP TABLE accounts","op":"is_not_empty"}]}`), 400, "validation")
	for _, name := range segment.Names {
		e.do(t, "POST", "/v1/abm/techniques/"+name+"/activate", e.keyA, "")
	}
	ref := segment.Refresher{Store: e.db, Now: time.Now, Log: quiet}
	if _, err := ref.Run(ctx, workers.Job[jobs.SegmentRefreshPayload]{ID: "j1", Payload: jobs.SegmentRefreshPayload{OrgID: e.orgA.ID}}); err != nil {
		t.Fatal(err)
	}
	page := decode[store.ABMAccountPage](t, e.do(t, "GET", "/v1/abm/accounts?limit=1", e.keyA, ""))
	if len(page.Accounts) != 1 || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	next := decode[store.ABMAccountPage](t, e.do(t, "GET", "/v1/abm/accounts?limit=5&cursor="+page.NextCursor, e.keyA, ""))
	if len(next.Accounts) != 1 || next.Accounts[0].ID != "acc-2" || next.Accounts[0].Labels["firmographics"] != "Small business" {
		t.Fatalf("second page (acc-3 has no country: out of scope): %+v", next)
	}

	ex := decode[segment.Explanation](t, e.do(t, "GET", "/v1/accounts/acc-1/labels", e.keyA, ""))
	if !ex.InScope || len(ex.Techniques) != 5 {
		t.Fatalf("explanation: %+v", ex)
	}
	rfm, firm := ex.Techniques[0], ex.Techniques[1]
	// acc-1 is the only account with won deals: every score is 5.
	if rfm.Label == nil || *rfm.Label != "Champions" || rfm.Scores["r"] != 5 || rfm.Rule == nil || rfm.Rule.Index != 0 ||
		fmt.Sprint(rfm.Values["recency_days"]) != "10" || fmt.Sprint(rfm.Values["frequency"]) != "2" || fmt.Sprint(rfm.Values["monetary"]) != "1000" {
		t.Errorf("rfm explanation: %+v (rule %+v)", rfm, rfm.Rule)
	}
	if firm.Label == nil || *firm.Label != "Enterprise" || firm.Rule == nil || fmt.Sprint(firm.Values["employees"]) != "4000" {
		t.Errorf("firmographics explanation: %+v", firm)
	}
	ex2 := decode[segment.Explanation](t, e.do(t, "GET", "/v1/accounts/acc-2/labels", e.keyA, ""))
	if ex2.Techniques[0].Label != nil || !strings.Contains(ex2.Techniques[0].Note, "no qualifying deal") {
		t.Errorf("acc-2 rfm: %+v, want no score and a note saying so", ex2.Techniques[0])
	}
	ex3 := decode[segment.Explanation](t, e.do(t, "GET", "/v1/accounts/acc-3/labels", e.keyA, ""))
	if ex3.InScope || !strings.Contains(ex3.Techniques[1].Note, "outside the global criteria") {
		t.Errorf("acc-3: %+v, want out of scope", ex3)
	}
	wantProblem(t, e.do(t, "GET", "/v1/accounts/acc-1/labels", e.keyB, ""), 404, "not-found")
}

func readBody(r *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// A segment that names a label locks it: changing that label's criteria
// is 409 technique-in-use, with the segment named.
func TestTechniqueInUseOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	if r := e.do(t, "POST", "/v1/segments", e.keyA, `{"name":"Champions","criteria":{"conditions":[{"field":"label.rfm","op":"equals","value":"Champions"}]}}`); r.StatusCode != 201 {
		t.Fatalf("segment: %d %s", r.StatusCode, readBody(r))
	}
	rfm := decode[techniquesBody](t, e.do(t, "GET", "/v1/abm/techniques", e.keyA, "")).Techniques[0]
	rfm.Labels[0].Criteria.Conditions = rfm.Labels[0].Criteria.Conditions[:1]
	body, _ := json.Marshal(rfm)
	r := e.do(t, "PUT", "/v1/abm/techniques/rfm", e.keyA, string(body))
	var p struct {
		Type     string   `json:"type"`
		Segments []string `json:"segments"`
	}
	if r.StatusCode != 409 || json.NewDecoder(r.Body).Decode(&p) != nil || p.Type != "urn:crmq:problem:technique-in-use" || len(p.Segments) != 1 || p.Segments[0] != "Champions" {
		t.Fatalf("edit of a label a segment names: %d %+v", r.StatusCode, p)
	}
	wantProblem(t, e.do(t, "POST", "/v1/abm/techniques/rfm/deactivate", e.keyA, ""), 409, "technique-in-use")
}

// The behavioural techniques' label limits are 400 problems over HTTP;
// recommendations of an unknown account are 404, of a known one a list.
func TestBehaviourLimitsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	four := `{"settings": {"window_days": 90, "channels": {"email": {"enabled": true, "response_points": 6}}},
		"labels": [{"name":"a","range":{"from":0,"to":24}},{"name":"b","range":{"from":25,"to":49}},{"name":"c","range":{"from":50,"to":74}},{"name":"d","range":{"from":75,"to":100}}]}`
	p := wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/engagement", e.keyA, four), 400, "validation")
	if p.Errors["labels"] == "" {
		t.Errorf("errors %v, want labels", p.Errors)
	}
	noPref := `{"settings": {"sources": ["email"], "window_days": 30, "keywords": [], "competitors": []}, "labels": [{"name": "Empty"}]}`
	p = wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/voc", e.keyA, noPref), 400, "validation")
	if p.Errors["labels[0].criteria"] == "" {
		t.Errorf("errors %v, want labels[0].criteria", p.Errors)
	}
	badClassifier := `{"settings": {"sources": ["email"], "window_days": 30, "keywords": [], "competitors": [], "intent_classifier": "gpt"},
		"labels": [{"name": "Buyers", "criteria": {"conditions": [{"field": "intent.purchase", "op": "gte", "value": 50}]}}]}`
	p = wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/voc", e.keyA, badClassifier), 400, "validation")
	if p.Errors["settings.intent_classifier"] == "" {
		t.Errorf("errors %v, want settings.intent_classifier", p.Errors)
	}
	oneType := `{"settings": {"min_support_count": 2, "max_per_type": 5}, "labels": [
		{"name": "a", "preferences": {"types": [{"type": "next_buy"}], "min_probability": 50}},
		{"name": "b", "preferences": {"types": [{"type": "next_buy"}, {"type": "bundle"}], "min_probability": 1}}]}`
	p = wantProblem(t, e.do(t, "PUT", "/v1/abm/techniques/recommendations", e.keyA, oneType), 400, "validation")
	if p.Errors["labels[0].preferences.types"] == "" {
		t.Errorf("errors %v, want labels[0].preferences.types", p.Errors)
	}
	wantProblem(t, e.do(t, "GET", "/v1/accounts/nope/recommendations", e.keyA, ""), 404, "not-found")
}
