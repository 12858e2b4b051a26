package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Every route the client calls is in the API's OpenAPI document, with the
// same method and parameter names, so the two cannot drift.
func TestRoutesAreInTheOpenAPIDocument(t *testing.T) {
	raw, err := os.ReadFile("../cmd/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(Routes) == 0 {
		t.Fatal("no routes")
	}
	for _, r := range Routes {
		method, path, _ := strings.Cut(r, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the client calls %q, which openapi.yaml does not document", r)
		}
	}
}

func TestRouteFillEscapesEachParameter(t *testing.T) {
	m, p, err := rJob.fill([]any{"a/b c"})
	if err != nil || m != "GET" || p != "/v1/jobs/a%2Fb%20c" {
		t.Fatalf("%s %s %v", m, p, err)
	}
	if _, _, err := rJob.fill(nil); err == nil {
		t.Fatal("a missing parameter passed")
	}
	if _, _, err := rEnqueue.fill([]any{1}); err == nil {
		t.Fatal("an extra argument passed")
	}
}

// A problem+json answer becomes a *Problem that errors.As and errors.Is
// match; another body keeps its status.
func TestProblemsAreTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/jobs/busy":
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"type":"urn:crmq:problem:unavailable","title":"Service Unavailable","status":503,"detail":"redis"}`))
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		}
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, "k")
	_, err := c.Job(t.Context(), "busy")
	var p *Problem
	if !errors.As(err, &p) || p.Slug() != "unavailable" || p.RetryAfter != 3*time.Second || !p.Temporary() || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("%#v", err)
	}
	_, err = c.Job(t.Context(), "other")
	if !errors.As(err, &p) || p.Status != http.StatusBadGateway || !strings.Contains(p.Detail, "bad gateway") {
		t.Fatalf("%#v", err)
	}
}
