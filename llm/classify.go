package llm

import (
	"encoding/json"
	"strings"
)

// Classification asks a provider to put a text into one label per
// question (enrichment's industry and size band when a site states
// neither). It rides on the ordinary Request: each question is a section
// whose single bullet's text is the chosen label, so a remote provider
// answers it with the same structured output as a summary, and the
// offline provider picks labels by their keywords.
type Classification struct {
	Text      string     `json:"text"` // what to classify (a site's text)
	Questions []Question `json:"questions"`
}

// Question is one thing to classify and its allowed labels.
type Question struct {
	Key    string  `json:"key"` // the section key of the answer
	Ask    string  `json:"ask"`
	Labels []Label `json:"labels"`
}

// Label is one allowed answer; Keywords are what the offline provider
// looks for in the text (whole words, case-insensitive).
type Label struct {
	Name     string   `json:"name"`
	Keywords []string `json:"keywords,omitempty"`
}

// ClassifyRequest builds the request of a classification.
func ClassifyRequest(orgID int64, c Classification) Request {
	sections := make([]SectionSpec, len(c.Questions))
	var ask strings.Builder
	ask.WriteString("Classify the company whose website text follows. Answer one section per question, its key the question's key, with exactly one bullet whose text is one of the allowed labels, verbatim, and whose sources is [\"site\"]. Leave a section's bullets empty when the text does not support any label.\n\n")
	for i, q := range c.Questions {
		sections[i] = SectionSpec{Key: q.Key, Title: q.Key, Instruction: q.Ask}
		names := make([]any, len(q.Labels))
		for j, l := range q.Labels {
			names[j] = l.Name
		}
		b, _ := json.Marshal(names)
		ask.WriteString("Question " + q.Key + ": " + q.Ask + " Allowed labels: " + string(b) + "\n")
	}
	ask.WriteString("\nWebsite text:\n" + c.Text)
	var keys, labels []any
	for _, q := range c.Questions {
		keys = append(keys, q.Key)
		for _, l := range q.Labels {
			labels = append(labels, l.Name)
		}
	}
	// AnswerSchema's shape, a bullet's text limited to the labels.
	schema := map[string]any{
		"type": "object", "required": []any{"sections"},
		"properties": map[string]any{"sections": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object", "required": []any{"key", "bullets"},
				"properties": map[string]any{
					"key": map[string]any{"type": "string", "enum": keys},
					"bullets": map[string]any{"type": "array", "items": map[string]any{
						"type": "object", "required": []any{"text", "sources"},
						"properties": map[string]any{
							"text":    map[string]any{"type": "string", "enum": labels},
							"sources": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						},
					}},
				},
			},
		}},
	}
	return Request{
		OrgID:    orgID,
		System:   "You classify companies from their own website text. Use only the text given.",
		User:     ask.String(),
		Schema:   schema,
		Sections: sections,
		Classify: &c,
	}
}

// Classified reads the label chosen for each question from an answer,
// keeping only labels the question allows.
func Classified(c Classification, a Answer) map[string]string {
	out := map[string]string{}
	for _, s := range a.Sections {
		for _, q := range c.Questions {
			if q.Key != s.Key || len(s.Bullets) == 0 {
				continue
			}
			got := strings.TrimSpace(s.Bullets[0].Text)
			for _, l := range q.Labels {
				if strings.EqualFold(l.Name, got) {
					out[q.Key] = l.Name
				}
			}
		}
	}
	return out
}
