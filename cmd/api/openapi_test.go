package main

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/crmq/crmq/store"
)

// The OpenAPI document lists exactly the routes the server has.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var served []string
	for _, r := range (&server{monitoring: http.NotFoundHandler()}).routeTable() {
		if strings.HasPrefix(r.pattern, "/monitoring") {
			continue // the dashboard is a UI, not API
		}
		served = append(served, r.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("route %q is not in openapi.yaml", s)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("openapi.yaml documents %q, which the server does not serve", d)
		}
	}
}

// Each route's declared query parameters are the ones openapi.yaml
// documents for it, so the edge tests try every query parameter a route
// reads.
func TestRouteQueryParametersMatchOpenAPI(t *testing.T) {
	type param struct {
		Ref  string `yaml:"$ref"`
		Name string `yaml:"name"`
		In   string `yaml:"in"`
	}
	type operation struct {
		Parameters []param `yaml:"parameters"`
	}
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Parameters map[string]param `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	queryOf := func(ps []param) []string {
		var names []string
		for _, p := range ps {
			if ref, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
				p = doc.Components.Parameters[ref]
			}
			if p.In == "query" {
				names = append(names, p.Name)
			}
		}
		return names
	}
	for _, r := range (&server{}).routeTable() {
		method, path, _ := strings.Cut(r.pattern, " ")
		item, ok := doc.Paths[path]
		if !ok {
			continue // TestOpenAPIMatchesRoutes reports it
		}
		var shared, op operation
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&shared.Parameters); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		if n, ok := item[strings.ToLower(method)]; ok {
			if err := n.Decode(&op); err != nil {
				t.Fatalf("%s: %v", r.pattern, err)
			}
		}
		documented := queryOf(append(shared.Parameters, op.Parameters...))
		declared := slices.Clone(r.query)
		slices.Sort(documented)
		slices.Sort(declared)
		if !slices.Equal(documented, declared) {
			t.Errorf("%s: the route table declares query %v, openapi.yaml documents %v", r.pattern, declared, documented)
		}
	}
}

// Each operation's security requirement in openapi.yaml is the route's
// declared access: none for public routes, the admin key for admin
// routes, an org key with the route's scope (or with none, for routes
// open to any key of the org) for the rest; a route that needs a scope
// documents the 403 insufficient-scope answer. The Scope enum is
// store.Scopes().
func TestOpenAPISecurityMatchesRouteAccess(t *testing.T) {
	type ref struct {
		Ref string `yaml:"$ref"`
	}
	type operation struct {
		Security  *[]map[string][]string `yaml:"security"`
		Responses map[string]ref         `yaml:"responses"`
	}
	var doc struct {
		Security   []map[string][]string                  `yaml:"security"`
		Paths      map[string]map[string]yaml.Node        `yaml:"paths"`
		Components struct{ Schemas map[string]yaml.Node } `yaml:"components"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var scope struct {
		Enum []string `yaml:"enum"`
	}
	scopeNode := doc.Components.Schemas["Scope"]
	if err := scopeNode.Decode(&scope); err != nil || !slices.Equal(scope.Enum, store.Scopes()) {
		t.Errorf("openapi.yaml Scope enum %v (%v), want %v", scope.Enum, err, store.Scopes())
	}
	for _, r := range (&server{}).routeTable() {
		method, path, _ := strings.Cut(r.pattern, " ")
		n, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			continue // TestOpenAPIMatchesRoutes reports it
		}
		var op operation
		if err := n.Decode(&op); err != nil {
			t.Fatalf("%s: %v", r.pattern, err)
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		var want []map[string][]string
		want403 := ""
		switch r.access {
		case accessPublic:
			want = []map[string][]string{}
		case accessAdmin:
			want, want403 = []map[string][]string{{"adminKey": {}}}, "#/components/responses/Forbidden"
		case accessOrg:
			want = []map[string][]string{{"orgKey": {}}}
		default:
			want, want403 = []map[string][]string{{"orgKey": {r.access}}}, "#/components/responses/InsufficientScope"
		}
		if !reflect.DeepEqual(normalise(security), normalise(want)) {
			t.Errorf("%s: openapi.yaml security %v, the route table says %q (want %v)", r.pattern, security, r.access, want)
		}
		if got := op.Responses["403"].Ref; got != want403 {
			t.Errorf("%s: openapi.yaml 403 %q, want %q", r.pattern, got, want403)
		}
	}
}

// normalise makes nil and empty lists compare equal.
func normalise(reqs []map[string][]string) []map[string][]string {
	out := []map[string][]string{}
	for _, req := range reqs {
		m := map[string][]string{}
		for k, v := range req {
			m[k] = append([]string{}, v...)
		}
		out = append(out, m)
	}
	return out
}
