package criteria

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on one criteria; a request beyond them is refused, not trimmed.
const (
	MaxConditions   = 50    // conditions in one criteria
	MaxPatternBytes = 1000  // length of the pattern
	MaxDepth        = 20    // nesting of NOT and parentheses in the pattern
	MaxFieldBytes   = 64    // length of a field name
	MaxTextBytes    = 255   // length of a text operand
	MaxListValues   = 1000  // operands of one in / not_in
	MaxValues       = 5000  // operands across the whole criteria
	MaxDays         = 36500 // in_last_days / not_in_last_days
	maxNumberBytes  = 64    // length of a number operand's JSON text
	maxExponent     = 300   // |exponent| of a number operand
)

// Condition is one condition as the API receives it.
type Condition struct {
	Field string          `json:"field"`
	Op    Op              `json:"op"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Criteria is the JSON form of a criteria: conditions and an optional
// pattern over their 1-based numbers (all conditions ANDed without one).
type Criteria struct {
	Conditions []Condition `json:"conditions"`
	Pattern    string      `json:"pattern,omitempty"`
}

// ErrInvalid is matched (errors.Is) by every error Check returns.
var ErrInvalid = errors.New("invalid criteria")

// Errors maps where a criteria is wrong ("conditions[2].value", 0-based as
// in the JSON, or "pattern") to why. It is every problem Check found.
type Errors map[string]string

// Error lists every problem in a stable order.
func (e Errors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, k := range keys {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(k + ": " + e[k])
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e Errors) Is(target error) bool { return target == ErrInvalid }

// keyLess orders "conditions[2]..." before "conditions[10]..." and those
// before "pattern".
func keyLess(a, b string) bool {
	na, ra := keyIndex(a)
	nb, rb := keyIndex(b)
	if na != nb {
		return na < nb
	}
	return ra < rb
}

func keyIndex(k string) (int, string) {
	rest, ok := strings.CutPrefix(k, "conditions[")
	if !ok {
		return 1 << 30, k
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 1 << 30, k
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 1 << 30, k
	}
	return n, rest[end:]
}

// Checked is a criteria that passed Check: its tree with typed operands.
type Checked struct {
	root   Expr
	fields []string
}

// Root returns the criteria's tree. A criteria without conditions is an
// And with no items, which is true for every row.
func (c *Checked) Root() Expr { return c.root }

// Fields returns the fields the criteria reads, sorted, each once.
func (c *Checked) Fields() []string { return slices.Clone(c.fields) }

// opsByType is the allow-list of operators per field type.
var opsByType = map[Type][]Op{
	Text:   {Equals, NotEquals, In, NotIn, Contains, NotContains, StartsWith, IsEmpty, IsNotEmpty},
	Number: {Equals, NotEquals, In, NotIn, Gt, Gte, Lt, Lte, Between, IsEmpty, IsNotEmpty},
	Date:   {Equals, NotEquals, Gt, Gte, Lt, Lte, Between, Before, After, InLastDays, NotInLastDays, IsEmpty, IsNotEmpty},
}

// Ops returns the operators a field of type t takes.
func Ops(t Type) []Op { return slices.Clone(opsByType[t]) }

func knownOp(op Op) bool {
	for _, ops := range opsByType {
		if slices.Contains(ops, op) {
			return true
		}
	}
	return false
}

// Check parses c's pattern, checks every condition against fields (the
// fields the org's mapping makes available, with their types) and decodes
// every operand. It reports every problem at once as Errors.
func Check(c Criteria, fields map[string]Type) (*Checked, error) {
	errs := Errors{}
	if len(c.Conditions) > MaxConditions {
		errs["conditions"] = fmt.Sprintf("at most %d conditions", MaxConditions)
		return nil, errs
	}
	conds := make([]*Cond, len(c.Conditions))
	total := 0
	for i, cd := range c.Conditions {
		conds[i] = checkCondition(i, cd, fields, errs)
		total += len(conds[i].Text) + len(conds[i].Num) + len(conds[i].Date)
	}
	if total > MaxValues {
		errs["conditions"] = fmt.Sprintf("at most %d values in all", MaxValues)
	}
	var root Expr
	if c.Pattern == "" {
		items := make([]Expr, len(conds))
		for i, cd := range conds {
			items[i] = cd
		}
		if len(items) == 1 {
			root = items[0]
		} else {
			root = And{Items: items}
		}
	} else {
		e, err := parsePattern(c.Pattern, len(conds), func(i int) Expr { return conds[i-1] })
		if err != nil {
			errs["pattern"] = err.Error()
		}
		root = e
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var fs []string
	for _, cd := range conds {
		fs = append(fs, cd.Field)
	}
	slices.Sort(fs)
	return &Checked{root: root, fields: slices.Compact(fs)}, nil
}

// checkCondition checks condition i, recording problems in errs; the Cond
// it returns is complete only when it recorded none.
func checkCondition(i int, c Condition, fields map[string]Type, errs Errors) *Cond {
	key := fmt.Sprintf("conditions[%d]", i)
	cd := &Cond{Index: i + 1, Field: c.Field, Op: c.Op}
	typ, fieldOK := Type(""), false
	switch {
	case c.Field == "":
		errs[key+".field"] = "required"
	case len(c.Field) > MaxFieldBytes:
		errs[key+".field"] = fmt.Sprintf("longer than %d bytes", MaxFieldBytes)
	case !utf8.ValidString(c.Field) || strings.IndexByte(c.Field, 0) >= 0:
		errs[key+".field"] = "not valid UTF-8 text"
	default:
		typ, fieldOK = fields[c.Field]
		if !fieldOK {
			errs[key+".field"] = fmt.Sprintf("unknown field %q", c.Field)
		}
	}
	cd.Type = typ
	switch {
	case c.Op == "":
		errs[key+".op"] = "required"
		return cd
	case !knownOp(c.Op):
		errs[key+".op"] = fmt.Sprintf("unknown operator %q", clip(strings.ToValidUTF8(string(c.Op), "?")))
		return cd
	case !fieldOK:
		return cd
	case !slices.Contains(opsByType[typ], c.Op):
		errs[key+".op"] = fmt.Sprintf("%s does not apply to a %s field", c.Op, typ)
		return cd
	}
	vkey := key + ".value"
	raw := bytes.TrimSpace(c.Value)
	absent := len(raw) == 0 || string(raw) == "null"
	if !absent && !utf8.Valid(raw) {
		errs[vkey] = "not valid UTF-8"
		return cd
	}
	d := decoder{cd: cd, errs: errs, key: vkey}
	switch c.Op {
	case IsEmpty, IsNotEmpty:
		if !absent {
			errs[vkey] = fmt.Sprintf("%s takes no value", c.Op)
		}
	case In, NotIn:
		var items []json.RawMessage
		if absent || json.Unmarshal(raw, &items) != nil || len(items) == 0 {
			errs[vkey] = fmt.Sprintf("%s takes a non-empty array of %ss", c.Op, typ)
			return cd
		}
		if len(items) > MaxListValues {
			errs[vkey] = fmt.Sprintf("%s takes at most %d values", c.Op, MaxListValues)
			return cd
		}
		for j, it := range items {
			d.operand(fmt.Sprintf("%s[%d]", vkey, j), it)
		}
	case Between:
		var items []json.RawMessage
		if absent || json.Unmarshal(raw, &items) != nil || len(items) != 2 {
			errs[vkey] = "between takes [low, high]"
			return cd
		}
		ok := d.operand(vkey+"[0]", items[0])
		ok = d.operand(vkey+"[1]", items[1]) && ok
		if ok && d.lowAboveHigh() {
			errs[vkey] = "between takes [low, high] with low <= high"
		}
	case InLastDays, NotInLastDays:
		n, err := strconv.Atoi(string(raw))
		if absent || raw[0] < '1' || raw[0] > '9' || err != nil || n > MaxDays {
			errs[vkey] = fmt.Sprintf("%s takes a whole number of days from 1 to %d", c.Op, MaxDays)
			return cd
		}
		cd.Days = n
	default:
		if absent {
			errs[vkey] = fmt.Sprintf("%s takes %s", c.Op, article(typ))
			return cd
		}
		d.operand(vkey, raw)
	}
	return cd
}

func article(t Type) string {
	switch t {
	case Text:
		return "a string"
	case Number:
		return "a number"
	default:
		return "a date (YYYY-MM-DD or RFC 3339)"
	}
}

type decoder struct {
	cd   *Cond
	errs Errors
	key  string
}

// operand decodes one operand of the condition's type and appends it.
func (d decoder) operand(key string, raw json.RawMessage) bool {
	switch d.cd.Type {
	case Text:
		s, msg := textOperand(raw)
		if msg != "" {
			d.errs[key] = msg
			return false
		}
		d.cd.Text = append(d.cd.Text, s)
	case Number:
		s, r, msg := numberOperand(raw)
		if msg != "" {
			d.errs[key] = msg
			return false
		}
		d.cd.Num = append(d.cd.Num, s)
		d.cd.rats = append(d.cd.rats, r)
	case Date:
		t, msg := dateOperand(raw)
		if msg != "" {
			d.errs[key] = msg
			return false
		}
		d.cd.Date = append(d.cd.Date, t)
	}
	return true
}

func (d decoder) lowAboveHigh() bool {
	switch d.cd.Type {
	case Number:
		return d.cd.rats[0].Cmp(d.cd.rats[1]) > 0
	case Date:
		return d.cd.Date[0].After(d.cd.Date[1])
	}
	return false
}

func textOperand(raw json.RawMessage) (string, string) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", "takes a string"
	}
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "", "must not contain NUL"
	case len(s) > MaxTextBytes:
		return "", fmt.Sprintf("longer than %d bytes", MaxTextBytes)
	}
	n := NormText(s)
	if n == "" {
		return "", "must not be empty (use is_empty or is_not_empty)"
	}
	return n, ""
}

func numberOperand(raw json.RawMessage) (string, *big.Rat, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", nil, "takes a number"
	}
	n, ok := v.(json.Number)
	if !ok {
		return "", nil, "takes a number"
	}
	s := string(n)
	if len(s) > maxNumberBytes {
		return "", nil, fmt.Sprintf("a number of at most %d characters", maxNumberBytes)
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > maxExponent || e < -maxExponent {
			return "", nil, "number out of range"
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", nil, "takes a number"
	}
	return s, r, ""
}

func dateOperand(raw json.RawMessage) (time.Time, string) {
	const msg = "takes a date (YYYY-MM-DD or RFC 3339)"
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil || len(s) > 40 {
		return time.Time{}, msg
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t, err = time.Parse(time.RFC3339, s)
	}
	if err != nil {
		return time.Time{}, msg
	}
	day := utcDay(t)
	if day.Year() < 1 || day.Year() > 9999 {
		return time.Time{}, "date out of range (years 1 to 9999)"
	}
	return day, ""
}

// utcDay is midnight UTC of t's day in UTC.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// TrimSet is the whitespace trimmed from both ends of text values.
const TrimSet = " \t\n\r\v\f"

// NormText is how text values compare: surrounding whitespace (TrimSet)
// trimmed and ASCII letters lower-cased; other letters compare as they are.
// The store does the same in SQL, so the two agree byte for byte.
func NormText(s string) string {
	s = strings.Trim(s, TrimSet)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
