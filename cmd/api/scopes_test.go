package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

// Every route says what it asks of the caller: a scope, public, admin or
// org. A route without one would stop the server from starting.
func TestEveryRouteDeclaresItsAccess(t *testing.T) {
	s := &server{monitoring: http.NotFoundHandler()}
	for _, r := range s.routeTable() {
		if _, err := s.guard(r); err != nil {
			t.Errorf("%s: %v", r.pattern, err)
		}
	}
	if _, err := s.guard(route{pattern: "GET /v1/nothing"}); err == nil {
		t.Error("a route without declared access was accepted")
	}
	if _, err := s.guard(route{pattern: "GET /v1/nothing", access: "records"}); err == nil {
		t.Error("a route declaring an unknown scope was accepted")
	}
}

// Job status and cancel are open to any key of the org, and the table
// says so.
func TestJobStatusIsOpenToAnyKeyOfTheOrg(t *testing.T) {
	want := map[string]string{
		"POST /v1/jobs":             store.ScopeJobs,
		"GET /v1/jobs/{id}":         accessOrg,
		"GET /v1/jobs/{id}/events":  accessOrg,
		"POST /v1/jobs/{id}/cancel": accessOrg,
	}
	for _, r := range (&server{}).routeTable() {
		if access, ok := want[r.pattern]; ok && r.access != access {
			t.Errorf("%s declares %q, want %q", r.pattern, r.access, access)
		}
	}
}

// routePath fills a pattern's wildcards with values every route takes.
func (e *apiEnv) routePath(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = wildcardRE.ReplaceAllStringFunc(path, func(w string) string {
		switch wildcardRE.FindStringSubmatch(w)[1] {
		case "module":
			return "contacts"
		case "org":
			return strconv.FormatInt(e.orgA.ID, 10)
		}
		return "x"
	})
	return method, path
}

func (e *apiEnv) scopedKey(t *testing.T, scopes ...string) string {
	t.Helper()
	key, err := e.db.CreateScopedAPIKey(context.Background(), e.orgA.ID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// For every org route, a key without the route's scope gets the 403
// insufficient-scope problem naming the scope, and a key with that scope
// alone does not get a 403. Routes open to any org key take a key with
// one unrelated scope.
func TestEveryScopedRouteNeedsItsScope(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	var checked int
	for _, rt := range e.s.routeTable() {
		if rt.access == accessPublic || rt.access == accessAdmin {
			continue
		}
		checked++
		method, path := e.routePath(rt.pattern)
		body := sampleBodies[rt.pattern]
		if body == "" && (method == "POST" || method == "PUT") {
			body = "{}"
		}
		if rt.access == accessOrg {
			t.Run(rt.pattern+" is open to a key with any scope", func(t *testing.T) {
				for _, s := range store.Scopes() {
					r := e.do(t, method, path, e.scopedKey(t, s), body, "X-User-ID", "u1")
					if r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusUnauthorized || r.StatusCode >= 500 {
						t.Errorf("a key with only %q: %d", s, r.StatusCode)
					}
				}
			})
			continue
		}
		t.Run(rt.pattern+" refuses a key without "+rt.access, func(t *testing.T) {
			var others []string
			for _, s := range store.Scopes() {
				if s != rt.access {
					others = append(others, s)
				}
			}
			r := e.do(t, method, path, e.scopedKey(t, others...), body, "X-User-ID", "u1")
			p := wantProblem(t, r, http.StatusForbidden, "insufficient-scope")
			if p.Scope != rt.access || !strings.Contains(p.Detail, `"`+rt.access+`"`) {
				t.Errorf("problem %+v, want scope %q named in scope and detail", p, rt.access)
			}
			if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+rt.access+`"`) {
				t.Errorf("WWW-Authenticate %q", h)
			}
		})
		t.Run(rt.pattern+" takes a key with only "+rt.access, func(t *testing.T) {
			r := e.do(t, method, path, e.scopedKey(t, rt.access), body, "X-User-ID", "u1")
			if r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusUnauthorized || r.StatusCode >= 500 {
				t.Errorf("status %d", r.StatusCode)
			}
		})
	}
	if checked == 0 {
		t.Fatal("no org route checked")
	}
}

// A key's scopes hold on every request, also those the key cache answers.
func TestCachedKeysKeepTheirScopes(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.s.keys = newKeyCache(time.Minute, e.db.GrantByKey)
	e.rebuild(t)
	key := e.scopedKey(t, store.ScopeRecordsRead)
	for i := range 3 {
		wantProblem(t, e.do(t, "POST", "/v1/summaries", key, `{"module":"accounts","record_id":"acc-1"}`, "X-User-ID", "u1"), 403, "insufficient-scope")
		if r := e.do(t, "GET", "/v1/modules/contacts/records", key, ""); r.StatusCode != 200 {
			t.Fatalf("request %d: a records:read key listing records: %d", i+1, r.StatusCode)
		}
	}
}

func TestAdminIssuesKeys(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	ctx := context.Background()
	keysURL := "/v1/admin/orgs/" + strconv.FormatInt(e.orgA.ID, 10) + "/keys"

	t.Run("a key with the scopes asked for, shown once", func(t *testing.T) {
		r := e.do(t, "POST", keysURL, testAdminKey, `{"scopes":["records:read","records:read"]}`)
		if r.StatusCode != 201 {
			t.Fatalf("status %d", r.StatusCode)
		}
		got := decode[createKeyResponse](t, r)
		if got.Org.ID != e.orgA.ID || !slices.Equal(got.Scopes, []string{"records:read"}) || !store.OrgKeyShaped(got.APIKey) {
			t.Fatalf("%+v", got)
		}
		if r := e.do(t, "GET", "/v1/modules/contacts/records", got.APIKey, ""); r.StatusCode != 200 {
			t.Errorf("listing records with it: %d", r.StatusCode)
		}
		wantProblem(t, e.do(t, "PUT", "/v1/modules/contacts/records", got.APIKey, `[]`), 403, "insufficient-scope")
	})
	for name, body := range map[string]string{"no scopes member": `{}`, "scopes null": `{"scopes":null}`} {
		t.Run("every scope with "+name, func(t *testing.T) {
			r := e.do(t, "POST", keysURL, testAdminKey, body)
			if r.StatusCode != 201 {
				t.Fatalf("status %d", r.StatusCode)
			}
			got := decode[createKeyResponse](t, r)
			g, err := e.db.GrantByKey(ctx, got.APIKey)
			if err != nil || got.Scopes != nil || g.Scopes != nil {
				t.Fatalf("answer %+v, grant %+v, %v; want every scope", got, g, err)
			}
		})
	}
	t.Run("an unknown scope is a 400 listing the valid ones", func(t *testing.T) {
		p := wantProblem(t, e.do(t, "POST", keysURL, testAdminKey, `{"scopes":["summaries","admin"]}`), 400, "validation")
		for _, s := range append(store.Scopes(), `"admin"`) {
			if !strings.Contains(p.Errors["scopes"], s) {
				t.Errorf("errors %v do not mention %s", p.Errors, s)
			}
		}
	})
	t.Run("an empty list is a 400", func(t *testing.T) {
		wantProblem(t, e.do(t, "POST", keysURL, testAdminKey, `{"scopes":[]}`), 400, "validation")
	})
	t.Run("an unknown org is a 404", func(t *testing.T) {
		wantProblem(t, e.do(t, "POST", "/v1/admin/orgs/99999999/keys", testAdminKey, `{}`), 404, "not-found")
		wantProblem(t, e.do(t, "POST", "/v1/admin/orgs/acme/keys", testAdminKey, `{}`), 404, "not-found")
	})
	t.Run("an org key may not issue keys", func(t *testing.T) {
		wantProblem(t, e.do(t, "POST", keysURL, e.keyA, `{}`), 403, "forbidden")
	})
	t.Run("the first key of an org made by the API has every scope", func(t *testing.T) {
		created := decode[createOrgResponse](t, e.do(t, "POST", "/v1/admin/orgs", testAdminKey, `{"name":"scoped-org"}`))
		if g, err := e.db.GrantByKey(ctx, created.APIKey); err != nil || g.Scopes != nil {
			t.Fatalf("grant %+v, %v; want every scope", g, err)
		}
	})
	var n int
	if err := e.db.GetContext(ctx, &n, `SELECT count(*) FROM api_keys WHERE org_id = $1`, e.orgA.ID); err != nil || n != 4 {
		t.Fatalf("org a has %d keys (%v); want its first and the three issued", n, err)
	}
}

// README's scope table has a row for every scope and names each org
// route in the row of the scope the route table gives it, and no route
// the server does not serve.
func TestREADMEScopeTableMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Scopes\n")
	if !ok {
		t.Fatal("README.md has no Scopes section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	rowOf := map[string]string{} // route pattern -> the row's scope
	rows := map[string]bool{}
	pattern := regexp.MustCompile("`((?:GET|PUT|POST|DELETE|PATCH) /[^`]*)`")
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "scope" {
			continue
		}
		access := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if access == "any org key" {
			access = accessOrg
		}
		rows[access] = true
		for _, m := range pattern.FindAllStringSubmatch(cells[3], -1) {
			rowOf[m[1]] = access
		}
	}
	for _, s := range append(store.Scopes(), accessOrg) {
		if !rows[s] {
			t.Errorf("README's scope table has no row for %q", s)
		}
	}
	served := map[string]bool{}
	for _, r := range (&server{}).routeTable() {
		served[r.pattern] = true
		if r.access == accessPublic || r.access == accessAdmin {
			continue
		}
		if got, ok := rowOf[r.pattern]; !ok || got != r.access {
			t.Errorf("README's scope table puts %s under %q, the route table under %q", r.pattern, got, r.access)
		}
	}
	for p := range rowOf {
		if !served[p] {
			t.Errorf("README's scope table names %s, which the server does not serve", p)
		}
	}
}
