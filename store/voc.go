package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// VoC sources (seed 004 "Voice of Customer"): customer texts (signals) in
// emails, survey responses and desk tickets, and case subjects.
const (
	VoCSourceEmail  = "email"
	VoCSourceSurvey = "survey"
	VoCSourceDesk   = "desk"
	VoCSourceCases  = "cases"
)

// VoCSources are the sources an org may pick.
func VoCSources() []string {
	return []string{VoCSourceEmail, VoCSourceSurvey, VoCSourceDesk, VoCSourceCases}
}

// VoCIntents are the intents the analyser tells apart; VoCSentiments the
// sentiment shares an account has (net is positive minus negative).
func VoCIntents() []string {
	return []string{"request", "query", "complaint", "purchase", "feedback", "other"}
}
func VoCSentiments() []string { return []string{"positive", "negative", "neutral", "net"} }

// VoCSettings: which sources count, the window of texts, the org's
// keyword and competitor lists (keys compared lower-cased), and which
// classifier gives texts their intent.
type VoCSettings struct {
	Sources     []string `json:"sources"`
	WindowDays  int      `json:"window_days"`
	Keywords    []string `json:"keywords"`
	Competitors []string `json:"competitors"`
	// IntentClassifier is VoCIntentRules (the default; "" reads as it) or
	// VoCIntentLLM: the model, when the worker's provider is gemini.
	IntentClassifier string `json:"intent_classifier"`
}

// Intent classifiers an org may choose, and what a cached text records as
// the maker of its intent (voc_texts.intent_by): the rule table, the
// model, or the rule table because the model's answer left the text out.
const (
	VoCIntentRules    = "rules"
	VoCIntentLLM      = "llm"
	VoCIntentFallback = "fallback"
)

// VoCIntentClassifiers are the values of VoCSettings.IntentClassifier.
func VoCIntentClassifiers() []string { return []string{VoCIntentRules, VoCIntentLLM} }

// intentMakers are the makers of a cached intent that count as analysed
// under the settings' classifier: a text whose intent another made is
// analysed again, so switching the classifier re-analyses every text. A
// fallback counts under the model: its text is sent again only when it
// changes (or the analysis key does).
func (s VoCSettings) intentMakers() []string {
	if s.IntentClassifier == VoCIntentLLM {
		return []string{VoCIntentLLM, VoCIntentFallback}
	}
	return []string{VoCIntentRules}
}

// VoCKey is a keyword's or competitor's key: trimmed, lower-cased.
func VoCKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// VoCText is one customer text to analyse.
type VoCText struct {
	Source    string    `db:"source" json:"source"` // "activity" or "case"
	ID        int64     `db:"id" json:"source_id"`
	UpdatedAt time.Time `db:"updated_at" json:"source_updated_at"`
	Text      string    `db:"text" json:"-"`
	// The cached analysis of the same version of the text, if any (it is
	// pending for another analysis key or classifier): its intent and
	// who made it; "" when there is none.
	CachedIntent   string `db:"cached_intent" json:"-"`
	CachedIntentBy string `db:"cached_intent_by" json:"-"`
}

// VoCAnalysis is what the analyser made of one text.
type VoCAnalysis struct {
	VoCText
	Sentiment   string   `json:"sentiment"`
	Compound    float64  `json:"compound"`
	Intent      string   `json:"intent"`
	IntentBy    string   `json:"intent_by"`   // VoCIntentRules, VoCIntentLLM or VoCIntentFallback
	Keywords    []string `json:"keywords"`    // one entry per mention, keys
	Competitors []string `json:"competitors"` // one entry per mention, keys
}

func (s VoCSettings) activityMedia() []string {
	var out []string
	for _, src := range s.Sources {
		if src != VoCSourceCases {
			out = append(out, src)
		}
	}
	return out
}

func (s VoCSettings) since(now time.Time) time.Time {
	return now.Add(-time.Duration(s.WindowDays) * 24 * time.Hour)
}

// VoCPending reads the texts of source ("activity" or "case") among the
// next limit candidate texts with ids above after (in the window, from
// the chosen sources) that have no analysis under key, or one of an older
// version of the text, or one whose intent another classifier made than
// the settings name: the cache is keyed by the text's row and its
// updated_at. next is the id of the last candidate, where the next call
// starts; 0 when there was none left. A batch may hold no pending text at
// all (every candidate cached).
//
// Both sides are read by id range, the candidates through the (org_id,
// id) index and the cache through its primary key between after and next,
// so a refresh reads each text and each cached analysis once. (Bounded by
// after alone, with a LIMIT, each batch sorted every cached analysis of
// the org: quadratic in the texts, 1.4 million of them on the bench set.)
func (db *DB) VoCPending(ctx context.Context, orgID int64, s VoCSettings, key, source string, after int64, limit int, now time.Time) (texts []VoCText, next int64, err error) {
	var cand, q string
	// $1 org, $2 after, $3 and $4 the window, the media for activities;
	// then the candidates' limit, or the key and the last candidate's id
	// for the pending texts.
	args := []any{orgID, after, s.since(now), now}
	switch source {
	case "activity":
		media := s.activityMedia()
		if len(media) == 0 {
			return nil, 0, nil
		}
		args = append(args, pq.StringArray(media))
		cand = `SELECT max(id) FROM (SELECT x.id FROM activities x
			WHERE x.org_id = $1 AND x.state = 'active' AND x.direction = 'signal' AND x.medium = ANY($5)
			  AND x.occurred_at > $3 AND x.occurred_at <= $4 AND x.id > $2
			ORDER BY x.id LIMIT $6) c`
		q = `SELECT 'activity' AS source, x.id, x.updated_at,
				concat_ws('. ', nullif(btrim(x.subject), ''), nullif(btrim(x.notes), '')) AS text,
				CASE WHEN v.source_updated_at = x.updated_at THEN v.intent ELSE '' END AS cached_intent,
				CASE WHEN v.source_updated_at = x.updated_at THEN v.intent_by ELSE '' END AS cached_intent_by
			FROM activities x
			LEFT JOIN voc_texts v ON v.org_id = $1 AND v.source = 'activity' AND v.source_id = x.id
			  AND v.source_id > $2 AND v.source_id <= $7
			WHERE x.org_id = $1 AND x.state = 'active' AND x.direction = 'signal' AND x.medium = ANY($5)
			  AND x.occurred_at > $3 AND x.occurred_at <= $4 AND x.id > $2 AND x.id <= $7
			  AND (v.source_id IS NULL OR v.source_updated_at <> x.updated_at OR v.analysis_key <> $6 OR v.intent_by <> ALL($8))
			ORDER BY x.id`
	case "case":
		if !slices.Contains(s.Sources, VoCSourceCases) {
			return nil, 0, nil
		}
		cand = `SELECT max(id) FROM (SELECT k.id FROM cases k
			WHERE k.org_id = $1 AND k.state = 'active' AND btrim(k.subject) <> ''
			  AND coalesce(k.opened_at, k.created_at) > $3 AND coalesce(k.opened_at, k.created_at) <= $4 AND k.id > $2
			ORDER BY k.id LIMIT $5) c`
		q = `SELECT 'case' AS source, k.id, k.updated_at, k.subject AS text,
				CASE WHEN v.source_updated_at = k.updated_at THEN v.intent ELSE '' END AS cached_intent,
				CASE WHEN v.source_updated_at = k.updated_at THEN v.intent_by ELSE '' END AS cached_intent_by
			FROM cases k
			LEFT JOIN voc_texts v ON v.org_id = $1 AND v.source = 'case' AND v.source_id = k.id
			  AND v.source_id > $2 AND v.source_id <= $6
			WHERE k.org_id = $1 AND k.state = 'active' AND btrim(k.subject) <> ''
			  AND coalesce(k.opened_at, k.created_at) > $3 AND coalesce(k.opened_at, k.created_at) <= $4 AND k.id > $2 AND k.id <= $6
			  AND (v.source_id IS NULL OR v.source_updated_at <> k.updated_at OR v.analysis_key <> $5 OR v.intent_by <> ALL($7))
			ORDER BY k.id`
	default:
		return nil, 0, fmt.Errorf("voc source %q: %w", source, ErrInvalidQuery)
	}
	err = db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := batchPlan(ctx, tx); err != nil {
			return err
		}
		var upto sql.NullInt64
		if err := tx.GetContext(ctx, &upto, cand, append(args, limit)...); err != nil {
			return err
		}
		if !upto.Valid {
			return nil
		}
		next = upto.Int64
		return tx.SelectContext(ctx, &texts, q, append(args, key, next, pq.StringArray(s.intentMakers()))...)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pending voc texts of org %d: %w", orgID, err)
	}
	return texts, next, nil
}

// SaveVoCAnalyses upserts a batch of analyses under key in one statement.
func (db *DB) SaveVoCAnalyses(ctx context.Context, orgID int64, key string, batch []VoCAnalysis) error {
	if len(batch) == 0 {
		return nil
	}
	for i := range batch { // jsonb arrays, never null
		if batch[i].Keywords == nil {
			batch[i].Keywords = []string{}
		}
		if batch[i].Competitors == nil {
			batch[i].Competitors = []string{}
		}
		if batch[i].IntentBy == "" {
			batch[i].IntentBy = VoCIntentRules
		}
	}
	raw, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `
		INSERT INTO voc_texts (org_id, source, source_id, source_updated_at, analysis_key, sentiment, compound, intent, intent_by, keywords, competitors, analysed_at)
		SELECT $1, r.source, r.source_id, r.source_updated_at, $2, r.sentiment, r.compound, r.intent, r.intent_by,
			ARRAY(SELECT jsonb_array_elements_text(r.keywords)), ARRAY(SELECT jsonb_array_elements_text(r.competitors)), now()
		FROM jsonb_to_recordset($3::jsonb) AS r (source text, source_id bigint, source_updated_at timestamptz, sentiment text,
			compound real, intent text, intent_by text, keywords jsonb, competitors jsonb)
		ON CONFLICT (org_id, source, source_id) DO UPDATE SET
			source_updated_at = EXCLUDED.source_updated_at, analysis_key = EXCLUDED.analysis_key, sentiment = EXCLUDED.sentiment,
			compound = EXCLUDED.compound, intent = EXCLUDED.intent, intent_by = EXCLUDED.intent_by, keywords = EXCLUDED.keywords,
			competitors = EXCLUDED.competitors, analysed_at = EXCLUDED.analysed_at`, orgID, key, string(raw))
	if err != nil {
		return fmt.Errorf("save voc analyses of org %d: %w", orgID, err)
	}
	return nil
}

// PruneVoCTexts drops the analyses of texts that no longer exist.
func (db *DB) PruneVoCTexts(ctx context.Context, orgID int64) (int, error) {
	res, err := db.ExecContext(ctx, `
		DELETE FROM voc_texts v WHERE v.org_id = $1 AND (
			(v.source = 'activity' AND NOT EXISTS (SELECT 1 FROM activities x WHERE x.id = v.source_id AND x.org_id = $1))
			OR (v.source = 'case' AND NOT EXISTS (SELECT 1 FROM cases k WHERE k.id = v.source_id AND k.org_id = $1)))`, orgID)
	if err != nil {
		return 0, fmt.Errorf("prune voc texts of org %d: %w", orgID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// vocTextsSQL is every analysed text of the org under key ($K) inside the
// window ($S .. $2) from the chosen sources, with the account it speaks
// for (its own, or its contact's). media and cases name the parameters
// that hold the activity media and whether cases count.
func vocTextsSQL(key, since, media, cases string) string {
	return `SELECT coalesce(x.account_id, c.account_id) AS account_id, v.source, v.source_id, x.occurred_at AS at,
			v.sentiment, v.compound, v.intent, v.intent_by, v.keywords, v.competitors
		FROM voc_texts v JOIN activities x ON x.id = v.source_id LEFT JOIN contacts c ON c.id = x.contact_id
		WHERE v.org_id = $1 AND v.source = 'activity' AND v.analysis_key = ` + key + ` AND x.state = 'active'
		  AND x.direction = 'signal' AND x.medium = ANY(` + media + `) AND x.occurred_at > ` + since + ` AND x.occurred_at <= $2
		  AND v.source_updated_at = x.updated_at
		UNION ALL
		SELECT coalesce(k.account_id, c.account_id), v.source, v.source_id, coalesce(k.opened_at, k.created_at),
			v.sentiment, v.compound, v.intent, v.intent_by, v.keywords, v.competitors
		FROM voc_texts v JOIN cases k ON k.id = v.source_id LEFT JOIN contacts c ON c.id = k.contact_id
		WHERE ` + cases + ` AND v.org_id = $1 AND v.source = 'case' AND v.analysis_key = ` + key + ` AND k.state = 'active'
		  AND coalesce(k.opened_at, k.created_at) > ` + since + ` AND coalesce(k.opened_at, k.created_at) <= $2
		  AND v.source_updated_at = k.updated_at`
}

// VoCLabelColumns are the fields VoC labels may name, as SQL over the
// aggregated row aliased r: intent.<intent>, sentiment.<positive|negative|
// neutral|net> (shares 0-100, net -100..100), keyword.<keyword> and
// competitor.<name> (mention counts) and texts (how many).
func VoCLabelColumns(s VoCSettings) map[string]string {
	cols := map[string]string{"texts": vocValueSQL("r", "texts", "")}
	for _, name := range vocNames(s) {
		section, key, _ := vocField("voc." + name)
		cols[name] = vocValueSQL("r", section, key)
	}
	return cols
}

// vocNames are the VoC fields without the voc. prefix (texts aside).
func vocNames(s VoCSettings) []string {
	var out []string
	for _, i := range VoCIntents() {
		out = append(out, "intent."+i)
	}
	for _, x := range VoCSentiments() {
		out = append(out, "sentiment."+x)
	}
	for _, k := range s.Keywords {
		out = append(out, "keyword."+VoCKey(k))
	}
	for _, c := range s.Competitors {
		out = append(out, "competitor."+VoCKey(c))
	}
	return out
}

// VoCSettingsOf reads the org's stored VoC settings; ok is false when the
// technique was never saved (its defaults apply, which the caller knows).
func (db *DB) VoCSettingsOf(ctx context.Context, orgID int64) (VoCSettings, bool, error) {
	var raw []byte
	err := db.GetContext(ctx, &raw, `SELECT settings FROM techniques WHERE org_id = $1 AND technique = 'voc'`, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return VoCSettings{}, false, nil
	}
	if err != nil {
		return VoCSettings{}, false, fmt.Errorf("voc settings of org %d: %w", orgID, err)
	}
	var s VoCSettings
	if len(raw) == 0 || string(raw) == "{}" {
		return s, false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return VoCSettings{}, false, fmt.Errorf("voc settings of org %d: %w", orgID, err)
	}
	return s, true, nil
}

// VoCFieldNames are the VoC fields segments may name in the org:
// voc.texts, voc.intent.<intent>, voc.sentiment.<...> and, for the
// keywords and competitors of its settings, voc.keyword.<keyword> and
// voc.competitor.<name>.
func (db *DB) VoCFieldNames(ctx context.Context, orgID int64) ([]string, error) {
	s, _, err := db.VoCSettingsOf(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := []string{"voc.texts"}
	for _, n := range vocNames(s) {
		out = append(out, "voc."+n)
	}
	return out, nil
}

// LabelVoC aggregates every in-scope account's analysed texts (under key,
// in the window, from the chosen sources) into its shares and counts and
// labels it, in one set-based statement. An account with no text has no
// result.
func (db *DB) LabelVoC(ctx context.Context, orgID int64, s VoCSettings, key string, rules []LabelRule, scope Filter, now time.Time, runID string) (LabelRun, error) {
	args := []any{orgID, now, runID, key, s.since(now), pq.StringArray(s.activityMedia()), slices.Contains(s.Sources, VoCSourceCases)}
	where, err := scopeSQL(scope, &args)
	if err != nil {
		return LabelRun{}, err
	}
	label, err := labelCase(rules, VoCLabelColumns(s), now, &args)
	if err != nil {
		return LabelRun{}, err
	}
	query := `t AS MATERIALIZED (
			SELECT texts.* FROM (` + vocTextsSQL("$4", "$5", "$6", "$7") + `) texts
			JOIN accounts a ON a.id = texts.account_id
			WHERE a.org_id = $1 AND a.state = 'active' AND (` + where + `)
		), base AS (
			SELECT account_id, count(*) AS n,
				count(*) FILTER (WHERE sentiment = 'positive') AS pos,
				count(*) FILTER (WHERE sentiment = 'negative') AS neg,
				count(*) FILTER (WHERE sentiment = 'neutral') AS neu
			FROM t GROUP BY account_id
		), intents AS (
			SELECT i.account_id, jsonb_object_agg(i.intent, round(100.0 * i.cnt / b.n, 1)) AS shares
			FROM (SELECT account_id, intent, count(*) AS cnt FROM t GROUP BY 1, 2) i JOIN base b USING (account_id)
			GROUP BY i.account_id
		), kw AS (
			SELECT account_id, jsonb_object_agg(k, cnt) AS counts, jsonb_object_agg(k, net) AS sentiment
			FROM (SELECT t.account_id, k, count(*) AS cnt, round(avg(t.compound)::numeric, 3) AS net
			      FROM t CROSS JOIN LATERAL unnest(t.keywords) AS k GROUP BY 1, 2) x
			GROUP BY account_id
		), comp AS (
			SELECT account_id, jsonb_object_agg(k, cnt) AS counts
			FROM (SELECT t.account_id, k, count(*) AS cnt FROM t CROSS JOIN LATERAL unnest(t.competitors) AS k GROUP BY 1, 2) x
			GROUP BY account_id
		), r AS (
			SELECT b.account_id, jsonb_build_object(
				'texts', b.n,
				'intent', coalesce(i.shares, '{}'),
				'sentiment', jsonb_build_object('positive', round(100.0 * b.pos / b.n, 1), 'negative', round(100.0 * b.neg / b.n, 1),
					'neutral', round(100.0 * b.neu / b.n, 1), 'net', round(100.0 * (b.pos - b.neg) / b.n, 1)),
				'keyword', coalesce(kw.counts, '{}'), 'keyword_sentiment', coalesce(kw.sentiment, '{}'),
				'competitor', coalesce(comp.counts, '{}')) AS raw
			FROM base b LEFT JOIN intents i USING (account_id) LEFT JOIN kw USING (account_id) LEFT JOIN comp USING (account_id)
		), labelled AS (
			SELECT r.account_id, r.raw, NULL::smallint AS score, ` + label + ` AS label FROM r
		)`
	run, err := db.labelInTx(ctx, TechniqueVoC, query, args)
	if err != nil {
		return LabelRun{}, fmt.Errorf("label voc of org %d: %w", orgID, err)
	}
	return run, nil
}

// VoCQuote is one analysed text behind an account's VoC result.
type VoCQuote struct {
	Source      string         `db:"source" json:"source"`
	ID          string         `db:"external_id" json:"id"`
	At          time.Time      `db:"at" json:"at"`
	Text        string         `db:"text" json:"text"`
	Sentiment   string         `db:"sentiment" json:"sentiment"`
	Intent      string         `db:"intent" json:"intent"`
	IntentBy    string         `db:"intent_by" json:"intent_by"` // rules, llm or fallback
	Keywords    pq.StringArray `db:"keywords" json:"keywords"`
	Competitors pq.StringArray `db:"competitors" json:"competitors"`
}

// VoCQuoteFilter picks the texts to quote: those with any of the
// intents, sentiments, keywords or competitors named (none named: any).
type VoCQuoteFilter struct {
	Intents, Sentiments, Keywords, Competitors []string
}

// VoCQuotes quotes up to limit of the account's analysed texts, newest
// first, that match the filter.
func (db *DB) VoCQuotes(ctx context.Context, orgID int64, account string, s VoCSettings, key string, f VoCQuoteFilter, limit int, now time.Time) ([]VoCQuote, error) {
	id, err := db.accountID(ctx, orgID, account)
	if err != nil {
		return nil, err
	}
	all := len(f.Intents)+len(f.Sentiments)+len(f.Keywords)+len(f.Competitors) == 0
	out := []VoCQuote{}
	err = db.SelectContext(ctx, &out, `
		WITH t AS (`+vocTextsSQL("$3", "$4", "$5", "$6")+`)
		SELECT t.source, coalesce(x.external_id, k.external_id) AS external_id, t.at,
			CASE WHEN t.source = 'case' THEN k.subject ELSE concat_ws('. ', nullif(btrim(x.subject), ''), nullif(btrim(x.notes), '')) END AS text,
			t.sentiment, t.intent, t.intent_by, t.keywords, t.competitors
		FROM t
		LEFT JOIN activities x ON t.source = 'activity' AND x.id = t.source_id
		LEFT JOIN cases k ON t.source = 'case' AND k.id = t.source_id
		WHERE t.account_id = $7 AND ($8 OR t.intent = ANY($9) OR t.sentiment = ANY($10) OR t.keywords && $11 OR t.competitors && $12)
		ORDER BY t.at DESC, t.source_id DESC LIMIT $13`,
		orgID, now, key, s.since(now), pq.StringArray(s.activityMedia()), slices.Contains(s.Sources, VoCSourceCases), id,
		all, pq.StringArray(f.Intents), pq.StringArray(f.Sentiments), pq.StringArray(f.Keywords), pq.StringArray(f.Competitors), limit)
	if err != nil {
		return nil, fmt.Errorf("voc quotes of account %s: %w", account, err)
	}
	return out, nil
}

// VoCIntentMakers counts the account's analysed texts (under key, in the
// window, from the chosen sources) by the maker of their intent: rules,
// llm or fallback.
func (db *DB) VoCIntentMakers(ctx context.Context, orgID int64, account string, s VoCSettings, key string, now time.Time) (map[string]int, error) {
	id, err := db.accountID(ctx, orgID, account)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		By string `db:"intent_by"`
		N  int    `db:"n"`
	}
	err = db.SelectContext(ctx, &rows, `
		WITH t AS (`+vocTextsSQL("$3", "$4", "$5", "$6")+`)
		SELECT t.intent_by, count(*) AS n FROM t WHERE t.account_id = $7 GROUP BY 1`,
		orgID, now, key, s.since(now), pq.StringArray(s.activityMedia()), slices.Contains(s.Sources, VoCSourceCases), id)
	if err != nil {
		return nil, fmt.Errorf("voc intent makers of account %s: %w", account, err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.By] = r.N
	}
	return out, nil
}
