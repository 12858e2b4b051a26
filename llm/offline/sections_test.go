package offline_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/workers/summary"
)

// Each section is defined once: its composer reads only the figures its
// definition names (which the prompt's instruction lists), over every
// record of the evaluation set; and every definition has a title, an
// instruction and a composer.
func TestComposersReadOnlyTheFiguresTheirDefinitionNames(t *testing.T) {
	cases, err := summary.EvalSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string][]string{}
	for _, d := range offline.Definitions() {
		reads[d.Module+"/"+d.Key] = d.Reads
		if d.Title == "" || d.Instruction == "" {
			t.Errorf("%s/%s has no title or instruction", d.Module, d.Key)
		}
	}
	for _, c := range cases {
		g := c.Graph
		g.Subject.Module = c.Module
		asked, _ := summary.Sections(c.Module, nil)
		req, _, err := summary.BuildPrompt(g, c.Module, asked, 0, c.Today)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for _, spec := range req.Sections {
			named := reads[c.Module+"/"+spec.Key]
			for _, fig := range offline.FiguresRead(req.Facts, spec) {
				if !slices.Contains(named, fig) {
					t.Errorf("%s: %s reads the figure %s its definition does not name", c.Name, spec.Key, fig)
				}
			}
			for _, fig := range named {
				if !strings.Contains(spec.Instruction, fig) {
					t.Errorf("%s: the instruction of %s does not name its figure %s", c.Name, spec.Key, fig)
				}
			}
		}
	}
}
