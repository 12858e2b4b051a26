package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The OpenAPI document is valid for an OpenAPI library (kin-openapi: load,
// resolve every $ref, Validate), every operation has a unique operationId
// (client generators name their methods after it; here each is the name of
// the route's handler), and every operation that takes input documents its
// 4xx answers.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapiYAML)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", prev, where, op.OperationID)
			}
			ids[op.OperationID] = where
			if path == "/healthz" || path == "/readyz" || path == "/openapi.yaml" {
				continue // public, without input: nothing a client sends can be refused
			}
			var four []string
			for code := range op.Responses.Map() {
				if strings.HasPrefix(code, "4") {
					four = append(four, code)
				}
			}
			if len(four) == 0 {
				t.Errorf("%s documents no 4xx answer", where)
			}
			slices.Sort(four)
		}
	}
}
