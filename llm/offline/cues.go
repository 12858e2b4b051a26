package offline

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The phrases that mark a signal in notes, subjects and comments are data,
// kept in cues.json so they can be read and changed without reading code.
//
//go:embed cues.json
var cuesJSON []byte

// Cue kinds.
const (
	cueExpansion  = "expansion"
	cuePositive   = "positive"
	cueRisk       = "risk"
	cueCompetitor = "competitor"
)

type phraseGroup struct {
	Mitigation string   `json:"mitigation"`
	Phrases    []string `json:"phrases"`
}

type cueTable struct {
	Expansion  []string      `json:"expansion"`
	Positive   []string      `json:"positive"`
	Risk       []phraseGroup `json:"risk"`
	Competitor []phraseGroup `json:"competitor"`
}

// phrase is one cue: what to look for and, for risks, what to do about it.
type phrase struct {
	text       string
	mitigation string
}

var cues = mustCues(cuesJSON)

type compiledCues struct {
	byKind map[string][]phrase
}

func mustCues(b []byte) compiledCues {
	c, err := parseCues(b)
	if err != nil {
		panic(err)
	}
	return c
}

func parseCues(b []byte) (compiledCues, error) {
	var t cueTable
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return compiledCues{}, fmt.Errorf("offline: cues.json: %w", err)
	}
	c := compiledCues{byKind: map[string][]phrase{}}
	for _, p := range t.Expansion {
		c.byKind[cueExpansion] = append(c.byKind[cueExpansion], phrase{text: p})
	}
	for _, p := range t.Positive {
		c.byKind[cuePositive] = append(c.byKind[cuePositive], phrase{text: p})
	}
	for kind, groups := range map[string][]phraseGroup{cueRisk: t.Risk, cueCompetitor: t.Competitor} {
		for _, g := range groups {
			for _, p := range g.Phrases {
				c.byKind[kind] = append(c.byKind[kind], phrase{text: p, mitigation: g.Mitigation})
			}
		}
	}
	for kind, ps := range c.byKind {
		for _, p := range ps {
			if p.text == "" || p.text != strings.ToLower(p.text) {
				return compiledCues{}, fmt.Errorf("offline: cues.json: %s phrase %q must be lower case and not empty", kind, p.text)
			}
		}
	}
	return c, nil
}

// find returns the first phrase of kind in s: its byte offset and the
// phrase. A phrase matches at the start of a word ("escalat" finds
// "Escalated", "happy" does not find "unhappy"); a positive phrase right
// after "not", "no", "never" or a "n't" word does not count.
func (c compiledCues) find(kind, s string) (int, phrase, bool) {
	ls := strings.ToLower(s)
	best, bestP := -1, phrase{}
	for _, p := range c.byKind[kind] {
		for from := 0; ; {
			i := strings.Index(ls[from:], p.text)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			if !wordStart(ls, i) || (kind == cuePositive && negated(ls, i)) {
				continue
			}
			if best < 0 || i < best {
				best, bestP = i, p
			}
			break
		}
	}
	return best, bestP, best >= 0
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func wordStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isWordRune(r)
}

// negated: one of the three words before i, within the clause, is "not",
// "no", "never" or a "n't" word ("not very happy", "don't think we are
// pleased").
func negated(s string, i int) bool {
	words := strings.Fields(s[:i])
	for k := len(words) - 1; k >= 0 && k >= len(words)-3; k-- {
		raw := words[k]
		if k < len(words)-1 && strings.ContainsAny(raw[len(raw)-1:], ",;:.!?") {
			return false // the clause ends before the phrase
		}
		w := strings.TrimFunc(raw, func(r rune) bool { return !isWordRune(r) && r != '\'' && r != '’' })
		w = strings.ReplaceAll(w, "’", "'")
		if w == "not" || w == "no" || w == "never" || strings.HasSuffix(w, "n't") {
			return true
		}
	}
	return false
}

// maxQuote bounds a quote; longer sentences are cut at spaces around the
// phrase, so no word or number is ever split.
const maxQuote = 200

// quote is the sentence of s holding the match at i, as written.
func quote(s string, i, n int) string {
	start, end := 0, len(s)
	for j := i - 1; j > 0; j-- {
		if strings.ContainsRune(".!?\n", rune(s[j-1])) && (s[j] == ' ' || s[j] == '\n') {
			start = j
			break
		}
	}
	for j := i + n; j < len(s); j++ {
		if strings.ContainsRune(".!?\n", rune(s[j])) && (j+1 == len(s) || s[j+1] == ' ' || s[j+1] == '\n') {
			end = j + 1
			break
		}
	}
	q := strings.TrimSpace(s[start:end])
	if len(q) <= maxQuote {
		return q
	}
	// Keep a window around the phrase, cut at spaces.
	off := i - start - (len(s[start:end]) - len(strings.TrimLeft(s[start:end], " \n")))
	lo, hi := max(0, off-maxQuote/2), min(len(q), off+n+maxQuote/2)
	if lo > 0 {
		if k := strings.IndexByte(q[lo:], ' '); k >= 0 && lo+k < off {
			lo += k + 1
		} else {
			lo = off
		}
	}
	if hi < len(q) {
		if k := strings.LastIndexByte(q[:hi], ' '); k > off+n {
			hi = k
		} else if k := strings.IndexByte(q[off+n:], ' '); k >= 0 {
			hi = off + n + k
		} else {
			hi = len(q)
		}
	}
	out := q[lo:hi]
	if lo > 0 {
		out = "…" + out
	}
	if hi < len(q) {
		out += "…"
	}
	return out
}
