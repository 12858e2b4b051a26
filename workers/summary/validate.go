package summary

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/crmq/crmq/llm"
)

// factIndex is what the prompt's facts hold, for the fact check of a
// bullet: every number and date as written (their plain forms, "36000.00"
// is 36000 too, computed only when a bullet's number is not there as
// written) and every word, as written.
type factIndex struct {
	raw   map[string]bool
	plain map[string]bool
	words map[string]bool
}

// indexFacts reads the prompt's user text (which renders the facts) once,
// for numbers and words alike, and the words of the system text.
func indexFacts(req llm.Request) *factIndex {
	text := req.User
	if text == "" && req.Facts != nil {
		b, _ := json.Marshal(req.Facts)
		text = string(b)
	}
	x := &factIndex{raw: make(map[string]bool, len(text)/64), words: make(map[string]bool, len(text)/64)}
	scanFacts(text, func(n string) { x.raw[n] = true }, func(w string, _ bool) { x.words[w] = true })
	scanFacts(req.System, func(string) {}, func(w string, _ bool) { x.words[w] = true })
	return x
}

func (x *factIndex) holds(n string) bool {
	if x.raw[n] {
		return true
	}
	if x.plain == nil {
		x.plain = make(map[string]bool, len(x.raw))
		for r := range x.raw {
			x.plain[plain(r)] = true
		}
	}
	return x.plain[plain(n)]
}

// knows tells whether the facts hold the word as written or in lower case
// ("North" in a bullet, "north" in a note).
func (x *factIndex) knows(w string) bool {
	return x.words[w] || x.words[strings.ToLower(w)] || calendarWords[w]
}

// calendarWords are names a bullet may write that no fact spells: the
// facts write dates as 2006-01-02.
var calendarWords = func() map[string]bool {
	m := map[string]bool{}
	for d := time.Sunday; d <= time.Saturday; d++ {
		m[d.String()] = true
		m[d.String()[:3]] = true
	}
	for mo := time.January; mo <= time.December; mo++ {
		m[mo.String()] = true
		m[mo.String()[:3]] = true
	}
	m["Sept"] = true
	return m
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumbers calls found with every date (2006-01-02) and every number
// (digits, an optional fraction) of s, left to right.
func scanNumbers(s string, found func(string)) { scanFacts(s, found, nil) }

// scanFacts reads s once, left to right, and calls number with every date
// (2006-01-02) and every number (digits, an optional fraction), and word
// (when not nil) with every word (a run of letters) and whether it starts
// a sentence: it is the first of s, or follows . ! ? : ; a dash or an
// opening quote.
func scanFacts(s string, number func(string), word func(w string, start bool)) {
	start := true
	for i := 0; i < len(s); {
		c := s[i]
		if isDigit(c) {
			start = false
			if i+10 <= len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) && s[i+4] == '-' &&
				isDigit(s[i+5]) && isDigit(s[i+6]) && s[i+7] == '-' && isDigit(s[i+8]) && isDigit(s[i+9]) {
				number(s[i : i+10])
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
			number(s[i:j])
			i = j
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if word == nil || !unicode.IsLetter(r) {
			switch r {
			case ' ', '\t', '\n', '\r':
			case '.', '!', '?', ':', ';', '\u2014', '\u2013', '"', '\u201c', '\u2018', '\'':
				start = true
			case '-':
				start = start || (i > 0 && s[i-1] == ' ')
			default:
				start = false
			}
			i += size
			continue
		}
		j := i + size
		for j < len(s) {
			r, n := rune(s[j]), 1
			if s[j] >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(s[j:])
			}
			if !unicode.IsLetter(r) {
				break
			}
			j += n
		}
		word(s[i:j], start)
		start = false
		i = j
	}
}

// nameLike: a word written as a name is, a capital then a small letter
// ("Dana", "McKay"); "CEO", "KPIs" and one-letter words are not.
func nameLike(w string) bool {
	r, n := utf8.DecodeRuneInString(w)
	if !unicode.IsUpper(r) || n >= len(w) {
		return false
	}
	r2, _ := utf8.DecodeRuneInString(w[n:])
	return unicode.IsLower(r2)
}

// inventedName is the first word of text written as a name inside a
// sentence (a person, account, deal or product: "Dana", "Whitfield",
// "Globex") that the facts never write, or "". The first word of a
// sentence is left alone: any sentence starts with a capital.
func inventedName(text string, known *factIndex) string {
	bad := ""
	scanFacts(text, func(string) {}, func(w string, start bool) {
		if bad == "" && !start && nameLike(w) && !known.knows(w) {
			bad = w
		}
	})
	return bad
}

// plain is a number without trailing zeros of its fraction.
func plain(n string) string {
	if f, err := strconv.ParseFloat(n, 64); err == nil && !strings.Contains(n, "-") {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return n
}

// bareAmounts writes amounts without their currency code and thousands
// separators ("USD 130,745.76" reads 130745.76): a code of three capitals
// followed by a space and a digit or minus sign loses both, and a comma
// between a digit and three digits that end a word goes.
func bareAmounts(text string) string {
	wordByte := func(c byte) bool { return isDigit(c) || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	upper := func(c byte) bool { return 'A' <= c && c <= 'Z' }
	var b []byte // nil until something changes
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case upper(c) && i+4 < len(text) && upper(text[i+1]) && upper(text[i+2]) && text[i+3] == ' ' &&
			(isDigit(text[i+4]) || text[i+4] == '-' && i+5 < len(text) && isDigit(text[i+5])) &&
			(i == 0 || !wordByte(text[i-1])):
			if b == nil {
				b = append(make([]byte, 0, len(text)), text[:i]...)
			}
			i += 3 // the code and its space
			continue
		case c == ',' && i > 0 && isDigit(text[i-1]) && i+3 < len(text) &&
			isDigit(text[i+1]) && isDigit(text[i+2]) && isDigit(text[i+3]) && (i+4 == len(text) || !wordByte(text[i+4])):
			if b == nil {
				b = append(make([]byte, 0, len(text)), text[:i]...)
			}
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return text
	}
	return string(b)
}

// statesOnly tells whether every number and date of text is one the facts
// hold, amounts read without their currency code and separators.
func statesOnly(text string, known *factIndex) bool {
	ok := true
	scanNumbers(bareAmounts(text), func(n string) {
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

// Drops counts what Validate removed from an answer, by kind.
type Drops struct {
	Refs     int `json:"refs"`     // sources that are not refs of the prompt's records
	Bullets  int `json:"bullets"`  // bullets empty, or left without the sources they need
	Sections int `json:"sections"` // sections not asked for, or answered twice
	// Bullets stating a number or date the facts do not hold.
	Numbers int `json:"numbers"`
	// Bullets naming, inside a sentence, a person, account, deal or
	// product (a word written as a name) the facts never write.
	Names int `json:"names"`
}

// Total is every drop.
func (d Drops) Total() int { return d.Refs + d.Bullets + d.Sections + d.Numbers + d.Names }

// Invented is what a provider made up: unknown refs, numbers and names.
func (d Drops) Invented() int { return d.Refs + d.Numbers + d.Names }

// Validate is ValidateDrops with the drops added up.
func Validate(ans llm.Answer, req llm.Request) (sections []Section, dropped int) {
	sections, d := ValidateDrops(ans, req)
	return sections, d.Total()
}

// ValidateDrops keeps what an answer may show: the asked sections in asked
// order (a key answered twice keeps its first answer); in each bullet only
// the sources that are refs of the prompt's records; bullets without
// sources only in search sections, and only if they cited nothing to
// begin with; bullets whose every number and date the prompt's facts hold
// (statesOnly) and that name no one the facts do not (inventedName).
// Every asked section comes back, an empty one with NoSupportingData. The
// drops count what was removed: each source that is not a ref of the
// prompt, each bullet removed (empty text, no sources where sources are
// required, an invented number or name) and each section answered that
// was not asked for or answered twice.
func ValidateDrops(ans llm.Answer, req llm.Request) (sections []Section, d Drops) {
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
			d.Sections++
			continue
		}
		answered[a.Key] = a
	}

	var known *factIndex
	sections = make([]Section, 0, len(req.Sections))
	for _, spec := range req.Sections {
		sec := Section{Key: spec.Key, Title: spec.Title, Bullets: []llm.Bullet{}}
		for _, b := range answered[spec.Key].Bullets {
			text := strings.TrimSpace(b.Text)
			if text == "" {
				d.Bullets++
				continue
			}
			sources := []string{}
			seen := map[string]bool{}
			for _, s := range b.Sources {
				switch {
				case !refs[s]:
					d.Refs++
				case !seen[s]:
					seen[s] = true
					sources = append(sources, s)
				}
			}
			// A bullet whose every source was unknown rested on records
			// the prompt never had: it goes, whatever the section.
			if len(sources) == 0 && (len(b.Sources) > 0 || !searchSections[spec.Key]) {
				d.Bullets++
				continue
			}
			// A bullet stating a number, date or name the facts do not
			// hold invented it: it goes, whichever provider wrote it.
			if known == nil {
				known = indexFacts(req)
			}
			if !statesOnly(text, known) {
				d.Numbers++
				continue
			}
			if inventedName(text, known) != "" {
				d.Names++
				continue
			}
			sec.Bullets = append(sec.Bullets, llm.Bullet{Text: text, Sources: sources})
		}
		if len(sec.Bullets) == 0 {
			sec.Bullets = append(sec.Bullets, llm.Bullet{Text: NoSupportingData, Sources: []string{}})
		}
		sections = append(sections, sec)
	}
	return sections, d
}
