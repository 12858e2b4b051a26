package summary

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/crmq/crmq/llm"
)

// groupedRE finds the thousands separators of an amount ("130,745.76");
// currencyRE a currency code in front of an amount ("USD 130,745.76").
var (
	groupedRE  = regexp.MustCompile(`(\d),(\d{3})\b`)
	currencyRE = regexp.MustCompile(`\b[A-Z]{3} (-?\d)`)
)

// numbers is the set of numbers and dates the prompt's facts hold, each as
// written; their plain forms ("36000.00" is 36000 too) are computed only
// when a bullet's number is not there as written.
type numbers struct {
	raw   map[string]bool
	plain map[string]bool
}

// factNumbers scans the prompt's user text (which renders the facts) once.
func factNumbers(req llm.Request) *numbers {
	text := req.User
	if text == "" && req.Facts != nil {
		b, _ := json.Marshal(req.Facts)
		text = string(b)
	}
	n := &numbers{raw: map[string]bool{}}
	scanNumbers(text, func(x string) { n.raw[x] = true })
	return n
}

func (n *numbers) holds(x string) bool {
	if n.raw[x] {
		return true
	}
	if n.plain == nil {
		n.plain = make(map[string]bool, len(n.raw))
		for r := range n.raw {
			n.plain[plain(r)] = true
		}
	}
	return n.plain[plain(x)]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumbers calls found with every date (2006-01-02) and every number
// (digits, an optional fraction) of s, left to right, as numberRE finds
// them.
func scanNumbers(s string, found func(string)) {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		if i+10 <= len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) && s[i+4] == '-' &&
			isDigit(s[i+5]) && isDigit(s[i+6]) && s[i+7] == '-' && isDigit(s[i+8]) && isDigit(s[i+9]) {
			found(s[i : i+10])
			i += 10
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
			j++
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		}
		found(s[i:j])
		i = j
	}
}

// plain is a number without trailing zeros of its fraction.
func plain(n string) string {
	if f, err := strconv.ParseFloat(n, 64); err == nil && !strings.Contains(n, "-") {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return n
}

// statesOnly tells whether every number and date of text is one the facts
// hold, amounts read without their currency code and separators.
func statesOnly(text string, known *numbers) bool {
	text = currencyRE.ReplaceAllString(text, "$1")
	for next := groupedRE.ReplaceAllString(text, "$1$2"); next != text; next = groupedRE.ReplaceAllString(text, "$1$2") {
		text = next
	}
	ok := true
	scanNumbers(text, func(n string) {
		if ok && !known.holds(n) {
			ok = false
		}
	})
	return ok
}

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
// begin with; bullets whose every number and date the prompt's facts hold
// (statesOnly). Every asked section comes back, an
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

	var known *numbers
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
			// A bullet stating a number or date the facts do not hold
			// invented it: it goes, whichever provider wrote it.
			if known == nil {
				known = factNumbers(req)
			}
			if !statesOnly(text, known) {
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
