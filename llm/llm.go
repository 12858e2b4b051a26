// Package llm is crmq's contract with language models: a Provider takes a
// system prompt, a user prompt built from CRM records, and a JSON schema for
// the answer, and returns the structured answer, token usage and the model
// name. gemini/ speaks to Gemini through google.golang.org/genai; offline/
// builds the same answer deterministically from the facts, without network.
package llm

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider generates a structured answer.
type Provider interface {
	// Name is the provider's name as stored with a summary ("gemini", "offline").
	Name() string
	// Generate answers one request. Errors are classified with the types
	// below so the caller can decide between retrying and failing.
	Generate(ctx context.Context, req Request) (Response, error)
}

// Request is one generation.
type Request struct {
	OrgID int64 // whose quota of requests per minute this uses

	System string         // instructions
	User   string         // the prompt: task text plus the facts rendered as JSON, every record with its ref
	Schema map[string]any // JSON Schema the answer must follow (see AnswerSchema)

	// Facts are the records the prompt was rendered from. Remote providers
	// send only System and User; the offline provider composes from these.
	Facts *Facts
	// Sections asked for, in order. Hidden sections are not asked for.
	Sections []SectionSpec
	// Classify is set when the request is a classification (see
	// ClassifyRequest); the offline provider answers it by keywords.
	Classify *Classification

	// Raw asks for the answer's JSON as the model gave it, in
	// Response.Raw, instead of an Answer: for answers of another shape
	// than sections (Schema still constrains it); the caller checks it.
	// The offline provider does not answer raw requests.
	Raw bool
	// MaxOutputTokens, when > 0, bounds this answer instead of the
	// provider's configured budget; ThinkingBudget, when set, replaces
	// the configured thinking budget (0: no thinking).
	MaxOutputTokens int
	ThinkingBudget  *int
}

// Response is a parsed answer.
type Response struct {
	Answer Answer
	Raw    string // the answer's JSON text, for a Raw request
	Usage  Usage
	Model  string
}

// Usage counts tokens as the provider reports them (the offline provider
// estimates: bytes / 4, rounded up).
type Usage struct {
	PromptTokens int `json:"prompt_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// Answer is the structured summary a provider returns.
type Answer struct {
	Sections []SectionAnswer `json:"sections"`
}

// SectionAnswer is one section: its key (a SectionSpec.Key) and bullets.
type SectionAnswer struct {
	Key     string   `json:"key"`
	Bullets []Bullet `json:"bullets"`
}

// Bullet is one statement and the refs of the records it rests on.
type Bullet struct {
	Text    string   `json:"text"`
	Sources []string `json:"sources"`
}

// MaxBullets bounds a section's bullets in the answer schema (maxItems).
const MaxBullets = 8

// AnswerSchema is the JSON Schema of Answer for the given sections; it is
// what Request.Schema holds and what Gemini's structured output enforces.
func AnswerSchema(sections []SectionSpec) map[string]any {
	keys := make([]any, len(sections))
	for i, s := range sections {
		keys[i] = s.Key
	}
	return map[string]any{
		"type":     "object",
		"required": []any{"sections"},
		"properties": map[string]any{
			"sections": map[string]any{
				"type":     "array",
				"maxItems": len(sections),
				"items": map[string]any{
					"type":     "object",
					"required": []any{"key", "bullets"},
					"properties": map[string]any{
						"key": map[string]any{"type": "string", "enum": keys},
						"bullets": map[string]any{
							"type":     "array",
							"maxItems": MaxBullets,
							"items": map[string]any{
								"type":     "object",
								"required": []any{"text", "sources"},
								"properties": map[string]any{
									"text":    map[string]any{"type": "string"},
									"sources": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
								},
							},
						},
					},
				},
			},
		},
	}
}

// Errors. A provider wraps what went wrong in one of these so the worker
// can decide: RateLimitError and ErrTransient are retried (honouring the
// rate limit's RetryAfter), ErrPermanent fails the job at once with the
// provider's message. The worker does not know these types: it reads the
// methods RetryAfter() and Permanent() (see workers/retry.go), which any
// other package's errors can have too.
var (
	ErrTransient       = errors.New("llm: transient failure")
	ErrPermanent error = permanent("llm: request refused")
)

// permanent is an error the provider will give again however often it is
// asked.
type permanent string

func (p permanent) Error() string { return string(p) }

// Permanent marks the error as not worth retrying.
func (permanent) Permanent() bool { return true }

// RateLimitError is a 429 from the provider, or crmq's own per-org or
// global requests-per-minute limit; Delay is when to try again.
type RateLimitError struct {
	Delay time.Duration
	Scope string // "provider", "org" or "global"
	Err   error
}

// RetryAfter is how long to wait before trying again.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Delay }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("llm: rate limited (%s), retry after %s: %v", e.Scope, e.Delay, e.Err)
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// EstimateTokens is the offline estimate of a text's tokens: about four
// bytes per token for English text and JSON.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }
