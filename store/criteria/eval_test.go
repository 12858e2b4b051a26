package criteria_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/crmq/crmq/store/criteria"
)

func TestEvalFollowsTheDocumentedRules(t *testing.T) {
	now := time.Date(2025, 3, 15, 2, 30, 0, 0, time.UTC)
	est := time.FixedZone("EST", -5*3600)
	cases := []struct {
		name  string
		c     criteria.Condition
		value any // nil: the field is missing
		want  bool
	}{
		{"equals ignores case and surrounding whitespace", cond("industry", criteria.Equals, `"Healthcare"`), " HEALTHCARE\t", true},
		{"equals folds ASCII letters only", cond("industry", criteria.Equals, `"éclair"`), "Éclair", false},
		{"equals is false for a missing value", cond("industry", criteria.Equals, `"x"`), nil, false},
		{"not_equals is true for a missing value", cond("industry", criteria.NotEquals, `"x"`), nil, true},
		{"not_equals is true for a blank value", cond("industry", criteria.NotEquals, `"x"`), "   ", true},
		{"not_in is true for a missing value", cond("industry", criteria.NotIn, `["x"]`), nil, true},
		{"not_contains is true for an empty string", cond("industry", criteria.NotContains, `"x"`), "", true},
		{"is_empty holds for whitespace", cond("industry", criteria.IsEmpty, ""), " \r\n", true},
		{"is_empty holds for a value of another type", cond("industry", criteria.IsEmpty, ""), 5, true},
		{"is_not_empty fails for a missing value", cond("industry", criteria.IsNotEmpty, ""), nil, false},
		{"contains takes % literally", cond("industry", criteria.Contains, `"0%"`), "100% Pharma", true},
		{"contains takes _ literally", cond("industry", criteria.Contains, `"a_b"`), "aXb", false},
		{"starts_with trims first", cond("industry", criteria.StartsWith, `"health"`), "  Healthcare", true},
		{"starts_with is not contains", cond("industry", criteria.StartsWith, `"care"`), "Healthcare", false},

		{"numbers compare exactly", cond("employees", criteria.Equals, `1.50`), json.Number("1.5"), true},
		{"a float reads as its shortest decimal", cond("employees", criteria.Equals, `0.1`), 0.1, true},
		{"ints compare with decimals", cond("employees", criteria.Gt, `199.999`), 200, true},
		{"between is inclusive", cond("employees", criteria.Between, `[200, 5000]`), 5000, true},
		{"gt is false for a missing number", cond("employees", criteria.Lt, `1`), nil, false},
		{"not_equals is true for a missing number", cond("employees", criteria.NotEquals, `1`), nil, true},
		{"an unreadable number is empty", cond("employees", criteria.IsEmpty, ""), json.Number("x"), true},

		{"dates compare by UTC day", cond("last_order", criteria.Equals, `"2025-03-15"`), time.Date(2025, 3, 14, 20, 0, 0, 0, est), true},
		{"date operands are read in UTC", cond("last_order", criteria.Equals, `"2025-03-14T20:00:00-05:00"`), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC), true},
		{"in_last_days 1 is today", cond("last_order", criteria.InLastDays, `1`), now.Add(-2 * time.Hour), true},
		{"in_last_days 1 is not yesterday", cond("last_order", criteria.InLastDays, `1`), now.Add(-3 * time.Hour), false},
		{"in_last_days 7 reaches six days back", cond("last_order", criteria.InLastDays, `7`), time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC), true},
		{"in_last_days 7 stops there", cond("last_order", criteria.InLastDays, `7`), time.Date(2025, 3, 8, 23, 59, 0, 0, time.UTC), false},
		{"in_last_days excludes the future", cond("last_order", criteria.InLastDays, `7`), now.AddDate(0, 0, 1), false},
		{"not_in_last_days is true without a date", cond("last_order", criteria.NotInLastDays, `7`), nil, true},
		{"a zero time is empty", cond("last_order", criteria.IsEmpty, ""), time.Time{}, true},
		{"before is strict", cond("last_order", criteria.Before, `"2025-03-15"`), now, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{tc.c}}, testFields)
			if err != nil {
				t.Fatal(err)
			}
			row := map[string]any{}
			if tc.value != nil {
				row[tc.c.Field] = tc.value
			}
			if got := ch.Eval(row, now); got != tc.want {
				t.Fatalf("Eval(%#v) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestACriteriaWithoutConditionsMatchesEveryRow(t *testing.T) {
	ch, err := criteria.Check(criteria.Criteria{}, testFields)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Eval(nil, time.Now()) || len(ch.Fields()) != 0 {
		t.Fatalf("an empty criteria should match everything and read nothing")
	}
}
