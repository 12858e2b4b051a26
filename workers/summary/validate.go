package summary

import (
	"strings"

	"github.com/crmq/crmq/llm"
)

// NoSupportingData is the line of a section left without bullets.
const NoSupportingData = "No supporting data in the records for this section."

// Section is one section of a summary as shown: key, title and bullets,
// each with the refs of the records it rests on.
type Section struct {
	Key     string       `json:"key"`
	Title   string       `json:"title"`
	Bullets []llm.Bullet `json:"bullets"`
}

// searchSections report what a search of notes, case subjects and KPI
// comments found. "No activity note mentions a risk" is a finding there
// and rests on no single record, so a bullet without sources may stand.
// Everywhere else a statement must cite a record: a bullet left without
// sources is dropped, and a section left empty says NoSupportingData.
var searchSections = map[string]bool{
	llm.RisksAndBlockers:       true,
	llm.ExpansionOpportunities: true,
	llm.RelationalHealth:       true,
	llm.DealRisks:              true,
}

// Validate keeps what an answer may show: the asked sections in asked
// order (a key answered twice keeps its first answer); in each bullet only
// the sources that are refs of the prompt's records; bullets without
// sources only in search sections, and only if they cited nothing to
// begin with. Every asked section comes back, an
// empty one with NoSupportingData. dropped counts what was removed: each
// source that is not a ref of the prompt, each bullet removed (empty text,
// or no sources where sources are required) and each section answered that
// was not asked for or answered twice.
func Validate(ans llm.Answer, req llm.Request) (sections []Section, dropped int) {
	refs := map[string]bool{}
	if f := req.Facts; f != nil {
		refs[f.Subject.Ref] = true
		for _, r := range f.Related {
			refs[r.Ref] = true
		}
		for _, r := range f.Activities {
			refs[r.Ref] = true
		}
	}
	answered := map[string]llm.SectionAnswer{}
	asked := map[string]bool{}
	for _, s := range req.Sections {
		asked[s.Key] = true
	}
	for _, a := range ans.Sections {
		if _, dup := answered[a.Key]; dup || !asked[a.Key] {
			dropped++
			continue
		}
		answered[a.Key] = a
	}

	sections = make([]Section, 0, len(req.Sections))
	for _, spec := range req.Sections {
		sec := Section{Key: spec.Key, Title: spec.Title, Bullets: []llm.Bullet{}}
		for _, b := range answered[spec.Key].Bullets {
			text := strings.TrimSpace(b.Text)
			if text == "" {
				dropped++
				continue
			}
			sources := []string{}
			seen := map[string]bool{}
			for _, s := range b.Sources {
				switch {
				case !refs[s]:
					dropped++
				case !seen[s]:
					seen[s] = true
					sources = append(sources, s)
				}
			}
			// A bullet whose every source was unknown rested on records
			// the prompt never had: it goes, whatever the section.
			if len(sources) == 0 && (len(b.Sources) > 0 || !searchSections[spec.Key]) {
				dropped++
				continue
			}
			sec.Bullets = append(sec.Bullets, llm.Bullet{Text: text, Sources: sources})
		}
		if len(sec.Bullets) == 0 {
			sec.Bullets = append(sec.Bullets, llm.Bullet{Text: NoSupportingData, Sources: []string{}})
		}
		sections = append(sections, sec)
	}
	return sections, dropped
}
