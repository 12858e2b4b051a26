package export

import (
	"encoding/csv"
	"strings"
	"testing"
)

// CellCases maps a cell to what a CSV reader reads back from the export:
// itself, or with a leading apostrophe when a spreadsheet would run it.
var CellCases = map[string]string{
	"plain": "plain", "": "", "a,b": "a,b", `say "hi"`: `say "hi"`, "two\nlines": "two\nlines", "cr\rin": "cr\rin",
	"=1+2": "'=1+2", "+49 30 1234": "'+49 30 1234", "-x": "'-x", "@SUM(A1)": "'@SUM(A1)",
	"\tlead": "'\tlead", "\rlead": "'\rlead", `=HYPERLINK("u","t")`: `'=HYPERLINK("u","t")`,
	"-12.50": "-12.50", "+3": "+3", "-1e5": "-1e5", "-": "'-", "+.": "'+.", "-1e": "'-1e", "-1.2.3": "'-1.2.3",
	".5": ".5", "-.5": "-.5", "1.": "1.", "=": "'=", "'quoted": "'quoted",
}

// Each cell comes back from a CSV reader as it went in, except that a
// cell a spreadsheet would run as a formula gains a leading apostrophe;
// plain numbers, negative ones included, are left alone.
func TestCellsAreQuotedAndNeutralised(t *testing.T) {
	for in, want := range CellCases {
		row := appendRow(nil, []any{in, []byte("end")})
		got, err := csv.NewReader(strings.NewReader(string(row))).Read()
		if err != nil {
			t.Errorf("%q: %v (%q)", in, err, row)
			continue
		}
		if got[0] != want || got[1] != "end" {
			t.Errorf("%q: read back %q, want %q", in, got, want)
		}
		if !strings.HasSuffix(string(row), "\r\n") {
			t.Errorf("%q: record not ended by CRLF: %q", in, row)
		}
	}
}
