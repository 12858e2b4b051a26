package offline

import (
	"regexp"
	"strings"

	"github.com/crmq/crmq/llm"
)

// classify answers a classification by keywords: for each question, the
// label whose keywords occur most often in the text (whole words, any
// case), the first such label on a tie; no bullet when none occurs. The
// bullet's source names the keyword that decided.
func classify(c *llm.Classification) llm.Answer {
	text := strings.ToLower(c.Text)
	ans := llm.Answer{Sections: make([]llm.SectionAnswer, 0, len(c.Questions))}
	for _, q := range c.Questions {
		sec := llm.SectionAnswer{Key: q.Key, Bullets: []llm.Bullet{}}
		best, bestHits, bestWord := "", 0, ""
		for _, l := range q.Labels {
			hits, first := 0, ""
			for _, k := range l.Keywords {
				n := len(wordRE(k).FindAllStringIndex(text, -1))
				if n > 0 && first == "" {
					first = k
				}
				hits += n
			}
			if hits > bestHits {
				best, bestHits, bestWord = l.Name, hits, first
			}
		}
		if best != "" {
			sec.Bullets = append(sec.Bullets, llm.Bullet{Text: best, Sources: []string{"keyword:" + bestWord}})
		}
		ans.Sections = append(ans.Sections, sec)
	}
	return ans
}

func wordRE(k string) *regexp.Regexp {
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(strings.ToLower(k)) + `\b`)
}
