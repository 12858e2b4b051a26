// Package offline is the provider that needs no model and no network: it
// composes every asked section from the request's facts alone, copying
// names, counts, amounts, dates and statuses as the facts hold them, and
// cites on every bullet the refs it rests on. Text sections (risks,
// expansion, relational health) come from cue phrases found in activity
// notes and subjects, case subjects and KPI comments (cues.json); where no
// phrase is found the section says so instead of guessing. It is the
// default provider: jobs run without a key and tests are stable.
package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/crmq/crmq/llm"
)

// Model is the name stored with offline summaries.
const Model = "crmq-offline-1"

// Provider is the offline llm.Provider.
type Provider struct{}

// New returns the offline provider.
func New() *Provider { return &Provider{} }

// Name is "offline".
func (*Provider) Name() string { return "offline" }

// Generate answers every section of req from req.Facts; the same request
// always gives the same answer, byte for byte. Usage is estimated with
// llm.EstimateTokens over the prompt and the answer's JSON.
func (*Provider) Generate(ctx context.Context, req llm.Request) (llm.Response, error) {
	if err := ctx.Err(); err != nil {
		return llm.Response{}, fmt.Errorf("%w: %w", llm.ErrTransient, err)
	}
	var ans llm.Answer
	switch {
	case req.Classify != nil:
		ans = classify(req.Classify)
	case req.Facts == nil:
		return llm.Response{}, fmt.Errorf("%w: offline provider needs the request's facts", llm.ErrPermanent)
	default:
		v := newView(req.Facts)
		ans = llm.Answer{Sections: make([]llm.SectionAnswer, 0, len(req.Sections))}
		for _, spec := range req.Sections {
			ans.Sections = append(ans.Sections, llm.SectionAnswer{Key: spec.Key, Bullets: v.section(spec)})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ans); err != nil {
		return llm.Response{}, fmt.Errorf("%w: encode answer: %w", llm.ErrPermanent, err)
	}
	in := llm.EstimateTokens(req.System + req.User)
	out := llm.EstimateTokens(buf.String())
	return llm.Response{
		Answer: ans,
		Usage:  llm.Usage{PromptTokens: in, OutputTokens: out, TotalTokens: in + out},
		Model:  Model,
	}, nil
}

// section composes one section with its definition's composer (the
// subject's module's, sections.go); a key it does not know gets a bullet
// saying so rather than a guess.
func (v *view) section(spec llm.SectionSpec) []llm.Bullet {
	d, ok := definition(v.subject.Module, spec.Key)
	if !ok {
		return []llm.Bullet{{Text: "No data for this section.", Sources: []string{}}}
	}
	b := d.compose(v, feeds(spec))
	if len(b) == 0 {
		return []llm.Bullet{v.cite("No data for this section.", v.subject.Ref)}
	}
	if len(b) > maxBullets {
		b = b[:maxBullets]
	}
	return b
}

func feeds(spec llm.SectionSpec) map[string]bool {
	m := make(map[string]bool, len(spec.Feeds))
	for _, k := range spec.Feeds {
		m[k] = true
	}
	return m
}
