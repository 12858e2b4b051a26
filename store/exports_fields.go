package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
)

// MaxExportFields is the most fields a selected-fields export may name
// (seed 004); an all-fields export has no limit.
const MaxExportFields = 200

// ExportField is one column of a segment export: the name a request uses,
// the display name the CSV header shows, and how the value is read.
type ExportField struct {
	Name   string `json:"name"`
	Header string `json:"header"`
	// expr reads the value from the account row a and the technique
	// results joined as l_<technique> (exported as its text: asText); a
	// constant of this file, never input. An attribute is read through a
	// parameter instead.
	expr      string
	technique string // the join expr needs, "" for none
	attribute string // attributes key, passed as a parameter
}

// exportTechniques are the techniques whose results an export can carry.
var exportTechniques = []string{TechniqueRFM, TechniqueFirmographics, TechniqueEngagement, TechniqueVoC, TechniqueRecommendations}

// Display names of the built-in account fields and the ABM fields.
var exportHeaders = map[string]string{
	"id": "Account ID", "name": "Account Name", "industry": "Industry", "employees": "Employees",
	"annual_revenue": "Annual Revenue", "product_family": "Product Family", "website": "Website",
	"city": "City", "country": "Country", "owner": "Account Owner",
	"state": "Record State", "created_at": "Created Time (UTC)", "updated_at": "Modified Time (UTC)",
	"label.rfm": "RFM Label", "score.rfm.r": "RFM Recency Score", "score.rfm.f": "RFM Frequency Score",
	"score.rfm.m": "RFM Monetary Score", "rfm.recency_days": "RFM Recency (days)",
	"rfm.frequency": "RFM Frequency", "rfm.monetary": "RFM Monetary", "label.firmographics": "Firmographics Label",
	"label.engagement": "Engagement Label", "score.engagement": "Engagement Score",
	"label.voc": "VoC Label", "voc.texts": "VoC Texts",
	"label.recommendations": "Recommendations Label", "score.recommendations": "Recommendations Top Probability",
}

// utcText renders a timestamptz as "2026-03-02 10:00:00", UTC to the
// second, whatever the session's time zone: the form spreadsheets read as
// a date and time. (to_char with a "T...Z" pattern cost Postgres about
// 40% more CPU on a million rows, and spreadsheets do not parse it.)
func utcText(col string) string {
	return `(` + col + ` AT TIME ZONE 'UTC')::timestamp(0)`
}

// builtinExportFields are the account columns every export can carry, in
// the order an all-fields export writes them.
func builtinExportFields() []ExportField {
	out := []ExportField{{Name: "id", expr: "a.external_id"}}
	for _, f := range builtinByName["accounts"].Fields {
		out = append(out, ExportField{Name: f.Name, expr: "a." + f.Name})
	}
	out = append(out,
		ExportField{Name: "state", expr: "a.state"},
		ExportField{Name: "created_at", expr: utcText("a.created_at")},
		ExportField{Name: "updated_at", expr: utcText("a.updated_at")},
	)
	for _, t := range exportTechniques {
		out = append(out, ExportField{Name: "label." + t, expr: "l_" + t + ".label", technique: t})
	}
	for _, s := range []string{"r", "f", "m"} {
		out = append(out, ExportField{Name: "score.rfm." + s, expr: "l_rfm." + s, technique: TechniqueRFM})
	}
	// Recency in days as of the day the segment's membership was computed
	// (its criteria read it so), from the stored last purchase date.
	// The export's segment id is a constant of the statement, so this runs
	// once, not once per row.
	segmentDay := "(SELECT (s.computed_at AT TIME ZONE 'UTC')::date FROM segments s WHERE s.id = " + exportSegmentID + ")"
	for _, name := range []string{"recency_days", "frequency", "monetary"} {
		expr := strings.ReplaceAll(fmt.Sprintf(rfmValues[name], "l_rfm"), TodaySQL, segmentDay)
		out = append(out, ExportField{Name: "rfm." + name, expr: expr, technique: TechniqueRFM})
	}
	// The behavioural scores, and VoC's fixed shares (its keyword and
	// competitor counts depend on the org: vocExportFields).
	out = append(out,
		ExportField{Name: "score.engagement", expr: "l_engagement.score", technique: TechniqueEngagement},
		ExportField{Name: "score.recommendations", expr: "l_recommendations.score", technique: TechniqueRecommendations},
		vocExportField("texts", "", "VoC Texts"))
	for _, i := range VoCIntents() {
		out = append(out, vocExportField("intent", i, "VoC Intent "+i+" (%)"))
	}
	for _, x := range VoCSentiments() {
		out = append(out, vocExportField("sentiment", x, "VoC Sentiment "+x+" (%)"))
	}
	for i := range out {
		if h, ok := exportHeaders[out[i].Name]; ok {
			out[i].Header = h
		}
	}
	return out
}

// vocExportField reads one number of an account's VoC result (empty for
// an account without one); a keyword or competitor the account's texts
// never mention counts 0.
func vocExportField(section, key, header string) ExportField {
	name := "voc." + section
	if key != "" {
		name += "." + key
	}
	return ExportField{Name: name, Header: header, technique: TechniqueVoC,
		expr: "CASE WHEN l_voc.account_id IS NOT NULL THEN " + vocValueSQL("l_voc", section, key) + " END"}
}

// vocExportFields are the keyword and competitor counts of the org's VoC
// settings, as segments name them (voc.keyword.<key>, voc.competitor.<key>).
func vocExportFields(s VoCSettings) []ExportField {
	var out []ExportField
	for _, k := range s.Keywords {
		out = append(out, vocExportField("keyword", VoCKey(k), "VoC Keyword "+VoCKey(k)+" (mentions)"))
	}
	for _, c := range s.Competitors {
		out = append(out, vocExportField("competitor", VoCKey(c), "VoC Competitor "+VoCKey(c)+" (mentions)"))
	}
	return out
}

// attributeExportField reads an attribute; its header is the key, or the
// enrichment catalog's label for a key enrichment writes ("LinkedIn
// profile" for attributes.linkedin).
func attributeExportField(name, key string) ExportField {
	header := key
	for _, f := range EnrichFields {
		if f.Attribute == key {
			header = f.Label
			break
		}
	}
	return ExportField{Name: name, Header: header, attribute: key}
}

// ErrInvalidExportFields matches (errors.Is) every ExportFieldErrors.
var ErrInvalidExportFields = errors.New("invalid export fields")

// ExportFieldErrors says what is wrong with an export's field list, by
// key ("fields", "fields[3]").
type ExportFieldErrors map[string]string

func (e ExportFieldErrors) Error() string { return fieldErrors("invalid export fields", e) }

// Is makes ExportFieldErrors match ErrInvalidExportFields.
func (e ExportFieldErrors) Is(target error) bool { return target == ErrInvalidExportFields }

// ExportCatalog is what an org's exports can carry: the built-in account
// fields, the ABM fields, the custom fields of its ABM mapping and any
// attribute (attributes.<key>).
type ExportCatalog struct {
	builtin []ExportField
	mapped  map[string]string // custom field name -> attribute key
	src     accountSource     // where the accounts are (exports_custom.go)
}

// ExportCatalog reads the org's export catalog.
func (db *DB) ExportCatalog(ctx context.Context, orgID int64) (ExportCatalog, error) {
	m, err := db.ABMMapping(ctx, orgID)
	if err != nil {
		return ExportCatalog{}, err
	}
	src, err := sourceOf(m)
	if err != nil {
		return ExportCatalog{}, err
	}
	if src.custom() {
		return ExportCatalog{builtin: customExportFields(m.Roles[RoleAccounts]), mapped: map[string]string{}, src: src}, nil
	}
	voc, _, err := db.VoCSettingsOf(ctx, orgID)
	if err != nil {
		return ExportCatalog{}, err
	}
	c := ExportCatalog{builtin: append(builtinExportFields(), vocExportFields(voc)...), mapped: map[string]string{}, src: src}
	if rm, ok := m.Roles[RoleAccounts]; ok {
		for name, f := range rm.Fields {
			if key, ok := strings.CutPrefix(f.OrgField, attributesPrefix); ok {
				c.mapped[name] = key
			}
		}
	}
	return c, nil
}

// Select resolves a selected-fields list (1 to MaxExportFields names, no
// name twice) to fields in the order given, or ExportFieldErrors naming
// every unknown field.
func (c ExportCatalog) Select(names []string) ([]ExportField, error) {
	errs := ExportFieldErrors{}
	switch {
	case len(names) == 0:
		errs["fields"] = `name 1 to 200 fields, or "all"`
	case len(names) > MaxExportFields:
		errs["fields"] = "at most 200 fields can be selected (" + strconv.Itoa(len(names)) + ` given); use "all" to export every field`
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out := make([]ExportField, 0, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		k := "fields[" + strconv.Itoa(i) + "]"
		f, ok := c.field(n)
		switch {
		case !ok:
			errs[k] = fmt.Sprintf("unknown field %q; an account field, an ABM field (label.rfm, score.rfm.r, ...) or attributes.<key>", n)
		case seen[n]:
			errs[k] = fmt.Sprintf("field %q is named twice", n)
		}
		seen[n] = true
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func (c ExportCatalog) field(name string) (ExportField, bool) {
	for _, f := range c.builtin {
		if f.Name == name {
			return f, true
		}
	}
	if key, ok := c.mapped[name]; ok {
		f := attributeExportField(name, key)
		f.Header = humanize(name)
		return f, true
	}
	if key, ok := strings.CutPrefix(name, attributesPrefix); ok && attributeKeyRE.MatchString(key) {
		return attributeExportField(name, key), true
	}
	return ExportField{}, false
}

// All is every field an all-fields export of the segment writes: the
// built-in and ABM fields, then every attribute any member has, by key.
func (c ExportCatalog) All(ctx context.Context, db *DB, orgID, segmentID int64) ([]ExportField, error) {
	var keys []string
	err := db.SelectContext(ctx, &keys, `
		SELECT DISTINCT k FROM segment_members m JOIN `+c.src.from("a")+` ON a.id = m.`+c.src.key+`,
		     jsonb_object_keys(a.attributes) k
		WHERE m.org_id = $1 AND m.segment_id = $2 ORDER BY k`, orgID, segmentID)
	if err != nil {
		return nil, fmt.Errorf("attribute keys of segment %d: %w", segmentID, err)
	}
	out := slices.Clone(c.builtin)
	for _, k := range keys {
		out = append(out, attributeExportField(attributesPrefix+k, k))
	}
	return out, nil
}

// humanize turns a field name into a header: "deal_size" -> "Deal size".
func humanize(name string) string {
	s := strings.ReplaceAll(name, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// exportSegmentID stands in a field's expression for the exported
// segment's id; ExportCSV writes the id in its place.
const exportSegmentID = "{segment_id}"

// ExportCSV writes the values of fields for every member of the segment,
// by account id, to w as Postgres's COPY ... TO STDOUT (FORMAT csv)
// writes them: one record per member, LF-ended, no header; a NULL is an
// empty field and an empty string `""`. It returns the number of rows.
//
// COPY is used rather than a query because it is the cheapest way out of
// Postgres: the server formats the CSV and the client only passes bytes
// on, where lib/pq would decode each cell into a string (a million rows
// of ten columns cost this process about as much CPU as the compression).
// lib/pq cannot run COPY TO, so the statement runs on a connection of a
// small pgx pool of its own (copyConns). COPY takes no
// parameters: the org and segment ids are integers and an attribute key
// is quoted as a literal; everything else is this file's constants.
//
// Rows come from one statement, so they are one snapshot, and they
// stream: memory does not grow with the segment. The accounts are the
// org's accounts source (a custom accounts module's records, by record
// id, when one plays the role).
func (db *DB) ExportCSV(ctx context.Context, orgID, segmentID int64, fields []ExportField, w io.Writer) (int64, error) {
	src, err := db.accountSource(ctx, orgID)
	if err != nil {
		return 0, err
	}
	if err := checkExportSource(fields, src); err != nil {
		return 0, err
	}
	seg := strconv.FormatInt(segmentID, 10)
	sel := make([]string, len(fields))
	joins := map[string]bool{}
	for i, f := range fields {
		switch {
		case f.attribute != "":
			sel[i] = "a.attributes->>" + pq.QuoteLiteral(f.attribute)
		case f.expr != "":
			sel[i] = strings.ReplaceAll(f.expr, exportSegmentID, seg)
			if f.technique != "" {
				joins[f.technique] = true
			}
		default:
			return 0, fmt.Errorf("export field %q has no source", f.Name)
		}
	}
	from := ` FROM segment_members m JOIN ` + src.from("a") + ` ON a.id = m.` + src.key
	for _, t := range exportTechniques { // constants, in a fixed order
		if joins[t] {
			from += ` LEFT JOIN account_labels l_` + t + ` ON l_` + t + `.org_id = m.org_id AND l_` + t +
				`.technique = '` + t + `' AND l_` + t + `.` + src.key + ` = m.` + src.key
		}
	}
	from += ` WHERE m.org_id = ` + strconv.FormatInt(orgID, 10) + ` AND m.segment_id = ` + seg + ` ORDER BY m.` + src.key

	pool, err := db.copyConns(ctx)
	if err != nil {
		return 0, fmt.Errorf("export rows of segment %d: %w", segmentID, err)
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("export rows of segment %d: connect: %w", segmentID, err)
	}
	// A connection left in the transaction (an error before ROLLBACK) or
	// closed by a cancelled COPY is dropped by the pool on release.
	defer c.Release()
	conn := c.Conn().PgConn()
	// A read-only transaction planned as the behavioural techniques'
	// statements are (batchPlan): an export reads every member, so its
	// label joins are hash or merge joins; planned from the statistics of
	// tables just written, they became nested loops scanning
	// account_labels once per member (minutes for 30,000 members).
	if err := conn.Exec(ctx, `BEGIN READ ONLY; `+batchPlanSQL).Close(); err != nil {
		return 0, fmt.Errorf("export rows of segment %d: %w", segmentID, err)
	}
	q, err := asText(ctx, conn, sel, from)
	if err != nil {
		return 0, fmt.Errorf("export rows of segment %d: %w", segmentID, err)
	}
	tag, err := conn.CopyTo(ctx, w, `COPY (`+q+`) TO STDOUT WITH (FORMAT csv)`)
	if err != nil {
		return 0, fmt.Errorf("export rows of segment %d: %w", segmentID, err)
	}
	if err := conn.Exec(ctx, `ROLLBACK`).Close(); err != nil {
		return 0, fmt.Errorf("export rows of segment %d: %w", segmentID, err)
	}
	return tag.RowsAffected(), nil
}

// outputIsText are the types whose output (what COPY writes) is their
// cast to text: Postgres casts them to text through that output function.
// Other types may cast differently (a boolean's output is t, its text
// true), so their columns are cast.
var outputIsText = map[uint32]bool{
	25: true, 1043: true, // text, varchar
	20: true, 21: true, 23: true, 1700: true, 700: true, 701: true, // int8, int2, int4, numeric, float4, float8
	1082: true, 1114: true, 1184: true, // date, timestamp, timestamptz
}

// asText is the export's SELECT of sel over from with every column read as
// its text: a column whose type writes its text is left as it is and the
// others are cast, after Postgres described the statement (one round
// trip, no rows). Casting every column to text cost a million-row export
// about 8% of Postgres's time: COPY turned each cast text into text again.
func asText(ctx context.Context, conn *pgconn.PgConn, sel []string, from string) (string, error) {
	d, err := conn.Prepare(ctx, "", `SELECT `+strings.Join(sel, ", ")+from, nil)
	if err != nil {
		return "", err
	}
	if len(d.Fields) != len(sel) {
		return "", fmt.Errorf("described %d columns for %d fields", len(d.Fields), len(sel))
	}
	cols := make([]string, len(sel))
	for i, f := range d.Fields {
		cols[i] = sel[i]
		if !outputIsText[f.DataTypeOID] {
			cols[i] = "(" + sel[i] + ")::text"
		}
	}
	return `SELECT ` + strings.Join(cols, ", ") + from, nil
}
