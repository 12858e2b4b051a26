package store

import (
	"fmt"
	"strings"
)

// A summary graph is defined once, as SQL common table expressions: one
// CTE per table of the graph naming its member rows (id, external_id,
// level, parent, updated_at), plus g_activities. SummaryGraph renders the
// members and SummaryDataHash aggregates over the very same CTEs, so the
// two can never disagree on what the graph holds.

// graphNode is one table of a graph.
type graphNode struct {
	module string // also the table
	cte    string
	sql    string // SELECT id, external_id, level, parent, updated_at
}

// activityLink makes an activity a member of the graph: activities.column
// points at a row of cte (holding records of module).
type activityLink struct {
	column, cte, module string
}

// graphDef is the graph of one summarisable module. Nodes come parents
// first; links in order of preference for an activity's parent (the most
// specific record it hangs off).
type graphDef struct {
	subject Module
	nodes   []graphNode
	links   []activityLink
}

// summaryModules are the built-in modules a summary can be made of; custom
// modules (custom_*) can be summarised too, from the record alone.
var summaryModules = []string{"accounts", "contacts", "leads", "deals"}

// graphOf returns the graph definition of module; ErrInvalidModule for a
// module without summaries.
func graphOf(module string) (graphDef, error) {
	m, err := ModuleByName(module)
	if err != nil {
		return graphDef{}, err
	}
	g := graphDef{subject: m}
	switch m.Name {
	case "accounts":
		// Seed 001's level table plus the sales records seed 000 reads.
		g.nodes = []graphNode{
			child("contacts", "account_id", "g_subject", "accounts"),
			child("deals", "account_id", "g_subject", "accounts"),
			child("deal_line_items", "deal_id", "g_deals", "deals"),
			referenced("products", "deal_line_items", "product_id", "g_deal_line_items"),
			child("cases", "account_id", "g_subject", "accounts"),
			child("success_plans", "account_id", "g_subject", "accounts"),
			child("business_challenges", "account_id", "g_subject", "accounts"),
			child("objectives", "account_id", "g_subject", "accounts"),
			accountKPIs,
			child("playbooks", "account_id", "g_subject", "accounts"),
			child("playbook_tasks", "playbook_id", "g_playbooks", "playbooks"),
			child("projects", "account_id", "g_subject", "accounts"),
		}
		g.links = []activityLink{
			{"playbook_task_id", "g_playbook_tasks", "playbook_tasks"},
			{"kpi_id", "g_kpis", "kpis"},
			{"objective_id", "g_objectives", "objectives"},
			{"success_plan_id", "g_success_plans", "success_plans"},
			{"business_challenge_id", "g_business_challenges", "business_challenges"},
			{"case_id", "g_cases", "cases"},
			{"deal_id", "g_deals", "deals"},
			{"contact_id", "g_contacts", "contacts"},
			{"account_id", "g_subject", "accounts"},
		}
	case "contacts":
		g.nodes = []graphNode{
			referenced("accounts", "contacts", "account_id", "g_subject"),
			child("deals", "contact_id", "g_subject", "contacts"),
		}
		g.links = []activityLink{{"contact_id", "g_subject", "contacts"}}
	case "leads":
		g.links = []activityLink{{"lead_id", "g_subject", "leads"}}
	case "deals":
		g.nodes = []graphNode{
			referenced("accounts", "deals", "account_id", "g_subject"),
			referenced("contacts", "deals", "contact_id", "g_subject"),
			child("deal_line_items", "deal_id", "g_subject", "deals"),
			referenced("products", "deal_line_items", "product_id", "g_deal_line_items"),
		}
		g.links = []activityLink{{"deal_id", "g_subject", "deals"}}
	default:
		if !m.Custom {
			return graphDef{}, fmt.Errorf("summaries of module %s (want %s or a custom module): %w",
				m.Name, strings.Join(summaryModules, ", "), ErrInvalidModule)
		}
	}
	return g, nil
}

// child: the rows of module whose fk points at a member of parentCTE.
func child(module, fk, parentCTE, parentModule string) graphNode {
	return graphNode{module: module, cte: "g_" + module, sql: fmt.Sprintf(`
		SELECT t.id, t.external_id, p.level + 1 AS level, '%s/' || p.external_id AS parent, t.updated_at
		FROM %s p JOIN %s t ON t.%s = p.id
		WHERE t.org_id = $1`, parentModule, parentCTE, module, fk)}
}

// referenced: the rows of module that members of parentCTE (rows of
// fromTable) point at with fk. A row several members point at is one
// member, hanging off the first of them by external id.
func referenced(module, fromTable, fk, parentCTE string) graphNode {
	return graphNode{module: module, cte: "g_" + module, sql: fmt.Sprintf(`
		SELECT DISTINCT ON (t.id) t.id, t.external_id, p.level + 1 AS level, '%s/' || p.external_id AS parent, t.updated_at
		FROM %s p JOIN %s r ON r.id = p.id AND r.org_id = $1 JOIN %s t ON t.id = r.%s
		WHERE t.org_id = $1
		ORDER BY t.id, p.external_id COLLATE "C"`, fromTable, parentCTE, fromTable, module, fk)}
}

// accountKPIs: KPIs of the account's objectives hang off their objective
// (level 2); KPIs attached to the account alone are level 1.
var accountKPIs = graphNode{module: "kpis", cte: "g_kpis", sql: `
		SELECT t.id, t.external_id, p.level + 1 AS level, 'objectives/' || p.external_id AS parent, t.updated_at
		FROM g_objectives p JOIN kpis t ON t.objective_id = p.id
		WHERE t.org_id = $1
		UNION ALL
		SELECT t.id, t.external_id, p.level + 1, 'accounts/' || p.external_id, t.updated_at
		FROM g_subject p JOIN kpis t ON t.account_id = p.id
		WHERE t.org_id = $1
		  AND (t.objective_id IS NULL OR t.objective_id NOT IN (SELECT id FROM g_objectives))`}

// with is the WITH clause defining every CTE of the graph. Parameters:
// $1 org id, $2 the subject's external id, $3 a custom module's name.
func (g graphDef) with() string {
	var b strings.Builder
	b.WriteString("WITH g_subject AS (SELECT t.id, t.external_id, 0 AS level, ''::text AS parent, t.updated_at FROM ")
	b.WriteString(g.subject.Table + " t WHERE t.org_id = $1 AND t.external_id = $2")
	if g.subject.Custom {
		b.WriteString(" AND t.module = $3")
	}
	b.WriteString(")")
	for _, n := range g.nodes {
		fmt.Fprintf(&b, ",\n%s AS (%s)", n.cte, n.sql)
	}
	// Activities of the graph. Each link is an index scan (ANY of an
	// array, so the planner can OR the indexes of the link columns).
	b.WriteString(",\ng_activities AS (SELECT t.id, t.external_id, t.updated_at, t.occurred_at, t.direction, t.medium, t.contact_id FROM activities t WHERE t.org_id = $1 AND ")
	if len(g.links) == 0 {
		b.WriteString("false")
	} else {
		conds := make([]string, len(g.links))
		for i, l := range g.links {
			conds[i] = fmt.Sprintf("t.%s = ANY(ARRAY(SELECT id FROM %s))", l.column, l.cte)
		}
		b.WriteString("(" + strings.Join(conds, " OR ") + ")")
	}
	b.WriteString(")\n")
	return b.String()
}

func (g graphDef) args(orgID int64, externalID string) []any {
	if g.subject.Custom {
		return []any{orgID, externalID, g.subject.Name}
	}
	return []any{orgID, externalID}
}

// Parts of the data hash, in the order they are hashed.
const (
	partActivities = "activities"
	partHistory    = "field_history"
)

// aggregatesSQL counts each table's members, their newest updated_at and
// an order-independent checksum of (id, updated_at): any insert, update or
// delete of a member changes one of the three. No row leaves the server.
func (g graphDef) aggregatesSQL() string {
	agg := func(ord int, part, from, idCol, timeCol string) string {
		return fmt.Sprintf(`SELECT %d AS ord, '%s' AS part, count(*) AS n, max(%s) AS newest,
			coalesce(sum(hashtextextended(%s::text || '@' || (extract(epoch FROM %s) * 1000000)::bigint::text, 0)), 0)::text AS checksum
			FROM %s`, ord, part, timeCol, idCol, timeCol, from)
	}
	parts := []string{agg(0, g.subject.Name, "g_subject", "id", "updated_at")}
	for i, n := range g.nodes {
		parts = append(parts, agg(i+1, n.module, n.cte, "id", "updated_at"))
	}
	parts = append(parts, agg(len(g.nodes)+1, partActivities, "g_activities", "id", "updated_at"))
	if g.subject.Tracked != "" {
		parts = append(parts, agg(len(g.nodes)+2, partHistory, fmt.Sprintf(
			`field_history h JOIN g_subject s ON h.record_id = s.id WHERE h.org_id = $1 AND h.module = '%s'`,
			g.subject.Name), "h.id", "h.changed_at"))
	}
	return g.with() + strings.Join(parts, "\nUNION ALL\n") + "\nORDER BY ord"
}

// recordsSQL renders the subject and the related records as GetRecord does,
// parents before children.
func (g graphDef) recordsSQL() string {
	parts := []string{renderNode(0, g.subject, "g_subject")}
	for i, n := range g.nodes {
		parts = append(parts, renderNode(i+1, builtinByName[n.module], n.cte))
	}
	return g.with() + "SELECT * FROM (" + strings.Join(parts, "\nUNION ALL\n") +
		") r\nORDER BY level, ord, external_id COLLATE \"C\""
}

func renderNode(ord int, m Module, cte string) string {
	return fmt.Sprintf(`SELECT %d AS ord, '%s' AS module, g.level, g.parent, g.external_id, g.updated_at, %s AS fields
		FROM %s g JOIN %s t ON t.id = g.id AND t.org_id = $1%s`, ord, m.Name, recordJSON(m), cte, m.Table, lookupJoins(m))
}

// lookupJoins joins the targets of m's lookups as recordJSON expects them
// (aliases l0, l1, ...), as recordFrom does.
func lookupJoins(m Module) string {
	var b strings.Builder
	for i, l := range m.Lookups {
		fmt.Fprintf(&b, " LEFT JOIN %s l%d ON l%d.id = t.%s", builtinByName[l.Target].Table, i, i, l.Column)
	}
	return b.String()
}

// activitiesSQL renders the newest ActivityCap activities of the graph,
// each hanging off the most specific member it points at.
func (g graphDef) activitiesSQL() string {
	acts := builtinByName["activities"]
	var joins strings.Builder
	levels := make([]string, 0, len(g.links))
	parents := make([]string, 0, len(g.links))
	for i, l := range g.links {
		fmt.Fprintf(&joins, " LEFT JOIN %s p%d ON p%d.id = t.%s", l.cte, i, i, l.column)
		levels = append(levels, fmt.Sprintf("p%d.level", i))
		parents = append(parents, fmt.Sprintf("'%s/' || p%d.external_id", l.module, i))
	}
	level, parent := "1", "''"
	if len(g.links) > 0 {
		level = "coalesce(" + strings.Join(levels, ", ") + ") + 1"
		parent = "coalesce(" + strings.Join(parents, ", ") + ")"
	}
	return g.with() + fmt.Sprintf(`, top AS (SELECT id, external_id, updated_at, occurred_at FROM g_activities ORDER BY occurred_at DESC, id DESC LIMIT %d)
		SELECT 'activities' AS module, %s AS level, %s AS parent, g.external_id, g.updated_at, %s AS fields
		FROM top g JOIN activities t ON t.id = g.id AND t.org_id = $1%s%s
		ORDER BY g.occurred_at DESC, g.id DESC`, ActivityCap, level, parent, recordJSON(acts), lookupJoins(acts), joins.String())
}
