package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/crmq/crmq/store/criteria"
)

// GlobalCriteria is the org's global criteria (seed 004): which accounts
// take part in ABM. No conditions: every active account.
func (db *DB) GlobalCriteria(ctx context.Context, orgID int64) (criteria.Criteria, error) {
	var raw []byte
	err := db.GetContext(ctx, &raw, `SELECT global_criteria FROM abm_configs WHERE org_id = $1`, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return criteria.Criteria{Conditions: []criteria.Condition{}}, nil
	}
	if err != nil {
		return criteria.Criteria{}, fmt.Errorf("global criteria of org %d: %w", orgID, err)
	}
	var c criteria.Criteria
	if err := json.Unmarshal(raw, &c); err != nil {
		return criteria.Criteria{}, fmt.Errorf("global criteria of org %d: %w", orgID, err)
	}
	if c.Conditions == nil {
		c.Conditions = []criteria.Condition{}
	}
	return c, nil
}

// SetGlobalCriteria checks c against the org's account fields and stores
// it; a criteria.Errors says what is wrong.
func (db *DB) SetGlobalCriteria(ctx context.Context, orgID int64, c criteria.Criteria) error {
	fields, err := db.AccountFields(ctx, orgID)
	if err != nil {
		return err
	}
	if _, err := criteria.Check(c, fieldTypes(fields)); err != nil {
		return err
	}
	if c.Conditions == nil {
		c.Conditions = []criteria.Condition{}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `
		INSERT INTO abm_configs (org_id, global_criteria) VALUES ($1, $2)
		ON CONFLICT (org_id) DO UPDATE SET global_criteria = EXCLUDED.global_criteria, updated_at = now()`, orgID, raw)
	if err != nil {
		return fmt.Errorf("set global criteria of org %d: %w", orgID, err)
	}
	return nil
}

// ScopeFilter is the org's global criteria as a Filter over the accounts
// alias a, as of now (in_last_days and the like).
func (db *DB) ScopeFilter(ctx context.Context, orgID int64, now time.Time) (Filter, error) {
	c, err := db.GlobalCriteria(ctx, orgID)
	if err != nil {
		return nil, err
	}
	fields, err := db.AccountFields(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return CriteriaFilter(c, fields, now)
}

// CriteriaFilter checks c against fields and returns it as a Filter.
func CriteriaFilter(c criteria.Criteria, fields map[string]AccountField, now time.Time) (Filter, error) {
	checked, err := criteria.Check(c, fieldTypes(fields))
	if err != nil {
		return nil, err
	}
	cols := make(map[string]string, len(fields))
	for name, f := range fields {
		cols[name] = f.SQL
	}
	return func(args *[]any) (string, error) { return CompileCriteria(checked, cols, now, args) }, nil
}

func fieldTypes(fields map[string]AccountField) map[string]criteria.Type {
	out := make(map[string]criteria.Type, len(fields))
	for name, f := range fields {
		out[name] = f.Type
	}
	return out
}

// Techniques whose labels and scores segments and exports may name.
const (
	TechniqueRFM           = "rfm"
	TechniqueFirmographics = "firmographics"
)

// techniqueAlias is the alias under which segmentFrom joins a
// technique's results.
var techniqueAlias = map[string]string{TechniqueRFM: "lr", TechniqueFirmographics: "lf",
	TechniqueEngagement: "le", TechniqueVoC: "lv", TechniqueRecommendations: "lc"}

// LabelTechniques are the techniques whose label segments may name.
var LabelTechniques = []string{TechniqueRFM, TechniqueFirmographics, TechniqueEngagement, TechniqueVoC, TechniqueRecommendations}

// segmentFrom is the FROM clause of a set-based segment query: each
// account of src (alias a) joined once to each technique's result, so a
// criteria over many accounts reads labels and scores through hash joins,
// not one lookup per account. The caller restricts a (src.only).
func segmentFrom(src accountSource) string {
	var b strings.Builder
	b.WriteString(src.from("a"))
	for _, t := range LabelTechniques { // constants, in a fixed order
		l := techniqueAlias[t]
		b.WriteString("\n\tLEFT JOIN account_labels " + l + " ON " + l + ".org_id = a.org_id AND " + l + ".technique = '" + t + "' AND " + l + "." + src.key + " = a.id")
	}
	return b.String()
}

// joinedFields is fields (from SegmentFields) with the technique fields
// read from segmentFrom's joins instead of per-account subqueries; the
// values are the same.
func joinedFields(fields map[string]AccountField) map[string]AccountField {
	out := make(map[string]AccountField, len(fields))
	for name, f := range fields {
		out[name] = f
	}
	for t, alias := range techniqueAlias {
		out["label."+t] = AccountField{Type: criteria.Text, SQL: alias + ".label"}
	}
	for _, s := range []string{"r", "f", "m"} {
		out["score.rfm."+s] = AccountField{Type: criteria.Number, SQL: "lr." + s}
	}
	for name, expr := range rfmValues {
		out["rfm."+name] = AccountField{Type: criteria.Number, SQL: fmt.Sprintf(expr, "lr")}
	}
	out["score.engagement"] = AccountField{Type: criteria.Number, SQL: "le.score"}
	out["score.recommendations"] = AccountField{Type: criteria.Number, SQL: "lc.score"}
	for name := range fields {
		if section, key, ok := vocField(name); ok {
			// An account VoC did not label reads as empty, one it did as 0
			// where it has no share or count.
			out[name] = AccountField{Type: criteria.Number, SQL: "CASE WHEN lv.account_id IS NOT NULL THEN " + vocValueSQL("lv", section, key) + " END"}
		}
	}
	return out
}

// vocField splits a VoC segment field (voc.intent.<intent>,
// voc.sentiment.<positive|negative|neutral|net>, voc.keyword.<keyword>,
// voc.competitor.<name>, voc.texts) into the section of the VoC result it
// reads and the key in it.
func vocField(name string) (section, key string, ok bool) {
	rest, ok := strings.CutPrefix(name, "voc.")
	if !ok {
		return "", "", false
	}
	if rest == "texts" {
		return "texts", "", true
	}
	section, key, ok = strings.Cut(rest, ".")
	return section, key, ok && key != ""
}

// vocValueSQL reads one number of a VoC result (account_labels alias
// alias, a constant of this package). The key is a fixed intent or
// sentiment name or a keyword or competitor of the org's settings, which
// VoCSettings.Check restricts to letters, digits, space and .&+_-; it is
// quoted as a literal all the same.
func vocValueSQL(alias, section, key string) string {
	if section == "texts" {
		return "coalesce((" + alias + ".raw->>'texts')::numeric, 0)"
	}
	return "coalesce((" + alias + ".raw->" + pq.QuoteLiteral(section) + "->>" + pq.QuoteLiteral(key) + ")::numeric, 0)"
}

// rfmValues are RFM's raw values as criteria read them, over an
// account_labels alias (%s): recency in days as of the day the criteria is
// compiled for, not as of the refresh, since a result is rewritten only
// when it changes and days pass without one.
var rfmValues = map[string]string{
	"recency_days": "(" + TodaySQL + " - %[1]s.last_purchase)",
	"frequency":    "%[1]s.frequency",
	"monetary":     "%[1]s.monetary",
}

// SegmentFields is AccountFields plus what the techniques computed for
// each account: label.<technique> (text), and for RFM score.rfm.r, .f and
// .m and the raw rfm.recency_days, rfm.frequency and rfm.monetary
// (numbers), score.engagement and score.recommendations (0-100), and VoC's
// shares and counts (VoCFieldNames). An account a technique did not label
// reads as empty.
func (db *DB) SegmentFields(ctx context.Context, orgID int64) (map[string]AccountField, error) {
	_, fields, err := db.segmentCatalog(ctx, orgID)
	return fields, err
}

// segmentCatalog is SegmentFields and the accounts source its expressions
// read (the row a of src.table; results by src.key).
func (db *DB) segmentCatalog(ctx context.Context, orgID int64) (accountSource, map[string]AccountField, error) {
	src, fields, err := db.accountCatalog(ctx, orgID)
	if err != nil {
		return accountSource{}, nil, err
	}
	result := func(technique, expr string) string {
		return "(SELECT " + expr + " FROM account_labels l WHERE l.org_id = a.org_id AND l.technique = '" + technique + "' AND l." + src.key + " = a.id)"
	}
	for _, t := range LabelTechniques {
		fields["label."+t] = AccountField{Type: criteria.Text, SQL: result(t, "l.label")}
	}
	fields["score.engagement"] = AccountField{Type: criteria.Number, SQL: result(TechniqueEngagement, "l.score")}
	fields["score.recommendations"] = AccountField{Type: criteria.Number, SQL: result(TechniqueRecommendations, "l.score")}
	voc, err := db.VoCFieldNames(ctx, orgID)
	if err != nil {
		return accountSource{}, nil, err
	}
	for _, name := range voc {
		section, key, _ := vocField(name)
		fields[name] = AccountField{Type: criteria.Number, SQL: result(TechniqueVoC, vocValueSQL("l", section, key))}
	}
	for _, s := range []string{"r", "f", "m"} {
		fields["score.rfm."+s] = AccountField{Type: criteria.Number, SQL: result(TechniqueRFM, "l."+s)}
	}
	for name, expr := range rfmValues {
		fields["rfm."+name] = AccountField{Type: criteria.Number, SQL: result(TechniqueRFM, fmt.Sprintf(expr, "l"))}
	}
	return src, fields, nil
}

// ABMConfigured tells whether the org has configured ABM (POST
// /v1/abm/configure); the seed's edit limits apply from then on.
func (db *DB) ABMConfigured(ctx context.Context, orgID int64) (bool, error) {
	return abmConfigured(ctx, db, orgID)
}

func abmConfigured(ctx context.Context, q sqlx.QueryerContext, orgID int64) (bool, error) {
	var ok bool
	err := sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM abm_configs WHERE org_id = $1 AND configured_at IS NOT NULL)`, orgID)
	if err != nil {
		return false, fmt.Errorf("abm configured of org %d: %w", orgID, err)
	}
	return ok, nil
}

// MarkABMConfigured records that the org configured ABM.
func (db *DB) MarkABMConfigured(ctx context.Context, orgID int64, at time.Time) error {
	_, err := db.ExecContext(ctx, `
		INSERT INTO abm_configs (org_id, configured_at) VALUES ($1, $2)
		ON CONFLICT (org_id) DO UPDATE SET configured_at = COALESCE(abm_configs.configured_at, EXCLUDED.configured_at), updated_at = now()`, orgID, at)
	if err != nil {
		return fmt.Errorf("mark org %d configured: %w", orgID, err)
	}
	return nil
}

// ConfiguredOrgIDs lists the orgs that configured ABM.
func (db *DB) ConfiguredOrgIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `SELECT org_id FROM abm_configs WHERE configured_at IS NOT NULL ORDER BY org_id`); err != nil {
		return nil, fmt.Errorf("configured orgs: %w", err)
	}
	return ids, nil
}
