package jobs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// Every Spec this package declares is listed in Specs (which the worker's
// registry test and the reconciler read), and no two share a type.
func TestSpecsListsEveryDeclaredSpec(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[string]bool{}
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, v := range vs.Values {
				if lit, ok := v.(*ast.CompositeLit); ok {
					if id, ok := lit.Type.(*ast.Ident); ok && id.Name == "Spec" {
						declared[vs.Names[i].Name] = true
					}
				}
			}
			return true
		})
	}
	types := map[string]bool{}
	for _, s := range Specs {
		if types[s.Type] {
			t.Errorf("two specs share type %s", s.Type)
		}
		types[s.Type] = true
	}
	if len(declared) != len(Specs) {
		t.Fatalf("jobs declares %d specs %v, Specs lists %d: add the new spec to Specs", len(declared), declared, len(Specs))
	}
}
