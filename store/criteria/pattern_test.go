package criteria_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/crmq/crmq/store/criteria"
)

// withPattern is n is_not_empty conditions combined by pattern.
func withPattern(n int, pattern string) criteria.Criteria {
	c := criteria.Criteria{Pattern: pattern}
	for range n {
		c.Conditions = append(c.Conditions, cond("country", criteria.IsNotEmpty, ""))
	}
	return c
}

func TestPatternBindsNotThenAndThenOr(t *testing.T) {
	cases := map[string]string{
		"1 OR 2 AND 3":                  "(1 OR (2 AND 3))",
		"1 AND 2 OR 3":                  "((1 AND 2) OR 3)",
		"NOT 1 AND 2 OR 3":              "((NOT 1 AND 2) OR 3)",
		"not (1 or 2) and 3":            "(NOT (1 OR 2) AND 3)",
		"1 And (2 oR 3)":                "(1 AND (2 OR 3))",
		"NOT NOT 1 OR 2 OR 3":           "(NOT NOT 1 OR 2 OR 3)",
		"((1))AND(2)\tAND\n3":           "(1 AND 2 AND 3)",
		"(1 AND 2) OR (1 AND NOT 3)":    "((1 AND 2) OR (1 AND NOT 3))",
		"1 AND 2 AND 3 OR 1 AND 2 OR 3": "((1 AND 2 AND 3) OR (1 AND 2) OR 3)",
		"003 OR 2 OR 1":                 "(3 OR 2 OR 1)",
	}
	for pattern, want := range cases {
		ch, err := criteria.Check(withPattern(3, pattern), testFields)
		if err != nil {
			t.Errorf("%q: %v", pattern, err)
			continue
		}
		if got := ch.Root().String(); got != want {
			t.Errorf("%q parsed as %s, want %s", pattern, got, want)
		}
	}
}

func TestPatternRefusesWhatIsNotAPattern(t *testing.T) {
	deep := strings.Repeat("(", criteria.MaxDepth+1) + "1" + strings.Repeat(")", criteria.MaxDepth+1)
	cases := []struct{ name, pattern, msg string }{
		{"an empty pattern", "   ", "empty"},
		{"an unclosed parenthesis", "(1 AND 2", "parenthesis at byte 0 is not closed"},
		{"an extra closing parenthesis", "1 AND 2)", `unexpected ")" at byte 7`},
		{"an unknown index", "1 AND 4", "condition 4 at byte 6 does not exist (there are 3)"},
		{"index zero", "0 OR 1 OR 2 OR 3", "condition 0 at byte 0 does not exist"},
		{"a huge index", "1 AND 2 AND 99999999999999999999 AND 3", "does not exist"},
		{"trailing tokens", "1 AND 2 AND 3 3", `unexpected "3" at byte 14`},
		{"a trailing operator", "1 AND 2 AND 3 AND", "ends where a condition number"},
		{"two operators", "1 AND OR 2 AND 3", `unexpected "OR" at byte 6`},
		{"a lone NOT", "NOT", "ends where"},
		{"empty parentheses", "1 AND () AND 2 AND 3", `unexpected ")"`},
		{"an unknown word", "1 XOR 2 AND 3", `unknown word "XOR"`},
		{"a symbol for AND", "1 && 2 && 3", "unexpected character at byte 2"},
		{"SQL", "1; DROP TABLE accounts", "unexpected character at byte 1"},
		{"a comment", "1 AND 2 AND 3 -- x", "unexpected character"},
		{"a fullwidth digit", "１ AND 2 AND 3", "unexpected character at byte 0"},
		{"a placeholder", "$1 AND 2 AND 3", "unexpected character"},
		{"an unused condition", "1 AND 2", "condition 3 is not used"},
		{"two unused conditions", "2", "conditions 1, 3 are not used"},
		{"too deep", deep + " AND 2 AND 3", "nested deeper than 20"},
		{"too deep with NOT", strings.Repeat("NOT ", criteria.MaxDepth+1) + "1 AND 2 AND 3", "nested deeper than 20"},
		{"too long", "1 AND 2 AND 3" + strings.Repeat(" ", criteria.MaxPatternBytes), "longer than 1000 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, err := criteria.Check(withPattern(3, tc.pattern), testFields)
			errs, _ := err.(criteria.Errors)
			if !strings.Contains(errs["pattern"], tc.msg) {
				t.Fatalf("want pattern: ...%s..., got %v", tc.msg, err)
			}
		})
	}
	nested := strings.Repeat("(", criteria.MaxDepth) + "1" + strings.Repeat(")", criteria.MaxDepth) + " AND 2 AND 3"
	if _, err := criteria.Check(withPattern(3, nested), testFields); err != nil {
		t.Errorf("nesting of exactly %d: %v", criteria.MaxDepth, err)
	}
	if _, err := criteria.Check(withPattern(0, "1"), testFields); err == nil {
		t.Errorf("a pattern over no conditions was accepted")
	}
}

// render writes a random tree over conditions 1..n with the fewest
// parentheses precedence allows, and the same tree fully parenthesised as
// Expr.String writes it.
func render(rng *rand.Rand, n, depth int) (minimal, full string, prec int) {
	if depth == 0 || rng.IntN(3) == 0 {
		i := fmt.Sprint(1 + rng.IntN(n))
		return i, i, 3
	}
	switch rng.IntN(3) {
	case 0:
		m, f, p := render(rng, n, depth-1)
		if p < 3 {
			m = "(" + m + ")"
		}
		return "NOT " + m, "NOT " + f, 3
	default:
		op, myPrec := " AND ", 2
		if rng.IntN(2) == 0 {
			op, myPrec = " OR ", 1
		}
		k := 2 + rng.IntN(2)
		var ms, fs []string
		for range k {
			m, f, p := render(rng, n, depth-1)
			if p <= myPrec { // a nested list of the same operator stays its own node
				m = "(" + m + ")"
			}
			ms, fs = append(ms, m), append(fs, f)
		}
		return strings.Join(ms, op), "(" + strings.Join(fs, op) + ")", myPrec
	}
}

func TestPatternParsesWhatItPrintsWithMinimalParentheses(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 2000 {
		n := 1 + rng.IntN(6)
		minimal, full, _ := render(rng, n, 5)
		// Make every condition used.
		for i := 1; i <= n; i++ {
			minimal = "(" + minimal + ") OR " + fmt.Sprint(i)
			full = "(" + full + " OR " + fmt.Sprint(i) + ")"
		}
		ch, err := criteria.Check(withPattern(n, minimal), testFields)
		if err != nil {
			t.Fatalf("%q: %v", minimal, err)
		}
		if got := ch.Root().String(); got != full {
			t.Fatalf("%q parsed as\n%s, want\n%s", minimal, got, full)
		}
	}
}

// FuzzPattern: the parser never panics, and what it accepts prints as a
// pattern that parses to the same tree.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"1", "1 AND (2 OR 3)", "NOT (1 or 2) AND 3", "((1))", "1 AND", "(1", "1)", "4",
		"1; DROP TABLE x", "１", "0", "99999", strings.Repeat("NOT ", 30) + "1", "1 OR 1 OR 2 and not 3", ""} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, pattern string, n uint8) {
		c := withPattern(int(n%8), pattern)
		ch, err := criteria.Check(c, testFields)
		if err != nil {
			return
		}
		printed := ch.Root().String()
		again, err := criteria.Check(withPattern(int(n%8), printed), testFields)
		if err != nil && pattern != "" {
			t.Fatalf("%q printed as %q, which does not parse: %v", pattern, printed, err)
		}
		if err == nil && again.Root().String() != printed {
			t.Fatalf("%q printed as %q, which parses as %q", pattern, printed, again.Root().String())
		}
	})
}
