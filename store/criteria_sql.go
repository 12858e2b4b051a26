package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/store/criteria"
)

// CompileCriteria compiles a checked criteria into a SQL boolean
// expression that is true exactly for the rows c.Eval accepts at instant
// now. cols maps each field to a SQL expression written by crmq, never
// taken from a request: text fields to a text expression, number fields to
// one castable to numeric, date fields to a date (the UTC day; for a
// timestamptz column write "(col AT TIME ZONE 'UTC')::date"). Every operand
// becomes a parameter appended to *args and numbered after those already
// there, so user text never appears in the SQL.
//
// Every condition compiles to an expression that is never NULL, so NOT,
// AND and OR in the pattern keep two-valued logic, as Eval does.
func CompileCriteria(c *criteria.Checked, cols map[string]string, now time.Time, args *[]any) (string, error) {
	if c == nil || args == nil {
		return "", errors.New("compile criteria: nil criteria or args")
	}
	cp := criteriaCompiler{cols: cols, now: now, args: args, done: map[*criteria.Cond]string{}}
	var b strings.Builder
	if err := cp.expr(&b, c.Root()); err != nil {
		return "", fmt.Errorf("compile criteria: %w", err)
	}
	return b.String(), nil
}

// TodaySQL, in a field's SQL expression, stands for the UTC day of the
// instant the criteria is compiled for, bound as a parameter: a field
// such as the days since an account's last purchase reads the same clock
// as in_last_days does.
const TodaySQL = "@today"

type criteriaCompiler struct {
	cols map[string]string
	now  time.Time
	args *[]any
	done map[*criteria.Cond]string // a condition the pattern names twice binds its operands once
}

func (cp *criteriaCompiler) expr(b *strings.Builder, e criteria.Expr) error {
	switch e := e.(type) {
	case criteria.And:
		return cp.list(b, e.Items, " AND ", "TRUE")
	case criteria.Or:
		return cp.list(b, e.Items, " OR ", "FALSE")
	case criteria.Not:
		b.WriteString("(NOT ")
		if err := cp.expr(b, e.Item); err != nil {
			return err
		}
		b.WriteString(")")
		return nil
	case *criteria.Cond:
		s, ok := cp.done[e]
		if !ok {
			var err error
			if s, err = cp.cond(e); err != nil {
				return err
			}
			cp.done[e] = s
		}
		b.WriteString(s)
		return nil
	}
	return fmt.Errorf("unknown node %T", e)
}

func (cp *criteriaCompiler) list(b *strings.Builder, items []criteria.Expr, sep, empty string) error {
	if len(items) == 0 {
		b.WriteString(empty)
		return nil
	}
	b.WriteString("(")
	for i, it := range items {
		if i > 0 {
			b.WriteString(sep)
		}
		if err := cp.expr(b, it); err != nil {
			return err
		}
	}
	b.WriteString(")")
	return nil
}

// param appends v to the arguments and returns its placeholder.
func (cp *criteriaCompiler) param(v any) string {
	*cp.args = append(*cp.args, v)
	return "$" + strconv.Itoa(len(*cp.args))
}

// normTextSQL is criteria.NormText in SQL: trim criteria.TrimSet, then
// lower-case under the C collation, which folds ASCII letters only.
const normTextSQL = `lower(btrim((%s)::text, E' \t\n\r\x0b\x0c') COLLATE "C")`

// cond compiles one condition: the positive operator wrapped in COALESCE
// (an empty value never satisfies it), negated for a negative operator.
func (cp *criteriaCompiler) cond(c *criteria.Cond) (string, error) {
	col, ok := cp.cols[c.Field]
	if !ok || strings.TrimSpace(col) == "" {
		return "", fmt.Errorf("field %q has no SQL column", c.Field)
	}
	if strings.Contains(col, TodaySQL) {
		col = strings.ReplaceAll(col, TodaySQL, "("+cp.param(cp.now.UTC().Format(time.DateOnly))+"::date)")
	}
	op, neg := criteria.Positive(c.Op)
	var x, cmp string
	switch c.Type {
	case criteria.Text:
		x = fmt.Sprintf(normTextSQL, col)
		switch op {
		case criteria.IsEmpty:
			cmp = x + " = ''"
			// NULL is empty too.
			s := "COALESCE(" + cmp + ", TRUE)"
			if neg {
				s = "(NOT " + s + ")"
			}
			return s, nil
		case criteria.Equals:
			cmp = x + " = " + cp.param(c.Text[0])
		case criteria.In:
			cmp = x + " = ANY(" + cp.param(pq.StringArray(c.Text)) + "::text[])"
		case criteria.Contains:
			cmp = "strpos(" + x + ", " + cp.param(c.Text[0]) + ") > 0"
		case criteria.StartsWith:
			cmp = "starts_with(" + x + ", " + cp.param(c.Text[0]) + ")"
		}
	case criteria.Number:
		x = "(" + col + ")::numeric"
		switch op {
		case criteria.In:
			cmp = x + " = ANY(" + cp.param(pq.StringArray(c.Num)) + "::numeric[])"
		case criteria.Between:
			cmp = x + " BETWEEN " + cp.param(c.Num[0]) + "::numeric AND " + cp.param(c.Num[1]) + "::numeric"
		default:
			if sym, ok := comparison[op]; ok {
				cmp = x + " " + sym + " " + cp.param(c.Num[0]) + "::numeric"
			}
		}
	case criteria.Date:
		x = "(" + col + ")::date"
		day := func(t time.Time) string { return cp.param(t.Format(time.DateOnly)) + "::date" }
		switch op {
		case criteria.Between:
			cmp = x + " BETWEEN " + day(c.Date[0]) + " AND " + day(c.Date[1])
		case criteria.InLastDays:
			from, to := criteria.LastDays(cp.now, c.Days)
			cmp = x + " BETWEEN " + day(from) + " AND " + day(to)
		default:
			if sym, ok := comparison[op]; ok {
				cmp = x + " " + sym + " " + day(c.Date[0])
			}
		}
	}
	if op == criteria.IsEmpty {
		cmp = "(" + x + " IS NULL)"
	} else if cmp == "" {
		return "", fmt.Errorf("operator %s on a %s field", c.Op, c.Type)
	} else {
		cmp = "COALESCE(" + cmp + ", FALSE)"
	}
	if neg {
		return "(NOT " + cmp + ")", nil
	}
	return cmp, nil
}

var comparison = map[criteria.Op]string{
	criteria.Equals: "=",
	criteria.Gt:     ">", criteria.After: ">",
	criteria.Gte: ">=",
	criteria.Lt:  "<", criteria.Before: "<",
	criteria.Lte: "<=",
}
