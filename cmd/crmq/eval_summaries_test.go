package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `crmq eval summaries` holds the offline provider to its thresholds in
// make test, and exits 1 on a set it falls short of.
func TestEvalSummaries(t *testing.T) {
	code, stdout, stderr := crmq(t, "eval", "summaries")
	if code != 0 || !strings.Contains(stdout, "20 records") || !strings.Contains(stdout, "invented 0 (threshold 0)") {
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
