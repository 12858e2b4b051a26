package offline_test

import (
	"context"
	"testing"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
)

func TestTheOfflineProviderClassifiesByTheLabelWithTheMostKeywords(t *testing.T) {
	c := llm.Classification{
		Text: "We bake bread and pastries. Our bakery café serves coffee; the restaurant opens at noon. Software-free zone.",
		Questions: []llm.Question{
			{Key: "industry", Ask: "Which industry?", Labels: []llm.Label{
				{Name: "Software", Keywords: []string{"software", "saas"}},
				{Name: "Food & Beverage", Keywords: []string{"bakery", "restaurant", "coffee"}},
			}},
			{Key: "size_band", Ask: "How large?", Labels: []llm.Label{{Name: "10001+", Keywords: []string{"multinational"}}}},
		},
	}
	resp, err := offline.New().Generate(context.Background(), llm.ClassifyRequest(1, c))
	if err != nil {
		t.Fatal(err)
	}
	got := llm.Classified(c, resp.Answer)
	if got["industry"] != "Food & Beverage" {
		t.Fatalf("industry %q, want Food & Beverage (answer %+v)", got["industry"], resp.Answer)
	}
	if _, ok := got["size_band"]; ok {
		t.Fatalf("size band %q from no keyword", got["size_band"])
	}
	if src := resp.Answer.Sections[0].Bullets[0].Sources[0]; src != "keyword:bakery" {
		t.Fatalf("source %q", src)
	}
}

func TestAClassificationAnswerKeepsOnlyAllowedLabels(t *testing.T) {
	c := llm.Classification{Questions: []llm.Question{{Key: "industry", Labels: []llm.Label{{Name: "Retail"}}}}}
	a := llm.Answer{Sections: []llm.SectionAnswer{{Key: "industry", Bullets: []llm.Bullet{{Text: "Piracy"}}}}}
	if got := llm.Classified(c, a); len(got) != 0 {
		t.Fatalf("%v", got)
	}
	a.Sections[0].Bullets[0].Text = " retail "
	if got := llm.Classified(c, a); got["industry"] != "Retail" {
		t.Fatalf("%v", got)
	}
}
