package store_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/store/storetest"
)

// The fields of the criteria tests and the SQL each one reads: plain
// columns, jsonb attributes and a timestamptz read as its UTC day.
var (
	critFields = map[string]criteria.Type{
		"industry": criteria.Text, "tier": criteria.Text,
		"employees": criteria.Number, "score": criteria.Number, "revenue": criteria.Number,
		"closed": criteria.Date, "last_seen": criteria.Date,
	}
	critCols = map[string]string{
		"industry":  "r.t1",
		"tier":      "(r.attrs->>'tier')",
		"employees": "r.n1",
		"score":     "r.n2",
		"revenue":   "(r.attrs->>'revenue')",
		"closed":    "r.d1",
		"last_seen": "(r.d2 AT TIME ZONE 'UTC')::date",
	}
	critNow = time.Date(2025, 3, 15, 2, 30, 0, 0, time.UTC)
)

// Row values near the operands' values, in case and whitespace variants,
// with SQL and LIKE metacharacters and letters outside ASCII.
var (
	critTexts = []string{"Healthcare", " healthcare ", "HEALTHCARE\t", "health", "Health Care", "care", "Pharma",
		"pharma\n", "PHARMACEUTICALS", "", "   ", "\v\f", "100%", "100 pct", "a_b", "aXb", "O'Brien", "o'brien ",
		"Éclair", "éclair", "straße", "STRASSE", "İstanbul", "\u00a0pharma", "x;--", "$1"}
	critNums = []string{"-1", "0", "-0", "0.5", "1", "1.50", "199.999", "200", "200.0", "2e2", "5000",
		"5000.0001", "1e3", "12345678901234567890.123", "-0.0001"}
	critInts  = []int{-1, 0, 1, 199, 200, 201, 5000, 5001}
	critZones = []*time.Location{time.UTC, time.FixedZone("EST", -5*3600), time.FixedZone("LINT", 14*3600), time.FixedZone("NPT", 5*3600+45*60)}
)

func critTable(t *testing.T, db *store.DB) {
	t.Helper()
	_, err := db.Exec(`CREATE TABLE crit_rows (id int PRIMARY KEY, t1 text, n1 numeric, n2 bigint,
		d1 date, d2 timestamptz, attrs jsonb NOT NULL DEFAULT '{}')`)
	if err != nil {
		t.Fatal(err)
	}
}

type critRow struct {
	id     int
	values map[string]any // what Eval reads
}

// randomRows inserts n random rows, about one value in five missing.
func randomRows(t *testing.T, ctx context.Context, conn *sqlx.Conn, rng *rand.Rand, n int) []critRow {
	t.Helper()
	some := func() bool { return rng.IntN(5) > 0 }
	var rows []critRow
	for id := 1; id <= n; id++ {
		v := map[string]any{}
		var t1, n1, d1 any
		var n2, d2 any
		attrs := map[string]any{}
		if some() {
			s := critTexts[rng.IntN(len(critTexts))]
			t1, v["industry"] = s, s
		}
		if some() {
			s := critTexts[rng.IntN(len(critTexts))]
			attrs["tier"], v["tier"] = s, s
		}
		if some() {
			s := critNums[rng.IntN(len(critNums))]
			n1 = s
			if f, err := strconv.ParseFloat(s, 64); err == nil && rng.IntN(3) == 0 && strconv.FormatFloat(f, 'g', -1, 64) == strings.TrimSuffix(s, ".0") {
				v["employees"] = f // a float64 that reads back as the same decimal
			} else {
				v["employees"] = json.Number(s)
			}
		}
		if some() {
			i := critInts[rng.IntN(len(critInts))]
			n2, v["score"] = i, i
		}
		if some() {
			s := critNums[rng.IntN(len(critNums))]
			attrs["revenue"], v["revenue"] = json.Number(s), json.Number(s)
		}
		if some() {
			day := critNow.AddDate(0, 0, rng.IntN(44)-40)
			d1 = day.Format(time.DateOnly)
			v["closed"] = time.Date(day.Year(), day.Month(), day.Day(), rng.IntN(24), 0, 0, 0, time.UTC)
		}
		if some() {
			at := critNow.Add(time.Duration(rng.IntN(44*24*4)-40*24*4) * 15 * time.Minute).In(critZones[rng.IntN(len(critZones))])
			d2, v["last_seen"] = at, at
		}
		aj, err := json.Marshal(attrs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO crit_rows (id, t1, n1, n2, d1, d2, attrs) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, t1, n1, n2, d1, d2, string(aj)); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, critRow{id, v})
	}
	return rows
}

// randomCondition draws a field, one of its operators and a value near the
// rows' values, in JSON as a request carries it.
func randomCondition(rng *rand.Rand) criteria.Condition {
	names := []string{"industry", "tier", "employees", "score", "revenue", "closed", "last_seen"}
	field := names[rng.IntN(len(names))]
	typ := critFields[field]
	ops := criteria.Ops(typ)
	op := ops[rng.IntN(len(ops))]
	one := func() any {
		switch typ {
		case criteria.Text:
			for {
				s := critTexts[rng.IntN(len(critTexts))]
				if op == criteria.Contains || op == criteria.NotContains || op == criteria.StartsWith {
					if len(s) > 1 {
						i := rng.IntN(len(s))
						j := i + 1 + rng.IntN(len(s)-i)
						s = s[i:j]
					}
				}
				if rng.IntN(2) == 0 {
					s = strings.ToUpper(s)
				}
				if rng.IntN(3) == 0 {
					s = " " + s + "\t"
				}
				if criteria.NormText(s) != "" && json.Valid([]byte(strconv.Quote(s))) && strings.ToValidUTF8(s, "") == s {
					return s
				}
			}
		case criteria.Number:
			if field == "score" && rng.IntN(2) == 0 {
				return json.Number(strconv.Itoa(critInts[rng.IntN(len(critInts))]))
			}
			return json.Number(critNums[rng.IntN(len(critNums))])
		default:
			day := critNow.AddDate(0, 0, rng.IntN(44)-40)
			if rng.IntN(3) == 0 {
				return day.Add(time.Duration(rng.IntN(24*4)) * 15 * time.Minute).In(critZones[rng.IntN(len(critZones))]).Format(time.RFC3339)
			}
			return day.Format(time.DateOnly)
		}
	}
	var v any
	switch op {
	case criteria.IsEmpty, criteria.IsNotEmpty:
	case criteria.In, criteria.NotIn:
		var list []any
		for range 1 + rng.IntN(4) {
			list = append(list, one())
		}
		v = list
	case criteria.Between:
		for {
			lo, hi := one(), one()
			c := criteria.Condition{Field: field, Op: op, Value: mustJSON([]any{lo, hi})}
			if _, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{c}}, critFields); err == nil {
				return c
			}
		}
	case criteria.InLastDays, criteria.NotInLastDays:
		v = []int{1, 2, 3, 7, 30, 31, 40}[rng.IntN(7)]
	default:
		v = one()
	}
	c := criteria.Condition{Field: field, Op: op}
	if v != nil {
		c.Value = mustJSON(v)
	}
	return c
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// randomPattern combines conditions 1..n, each at least once, some twice,
// with AND, OR, NOT and parentheses, leaning on precedence at times.
func randomPattern(rng *rand.Rand, n int) string {
	items := []string{}
	for _, i := range rng.Perm(n) {
		items = append(items, strconv.Itoa(i+1))
	}
	for range rng.IntN(3) {
		items = append(items, strconv.Itoa(1+rng.IntN(n)))
	}
	kw := func(s string) string {
		if rng.IntN(4) == 0 {
			return strings.ToLower(s)
		}
		return s
	}
	for len(items) > 1 {
		i := rng.IntN(len(items) - 1)
		op := kw("AND")
		if rng.IntN(2) == 0 {
			op = kw("OR")
		}
		e := items[i] + " " + op + " " + items[i+1]
		if rng.IntN(3) > 0 || len(items) > 2 {
			e = "(" + e + ")"
		}
		if rng.IntN(4) == 0 {
			e = kw("NOT") + " (" + e + ")"
		}
		items = append(items[:i], append([]string{e}, items[i+2:]...)...)
	}
	return items[0]
}

func critSeed(t *testing.T) uint64 {
	if s := os.Getenv("CRMQ_CRITERIA_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRMQ_CRITERIA_SEED: %v", err)
		}
		return n
	}
	return 20250315
}

// TestCompiledCriteriaSelectExactlyTheRowsEvalAccepts draws random criteria
// over random rows in a real table and compares, criteria by criteria, the
// rows the compiled SQL selects with the rows Eval accepts.
// CRMQ_CRITERIA_SEED and CRMQ_CRITERIA_N replay or widen a run.
func TestCompiledCriteriaSelectExactlyTheRowsEvalAccepts(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	critTable(t, db)
	seed := critSeed(t)
	n := 500
	if s := os.Getenv("CRMQ_CRITERIA_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	conn, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A session time zone far from UTC: days must still be UTC days.
	if _, err := conn.ExecContext(ctx, `SET TIME ZONE 'Asia/Kathmandu'`); err != nil {
		t.Fatal(err)
	}
	rows := randomRows(t, ctx, conn, rng, 300)

	matchedSome, missedSome := 0, 0
	for k := range n {
		var c criteria.Criteria
		for range rng.IntN(6) {
			c.Conditions = append(c.Conditions, randomCondition(rng))
		}
		if len(c.Conditions) > 1 && rng.IntN(5) > 0 {
			c.Pattern = randomPattern(rng, len(c.Conditions))
		}
		ch, err := criteria.Check(c, critFields)
		if err != nil {
			t.Fatalf("seed %d, criteria %d: generated criteria refused: %v\n%s", seed, k, err, mustJSON(c))
		}
		args := []any{}
		where, err := store.CompileCriteria(ch, critCols, critNow, &args)
		if err != nil {
			t.Fatalf("seed %d, criteria %d: %v", seed, k, err)
		}
		var got []int
		if err := conn.SelectContext(ctx, &got, `SELECT id FROM crit_rows r WHERE `+where+` ORDER BY id`, args...); err != nil {
			t.Fatalf("seed %d, criteria %d: %v\n%s\n%s", seed, k, err, mustJSON(c), where)
		}
		var want []int
		for _, r := range rows {
			if ch.Eval(r.values, critNow) {
				want = append(want, r.id)
			}
		}
		if !slices.Equal(got, want) {
			id, inSQL := firstDifference(got, want)
			t.Fatalf("seed %d (CRMQ_CRITERIA_SEED=%d), criteria %d:\n%s\nSQL: %s\nargs: %v\nrow %d (%#v): SQL says %v, Eval says %v",
				seed, seed, k, mustJSON(c), where, args, id, rows[id-1].values, inSQL, !inSQL)
		}
		if len(want) > 0 && len(want) < len(rows) {
			matchedSome++
		}
		if len(want) == 0 {
			missedSome++
		}
	}
	// A comparison of empty sets proves little: most criteria must split.
	if matchedSome < n/2 {
		t.Fatalf("seed %d: only %d of %d criteria selected some but not all rows (%d none)", seed, matchedSome, n, missedSome)
	}
}

func firstDifference(got, want []int) (id int, inSQL bool) {
	for _, g := range got {
		if !slices.Contains(want, g) {
			return g, true
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return w, false
		}
	}
	return 0, false
}

func TestCompileCriteriaNumbersParametersAfterThoseAlreadyThere(t *testing.T) {
	ch, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{
		{Field: "industry", Op: criteria.Equals, Value: json.RawMessage(`"Pharma"`)},
		{Field: "employees", Op: criteria.Between, Value: json.RawMessage(`[200, 5000]`)},
	}, Pattern: "1 OR (1 AND 2)"}, critFields)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{int64(7), "x"}
	where, err := store.CompileCriteria(ch, critCols, critNow, &args)
	if err != nil {
		t.Fatal(err)
	}
	// Condition 1 is named twice but binds its operand once.
	if len(args) != 5 || !strings.Contains(where, "$3") || !strings.Contains(where, "$5") ||
		strings.Contains(where, "$6") || strings.Contains(where, "$1") || args[2] != "pharma" {
		t.Fatalf("SQL %s with args %v", where, args)
	}
	if _, err := store.CompileCriteria(ch, map[string]string{"industry": "r.t1"}, critNow, &args); err == nil ||
		!strings.Contains(err.Error(), `field "employees" has no SQL column`) {
		t.Fatalf("a field without a column: %v", err)
	}
}

func TestACriteriaWithoutConditionsSelectsEveryRow(t *testing.T) {
	ch, err := criteria.Check(criteria.Criteria{}, critFields)
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	where, err := store.CompileCriteria(ch, critCols, critNow, &args)
	if err != nil || where != "TRUE" || len(args) != 0 {
		t.Fatalf("%q %v %v", where, args, err)
	}
}
