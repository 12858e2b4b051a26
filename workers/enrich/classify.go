package enrich

import (
	"context"
	"log/slog"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/workers/enrich/extract"
)

// SizeBands are the employee-count bands a size band names.
var SizeBands = []struct {
	Name     string
	Max      int // inclusive; 0 for the last
	Keywords []string
}{
	{"1-10", 10, []string{"freelance", "freelancer", "sole trader", "one-person", "solo"}},
	{"11-50", 50, []string{"small team", "family-owned", "family owned", "family business", "boutique", "startup", "start-up"}},
	{"51-200", 200, []string{"growing team", "scale-up", "scaleup", "mid-sized", "midsize"}},
	{"201-500", 500, []string{"hundreds of employees", "several offices", "nationwide"}},
	{"501-1000", 1000, []string{"regional leader", "offices across"}},
	{"1001-5000", 5000, []string{"thousands of employees", "international group", "global presence"}},
	{"5001-10000", 10000, []string{"multinational", "worldwide offices"}},
	{"10001+", 0, []string{"fortune 500", "global leader", "one of the world's largest"}},
}

// Industries are the labels an industry classification chooses from, with
// the keywords the offline provider looks for.
var Industries = []llm.Label{
	{Name: "Software & Internet", Keywords: []string{"software", "saas", "platform", "app", "cloud", "api", "developers"}},
	{Name: "IT Services", Keywords: []string{"it services", "managed services", "consulting", "system integration", "outsourcing"}},
	{Name: "Manufacturing", Keywords: []string{"manufacturing", "manufacturer", "factory", "industrial", "machinery", "production"}},
	{Name: "Retail", Keywords: []string{"retail", "store", "shop", "boutique", "shopping"}},
	{Name: "E-commerce", Keywords: []string{"online store", "e-commerce", "ecommerce", "free shipping", "checkout", "cart"}},
	{Name: "Financial Services", Keywords: []string{"bank", "banking", "finance", "financial", "payments", "investment", "lending", "fintech"}},
	{Name: "Insurance", Keywords: []string{"insurance", "insurer", "underwriting", "policyholders"}},
	{Name: "Healthcare", Keywords: []string{"healthcare", "health", "clinic", "hospital", "patients", "medical", "care"}},
	{Name: "Pharmaceuticals & Biotech", Keywords: []string{"pharmaceutical", "biotech", "drug", "clinical trials", "therapeutics"}},
	{Name: "Education", Keywords: []string{"education", "school", "university", "students", "learning", "courses", "training"}},
	{Name: "Construction", Keywords: []string{"construction", "builder", "contractor", "building", "renovation"}},
	{Name: "Real Estate", Keywords: []string{"real estate", "property", "properties", "realtor", "leasing"}},
	{Name: "Hospitality & Travel", Keywords: []string{"hotel", "travel", "tourism", "booking", "resort", "hospitality"}},
	{Name: "Food & Beverage", Keywords: []string{"food", "restaurant", "bakery", "coffee", "beverage", "catering", "brewery"}},
	{Name: "Transportation & Logistics", Keywords: []string{"logistics", "shipping", "freight", "transport", "delivery", "warehouse"}},
	{Name: "Energy & Utilities", Keywords: []string{"energy", "solar", "utility", "utilities", "renewable", "oil", "gas", "power"}},
	{Name: "Telecommunications", Keywords: []string{"telecom", "telecommunications", "mobile network", "broadband", "carrier"}},
	{Name: "Media & Entertainment", Keywords: []string{"media", "entertainment", "publishing", "film", "music", "news"}},
	{Name: "Marketing & Advertising", Keywords: []string{"marketing", "advertising", "agency", "branding", "campaigns", "seo"}},
	{Name: "Professional Services", Keywords: []string{"accounting", "accountants", "audit", "tax advisory", "professional services"}},
	{Name: "Legal", Keywords: []string{"law firm", "lawyers", "attorneys", "legal services", "litigation"}},
	{Name: "Automotive", Keywords: []string{"automotive", "cars", "vehicles", "dealership", "auto parts"}},
	{Name: "Agriculture", Keywords: []string{"agriculture", "farm", "farming", "crops", "agritech"}},
	{Name: "Non-profit", Keywords: []string{"non-profit", "nonprofit", "charity", "donate", "foundation"}},
	{Name: "Government", Keywords: []string{"government", "ministry", "municipality", "public sector"}},
}

// bandOf is the size band of an employee count.
func bandOf(n int) string {
	for _, b := range SizeBands {
		if b.Max == 0 || n <= b.Max {
			return b.Name
		}
	}
	return ""
}

// deriveSizeBand sets the size band from an employee count found on the
// site, with the count's source.
func deriveSizeBand(best map[string]extract.Finding) {
	if _, ok := best[extract.SizeBand]; ok {
		return
	}
	e, ok := best[extract.Employees]
	if !ok {
		return
	}
	n, ok := e.Value.(int)
	if !ok {
		return
	}
	f := e
	f.Field, f.Value, f.Evidence = extract.SizeBand, bandOf(n), "from the employee count ("+e.Evidence+")"
	best[extract.SizeBand] = f
}

// classify asks the provider for the industry and size band the site's
// structured data did not give, and records them with the LLM's lower
// confidence. A provider failure leaves them unset: the rest of the
// proposal stands.
func (c Crawler) classify(ctx context.Context, orgID int64, best map[string]extract.Finding, text, home string) {
	if c.Provider == nil || strings.TrimSpace(text) == "" {
		return
	}
	var qs []llm.Question
	if _, ok := best[extract.Industry]; !ok {
		qs = append(qs, llm.Question{Key: extract.Industry, Ask: "Which industry is the company in?", Labels: Industries})
	}
	if _, ok := best[extract.SizeBand]; !ok {
		labels := make([]llm.Label, len(SizeBands))
		for i, b := range SizeBands {
			labels[i] = llm.Label{Name: b.Name, Keywords: b.Keywords}
		}
		qs = append(qs, llm.Question{Key: extract.SizeBand, Ask: "How many employees does the company have (band)?", Labels: labels})
	}
	if len(qs) == 0 {
		return
	}
	if len(text) > 20000 {
		text = text[:20000]
	}
	cl := llm.Classification{Text: text, Questions: qs}
	resp, err := c.Provider.Generate(ctx, llm.ClassifyRequest(orgID, cl))
	if err != nil {
		slog.WarnContext(ctx, "classification skipped", "org_id", orgID, "err", err)
		return
	}
	for key, label := range llm.Classified(cl, resp.Answer) {
		ev := c.Provider.Name() + " classification"
		for _, s := range resp.Answer.Sections {
			if s.Key == key && len(s.Bullets) > 0 && len(s.Bullets[0].Sources) > 0 {
				ev += " (" + strings.Join(s.Bullets[0].Sources, ", ") + ")"
			}
		}
		best[key] = extract.Finding{Field: key, Value: label, URL: home, Source: extract.SourceLLM,
			Confidence: extract.Confidence[extract.SourceLLM], Evidence: ev}
	}
}
