package offline

import "github.com/crmq/crmq/llm"

// FiguresRead composes the section of spec from f and returns the figures
// its composer read.
func FiguresRead(f *llm.Facts, spec llm.SectionSpec) []string {
	v := newView(f)
	v.reads = map[string]bool{}
	v.section(spec)
	out := make([]string, 0, len(v.reads))
	for k := range v.reads {
		out = append(out, k)
	}
	return out
}
