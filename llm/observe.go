package llm

import (
	"context"
	"errors"
	"time"
)

// Call is one Generate as an observer sees it.
type Call struct {
	Provider string
	Model    string // the model that answered; the configured one when none did
	Outcome  string // ok, rate_limited, permanent, cancelled or error
	Usage    Usage
	Duration time.Duration
}

// Observed calls observe after every Generate of p (metrics: calls,
// tokens and errors per provider and model). model names the configured
// model for calls no model answered. A nil observe returns p.
func Observed(p Provider, model string, observe func(Call)) Provider {
	if observe == nil {
		return p
	}
	return &observed{inner: p, model: model, observe: observe}
}

type observed struct {
	inner   Provider
	model   string
	observe func(Call)
}

func (p *observed) Name() string { return p.inner.Name() }

func (p *observed) Generate(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	resp, err := p.inner.Generate(ctx, req)
	c := Call{Provider: p.inner.Name(), Model: resp.Model, Outcome: Outcome(err), Usage: resp.Usage, Duration: time.Since(start)}
	if c.Model == "" {
		c.Model = p.model
	}
	p.observe(c)
	return resp, err
}

// Outcome classifies a Generate error for metrics.
func Outcome(err error) string {
	var rl *RateLimitError
	var perm interface{ Permanent() bool }
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &rl):
		return "rate_limited"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	case errors.As(err, &perm) && perm.Permanent():
		return "permanent"
	default:
		return "error"
	}
}
