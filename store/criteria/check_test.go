package criteria_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/crmq/crmq/store/criteria"
)

var testFields = map[string]criteria.Type{
	"industry":   criteria.Text,
	"country":    criteria.Text,
	"employees":  criteria.Number,
	"revenue":    criteria.Number,
	"last_order": criteria.Date,
}

func cond(field string, op criteria.Op, value string) criteria.Condition {
	c := criteria.Condition{Field: field, Op: op}
	if value != "" {
		c.Value = json.RawMessage(value)
	}
	return c
}

func TestCheckAcceptsTheExampleAndEveryOperatorOfEachType(t *testing.T) {
	ok := []criteria.Criteria{
		{Conditions: []criteria.Condition{
			cond("country", criteria.IsNotEmpty, ""),
			cond("industry", criteria.In, `["Healthcare", "Pharma"]`),
			cond("employees", criteria.Between, `[200, 5000]`)},
			Pattern: "1 AND (2 OR 3)"},
		{}, // no conditions: every row
		{Conditions: []criteria.Condition{
			cond("industry", criteria.Equals, `"x"`), cond("industry", criteria.NotEquals, `"x"`),
			cond("industry", criteria.In, `["x"]`), cond("industry", criteria.NotIn, `["x","y"]`),
			cond("industry", criteria.Contains, `"x"`), cond("industry", criteria.NotContains, `"x"`),
			cond("industry", criteria.StartsWith, `"x"`), cond("industry", criteria.IsEmpty, ""),
			cond("industry", criteria.IsNotEmpty, `null`)}},
		{Conditions: []criteria.Condition{
			cond("employees", criteria.Equals, `1`), cond("employees", criteria.NotEquals, `-1.5`),
			cond("employees", criteria.In, `[1, 2e3]`), cond("employees", criteria.NotIn, `[0]`),
			cond("employees", criteria.Gt, `1`), cond("employees", criteria.Gte, `1`),
			cond("employees", criteria.Lt, `1`), cond("employees", criteria.Lte, `1`),
			cond("employees", criteria.Between, `[1, 1]`), cond("employees", criteria.IsEmpty, ""),
			cond("employees", criteria.IsNotEmpty, "")}},
		{Conditions: []criteria.Condition{
			cond("last_order", criteria.Equals, `"2024-01-05"`), cond("last_order", criteria.NotEquals, `"2024-01-05T23:00:00-05:00"`),
			cond("last_order", criteria.Gt, `"2024-01-05"`), cond("last_order", criteria.Gte, `"2024-01-05"`),
			cond("last_order", criteria.Lt, `"2024-01-05"`), cond("last_order", criteria.Lte, `"2024-01-05"`),
			cond("last_order", criteria.Between, `["2024-01-05", "2024-01-05"]`),
			cond("last_order", criteria.Before, `"2024-01-05"`), cond("last_order", criteria.After, `"2024-01-05"`),
			cond("last_order", criteria.InLastDays, `1`), cond("last_order", criteria.NotInLastDays, `36500`),
			cond("last_order", criteria.IsEmpty, ""), cond("last_order", criteria.IsNotEmpty, "")}},
	}
	for i, c := range ok {
		if _, err := criteria.Check(c, testFields); err != nil {
			t.Errorf("criteria %d: %v", i, err)
		}
	}
}

func TestCheckNamesEveryProblemWithItsPlace(t *testing.T) {
	long := strings.Repeat("a", criteria.MaxTextBytes+1)
	many := "[" + strings.TrimSuffix(strings.Repeat(`"a",`, criteria.MaxListValues+1), ",") + "]"
	cases := []struct {
		name string
		c    criteria.Condition
		key  string
		msg  string // a substring of the message
	}{
		{"a missing field", cond("", criteria.IsEmpty, ""), "conditions[0].field", "required"},
		{"an unknown field", cond("owner", criteria.IsEmpty, ""), "conditions[0].field", `unknown field "owner"`},
		{"a field name too long", cond(strings.Repeat("f", 65), criteria.IsEmpty, ""), "conditions[0].field", "longer than 64"},
		{"a field name with NUL", cond("a\x00b", criteria.IsEmpty, ""), "conditions[0].field", "UTF-8"},
		{"a field name not UTF-8", cond("a\xffb", criteria.IsEmpty, ""), "conditions[0].field", "UTF-8"},
		{"a missing operator", cond("industry", "", ""), "conditions[0].op", "required"},
		{"an unknown operator", cond("industry", "like", `"x"`), "conditions[0].op", `unknown operator "like"`},
		{"gt on text", cond("industry", criteria.Gt, `"x"`), "conditions[0].op", "gt does not apply to a text field"},
		{"between on text", cond("industry", criteria.Between, `["a","b"]`), "conditions[0].op", "between does not apply to a text field"},
		{"in_last_days on text", cond("industry", criteria.InLastDays, `3`), "conditions[0].op", "does not apply to a text field"},
		{"contains on a number", cond("employees", criteria.Contains, `1`), "conditions[0].op", "contains does not apply to a number field"},
		{"starts_with on a number", cond("employees", criteria.StartsWith, `1`), "conditions[0].op", "does not apply to a number field"},
		{"before on a number", cond("employees", criteria.Before, `1`), "conditions[0].op", "does not apply to a number field"},
		{"in on a date", cond("last_order", criteria.In, `["2024-01-01"]`), "conditions[0].op", "in does not apply to a date field"},
		{"contains on a date", cond("last_order", criteria.Contains, `"2024"`), "conditions[0].op", "does not apply to a date field"},

		{"is_empty with a value", cond("industry", criteria.IsEmpty, `"x"`), "conditions[0].value", "is_empty takes no value"},
		{"is_not_empty with a value", cond("employees", criteria.IsNotEmpty, `0`), "conditions[0].value", "takes no value"},
		{"equals without a value", cond("industry", criteria.Equals, ""), "conditions[0].value", "equals takes a string"},
		{"equals null", cond("industry", criteria.Equals, "null"), "conditions[0].value", "takes a string"},
		{"a number for text", cond("industry", criteria.Equals, `5`), "conditions[0].value", "takes a string"},
		{"an empty string", cond("industry", criteria.Equals, `"  "`), "conditions[0].value", "must not be empty"},
		{"a text too long", cond("industry", criteria.Contains, `"`+long+`"`), "conditions[0].value", "longer than 255"},
		{"a text with NUL", cond("industry", criteria.Equals, `"a\u0000b"`), "conditions[0].value", "NUL"},
		{"a value not UTF-8", cond("industry", criteria.Equals, "\"a\xffb\""), "conditions[0].value", "UTF-8"},
		{"not JSON", cond("industry", criteria.Equals, `"x`), "conditions[0].value", "takes a string"},
		{"in with a string", cond("industry", criteria.In, `"x"`), "conditions[0].value", "in takes a non-empty array of texts"},
		{"in with an empty array", cond("industry", criteria.In, `[]`), "conditions[0].value", "non-empty array"},
		{"in without a value", cond("employees", criteria.NotIn, ""), "conditions[0].value", "not_in takes a non-empty array of numbers"},
		{"in with too many values", cond("industry", criteria.In, many), "conditions[0].value", "at most 1000 values"},
		{"in with a bad element", cond("industry", criteria.In, `["a", 2]`), "conditions[0].value[1]", "takes a string"},
		{"in with an empty element", cond("industry", criteria.NotIn, `["a", ""]`), "conditions[0].value[1]", "must not be empty"},
		{"a string for a number", cond("employees", criteria.Equals, `"5"`), "conditions[0].value", "takes a number"},
		{"a boolean for a number", cond("employees", criteria.Gt, `true`), "conditions[0].value", "takes a number"},
		{"an exponent too large", cond("employees", criteria.Gt, `1e999999999`), "conditions[0].value", "out of range"},
		{"a number too long", cond("employees", criteria.Gt, strings.Repeat("9", 65)), "conditions[0].value", "at most 64 characters"},
		{"two numbers", cond("employees", criteria.Gt, `1 2`), "conditions[0].value", "takes a number"},
		{"between with one value", cond("employees", criteria.Between, `[1]`), "conditions[0].value", "between takes [low, high]"},
		{"between with three values", cond("employees", criteria.Between, `[1,2,3]`), "conditions[0].value", "between takes [low, high]"},
		{"between with an object", cond("employees", criteria.Between, `{"low":1}`), "conditions[0].value", "between takes [low, high]"},
		{"between low above high", cond("employees", criteria.Between, `[5000, 200]`), "conditions[0].value", "low <= high"},
		{"between with a bad high", cond("employees", criteria.Between, `[1, "x"]`), "conditions[0].value[1]", "takes a number"},
		{"between dates low above high", cond("last_order", criteria.Between, `["2024-02-01", "2024-01-01"]`), "conditions[0].value", "low <= high"},
		{"a number for a date", cond("last_order", criteria.After, `20240101`), "conditions[0].value", "takes a date"},
		{"a date in another format", cond("last_order", criteria.After, `"01/05/2024"`), "conditions[0].value", "takes a date"},
		{"an impossible date", cond("last_order", criteria.Equals, `"2024-02-30"`), "conditions[0].value", "takes a date"},
		{"year zero", cond("last_order", criteria.Equals, `"0000-01-01"`), "conditions[0].value", "out of range"},
		{"a date before year 1 in UTC", cond("last_order", criteria.Equals, `"0001-01-01T00:00:00+01:00"`), "conditions[0].value", "out of range"},
		{"zero days", cond("last_order", criteria.InLastDays, `0`), "conditions[0].value", "whole number of days"},
		{"negative days", cond("last_order", criteria.InLastDays, `-3`), "conditions[0].value", "whole number of days"},
		{"fractional days", cond("last_order", criteria.NotInLastDays, `1.5`), "conditions[0].value", "whole number of days"},
		{"days as a string", cond("last_order", criteria.InLastDays, `"7"`), "conditions[0].value", "whole number of days"},
		{"too many days", cond("last_order", criteria.InLastDays, `36501`), "conditions[0].value", "whole number of days"},
		{"no days", cond("last_order", criteria.InLastDays, ""), "conditions[0].value", "whole number of days"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, err := criteria.Check(criteria.Criteria{Conditions: []criteria.Condition{tc.c}}, testFields)
			var errs criteria.Errors
			if !errors.As(err, &errs) || !errors.Is(err, criteria.ErrInvalid) {
				t.Fatalf("want criteria.Errors matching ErrInvalid, got %v", err)
			}
			if !strings.Contains(errs[tc.key], tc.msg) {
				t.Fatalf("want %s: ...%s..., got %v", tc.key, tc.msg, errs)
			}
		})
	}
}

func TestCheckReportsEveryProblemAtOnceInAStableMessage(t *testing.T) {
	c := criteria.Criteria{Conditions: []criteria.Condition{
		cond("industry", criteria.Equals, `"ok"`),
		cond("nope", criteria.IsEmpty, ""),
		cond("employees", criteria.Between, `[2, 1]`),
		cond("industry", criteria.Gt, `"x"`),
		cond("country", criteria.IsEmpty, ""), cond("country", criteria.IsEmpty, ""), cond("country", criteria.IsEmpty, ""),
		cond("country", criteria.IsEmpty, ""), cond("country", criteria.IsEmpty, ""), cond("country", criteria.IsEmpty, ""),
		cond("employees", criteria.Gt, `"x"`),
	}, Pattern: "1 AND (2 OR 3"}
	_, err := criteria.Check(c, testFields)
	want := `invalid criteria: conditions[1].field: unknown field "nope"; ` +
		`conditions[2].value: between takes [low, high] with low <= high; ` +
		`conditions[3].op: gt does not apply to a text field; ` +
		`conditions[10].value: takes a number; ` +
		`pattern: the parenthesis at byte 6 is not closed`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestCheckRefusesMoreThanTheLimits(t *testing.T) {
	var c criteria.Criteria
	for range criteria.MaxConditions + 1 {
		c.Conditions = append(c.Conditions, cond("country", criteria.IsEmpty, ""))
	}
	_, err := criteria.Check(c, testFields)
	if err == nil || !strings.Contains(err.Error(), "conditions: at most 50 conditions") {
		t.Fatalf("51 conditions: %v", err)
	}
	c.Conditions = c.Conditions[:criteria.MaxConditions]
	if _, err := criteria.Check(c, testFields); err != nil {
		t.Fatalf("50 conditions: %v", err)
	}

	// 6 lists of 1000 values: each allowed, together too many.
	list := "[" + strings.TrimSuffix(strings.Repeat(`"a",`, criteria.MaxListValues), ",") + "]"
	c = criteria.Criteria{}
	for range 6 {
		c.Conditions = append(c.Conditions, cond("industry", criteria.In, list))
	}
	if _, err := criteria.Check(c, testFields); err == nil || !strings.Contains(err.Error(), "conditions: at most 5000 values") {
		t.Fatalf("6000 values: %v", err)
	}
}

func TestCheckNormalisesOperandsAndListsTheFieldsRead(t *testing.T) {
	c := criteria.Criteria{Conditions: []criteria.Condition{
		cond("industry", criteria.In, `["  Health Care\t", "PHARMA", "Éclair"]`),
		cond("last_order", criteria.Equals, `"2024-01-05T23:30:00-05:00"`),
		cond("employees", criteria.Between, `[200, 5e3]`),
		cond("industry", criteria.IsNotEmpty, ""),
	}}
	ch, err := criteria.Check(c, testFields)
	if err != nil {
		t.Fatal(err)
	}
	items := ch.Root().(criteria.And).Items
	if got := fmt.Sprint(items[0].(*criteria.Cond).Text); got != "[health care pharma Éclair]" {
		t.Errorf("text operands: %s", got)
	}
	if got := items[1].(*criteria.Cond).Date[0].Format("2006-01-02 15:04 MST"); got != "2024-01-06 00:00 UTC" {
		t.Errorf("date operand: %s", got)
	}
	if got := fmt.Sprint(items[2].(*criteria.Cond).Num); got != "[200 5e3]" {
		t.Errorf("number operands: %s", got)
	}
	if got := fmt.Sprint(ch.Fields()); got != "[employees industry last_order]" {
		t.Errorf("fields: %s", got)
	}
	if got := ch.Root().String(); got != "(1 AND 2 AND 3 AND 4)" {
		t.Errorf("tree: %s", got)
	}
}
