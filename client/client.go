// Package client is a Go client of the crmq API for apps: typed helpers to
// enqueue each task family, WaitJob (server-sent events with a polling
// fallback) and typed errors from problem+json answers.
//
// It depends on the standard library only. Every request it makes is listed
// in one table (calls, in client.go) with its route and the types of its
// body and answer, and a test holds each field of those types against the
// API's /openapi.yaml, so the client and the document cannot drift.
//
//	c := client.New("http://127.0.0.1:8080", key)
//	acc, err := c.Summarize(ctx, client.SummaryRequest{Module: "accounts", RecordID: "acc-1"}, client.User("user-1"))
//	job, err := c.WaitJob(ctx, acc.JobID)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client calls one crmq API with one org key. It is safe for concurrent use.
type Client struct {
	base string
	key  string
	hc   *http.Client
	poll time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client (default: one with no overall
// timeout, since event streams stay open; pass a context deadline instead).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithPollInterval sets how often WaitJob polls when it cannot stream
// events (default 500 ms).
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// New returns a client of the API at baseURL (for example
// "http://127.0.0.1:8080") that authenticates with key.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), key: key, hc: &http.Client{}, poll: 500 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// RequestOption sets a header of one request.
type RequestOption func(*http.Request)

// User names the user a request acts for (X-User-ID): summaries, exports
// and enrichments are per user.
func User(id string) RequestOption {
	return func(r *http.Request) { r.Header.Set("X-User-ID", id) }
}

// IdempotencyKey makes an enqueue safe to retry: the same key within 24
// hours answers the first job again instead of enqueuing another.
func IdempotencyKey(k string) RequestOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", k) }
}

// Problem is an RFC 9457 problem+json answer. Match it with errors.As, or
// test its kind with errors.Is against ErrNotFound and the other sentinels.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	// RetryAfter is the Retry-After header of a 429 or 503, zero otherwise.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	msg := fmt.Sprintf("crmq: %d %s", p.Status, p.Slug())
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

// Slug is the problem type without its "urn:crmq:problem:" prefix, such
// as "validation" or "not-found".
func (p *Problem) Slug() string { return strings.TrimPrefix(p.Type, "urn:crmq:problem:") }

// Is matches the sentinels by status: errors.Is(err, client.ErrNotFound).
func (p *Problem) Is(target error) bool {
	s, ok := target.(statusError)
	return ok && int(s) == p.Status
}

// Temporary tells whether the same request may succeed later: 429 and 503
// (wait RetryAfter when it is set).
func (p *Problem) Temporary() bool {
	return p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable
}

type statusError int

func (s statusError) Error() string { return "crmq: status " + strconv.Itoa(int(s)) }

// Sentinels for errors.Is on a *Problem.
var (
	ErrInvalid     error = statusError(http.StatusBadRequest)
	ErrForbidden   error = statusError(http.StatusForbidden)
	ErrNotFound    error = statusError(http.StatusNotFound)
	ErrConflict    error = statusError(http.StatusConflict)
	ErrGone        error = statusError(http.StatusGone)
	ErrRateLimited error = statusError(http.StatusTooManyRequests)
	ErrUnavailable error = statusError(http.StatusServiceUnavailable)
)

// do sends a JSON request to route (its {parameters} filled from args,
// in order) and decodes a 2xx JSON answer into out (when not nil). Any
// other answer is a *Problem.
func (c *Client) do(ctx context.Context, rt route, args []any, in, out any, opts ...RequestOption) error {
	resp, err := c.send(ctx, rt, args, in, "application/json", opts...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("crmq: %s: decode the answer: %w", rt, err)
	}
	return nil
}

// send sends a request and returns a 2xx response, open; any other status
// is read into a *Problem.
func (c *Client) send(ctx context.Context, rt route, args []any, in any, accept string, opts ...RequestOption) (*http.Response, error) {
	method, path, err := rt.fill(args)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("crmq: %s: %w", rt, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("crmq: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", accept)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("crmq: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readProblem(resp)
}

// readProblem turns a non-2xx answer into a *Problem; a body that is not
// problem+json (a proxy's page, say) keeps its status and first bytes.
func readProblem(resp *http.Response) *Problem {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p := &Problem{Status: resp.StatusCode}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "application/problem+json" || json.Unmarshal(raw, p) != nil || p.Status == 0 {
		p = &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		p.RetryAfter = time.Duration(s) * time.Second
	}
	return p
}

// route is one API route as "METHOD /path/{param}", the API's own form.
type route string

// The routes the client calls; every request goes through one of them.
const (
	rEnqueue       route = "POST /v1/jobs"
	rJob           route = "GET /v1/jobs/{id}"
	rJobEvents     route = "GET /v1/jobs/{id}/events"
	rCancel        route = "POST /v1/jobs/{id}/cancel"
	rSummarize     route = "POST /v1/summaries"
	rSummary       route = "GET /v1/summaries/{id}"
	rRefresh       route = "POST /v1/abm/refresh"
	rExportSegment route = "POST /v1/segments/{id}/exports"
	rExport        route = "GET /v1/exports/{id}"
	rDownload      route = "GET /v1/exports/{id}/download"
	rEnrich        route = "POST /v1/enrichments"
	rEnrichBulk    route = "POST /v1/enrichments/bulk"
	rEnrichment    route = "GET /v1/enrichments/{id}"
)

// Media types of 2xx answers.
const (
	mediaJSON   = "application/json"
	mediaEvents = "text/event-stream"
	mediaZIP    = "application/zip"
)

// call is one request a method of Client makes: its route, the type of
// the JSON body it sends and the type it reads from the 2xx answer.
type call struct {
	route route
	in    any    // a value of the request body's type; nil: no body
	out   any    // a value of the type read from a 2xx answer; nil: none, or not JSON
	media string // the 2xx answer's media type
	// schema names the component schema out follows when the answer's own
	// schema cannot say it: each event of an event stream is a Job.
	schema string
}

// calls is every exported method of Client and the requests it makes.
// contract_test.go holds each against the API's /openapi.yaml, field by
// field, and fails for a method missing here.
var calls = map[string][]call{
	"Enqueue":          {{route: rEnqueue, in: Task{}, out: Accepted{}, media: mediaJSON}},
	"Ping":             {{route: rEnqueue, in: Task{}, out: Accepted{}, media: mediaJSON}},
	"RecomputeOrphans": {{route: rEnqueue, in: Task{}, out: Accepted{}, media: mediaJSON}},
	"Job":              {{route: rJob, out: Job{}, media: mediaJSON}},
	"Cancel":           {{route: rCancel, out: Job{}, media: mediaJSON}},
	"WaitJob": {
		{route: rJobEvents, out: Job{}, media: mediaEvents, schema: "Job"},
		{route: rJob, out: Job{}, media: mediaJSON},
	},
	"Summarize":       {{route: rSummarize, in: SummaryRequest{}, out: SummaryAccepted{}, media: mediaJSON}},
	"Summary":         {{route: rSummary, out: json.RawMessage{}, media: mediaJSON}},
	"RefreshSegments": {{route: rRefresh, in: refreshRequest{}, out: Accepted{}, media: mediaJSON}},
	"ExportSegment":   {{route: rExportSegment, in: exportRequest{}, out: ExportAccepted{}, media: mediaJSON}},
	"Export":          {{route: rExport, out: Export{}, media: mediaJSON}},
	"Download":        {{route: rDownload, media: mediaZIP}},
	"Enrich":          {{route: rEnrich, in: enrichRequest{}, out: EnrichAccepted{}, media: mediaJSON}},
	"EnrichBulk":      {{route: rEnrichBulk, in: enrichBulkRequest{}, out: EnrichAccepted{}, media: mediaJSON}},
	"Enrichment":      {{route: rEnrichment, out: json.RawMessage{}, media: mediaJSON}},
}

// Routes are the API routes this client calls, as "METHOD /path", sorted.
var Routes = func() []string {
	var rs []string
	for _, cs := range calls {
		for _, c := range cs {
			if !slices.Contains(rs, string(c.route)) {
				rs = append(rs, string(c.route))
			}
		}
	}
	slices.Sort(rs)
	return rs
}()

// fill splits the route into its method and a path whose {parameters} are
// args, in order, each escaped as one path segment.
func (rt route) fill(args []any) (method, path string, err error) {
	method, tmpl, _ := strings.Cut(string(rt), " ")
	segs := strings.Split(tmpl, "/")
	n := 0
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			if n == len(args) {
				return "", "", fmt.Errorf("crmq: %s: %d arguments for its parameters", rt, len(args))
			}
			segs[i] = url.PathEscape(fmt.Sprint(args[n]))
			n++
		}
	}
	if n != len(args) {
		return "", "", fmt.Errorf("crmq: %s: %d arguments for %d parameters", rt, len(args), n)
	}
	return method, strings.Join(segs, "/"), nil
}
