package store

import (
	"fmt"

	"github.com/lib/pq"

	"github.com/crmq/crmq/store/crm"
)

// Org-wide figures of a graph (SummaryGraph.Org), one JSON object per
// module, computed in SQL over the graph's CTEs. Money is the exact sum of
// numeric amounts of active deals (drafts and incomplete deals count in no
// figure); "recent" is relative to the database's now().

// stageSQL writes the conditions of the deal stage rule (store/crm) over
// the stage lists it passes as parameters; no stage name is ever part of
// the query text.
type stageSQL struct{ wonP, lostP, prefixP, spaceP string } // placeholders

// stageParams numbers the stage rule's parameters from $first on.
func stageParams(first int) (stageSQL, []any) {
	p := func(i int) string { return fmt.Sprintf("$%d", first+i) }
	return stageSQL{wonP: p(0), lostP: p(1), prefixP: p(2), spaceP: p(3)},
		[]any{pq.StringArray(crm.WonStages()), pq.StringArray(crm.LostStages()), crm.LostPrefix, crm.Space}
}

// norm is crm.Norm of alias.stage; a deal without a stage has stage ”.
func (s stageSQL) norm(alias string) string {
	return fmt.Sprintf("lower(btrim(coalesce(%s.stage, ''), %s))", alias, s.spaceP)
}

// won is the condition for a won deal.
func (s stageSQL) won(alias string) string { return s.norm(alias) + " = ANY(" + s.wonP + ")" }

// open is the condition for a deal of the open pipeline: neither won, nor
// lost by name, nor starting with the lost prefix.
func (s stageSQL) open(alias string) string {
	n := s.norm(alias)
	return fmt.Sprintf("NOT (%s = ANY(%s) OR %s = ANY(%s) OR starts_with(%s, %s))", n, s.wonP, n, s.lostP, n, s.prefixP)
}

// engagement30d counts the graph's activities of the last 30 days.
const engagement30d = `(SELECT count(*) FROM g_activities WHERE occurred_at > now() - interval '30 days' AND occurred_at <= now())`

// contextSQL returns the one query that reads, besides the records, what
// a graph's summary needs, and its parameters: one row of the module's org
// figures (JSON, NULL for a custom module), the org's locale (NULLs when
// unset) and the subject's tracked picklist history (a JSON array oldest
// first, NULL when empty or untracked). One round trip instead of three.
func (g graphDef) contextSQL(args []any) (string, []any) {
	const locale = `l.currency, l.time_zone
		FROM (SELECT 1) one LEFT JOIN summary_locale_settings l ON l.org_id = $1`
	cte, figures, args := g.orgSQL(args)
	if figures == "" {
		// A custom module: no figures, no history, no graph CTE needed.
		return `SELECT NULL::text AS figures, NULL::text AS history, ` + locale, args[:1]
	}
	history := "NULL::text"
	if g.subject.Tracked != "" {
		history = `(SELECT json_agg(json_build_object('field', h.field, 'old_value', h.old_value,
			'new_value', h.new_value, 'changed_at', h.changed_at) ORDER BY h.changed_at, h.id)
			FROM field_history h JOIN g_subject s ON h.record_id = s.id
			WHERE h.org_id = $1 AND h.module = '` + g.subject.Name + `')::text`
	}
	return g.with() + cte + "\nSELECT (" + figures + ")::text AS figures, " + history + " AS history, " + locale, args
}

// orgSQL returns module's org figures as extra CTEs (after the graph's,
// each starting with a comma) and a scalar query of one JSON object, and
// the parameters after the graph's own (args); "" for none.
func (g graphDef) orgSQL(args []any) (cte, figures string, _ []any) {
	// Only the queries that read stages take the stage parameters:
	// Postgres refuses a parameter the query never uses.
	st, stageArgs := stageParams(len(args) + 1)
	args = append([]any{}, args...)
	var sel string
	switch g.subject.Name {
	case "accounts":
		// Seed 000: revenue of the account and its share of the org's;
		// engagement and its trend; seed 001: open opportunities; each
		// contact's activity count and latest date over every activity of
		// the graph, not only those a prompt holds.
		cte = `, w AS MATERIALIZED (SELECT
				(SELECT coalesce(sum(amount), 0) FROM deals d WHERE d.org_id = $1 AND d.state = 'active' AND ` + st.won("d") + `) AS org_won,
				(SELECT coalesce(sum(t.amount), 0) FROM g_deals g JOIN deals t ON t.id = g.id
				 WHERE t.org_id = $1 AND t.state = 'active' AND ` + st.won("t") + `) AS account_won)`
		sel = `
		SELECT json_build_object(
			'org_won_revenue', w.org_won,
			'account_won_revenue', w.account_won,
			'account_revenue_share', CASE WHEN w.org_won > 0 THEN round(w.account_won / w.org_won, 4) END,
			'open_pipeline_value', o.value,
			'open_deals', o.n,
			'engagement_30d', ` + engagement30d + `,
			'activities_by_contact', (
				SELECT coalesce(json_object_agg('contacts/' || c.external_id, json_build_object('activities', x.n,
				       'latest', to_char(x.latest AT TIME ZONE 'UTC', 'YYYY-MM-DD')) ORDER BY c.external_id), '{}')
				FROM (SELECT contact_id, count(*) AS n, max(occurred_at) AS latest
				      FROM g_activities WHERE contact_id IS NOT NULL GROUP BY contact_id) x
				JOIN contacts c ON c.id = x.contact_id AND c.org_id = $1),
			'activities_90d_by_month', (
				SELECT json_agg(json_build_object('month', to_char(mo.m, 'YYYY-MM'), 'activities', coalesce(c.n, 0)) ORDER BY mo.m)
				FROM generate_series(date_trunc('month', (now() - interval '90 days') AT TIME ZONE 'UTC'),
				                     date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') AS mo(m)
				LEFT JOIN (SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC') AS m, count(*) AS n
				           FROM g_activities WHERE occurred_at > now() - interval '90 days' AND occurred_at <= now()
				           GROUP BY 1) c ON c.m = mo.m))
		FROM w, (SELECT coalesce(sum(t.amount), 0) AS value, count(*) AS n FROM g_deals g JOIN deals t ON t.id = g.id
		         WHERE t.org_id = $1 AND t.state = 'active' AND ` + st.open("t") + `) o`
		args = append(args, stageArgs...)
	case "contacts":
		// Seed 000: preferred channels and timings, from when the contact
		// reaches out or answers (signals), by UTC hour, ISO weekday
		// (index 0 is Monday) and medium.
		sel = `
		SELECT json_build_object(
			'signals', (SELECT count(*) FROM g_activities WHERE direction = 'signal'),
			'follow_ups', (SELECT count(*) FROM g_activities WHERE direction = 'follow_up'),
			'signal_hours_utc', (
				SELECT json_agg(coalesce(c.n, 0) ORDER BY h.h)
				FROM generate_series(0, 23) AS h(h)
				LEFT JOIN (SELECT extract(hour FROM occurred_at AT TIME ZONE 'UTC')::int AS h, count(*) AS n
				           FROM g_activities WHERE direction = 'signal' GROUP BY 1) c ON c.h = h.h),
			'signal_weekdays_utc', (
				SELECT json_agg(coalesce(c.n, 0) ORDER BY d.d)
				FROM generate_series(1, 7) AS d(d)
				LEFT JOIN (SELECT extract(isodow FROM occurred_at AT TIME ZONE 'UTC')::int AS d, count(*) AS n
				           FROM g_activities WHERE direction = 'signal' GROUP BY 1) c ON c.d = d.d),
			'signal_mediums', (
				SELECT coalesce(json_object_agg(medium, n ORDER BY medium), '{}')
				FROM (SELECT medium, count(*) AS n FROM g_activities WHERE direction = 'signal' GROUP BY medium) x),
			'engagement_30d', ` + engagement30d + `)`
	case "leads":
		// Seed 000: how well the lead's source converts across the org.
		sel = `
		SELECT json_build_object(
			'lead_source', s.lead_source,
			'lead_source_leads', CASE WHEN s.lead_source IS NOT NULL THEN x.n END,
			'lead_source_converted', CASE WHEN s.lead_source IS NOT NULL THEN x.converted END,
			'lead_source_conversion_rate', CASE WHEN x.n > 0 THEN round(x.converted::numeric / x.n, 4) END,
			'engagement_30d', ` + engagement30d + `)
		FROM g_subject g JOIN leads s ON s.id = g.id AND s.org_id = $1
		CROSS JOIN LATERAL (
			SELECT count(*) AS n, count(*) FILTER (WHERE l.converted) AS converted
			FROM leads l WHERE l.org_id = $1 AND l.lead_source = s.lead_source) x`
	case "deals":
		// Seed 000: pipeline metrics (cumulative open opportunity value) and
		// engagement of the deal.
		sel = `
		SELECT json_build_object(
			'open_pipeline_value', o.value,
			'open_deals', o.n,
			'account_open_pipeline_value', CASE WHEN s.account_id IS NOT NULL THEN (
				SELECT coalesce(sum(d.amount), 0) FROM deals d
				WHERE d.org_id = $1 AND d.account_id = s.account_id AND d.state = 'active' AND ` + st.open("d") + `) END,
			'engagement_30d', ` + engagement30d + `)
		FROM g_subject g JOIN deals s ON s.id = g.id AND s.org_id = $1
		CROSS JOIN (SELECT coalesce(sum(d.amount), 0) AS value, count(*) AS n FROM deals d
		            WHERE d.org_id = $1 AND d.state = 'active' AND ` + st.open("d") + `) o`
		args = append(args, stageArgs...)
	default:
		return "", "", args
	}
	return cte, sel, args
}
