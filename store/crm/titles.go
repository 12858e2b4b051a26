package crm

import (
	"strings"
	"unicode"
)

// Seniority is a contact's level judged from the job title by whole words:
// C-level, VP, Head, Director, Manager, or an individual contributor (any
// other title, or none). Higher is more senior.
type Seniority int

const (
	IndividualContributor Seniority = iota
	Manager
	Director
	Head
	VP
	CLevel
)

func (s Seniority) String() string {
	return [...]string{"individual contributor", "manager", "director", "head", "VP", "C-level"}[s]
}

// Executive reports whether the level decides (C-level, VP, Head, Director).
func (s Seniority) Executive() bool { return s >= Director }

// titleWords are the whole words (or word runs) of each level, most
// senior first; a title takes the most senior level any of its words has.
// "Owner" is no level: a Product Owner is an individual contributor.
var titleWords = []struct {
	level Seniority
	words []string
}{
	{CLevel, []string{"chief", "ceo", "cfo", "cto", "coo", "cio", "cmo", "cro", "ciso", "president", "founder", "co founder"}},
	{VP, []string{"vp", "svp", "evp", "avp", "vice president"}},
	{Head, []string{"head"}},
	{Director, []string{"director"}},
	{Manager, []string{"manager", "team lead", "supervisor"}},
}

// TitleSeniority classifies a job title ("Chief Executive Officer" C-level,
// "VP Sales" VP, "Head of Finance" Head, "IT Manager" Manager, "Product
// Owner" and "Engineer" individual contributor). "Vice President" is VP,
// not C-level: a word run is matched before its single words.
func TitleSeniority(title string) Seniority {
	words := strings.FieldsFunc(strings.ToLower(title), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	best := IndividualContributor
	for i := 0; i < len(words); i++ {
		if i+1 < len(words) && words[i] == "vice" && words[i+1] == "president" {
			best = max(best, VP)
			i++
			continue
		}
		for _, tw := range splitTitleWords {
			if tw.level <= best {
				break
			}
			for _, ws := range tw.words {
				if i+len(ws) <= len(words) && equalRun(words[i:i+len(ws)], ws) {
					best = tw.level
				}
			}
		}
	}
	return best
}

// splitTitleWords is titleWords with each word run split once.
var splitTitleWords = func() []struct {
	level Seniority
	words [][]string
} {
	out := make([]struct {
		level Seniority
		words [][]string
	}, len(titleWords))
	for i, tw := range titleWords {
		out[i].level = tw.level
		for _, w := range tw.words {
			out[i].words = append(out[i].words, strings.Fields(w))
		}
	}
	return out
}()

func equalRun(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
