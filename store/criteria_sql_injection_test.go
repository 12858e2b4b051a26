package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// hostile is user text that tries to end a literal, start a statement or a
// comment, name a parameter, or pass for a quote.
var hostile = []string{
	`'; DROP TABLE crit_rows; --`,
	`' OR '1'='1`,
	`x' OR 1=1 --`,
	`"; DELETE FROM crit_rows; --`,
	`$1`, `$2::text`, `$$ || pg_sleep(1) || $$`, `$tag$x$tag$`,
	`/* comment */`, `*/ ; DROP TABLE crit_rows; /*`,
	`\'; DROP TABLE crit_rows; --`, `E'\x27'`, `%`, `_`, `%_%`, `\`,
	"\u02bc; DROP TABLE crit_rows; --",  // modifier letter apostrophe
	"\uff07 OR 1=1",                     // fullwidth apostrophe
	"\u2019; DELETE FROM crit_rows",     // right single quotation mark
	"\u202e'; DROP TABLE crit_rows; --", // right-to-left override
	"a\u200bb", "O'Brien", "100%",
	`); DROP TABLE crit_rows; (`,
	`) OR TRUE OR (`,
}

// sqlToken is every token CompileCriteria writes besides the columns.
var sqlToken = regexp.MustCompile(`^(?:\s+|\$[0-9]+|COALESCE|TRUE|FALSE|NOT|AND|OR|BETWEEN|ANY|IS|NULL|lower|btrim|COLLATE|"C"|strpos|starts_with|text|numeric|date|0|''|E' \\t\\n\\r\\x0b\\x0c'|::|\[\]|<=|>=|[()=<>,])`)

// templateOnly reports the first part of where that is neither a column
// of cols nor a token of the compiler's own.
func templateOnly(where string, cols map[string]string) (rest string, ok bool) {
	byLength := slices.Collect(func(yield func(string) bool) {
		for _, c := range cols {
			if !yield(c) {
				return
			}
		}
	})
	slices.SortFunc(byLength, func(a, b string) int { return len(b) - len(a) })
	for _, c := range byLength {
		where = strings.ReplaceAll(where, c, " ")
	}
	for where != "" {
		m := sqlToken.FindString(where)
		if m == "" {
			return where, false
		}
		where = where[len(m):]
	}
	return "", true
}

func TestHostileTextIsRefusedOrBoundAsParameters(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	critTable(t, db)
	if _, err := db.Exec(`CREATE TABLE crit_sentinel (x int); INSERT INTO crit_sentinel VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	// Rows that hold the hostile text itself, so equals has something to find.
	rows := map[int]map[string]any{}
	for i, s := range hostile {
		if _, err := db.Exec(`INSERT INTO crit_rows (id, t1) VALUES ($1, $2)`, i+1, s); err != nil {
			t.Fatal(err)
		}
		rows[i+1] = map[string]any{"industry": s, hostile[0]: s}
	}
	snapshot := func() string {
		var s string
		if err := db.Get(&s, `SELECT (SELECT string_agg(r::text, '|' ORDER BY id) FROM crit_rows r) || (SELECT count(*) FROM crit_sentinel)::text`); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()

	// A field name from an org's mapping is allow-listed but still never SQL.
	fields := map[string]criteria.Type{"industry": criteria.Text, hostile[0]: criteria.Text}
	cols := map[string]string{"industry": "r.t1", hostile[0]: "r.t1"}
	run := func(c criteria.Criteria) {
		t.Helper()
		ch, err := criteria.Check(c, fields)
		if err != nil {
			t.Fatalf("%s: %v", mustJSON(c), err)
		}
		var args []any
		where, err := store.CompileCriteria(ch, cols, critNow, &args)
		if err != nil {
			t.Fatal(err)
		}
		if rest, ok := templateOnly(where, cols); !ok {
			t.Fatalf("%s compiled to SQL with text of its own at %q:\n%s", mustJSON(c), rest, where)
		}
		var got []int
		if err := db.SelectContext(ctx, &got, `SELECT id FROM crit_rows r WHERE `+where+` ORDER BY id`, args...); err != nil {
			t.Fatalf("%s: %v\n%s", mustJSON(c), err, where)
		}
		var want []int
		for id := 1; id <= len(hostile); id++ {
			if ch.Eval(rows[id], critNow) {
				want = append(want, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: SQL selects %v, Eval %v", mustJSON(c), got, want)
		}
	}
	for i, s := range hostile {
		v := mustJSON(s)
		run(criteria.Criteria{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.Equals, Value: v}}})
		run(criteria.Criteria{Conditions: []criteria.Condition{{Field: hostile[0], Op: criteria.Contains, Value: v}}})
		run(criteria.Criteria{Conditions: []criteria.Condition{
			{Field: "industry", Op: criteria.StartsWith, Value: v},
			{Field: "industry", Op: criteria.NotIn, Value: mustJSON(hostile[i:])},
		}, Pattern: "NOT 1 OR 2"})
	}
	if after := snapshot(); after != before {
		t.Fatalf("the table changed:\n%s\n%s", before, after)
	}

	// Where text cannot be a value, it is a 400, not SQL.
	refused := []criteria.Criteria{
		{Conditions: []criteria.Condition{{Field: "industry) OR TRUE --", Op: criteria.IsEmpty}}},
		{Conditions: []criteria.Condition{{Field: "industry", Op: "is_empty OR 1=1"}}},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.Equals, Value: json.RawMessage(`"a\u0000b"`)}}},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.Equals, Value: json.RawMessage("\"\xc0\xa7\"")}}},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "1; DROP TABLE crit_rows"},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "1 -- comment"},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "1 OR TRUE"},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "$1"},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "1 /* x */"},
		{Conditions: []criteria.Condition{{Field: "industry", Op: criteria.IsEmpty}}, Pattern: "\uff11"},
	}
	for _, c := range refused {
		if _, err := criteria.Check(c, fields); !errors.Is(err, criteria.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", mustJSON(c), err)
		}
	}
	numbers := map[string]criteria.Type{"n": criteria.Number, "d": criteria.Date}
	for _, s := range hostile {
		for _, f := range []string{"n", "d"} {
			c := criteria.Criteria{Conditions: []criteria.Condition{{Field: f, Op: criteria.Equals, Value: mustJSON(s)}}}
			if _, err := criteria.Check(c, numbers); !errors.Is(err, criteria.ErrInvalid) {
				t.Errorf("%s: want ErrInvalid, got %v", mustJSON(c), err)
			}
		}
	}
}

// FuzzCheck: Check and CompileCriteria never panic on arbitrary JSON, and
// what compiles is the compiler's own SQL with every operand a parameter.
// go test -fuzz=FuzzCheck -fuzztime=60s ./store/ runs it longer.
func FuzzCheck(f *testing.F) {
	seeds := []string{
		`{"conditions":[{"field":"tier","op":"is_not_empty"},{"field":"industry","op":"in","value":["Healthcare","Pharma"]},{"field":"employees","op":"between","value":[200,5000]}],"pattern":"1 AND (2 OR 3)"}`,
		`{"conditions":[]}`,
		`{"conditions":[{"field":"closed","op":"in_last_days","value":7},{"field":"last_seen","op":"between","value":["2024-01-01","2024-02-01T10:00:00+05:00"]}],"pattern":"NOT 1 or 2"}`,
		`{"conditions":[{"field":"industry","op":"equals","value":"'; DROP TABLE crit_rows; --"}]}`,
		`{"conditions":[{"field":"industry","op":"contains","value":"$1"},{"field":"revenue","op":"gte","value":1e300}],"pattern":"1 AND 2 AND 1"}`,
		`{"conditions":[{"field":"score","op":"not_in","value":[1,2,3]},{"field":"tier","op":"starts_with","value":" AND TRUE OR "}],"pattern":"((1)) OR NOT 2"}`,
		`{"conditions":[{"field":"industry","op":"equals","value":"\u02bc OR 1=1"}],"pattern":"1 ; --"}`,
		`{"conditions":[{"field":"employees","op":"between","value":[5000,200]}]}`,
		`{"conditions":[{"field":"closed","op":"equals","value":"0001-01-01"}]}`,
		`[]`, `null`, `{"conditions":[{}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c criteria.Criteria
		if json.Unmarshal(data, &c) != nil {
			return
		}
		ch, err := criteria.Check(c, critFields)
		if err != nil {
			if !errors.Is(err, criteria.ErrInvalid) {
				t.Fatalf("an error that is not ErrInvalid: %v", err)
			}
			return
		}
		args := []any{"already there"}
		where, err := store.CompileCriteria(ch, critCols, critNow, &args)
		if err != nil {
			t.Fatalf("a checked criteria does not compile: %v", err)
		}
		if rest, ok := templateOnly(where, critCols); !ok {
			t.Fatalf("SQL with text of its own at %q:\n%s", rest, where)
		}
		if len(data) > 8 && strings.Contains(where, string(data)) {
			t.Fatalf("the fuzzed text is in the SQL")
		}
		if c.Pattern != "" && strings.Contains(where, c.Pattern) && !regexp.MustCompile(`^[0-9]+$`).MatchString(c.Pattern) {
			t.Fatalf("the pattern %q is in the SQL", c.Pattern)
		}
	})
}
