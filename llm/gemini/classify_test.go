package gemini

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/crmq/crmq/llm"
)

// A classification goes to Gemini as a structured request whose schema
// allows only the labels, and its answer reads back as one label per
// question.
func TestAClassificationIsAskedWithTheLabelsAsItsSchema(t *testing.T) {
	answer := `{"sections":[{"key":"industry","bullets":[{"text":"Retail","sources":["site"]}]},{"key":"size_band","bullets":[]}]}`
	f := newFake(t, http.StatusOK, candidate(answer, "STOP", ""))
	c := llm.Classification{Text: "We sell shoes in our three shops.", Questions: []llm.Question{
		{Key: "industry", Ask: "Which industry?", Labels: []llm.Label{{Name: "Retail"}, {Name: "Software"}}},
		{Key: "size_band", Ask: "How many employees?", Labels: []llm.Label{{Name: "1-10"}, {Name: "11-50"}}},
	}}
	resp, err := f.provider(t, "gemini-2.5-flash").Generate(context.Background(), llm.ClassifyRequest(3, c))
	if err != nil {
		t.Fatal(err)
	}
	got := llm.Classified(c, resp.Answer)
	if len(got) != 1 || got["industry"] != "Retail" {
		t.Fatalf("classified %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	enum, _ := dig(f.body, "generationConfig", "responseJsonSchema", "properties", "sections", "items", "properties", "bullets", "items", "properties", "text", "enum").([]any)
	var labels []string
	for _, e := range enum {
		labels = append(labels, e.(string))
	}
	if !slices.Equal(labels, []string{"Retail", "Software", "1-10", "11-50"}) {
		t.Fatalf("the schema's label enum %v", enum)
	}
}
