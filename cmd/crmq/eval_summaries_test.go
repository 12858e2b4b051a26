package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// `crmq eval summaries` holds the offline provider to its thresholds in
// make test, and exits 1 on a set it falls short of.
func TestEvalSummaries(t *testing.T) {
	code, stdout, stderr := crmq(t, "eval", "summaries")
	if code != 0 || !strings.Contains(stdout, "20 records") ||
		!strings.Contains(stdout, "invented 0 (threshold 0; invented numbers 0, invented names 0)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	set := filepath.Join(t.TempDir(), "set.json")
	hard := `{"cases":[{"name":"a fact no summary states","module":"leads","today":"2026-06-02T09:30:00Z",
		"graph":{"Subject":{"Module":"leads","ID":"lead-1","Fields":{"company":"company-1"}}},
		"must_mention":["a phrase no summary says"]}]}`
	if err := os.WriteFile(set, []byte(hard), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = crmq(t, "eval", "summaries", "--set", set)
	if code != 1 || !strings.Contains(stdout, "coverage 0.0%") || !strings.Contains(stderr, "coverage 0.0% (at least 90%)") {
		t.Fatalf("a failing set: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if code, _, _ := crmq(t, "eval", "summaries", "--provider", "nobody"); code != 2 {
		t.Errorf("an unknown provider: exit %d, want 2", code)
	}
}

// `crmq eval summaries --provider gemini` scores Gemini once GEMINI_API_KEY
// is set (CRMQ_GEMINI_BASE_URL points it at a server speaking the Gemini
// REST protocol, here a test server). The server answers every section of
// every record with a bullet naming someone the facts do not hold, and the
// first with an invented number too: the report counts both kinds.
func TestEvalSummariesWithGemini(t *testing.T) {
	subjectRE := regexp.MustCompile(`Summarise the \S+ record (\S+) for a CRM user`)
	sectionRE := regexp.MustCompile(`(?m)^- (\w+) \(`)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req struct {
			Contents []struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"contents"`
		}
		if r.Header.Get("x-goog-api-key") != "eval-test-key" || json.NewDecoder(r.Body).Decode(&req) != nil || len(req.Contents) == 0 {
			http.Error(w, `{"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}`, http.StatusBadRequest)
			return
		}
		user := req.Contents[0].Parts[0].Text
		ref := subjectRE.FindStringSubmatch(user)[1]
		var sections []map[string]any
		for i, m := range sectionRE.FindAllStringSubmatch(user, -1) {
			text := "The record is run by Omega Zeta."
			if i == 0 {
				text = "The record is worth 987654321.55."
			}
			sections = append(sections, map[string]any{"key": m[1], "bullets": []map[string]any{{"text": text, "sources": []string{ref}}}})
		}
		answer, _ := json.Marshal(map[string]any{"sections": sections})
		text, _ := json.Marshal(string(answer))
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":`+string(text)+`}],"role":"model"},"finishReason":"STOP","index":0}],`+
			`"usageMetadata":{"promptTokenCount":900,"candidatesTokenCount":80,"totalTokenCount":980},"modelVersion":"gemini-eval-test"}`)
	}))
	defer srv.Close()

	t.Setenv("GEMINI_API_KEY", "")
	if code, _, stderr := crmq(t, "eval", "summaries", "--provider", "gemini"); code != 2 || !strings.Contains(stderr, "GEMINI_API_KEY") {
		t.Errorf("without a key: exit %d, stderr %s", code, stderr)
	}
	t.Setenv("GEMINI_API_KEY", "eval-test-key")
	t.Setenv("CRMQ_GEMINI_BASE_URL", srv.URL)
	t.Setenv("CRMQ_GEMINI_MODEL", "gemini-eval-test")
	code, stdout, stderr := crmq(t, "eval", "summaries", "--provider", "gemini")
	if code != 1 || !strings.Contains(stdout, "provider gemini, model gemini-eval-test, 20 records") || requests.Load() != 20 {
		t.Fatalf("exit %d after %d requests\nstdout:\n%s\nstderr:\n%s", code, requests.Load(), stdout, stderr)
	}
	m := regexp.MustCompile(`invented (\d+) \(threshold 0; invented numbers (\d+), invented names (\d+)\)`).FindStringSubmatch(stdout)
	if m == nil || m[2] != "20" || m[3] == "0" || m[1] != fmt.Sprint(20+atoi(t, m[3])) {
		t.Errorf("want 20 invented numbers and the names counted apart, got %q\n%s", m, stdout)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
