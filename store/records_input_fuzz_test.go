package store

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The ingestion decoder takes any bytes for a row of any module: it never
// panics, and a row it accepts has a checked external id, text values that
// are valid UTF-8 without NUL, and attributes that are one JSON object.
// Inputs that once failed stay in testdata/fuzz/FuzzParseRow as seeds.
func FuzzParseRow(f *testing.F) {
	for _, s := range []string{
		`{"external_id":"acc-1","name":"Acme","annual_revenue":1200000.5,"attributes":{"tier":"gold"}}`,
		`{"external_id":"c-1","first_name":"Ada","account":"acc-1","email":"a@b.example"}`,
		`{"external_id":"d-1","amount":"12.30","close_date":"2026-01-31","stage":"Closed Won"}`,
		`{"external_id":"a-1","occurred_at":"2026-10-01T10:00:00Z","medium":"email","direction":"signal"}`,
		`{"external_id":"x","state":"deleted"}`, `{"external_id":1e400}`, `{"name":"\u0000"}`, `[1,2]`, `{}`, `{"a":{"b":{"c":[[[[]]]]}}}`,
	} {
		for _, m := range []string{"accounts", "contacts", "deals", "activities", "custom_competitors"} {
			f.Add(m, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, module string, raw []byte) {
		m, err := ModuleByName(module)
		if err != nil {
			return
		}
		row, errs := parseRow(m, 0, json.RawMessage(raw))
		if len(errs) > 0 {
			return
		}
		if err := checkExternalID(row.externalID); err != nil {
			t.Fatalf("accepted external id %q: %v", row.externalID, err)
		}
		for i, v := range row.values {
			if v != nil && (!utf8.ValidString(*v) || strings.ContainsRune(*v, 0)) {
				t.Fatalf("accepted field %s = %q", m.Fields[i].Name, *v)
			}
		}
		var attrs map[string]any
		if err := json.Unmarshal([]byte(row.attributes), &attrs); err != nil {
			t.Fatalf("accepted attributes %q: %v", row.attributes, err)
		}
	})
}
