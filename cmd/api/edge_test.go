package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store"
)

var wildcardRE = regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`)

// sampleBodies are valid bodies for the routes that take one, so a bad
// header or path value is what the request is judged on. Routes missing
// here get "{}", which is enough for a 4xx-never-500 check.
var sampleBodies = map[string]string{
	"POST /v1/jobs":                             `{"type":"system:ping"}`,
	"POST /v1/summaries":                        `{"module":"accounts","record_id":"acc-1"}`,
	"POST /v1/admin/orgs":                       `{"name":"edge-org"}`,
	"PUT /v1/modules/{module}/records":          `[{"external_id":"acc-1","name":"Acme"}]`,
	"POST /v1/summaries/{id}/feedback":          `{"rating":"positive"}`,
	"PUT /v1/admin/orgs/{org}/summary-sections": `{"sections":{}}`,
	"PUT /v1/admin/orgs/{org}/summary-locale":   `{"currency":"EUR"}`,
	"POST /v1/segments":                         `{"name":"edge","criteria":{"conditions":[]}}`,
	"PUT /v1/segments/{id}":                     `{"name":"edge","criteria":{"conditions":[]}}`,
}

// rawRequest sends req over a fresh TCP connection and returns the status
// line. Go's client refuses to send some of what these tests send.
func rawRequest(t *testing.T, srvURL, req string) string {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the raw request: %v", err)
	}
	return strings.TrimSpace(line)
}

// wantClientProblem checks that the answer is a 4xx problem+json.
func wantClientProblem(t *testing.T, resp *http.Response) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Fatalf("%s %s: status %d, want a 4xx; body %.300s", resp.Request.Method, resp.Request.URL, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: content type %q, want application/problem+json; body %.300s", resp.Request.Method, resp.Request.URL, ct, b)
	}
}

// Every route of the table, present and future, refuses NUL, invalid
// UTF-8 and oversized values in its path parameters, in X-User-ID and
// Idempotency-Key and in its declared query parameters with a 4xx problem,
// never a 500.
func TestEveryRouteRefusesBadValues(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: e.opt, ReadOnly: true})
	t.Cleanup(func() { mon.Close() })
	e.s.monitoring = mon
	e.rebuild(t)
	// The benign id "x" names a contact, so a bad query value reaches the
	// store rather than stopping at "no such record".
	e.ingest(t, "contacts", `{"external_id":"x","first_name":"Ada","last_name":"Stone"}`)

	longID := strings.Repeat("a", maxIDBytes+1)
	longQuery := strings.Repeat("a", maxQueryValueBytes+1)
	for _, rt := range e.s.routeTable() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = "GET", rt.pattern
		}
		key := e.keyA
		if strings.Contains(path, "/admin/") || strings.HasPrefix(path, "/metrics") || strings.HasPrefix(path, "/monitoring") {
			key = testAdminKey
		}
		body := sampleBodies[rt.pattern]
		if body == "" && (method == "POST" || method == "PUT") {
			body = "{}"
		}
		// fill puts benign values in every wildcard except the one given.
		fill := func(name, escaped string) string {
			return wildcardRE.ReplaceAllStringFunc(path, func(w string) string {
				n := wildcardRE.FindStringSubmatch(w)[1]
				switch {
				case n == name:
					return escaped
				case n == "module":
					return "contacts" // a module every module route takes
				case n == "org":
					return strconv.FormatInt(e.orgA.ID, 10)
				}
				return "x"
			})
		}
		good := fill("", "")

		for _, m := range wildcardRE.FindAllStringSubmatch(path, -1) {
			name := m[1]
			for what, v := range map[string]string{"NUL": "%00", "byte 0xFF": "%FF", "an oversized value": longID} {
				t.Run(rt.pattern+" refuses "+what+" in {"+name+"}", func(t *testing.T) {
					wantClientProblem(t, e.do(t, method, fill(name, v), key, body))
				})
			}
		}
		for _, h := range []string{"X-User-ID", "Idempotency-Key"} {
			for what, v := range map[string]string{"byte 0xFF": "a\xffb", "an oversized value": longID} {
				t.Run(rt.pattern+" refuses "+what+" in "+h, func(t *testing.T) {
					wantClientProblem(t, e.do(t, method, good, key, body, h, v))
				})
			}
			// Go's client will not send a NUL in a header, and net/http's
			// server answers such a request with its own plain 400 before
			// any handler runs; a raw connection shows that it does.
			t.Run(rt.pattern+" refuses NUL in "+h, func(t *testing.T) {
				req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s: a\x00b\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
					method, good, key, h, len(body), body)
				if got := rawRequest(t, e.srv.URL, req); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
					t.Fatalf("status line %q, want 400", got)
				}
			})
		}
		for _, q := range rt.query {
			for what, v := range map[string]string{"NUL": "%00", "byte 0xFF": "%FF", "an oversized value": longQuery} {
				t.Run(rt.pattern+" refuses "+what+" in ?"+q, func(t *testing.T) {
					wantClientProblem(t, e.do(t, method, good+"?"+q+"="+v, key, body))
				})
			}
		}
	}
}

// Text Postgres refuses is the client's fault: fail answers 400, not 500,
// for each error code bad text can raise. The errors come from the real
// server.
func TestPostgresTextErrorsAre400(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	ctx := context.Background()
	conn, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE edge_text (short varchar(3), long text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE INDEX ON edge_text (long)`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		code, query string
		args        []any
	}{
		{"22021", `SELECT $1::text`, []any{"a\x00b"}},
		{"22021", `SELECT $1::text`, []any{"a\xffb"}},
		{"22P02", `SELECT $1::int`, []any{"seven"}},
		{"22P05", `SELECT ($1::jsonb) ->> 0`, []any{`["\u0000"]`}},
		{"22001", `INSERT INTO edge_text (short) VALUES ($1)`, []any{"abcd"}},
		{"54000", `INSERT INTO edge_text (long) VALUES ($1)`, []any{randomText(9000)}},
	}
	for _, c := range cases {
		t.Run("pq code "+c.code+" is a 400 problem", func(t *testing.T) {
			_, err := conn.ExecContext(ctx, c.query, c.args...)
			var pqErr *pq.Error
			if !errors.As(err, &pqErr) || string(pqErr.Code) != c.code {
				t.Fatalf("postgres answered %v, want code %s", err, c.code)
			}
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/v1/x", nil)
			e.s.fail(w, r, fmt.Errorf("store: %w", err))
			if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("fail answered %d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
		})
	}
}

// randomText is n characters that do not compress, so an index row of
// them is too large.
func randomText(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()[:n]
}

// Text fields of a body that reach the store are checked by the handler
// and named in the problem.
func TestBodyTextThatCannotBeStoredIsRefused(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	for _, name := range []string{`a\u0000b`, `a\u0007b`, strings.Repeat("n", 101)} {
		p := wantProblem(t, e.do(t, "POST", "/v1/admin/orgs", testAdminKey, `{"name":"`+name+`"}`), 400, "validation")
		if p.Errors["name"] == "" {
			t.Errorf("org name %.20q: problem %+v does not name the field", name, p)
		}
	}
	p := wantProblem(t, e.do(t, "POST", "/v1/summaries", e.keyA, `{"module":"accounts","record_id":"a\u0000"}`, "X-User-ID", "u1"), 400, "validation")
	if p.Errors["record_id"] == "" {
		t.Errorf("record_id with NUL: problem %+v does not name the field", p)
	}

	seedAccount(t, e)
	e.startWorker(t)
	r, acc := e.summarize(t, "user-1", "accounts", "acc-1", false)
	if r.StatusCode != 202 {
		t.Fatalf("summarize: %d", r.StatusCode)
	}
	_, sum := e.finished(t, acc.JobID)
	for _, name := range []string{`a\u0000b`, `a\u001bb`, strings.Repeat("é", store.MaxExpansionName+1)} {
		p := wantProblem(t, e.do(t, "POST", "/v1/summaries/"+sum.ID+"/expansion-opportunities", e.keyA, `{"name":"`+name+`"}`), 400, "validation")
		if p.Errors["name"] == "" {
			t.Errorf("expansion name %.20q: problem %+v does not name the field", name, p)
		}
	}
	if r := e.do(t, "POST", "/v1/summaries/"+sum.ID+"/expansion-opportunities", e.keyA, `{"name":"`+strings.Repeat("é", store.MaxExpansionName)+`"}`); r.StatusCode != 201 {
		t.Fatalf("an expansion name of exactly the limit: %d", r.StatusCode)
	}
}
