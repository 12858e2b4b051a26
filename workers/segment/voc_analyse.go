package segment

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jonreiter/govader"

	"github.com/crmq/crmq/store"
)

// The VoC analyser: sentiment from VADER (github.com/jonreiter/govader, a
// Go port of the MIT-licensed vaderSentiment lexicon and rules; English
// only), intent from the rule table in voc_intents.json, and the org's
// keywords and competitors counted as whole words.

//go:embed voc_intents.json
var intentTable []byte

type intentRule struct {
	Intent  string   `json:"intent"`
	Phrases []string `json:"phrases"`
}

type compiledIntent struct {
	intent string
	words  *regexp.Regexp // phrases that start and end with a letter or digit, as whole words
	plain  []string       // other phrases ("?"), as substrings
}

var (
	vaderOnce sync.Once
	vader     *govader.SentimentIntensityAnalyzer
	intents   []compiledIntent
	// intentVersion is part of the analysis key: a changed table
	// analyses every text again.
	intentVersion string
	intentErr     error
)

func loadAnalyser() {
	vader = govader.NewSentimentIntensityAnalyzer()
	var table struct {
		Version int          `json:"version"`
		Rules   []intentRule `json:"rules"`
	}
	if err := json.Unmarshal(intentTable, &table); err != nil {
		intentErr = fmt.Errorf("voc intent table: %w", err)
		return
	}
	sum := sha256.Sum256(intentTable)
	intentVersion = hex.EncodeToString(sum[:8])
	for _, r := range table.Rules {
		c := compiledIntent{intent: r.Intent}
		var words []string
		for _, p := range r.Phrases {
			p = strings.ToLower(p)
			if isWordy(p) {
				words = append(words, regexp.QuoteMeta(p))
			} else {
				c.plain = append(c.plain, p)
			}
		}
		if len(words) > 0 {
			c.words = regexp.MustCompile(`\b(?:` + strings.Join(words, "|") + `)\b`)
		}
		intents = append(intents, c)
	}
}

func isWordy(p string) bool {
	if p == "" {
		return false
	}
	first, last := rune(p[0]), rune(p[len(p)-1])
	ok := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	return ok(first) && ok(last)
}

// Analyser analyses customer texts for one org's VoC settings.
type Analyser struct {
	keywords    []term
	competitors []term
	// Key identifies the analysis: a text analysed under another key
	// (other keywords, competitors or intent rules) is analysed again.
	Key string
}

type term struct {
	key string
	re  *regexp.Regexp
}

// NewAnalyser prepares the analyser for settings.
func NewAnalyser(s store.VoCSettings) (*Analyser, error) {
	vaderOnce.Do(loadAnalyser)
	if intentErr != nil {
		return nil, intentErr
	}
	a := &Analyser{}
	compile := func(list []string) []term {
		var out []term
		for _, t := range list {
			k := store.VoCKey(t)
			pat := regexp.QuoteMeta(k)
			if isWordy(k) {
				pat = `\b` + pat + `\b`
			}
			out = append(out, term{key: k, re: regexp.MustCompile(pat)})
		}
		return out
	}
	a.keywords, a.competitors = compile(s.Keywords), compile(s.Competitors)
	h := sha256.New()
	fmt.Fprintf(h, "v1|%s|", intentVersion)
	for _, t := range a.keywords {
		fmt.Fprintf(h, "k:%s|", t.key)
	}
	for _, t := range a.competitors {
		fmt.Fprintf(h, "c:%s|", t.key)
	}
	a.Key = hex.EncodeToString(h.Sum(nil)[:12])
	return a, nil
}

// Sentiment thresholds of VADER's compound score (its authors' usual ones).
const (
	positiveFrom = 0.05
	negativeTo   = -0.05
)

// Analyse classifies one text.
func (a *Analyser) Analyse(t store.VoCText) store.VoCAnalysis {
	out := store.VoCAnalysis{VoCText: t, Intent: "other", IntentBy: store.VoCIntentRules, Sentiment: "neutral", Keywords: []string{}, Competitors: []string{}}
	out.Compound = vader.PolarityScores(t.Text).Compound
	switch {
	case out.Compound >= positiveFrom:
		out.Sentiment = "positive"
	case out.Compound <= negativeTo:
		out.Sentiment = "negative"
	}
	low := strings.ToLower(t.Text)
	for _, c := range intents {
		if (c.words != nil && c.words.MatchString(low)) || containsAny(low, c.plain) {
			out.Intent = c.intent
			break
		}
	}
	for _, k := range a.keywords {
		for range k.re.FindAllStringIndex(low, -1) {
			out.Keywords = append(out.Keywords, k.key)
		}
	}
	for _, c := range a.competitors {
		for range c.re.FindAllStringIndex(low, -1) {
			out.Competitors = append(out.Competitors, c.key)
		}
	}
	out.Text = ""
	return out
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// vocBatch is how many candidate texts one read of the cache covers (and
// so the most one write takes).
const vocBatch = 5000

// AnalyseVoC analyses the org's texts that have no analysis under the
// analyser's key (new, changed, or analysed under other settings or by
// another intent classifier than s names), in batches, and drops the
// analyses of deleted texts. With s.IntentClassifier "llm", m gives the
// texts their intent (m must then be set). It returns how many texts it
// analysed.
func AnalyseVoC(ctx context.Context, db *store.DB, orgID int64, s store.VoCSettings, a *Analyser, m *IntentModel, now time.Time) (int, error) {
	if s.IntentClassifier == store.VoCIntentLLM && m == nil {
		return 0, errors.New("voc: the llm intent classifier needs a model")
	}
	save := func(batch []store.VoCAnalysis) error { return db.SaveVoCAnalyses(ctx, orgID, a.Key, batch) }
	n := 0
	for _, source := range []string{"activity", "case"} {
		after := int64(0)
		for {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			texts, next, err := db.VoCPending(ctx, orgID, s, a.Key, source, after, vocBatch, now)
			if err != nil {
				return n, err
			}
			if next == 0 {
				break
			}
			if len(texts) > 0 {
				batch := make([]store.VoCAnalysis, len(texts))
				for i, t := range texts {
					batch[i] = a.Analyse(t)
				}
				if s.IntentClassifier == store.VoCIntentLLM {
					if err := m.classify(ctx, texts, batch, save); err != nil {
						return n, err
					}
				} else if err := save(batch); err != nil {
					return n, err
				}
				n += len(texts)
			}
			after = next
		}
	}
	if _, err := db.PruneVoCTexts(ctx, orgID); err != nil {
		return n, err
	}
	return n, nil
}
