package criteria

import (
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Expr is a node of a checked criteria's tree: And, Or, Not or Cond. The
// store walks it to compile SQL; Eval walks it in Go.
type Expr interface {
	// String writes the node fully parenthesised, with 1-based condition
	// numbers, e.g. "(1 AND (2 OR NOT 3))".
	String() string
	expr()
}

// And is true when every item is; an And with no items (a criteria
// without conditions) is true.
type And struct{ Items []Expr }

// Or is true when some item is; the parser never builds an empty Or.
type Or struct{ Items []Expr }

// Not negates its item.
type Not struct{ Item Expr }

// Cond is one checked condition with its operands decoded into typed form.
// Which operand slice is set depends on Type and Op: Text for text fields,
// Num for number fields, Date for date fields, Days for in_last_days and
// not_in_last_days; none for is_empty and is_not_empty. between has two
// operands (low, high), in and not_in one or more, the others one.
type Cond struct {
	Index int // 1-based position in Criteria.Conditions, as the pattern names it
	Field string
	Op    Op
	Type  Type
	// Text operands, normalised as row values are before comparing:
	// surrounding whitespace trimmed, ASCII letters lower-cased. Never empty.
	Text []string
	// Num operands in JSON number syntax (e.g. "200", "-1.5e3"), exact, for
	// SQL numeric.
	Num []string
	// Date operands: midnight UTC of the day.
	Date []time.Time
	// Days is in_last_days' and not_in_last_days' positive number of days.
	Days int

	rats []*big.Rat // Num, parsed, for Eval
}

func (And) expr()   {}
func (Or) expr()    {}
func (Not) expr()   {}
func (*Cond) expr() {}

func (a And) String() string { return join(a.Items, " AND ", "TRUE") }
func (o Or) String() string  { return join(o.Items, " OR ", "FALSE") }
func (n Not) String() string { return "NOT " + n.Item.String() }
func (c *Cond) String() string {
	return strconv.Itoa(c.Index)
}

func join(items []Expr, sep, empty string) string {
	if len(items) == 0 {
		return empty
	}
	if len(items) == 1 {
		return items[0].String()
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.String()
	}
	return "(" + strings.Join(parts, sep) + ")"
}
