package criteria

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The pattern grammar (keywords case-insensitive; NOT binds tighter than
// AND, AND tighter than OR):
//
//	or     = and { "OR" and }
//	and    = unary { "AND" unary }
//	unary  = "NOT" unary | "(" or ")" | index
//	index  = digits, 1 .. number of conditions
//
// Whitespace (space, tab, CR, LF) separates tokens; any other character
// is an error.

type tokKind int

const (
	tokEnd tokKind = iota
	tokIndex
	tokAnd
	tokOr
	tokNot
	tokOpen
	tokClose
)

type token struct {
	kind tokKind
	n    int // tokIndex: the number; -1 when it has too many digits
	pos  int // byte offset, for messages
	text string
}

func tokenize(p string) ([]token, error) {
	var toks []token
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokOpen, pos: i, text: "("})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokClose, pos: i, text: ")"})
			i++
		case c >= '0' && c <= '9':
			j := i
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			n := -1
			if j-i <= 4 {
				n, _ = strconv.Atoi(p[i:j])
			}
			toks = append(toks, token{kind: tokIndex, n: n, pos: i, text: p[i:j]})
			i = j
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(p) && (p[j] >= 'a' && p[j] <= 'z' || p[j] >= 'A' && p[j] <= 'Z') {
				j++
			}
			w := p[i:j]
			var k tokKind
			switch strings.ToUpper(w) {
			case "AND":
				k = tokAnd
			case "OR":
				k = tokOr
			case "NOT":
				k = tokNot
			default:
				return nil, fmt.Errorf("unknown word %q at byte %d (use AND, OR, NOT, parentheses and condition numbers)", clip(w), i)
			}
			toks = append(toks, token{kind: k, pos: i, text: w})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character at byte %d (use AND, OR, NOT, parentheses and condition numbers)", i)
		}
	}
	return append(toks, token{kind: tokEnd, pos: len(p)}), nil
}

type parser struct {
	toks []token
	at   int
	n    int            // number of conditions
	leaf func(int) Expr // the node for condition i (1-based)
	used []bool
}

// parsePattern parses p against n conditions and reports, as one message,
// the first syntax error or the conditions the pattern leaves unused.
func parsePattern(p string, n int, leaf func(int) Expr) (Expr, error) {
	if len(p) > MaxPatternBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxPatternBytes)
	}
	toks, err := tokenize(p)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tokEnd {
		return nil, fmt.Errorf("empty (leave it out to AND every condition)")
	}
	ps := &parser{toks: toks, n: n, leaf: leaf, used: make([]bool, n+1)}
	e, err := ps.or(0)
	if err != nil {
		return nil, err
	}
	if t := ps.peek(); t.kind != tokEnd {
		return nil, fmt.Errorf("unexpected %q at byte %d", t.text, t.pos)
	}
	var unused []string
	for i := 1; i <= n; i++ {
		if !ps.used[i] {
			unused = append(unused, strconv.Itoa(i))
		}
	}
	switch len(unused) {
	case 0:
	case 1:
		return nil, fmt.Errorf("condition %s is not used", unused[0])
	default:
		return nil, fmt.Errorf("conditions %s are not used", strings.Join(unused, ", "))
	}
	return e, nil
}

func (ps *parser) peek() token { return ps.toks[ps.at] }
func (ps *parser) next() token { t := ps.toks[ps.at]; ps.at++; return t }

func (ps *parser) or(depth int) (Expr, error) {
	first, err := ps.and(depth)
	if err != nil {
		return nil, err
	}
	items := []Expr{first}
	for ps.peek().kind == tokOr {
		ps.next()
		e, err := ps.and(depth)
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 1 {
		return first, nil
	}
	return Or{Items: items}, nil
}

func (ps *parser) and(depth int) (Expr, error) {
	first, err := ps.unary(depth)
	if err != nil {
		return nil, err
	}
	items := []Expr{first}
	for ps.peek().kind == tokAnd {
		ps.next()
		e, err := ps.unary(depth)
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 1 {
		return first, nil
	}
	return And{Items: items}, nil
}

func (ps *parser) unary(depth int) (Expr, error) {
	t := ps.next()
	switch t.kind {
	case tokNot, tokOpen:
		if depth >= MaxDepth {
			return nil, fmt.Errorf("nested deeper than %d (NOT and parentheses) at byte %d", MaxDepth, t.pos)
		}
		if t.kind == tokNot {
			e, err := ps.unary(depth + 1)
			if err != nil {
				return nil, err
			}
			return Not{Item: e}, nil
		}
		e, err := ps.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := ps.next(); c.kind != tokClose {
			if c.kind == tokEnd {
				return nil, fmt.Errorf("the parenthesis at byte %d is not closed", t.pos)
			}
			return nil, fmt.Errorf("expected ) at byte %d, found %q", c.pos, c.text)
		}
		return e, nil
	case tokIndex:
		if t.n < 1 || t.n > ps.n {
			return nil, fmt.Errorf("condition %s at byte %d does not exist (there are %d)", clip(t.text), t.pos, ps.n)
		}
		ps.used[t.n] = true
		return ps.leaf(t.n), nil
	case tokEnd:
		return nil, fmt.Errorf("ends where a condition number, NOT or ( is expected")
	default:
		return nil, fmt.Errorf("unexpected %q at byte %d, expected a condition number, NOT or (", t.text, t.pos)
	}
}

// clip bounds user text echoed in an error message.
func clip(s string) string {
	if len(s) <= 20 {
		return s
	}
	n := 20
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
