package criteria

import (
	"encoding/json"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Eval reports whether row matches the criteria at instant now (which
// in_last_days and not_in_last_days count back from, by UTC day).
//
// Row values by field type: text a string; number a float64, json.Number
// or an integer; date a time.Time. A field that is absent, nil, of another
// Go type, a NaN or infinite float or a zero time.Time is empty, and so is
// a text that is empty after trimming. An empty value satisfies is_empty,
// not_equals, not_in, not_contains and not_in_last_days, and nothing else:
// each negative operator is exactly NOT its positive twin.
func (c *Checked) Eval(row map[string]any, now time.Time) bool {
	return eval(c.root, row, utcDay(now))
}

func eval(e Expr, row map[string]any, today time.Time) bool {
	switch e := e.(type) {
	case And:
		for _, it := range e.Items {
			if !eval(it, row, today) {
				return false
			}
		}
		return true
	case Or:
		for _, it := range e.Items {
			if eval(it, row, today) {
				return true
			}
		}
		return false
	case Not:
		return !eval(e.Item, row, today)
	case *Cond:
		return e.eval(row[e.Field], today)
	}
	return false
}

// negated maps each negative operator to its positive twin.
var negated = map[Op]Op{
	NotEquals:     Equals,
	NotIn:         In,
	NotContains:   Contains,
	IsNotEmpty:    IsEmpty,
	NotInLastDays: InLastDays,
}

// Positive returns the positive twin of a negative operator (not_equals ->
// equals, not_in -> in, not_contains -> contains, is_not_empty -> is_empty,
// not_in_last_days -> in_last_days) and true, or op and false.
func Positive(op Op) (Op, bool) {
	if p, ok := negated[op]; ok {
		return p, true
	}
	return op, false
}

func (c *Cond) eval(v any, today time.Time) bool {
	if p, ok := Positive(c.Op); ok {
		return !c.positive(p, v, today)
	}
	return c.positive(c.Op, v, today)
}

// positive evaluates a positive operator; an empty value satisfies only
// is_empty.
func (c *Cond) positive(op Op, v any, today time.Time) bool {
	switch c.Type {
	case Text:
		s, ok := v.(string)
		if ok {
			s = NormText(s)
		}
		if !ok || s == "" {
			return op == IsEmpty
		}
		switch op {
		case Equals:
			return s == c.Text[0]
		case In:
			return slices.Contains(c.Text, s)
		case Contains:
			return strings.Contains(s, c.Text[0])
		case StartsWith:
			return strings.HasPrefix(s, c.Text[0])
		}
	case Number:
		r := rowNumber(v)
		if r == nil {
			return op == IsEmpty
		}
		switch op {
		case Equals:
			return r.Cmp(c.rats[0]) == 0
		case In:
			return slices.ContainsFunc(c.rats, func(x *big.Rat) bool { return r.Cmp(x) == 0 })
		case Gt:
			return r.Cmp(c.rats[0]) > 0
		case Gte:
			return r.Cmp(c.rats[0]) >= 0
		case Lt:
			return r.Cmp(c.rats[0]) < 0
		case Lte:
			return r.Cmp(c.rats[0]) <= 0
		case Between:
			return r.Cmp(c.rats[0]) >= 0 && r.Cmp(c.rats[1]) <= 0
		}
	case Date:
		t, ok := v.(time.Time)
		if !ok || t.IsZero() {
			return op == IsEmpty
		}
		d := utcDay(t)
		switch op {
		case Equals:
			return d.Equal(c.Date[0])
		case Gt, After:
			return d.After(c.Date[0])
		case Gte:
			return !d.Before(c.Date[0])
		case Lt, Before:
			return d.Before(c.Date[0])
		case Lte:
			return !d.After(c.Date[0])
		case Between:
			return !d.Before(c.Date[0]) && !d.After(c.Date[1])
		case InLastDays:
			lo, hi := LastDays(today, c.Days)
			return !d.Before(lo) && !d.After(hi)
		}
	}
	return false
}

// LastDays is the inclusive range of UTC days in_last_days n means at
// instant now: the n days ending today, so 1 is today alone.
func LastDays(now time.Time, n int) (from, to time.Time) {
	to = utcDay(now)
	return to.AddDate(0, 0, -(n - 1)), to
}

// rowNumber reads a number row value exactly; a float64 is read as the
// shortest decimal that round-trips (0.1 is 1/10), as Postgres reads it.
func rowNumber(v any) *big.Rat {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		s = strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil
		}
		s = strconv.FormatFloat(float64(v), 'g', -1, 32)
	case int:
		return new(big.Rat).SetInt64(int64(v))
	case int32:
		return new(big.Rat).SetInt64(int64(v))
	case int64:
		return new(big.Rat).SetInt64(v)
	default:
		return nil
	}
	if len(s) > maxNumberBytes*2 {
		return nil
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+")); err != nil || e > 1000 || e < -1000 {
			return nil
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}
