package main

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/crmq/crmq/store"
)

func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		if r := e.do(t, "GET", "/v1/usage/summaries", "", "", "Authorization", scheme+" "+e.keyA, "X-User-ID", "u1"); r.StatusCode != 200 {
			t.Errorf("org key with scheme %q: %d", scheme, r.StatusCode)
		}
		if r := e.do(t, "GET", "/metrics", "", "", "Authorization", scheme+" "+testAdminKey); r.StatusCode != 200 {
			t.Errorf("admin key with scheme %q: %d", scheme, r.StatusCode)
		}
	}
	wantProblem(t, e.do(t, "GET", "/v1/usage/summaries", "", "", "Authorization", "Token "+e.keyA), 401, "unauthenticated")
}

// With Postgres unreachable, an admin route cannot tell an org key from
// an unknown one: a key of the org-key shape is still 403, any other key
// that needs the database is 503, never a 401 that calls it bad.
func TestAdminRouteWhilePostgresIsDown(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	dead, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	e.s.db = &store.DB{DB: dead}
	e.rebuild(t)

	wantProblem(t, e.do(t, "POST", "/v1/admin/orgs", e.keyA, `{"name":"x"}`), 403, "forbidden")
	wantProblem(t, e.do(t, "GET", "/metrics", e.keyA, ""), 403, "forbidden")
	r := e.do(t, "GET", "/metrics", "crmq_not-the-shape-of-a-key", "")
	wantProblem(t, r, 503, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// Keys that cannot be org keys need no database: they stay 401.
	wantProblem(t, e.do(t, "GET", "/metrics", "not-a-crmq-key", ""), 401, "unauthenticated")
	if r := e.do(t, "GET", "/metrics", testAdminKey, ""); r.StatusCode != 200 {
		t.Fatalf("the admin key while Postgres is down: %d", r.StatusCode)
	}
}
