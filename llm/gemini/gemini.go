// Package gemini is the llm.Provider that asks Gemini, through
// google.golang.org/genai, for a summary in structured output (a JSON
// answer constrained by the request's JSON Schema).
//
// The SDK's own retries stay off: asynq retries the job instead, and only
// asynq can honour a 429's retry delay without holding a worker. Every
// error is classified as llm.RateLimitError, llm.ErrTransient or
// llm.ErrPermanent (see errors.go).
package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genai"

	"github.com/crmq/crmq/llm"
)

// DefaultModel is used when Config.Model is empty.
const DefaultModel = "gemini-2.5-flash"

// Config configures a Provider.
type Config struct {
	APIKey string // required; sent as x-goog-api-key
	Model  string // e.g. "gemini-2.5-flash"; DefaultModel when empty
	// BaseURL points the client at another endpoint speaking the Gemini
	// REST protocol (a proxy, a test server); empty means Google's.
	BaseURL    string
	HTTPClient *http.Client // nil means a fresh http.Client
	// Timeout bounds one Generate call; <= 0 leaves only the caller's ctx.
	Timeout time.Duration
	// MaxOutputTokens bounds an answer (thinking included); <= 0 leaves
	// the model's default.
	MaxOutputTokens int
	// ThinkingBudget bounds the model's thinking tokens: -1 lets the model
	// decide, 0 turns thinking off; nil leaves the model's default.
	ThinkingBudget *int
}

// Provider generates answers with Gemini. It is safe for concurrent use.
type Provider struct {
	client   *genai.Client
	model    string
	timeout  time.Duration
	maxOut   int
	thinking *int
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider. It makes no request.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("gemini: an API key is required")
	}
	model := cfg.Model
	if model == "" {
		model = DefaultModel
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient // a copy: the caller's client keeps its transport
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = retryAfterTap{base: base}

	client, err := genai.NewClient(ctx, &genai.ClientConfig{
		// Explicit, so GOOGLE_GENAI_USE_VERTEXAI in the environment
		// cannot switch the backend.
		Backend:    genai.BackendGeminiAPI,
		APIKey:     cfg.APIKey,
		HTTPClient: hc,
		HTTPOptions: genai.HTTPOptions{
			BaseURL: cfg.BaseURL,
			// One attempt. nil already means that in v1.77.0; spelled out
			// so a changed SDK default cannot add hidden retries.
			RetryOptions: &genai.HTTPRetryOptions{Attempts: genai.Ptr[int32](1)},
		},
	})
	if err != nil {
		// genai prints its whole ClientConfig, API key included, in some
		// errors: keep the text, never the key.
		return nil, fmt.Errorf("gemini: new client: %s", strings.ReplaceAll(err.Error(), cfg.APIKey, "[redacted]"))
	}
	return &Provider{client: client, model: model, timeout: cfg.Timeout, maxOut: cfg.MaxOutputTokens, thinking: cfg.ThinkingBudget}, nil
}

// Name is "gemini".
func (p *Provider) Name() string { return "gemini" }

// Model is the configured model name.
func (p *Provider) Model() string { return p.model }

// Generate sends one generateContent request and parses the answer.
func (p *Provider) Generate(ctx context.Context, req llm.Request) (llm.Response, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	cfg := &genai.GenerateContentConfig{
		ResponseMIMEType: "application/json",
		Temperature:      genai.Ptr[float32](0),
		// Continuation re-sends the request on its own; a partial answer is
		// treated as transient instead (see answerText).
		AutomaticContinuation: genai.Ptr(false),
	}
	if req.Schema != nil {
		cfg.ResponseJsonSchema = req.Schema
	}
	maxOut, thinking := p.maxOut, p.thinking
	if req.MaxOutputTokens > 0 {
		maxOut = req.MaxOutputTokens
	}
	if req.ThinkingBudget != nil {
		thinking = req.ThinkingBudget
	}
	if maxOut > 0 {
		cfg.MaxOutputTokens = int32(maxOut)
	}
	if thinking != nil {
		cfg.ThinkingConfig = &genai.ThinkingConfig{ThinkingBudget: genai.Ptr(int32(*thinking))}
	}
	if req.System != "" {
		cfg.SystemInstruction = genai.NewContentFromText(req.System, genai.RoleUser)
	}
	contents := []*genai.Content{genai.NewContentFromText(req.User, genai.RoleUser)}

	tap := &retryAfterSlot{}
	began := time.Now()
	resp, err := p.client.Models.GenerateContent(withRetryAfterSlot(ctx, tap), p.model, contents, cfg)
	if err != nil {
		return llm.Response{}, classify(err, tap.get())
	}

	out := llm.Response{Model: p.model}
	if resp.ModelVersion != "" {
		out.Model = resp.ModelVersion
	}
	if u := resp.UsageMetadata; u != nil {
		out.Usage = llm.Usage{
			PromptTokens: int(u.PromptTokenCount),
			OutputTokens: int(u.CandidatesTokenCount) + int(u.ThoughtsTokenCount),
			TotalTokens:  int(u.TotalTokenCount),
		}
	}
	text, err := answerText(resp)
	if err != nil {
		return llm.Response{}, err
	}
	if req.Raw { // the caller checks the answer against its schema
		out.Raw = text
		return out, nil
	}
	answer, err := parseAnswer(text, req.Sections)
	if err != nil {
		return llm.Response{}, err
	}
	out.Answer = answer
	slog.DebugContext(ctx, "gemini answered", "org_id", req.OrgID, "model", out.Model,
		"prompt_tokens", out.Usage.PromptTokens, "output_tokens", out.Usage.OutputTokens,
		"duration", time.Since(began))
	return out, nil
}

// answerText returns the first candidate's text, or the classified reason
// there is none worth parsing.
func answerText(resp *genai.GenerateContentResponse) (string, error) {
	if fb := resp.PromptFeedback; fb != nil && fb.BlockReason != "" {
		msg := "prompt blocked: " + string(fb.BlockReason)
		if fb.BlockReasonMessage != "" {
			msg += ": " + fb.BlockReasonMessage
		}
		return "", fmt.Errorf("gemini: %w", llm.Blocked(fmt.Errorf("%w: %s", llm.ErrPermanent, msg)))
	}
	if len(resp.Candidates) == 0 || resp.Candidates[0] == nil {
		return "", fmt.Errorf("gemini: %w: no candidates in the response", llm.ErrTransient)
	}
	cand := resp.Candidates[0]
	if len(cand.ContinuationToken) > 0 {
		return "", fmt.Errorf("gemini: %w: partial answer (continuation token, finish reason %q)", llm.ErrTransient, cand.FinishReason)
	}
	switch r := cand.FinishReason; r {
	case "", genai.FinishReasonStop, genai.FinishReasonUnspecified:
	case genai.FinishReasonMaxTokens:
		return "", fmt.Errorf("gemini: %w: answer cut at the output token limit (MAX_TOKENS)", llm.ErrTransient)
	case genai.FinishReasonSafety, genai.FinishReasonRecitation, genai.FinishReasonBlocklist,
		genai.FinishReasonProhibitedContent, genai.FinishReasonSPII, genai.FinishReasonLanguage,
		genai.FinishReasonImageSafety, genai.FinishReasonImageProhibitedContent, genai.FinishReasonImageRecitation:
		// A policy refusal: at temperature 0 the same prompt is refused again.
		return "", fmt.Errorf("gemini: %w", llm.Blocked(fmt.Errorf("%w: answer blocked: %s%s", llm.ErrPermanent, r, suffix(cand.FinishMessage))))
	default:
		// OTHER, MALFORMED_FUNCTION_CALL and reasons newer than this code:
		// nothing says a second attempt fails too.
		return "", fmt.Errorf("gemini: %w: generation stopped: %s%s", llm.ErrTransient, r, suffix(cand.FinishMessage))
	}
	var b strings.Builder
	if cand.Content != nil {
		for _, part := range cand.Content.Parts {
			if part != nil && !part.Thought {
				b.WriteString(part.Text)
			}
		}
	}
	return b.String(), nil
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// parseAnswer decodes the answer and checks every section is one asked
// for. Structured output makes a bad answer rare, not impossible, and the
// next attempt usually differs, so both failures are transient.
func parseAnswer(text string, sections []llm.SectionSpec) (llm.Answer, error) {
	var a llm.Answer
	if err := json.Unmarshal([]byte(text), &a); err != nil {
		return llm.Answer{}, fmt.Errorf("gemini: %w: answer is not the JSON asked for: %w (%d bytes)", llm.ErrTransient, err, len(text))
	}
	if a.Sections == nil {
		return llm.Answer{}, fmt.Errorf("gemini: %w: answer has no \"sections\" (%d bytes)", llm.ErrTransient, len(text))
	}
	for _, s := range a.Sections {
		if !asked(sections, s.Key) {
			return llm.Answer{}, fmt.Errorf("gemini: %w: answer has section %q, which was not asked for", llm.ErrTransient, s.Key)
		}
	}
	return a, nil
}

func asked(sections []llm.SectionSpec, key string) bool {
	for _, s := range sections {
		if s.Key == key {
			return true
		}
	}
	return false
}
