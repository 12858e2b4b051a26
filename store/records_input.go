package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxExternalIDBytes bounds an external id, so it always fits the unique index.
const MaxExternalIDBytes = 255

// maxAttributeDepth bounds the nesting of attributes; Postgres' jsonb parser
// has a stack limit and one deep row must not fail the whole batch.
const maxAttributeDepth = 64

// inputRow is one validated input record: every value already in the text
// form Postgres casts from, nil for NULL.
type inputRow struct {
	index      int
	externalID string
	state      string
	values     []*string // by Module.Fields
	lookups    []*string // external ids, by Module.Lookups
	lookupIDs  []*string // internal ids, filled in by resolveLookups
	attributes string
	changedAt  *string
}

// parseRow validates one input record against the module. It returns every
// problem it finds, so the caller can report them all at once.
func parseRow(m Module, index int, raw json.RawMessage) (inputRow, []string) {
	row := inputRow{
		index:      index,
		state:      "active",
		values:     make([]*string, len(m.Fields)),
		lookups:    make([]*string, len(m.Lookups)),
		attributes: "{}",
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return row, []string{"row is not a JSON object"}
	}
	// One decode per row, numbers kept exact; the values are checked below.
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return row, []string{"row is not a JSON object: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return row, []string{"row has data after its JSON object"}
	}

	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	var attrs map[string]any
	extra := map[string]any{} // top-level custom fields of a custom module

	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		switch {
		case k == "external_id":
			id, err := externalID(v)
			if err != nil {
				fail("external_id: %v", err)
				continue
			}
			row.externalID = id
		case k == "state":
			s, err := textValue(v)
			switch {
			case err != nil:
				fail("field \"state\": %v", err)
			case s == nil:
			case !slices.Contains(States(), *s):
				fail("field \"state\": %q is not one of %s", *s, strings.Join(States(), ", "))
			default:
				row.state = *s
			}
		case k == "attributes":
			a, err := attributesValue(v)
			if err != nil {
				fail("attributes: %v", err)
				continue
			}
			attrs = a
		case k == "changed_at" && m.Tracked != "":
			ts, err := convert(Field{Name: k, Type: TypeTimestamp}, v)
			if err != nil {
				fail("changed_at: %v", err)
				continue
			}
			row.changedAt = ts
		default:
			if i, ok := m.field(k); ok {
				val, err := convert(m.Fields[i], v)
				if err != nil {
					fail("field %q: %v", k, err)
					continue
				}
				row.values[i] = val
				continue
			}
			if i, ok := m.lookupIndex(k); ok {
				s, err := textValue(v)
				if err == nil && s != nil {
					err = checkExternalID(*s)
				}
				if err != nil {
					fail("lookup %q: %v", k, err)
					continue
				}
				row.lookups[i] = s
				continue
			}
			if m.Custom {
				if err := checkJSON(map[string]any{k: v}, 1); err != nil {
					fail("field %q: %v", k, err)
					continue
				}
				extra[k] = v
				continue
			}
			fail("unknown field %q for module %s", k, m.Name)
		}
	}

	if _, ok := obj["external_id"]; !ok {
		fail("missing external_id")
	}
	for i, f := range m.Fields {
		if row.values[i] != nil {
			continue
		}
		switch {
		case f.Required:
			fail("missing required field %q", f.Name)
		case f.NotNull:
			def := f.Default
			row.values[i] = &def
		}
	}
	if len(extra) > 0 {
		if attrs == nil {
			attrs = map[string]any{}
		}
		for _, k := range slices.Sorted(maps.Keys(extra)) {
			if _, dup := attrs[k]; dup {
				fail("field %q is given both at the top level and in attributes", k)
			}
			attrs[k] = extra[k]
		}
	}
	if attrs != nil {
		b, err := json.Marshal(attrs)
		if err != nil {
			fail("attributes: %v", err)
		} else {
			row.attributes = string(b)
		}
	}
	return row, errs
}

func externalID(v any) (string, error) {
	s, err := textValue(v)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", errors.New("must not be null")
	}
	return *s, checkExternalID(*s)
}

func checkExternalID(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxExternalIDBytes:
		return fmt.Errorf("longer than %d bytes", MaxExternalIDBytes)
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL character")
	}
	return nil
}

// textValue reads a JSON string or null.
func textValue(val any) (*string, error) {
	switch x := val.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.ContainsRune(x, 0) {
			return nil, errors.New("contains a NUL character")
		}
		return &x, nil
	default:
		return nil, fmt.Errorf("want a string, got %s", jsonKind(val))
	}
}

// convert checks one field value and returns it in the text form Postgres
// casts to the column type; nil for null.
func convert(f Field, val any) (*string, error) {
	if val == nil {
		return nil, nil
	}
	var out string
	switch f.Type {
	case TypeText:
		s, ok := val.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", jsonKind(val))
		}
		if strings.ContainsRune(s, 0) {
			return nil, errors.New("contains a NUL character")
		}
		if len(f.Allowed) > 0 && !slices.Contains(f.Allowed, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(f.Allowed, ", "))
		}
		out = s
	case TypeInt:
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want an integer, got %s", jsonKind(val))
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %s", n)
		}
		if i < f.Min || i > f.Max {
			return nil, fmt.Errorf("%d is out of range [%d, %d]", i, f.Min, f.Max)
		}
		out = strconv.FormatInt(i, 10)
	case TypeNumeric:
		n, ok := val.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want a number, got %s", jsonKind(val))
		}
		var err error
		out, err = decimal(string(n), f.Precision, f.Scale)
		if err != nil {
			return nil, err
		}
	case TypeBool:
		b, ok := val.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false, got %s", jsonKind(val))
		}
		out = strconv.FormatBool(b)
	case TypeDate:
		s, ok := val.(string)
		if !ok {
			return nil, fmt.Errorf("want a date (YYYY-MM-DD), got %s", jsonKind(val))
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil || d.Year() < 1 {
			return nil, fmt.Errorf("want a date (YYYY-MM-DD), got %q", s)
		}
		out = d.Format(time.DateOnly)
	case TypeTimestamp:
		s, ok := val.(string)
		if !ok {
			return nil, fmt.Errorf("want an RFC 3339 timestamp, got %s", jsonKind(val))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.UTC().Year() < 1 {
			return nil, fmt.Errorf("want an RFC 3339 timestamp, got %q", s)
		}
		out = t.UTC().Format(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("field type %q has no conversion", f.Type)
	}
	return &out, nil
}

// decimal rounds a JSON number to scale digits, half away from zero as
// Postgres does, and checks it fits numeric(precision, scale).
func decimal(s string, precision, scale int) (string, error) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > 100 || exp < -100 {
			return "", fmt.Errorf("%s is out of range", s)
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", fmt.Errorf("want a number, got %s", s)
	}
	shift := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	num := new(big.Int).Mul(new(big.Int).Abs(r.Num()), shift)
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if m.Lsh(m, 1).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(precision)), nil)
	if q.Cmp(limit) >= 0 {
		return "", fmt.Errorf("%s does not fit numeric(%d,%d)", s, precision, scale)
	}
	digits := q.String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	out := digits
	if scale > 0 {
		out = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if r.Sign() < 0 && q.Sign() != 0 {
		out = "-" + out
	}
	return out, nil
}

// attributesValue reads the attributes object; null means none.
func attributesValue(val any) (map[string]any, error) {
	if val == nil {
		return nil, nil
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %s", jsonKind(val))
	}
	if err := checkJSON(obj, 1); err != nil {
		return nil, err
	}
	return obj, nil
}

// checkJSON rejects what Postgres' jsonb would refuse, so that one row
// cannot fail the whole batch: NUL characters, numbers beyond numeric's
// range, and very deep nesting.
func checkJSON(v any, depth int) error {
	if depth > maxAttributeDepth {
		return fmt.Errorf("nested deeper than %d levels", maxAttributeDepth)
	}
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return errors.New("contains a NUL character")
		}
	case json.Number:
		s := string(x)
		if len(s) > 1000 {
			return fmt.Errorf("number with %d characters is too long", len(s))
		}
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			if exp, err := strconv.Atoi(s[i+1:]); err != nil || exp > 1000 || exp < -1000 {
				return fmt.Errorf("number %s is out of range", s)
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return errors.New("key contains a NUL character")
			}
			if err := checkJSON(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkJSON(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
