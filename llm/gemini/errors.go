package gemini

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/genai"

	"github.com/crmq/crmq/llm"
)

// DefaultRetryAfter is the wait after a 429 that names none.
const DefaultRetryAfter = 30 * time.Second

const retryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

// classify maps an error from GenerateContent to crmq's kinds. genai
// returns a non-2xx answer as a genai.APIError value (not a pointer);
// anything else never got an answer from the API: a transport error, a
// timeout, a cancelled context, a body that could not be read.
// headerDelay is the 429's Retry-After header, if the transport saw one.
func classify(err error, headerDelay time.Duration) error {
	var ae genai.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("gemini: %w: %w", llm.ErrTransient, err)
	}
	pe := providerError{ae}
	code := ae.Code
	if code == 0 {
		code = statusCodes[ae.Status]
	}
	switch {
	case code == http.StatusTooManyRequests:
		// Gemini names the delay in a RetryInfo detail; proxies in the
		// Retry-After header. Prefer the API's own word.
		d := retryInfoDelay(ae.Details)
		if d <= 0 {
			d = headerDelay
		}
		if d <= 0 {
			d = DefaultRetryAfter
		}
		return fmt.Errorf("gemini: %w", &llm.RateLimitError{Scope: "provider", Delay: d, Err: pe})
	case code == http.StatusRequestTimeout, code >= 500:
		return fmt.Errorf("gemini: %w: %w", llm.ErrTransient, pe)
	case code >= 400:
		return fmt.Errorf("gemini: %w: %w", llm.ErrPermanent, pe)
	default:
		// No status we know: an odd proxy. Let the bounded retries decide.
		return fmt.Errorf("gemini: %w: %w", llm.ErrTransient, pe)
	}
}

// statusCodes maps google.rpc status names to HTTP codes for the rare error
// body that carries a status but no code (some proxies).
var statusCodes = map[string]int{
	"INVALID_ARGUMENT":    400,
	"FAILED_PRECONDITION": 400,
	"OUT_OF_RANGE":        400,
	"UNAUTHENTICATED":     401,
	"PERMISSION_DENIED":   403,
	"NOT_FOUND":           404,
	"RESOURCE_EXHAUSTED":  429,
	"INTERNAL":            500,
	"UNAVAILABLE":         503,
	"DEADLINE_EXCEEDED":   504,
}

// retryInfoDelay reads google.rpc.RetryInfo's retryDelay ("17s", "0.5s")
// from an error's details; 0 when there is none.
func retryInfoDelay(details []map[string]any) time.Duration {
	for _, d := range details {
		if t, _ := d["@type"].(string); t != retryInfoType {
			continue
		}
		s, _ := d["retryDelay"].(string)
		if v, err := time.ParseDuration(s); err == nil && v > 0 {
			return v
		}
	}
	return 0
}

// providerError is the API's answer, shown as "400 INVALID_ARGUMENT: <the
// provider's message>" instead of genai's longer form with every detail.
// It unwraps to the genai.APIError value.
type providerError struct{ err genai.APIError }

func (e providerError) Error() string {
	s := strconv.Itoa(e.err.Code)
	if e.err.Status != "" {
		s += " " + e.err.Status
	}
	if e.err.Message != "" {
		s += ": " + e.err.Message
	}
	return s
}

func (e providerError) Unwrap() error { return e.err }

// genai drops the response headers of a failed call, so the transport
// records a 429's Retry-After in a slot the call put in its context.
type retryAfterSlot struct{ d atomic.Int64 }

func (s *retryAfterSlot) get() time.Duration { return time.Duration(s.d.Load()) }

type retryAfterKey struct{}

func withRetryAfterSlot(ctx context.Context, s *retryAfterSlot) context.Context {
	return context.WithValue(ctx, retryAfterKey{}, s)
}

type retryAfterTap struct{ base http.RoundTripper }

func (t retryAfterTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	if s, ok := r.Context().Value(retryAfterKey{}).(*retryAfterSlot); ok {
		s.d.Store(int64(parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())))
	}
	return resp, nil
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second // a day at most: no overflow
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
