package config

import (
	"os"
	"strings"
	"testing"
)

// Every variable crmq reads has a row in README's configuration table.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		if !strings.Contains(string(b), "| `"+v.Name+"` |") {
			t.Errorf("README.md has no configuration row for %s", v.Name)
		}
	}
}
