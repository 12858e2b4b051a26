package export

import (
	"encoding/csv"
	"errors"
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
	".5": ".5", "-.5": "-.5", "1.": "1.", "=": "'=", "'quoted": "'quoted", `"`: `"`, `""x`: `""x`, `="`: `'="`,
}

// copyCSV writes cells as Postgres's COPY ... (FORMAT csv) does: a field
// is quoted, its quotes doubled, when it holds a comma, a quote, CR or LF,
// or is an empty string; a nil is NULL, an empty unquoted field; the
// record ends with LF.
func copyCSV(cells []*string) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(',')
		}
		if c == nil {
			continue
		}
		if *c == "" || strings.ContainsAny(*c, ",\"\r\n") {
			b.WriteString(`"` + strings.ReplaceAll(*c, `"`, `""`) + `"`)
		} else {
			b.WriteString(*c)
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// convert passes stream through pgCSV in pieces cut at the given offsets.
func convert(stream string, cuts ...int) (string, int64, error) {
	var c pgCSV
	last := 0
	for _, at := range append(cuts, len(stream)) {
		if err := c.write([]byte(stream[last:at])); err != nil {
			return "", 0, err
		}
		last = at
	}
	return string(c.buf), c.rows, c.end()
}

// Each cell of the table, as COPY writes it and pgCSV converts it, cut
// into pieces at every offset, is byte for byte what appendRecord writes
// for it, and reads back as the table says: formulas behind an
// apostrophe, plain numbers left alone, records ended by CRLF.
func TestCellsAreQuotedAndNeutralised(t *testing.T) {
	for in, want := range CellCases {
		cells := []*string{&in, nil, new("end")}
		stream := copyCSV(cells) + copyCSV(cells)
		record := string(appendRecord(nil, []string{in, "", "end"}))
		for cut := range len(stream) + 1 {
			got, rows, err := convert(stream, cut)
			if err != nil || rows != 2 || got != record+record {
				t.Fatalf("%q cut at %d: %q, %d rows, %v; want %q twice", in, cut, got, rows, err, record)
			}
		}
		recs, err := csv.NewReader(strings.NewReader(record)).ReadAll()
		if err != nil || len(recs) != 1 {
			t.Fatalf("%q: %v (%q)", in, err, record)
		}
		if recs[0][0] != want || recs[0][1] != "" || recs[0][2] != "end" {
			t.Errorf("%q: read back %q, want %q", in, recs[0], want)
		}
		if !strings.HasSuffix(record, "\r\n") {
			t.Errorf("%q: record not ended by CRLF: %q", in, record)
		}
	}
}

// A stream cut inside a record is malformed, so a COPY that died half way
// never passes for a complete file; so is a stream Postgres cannot write.
func TestAStreamCutShortIsMalformed(t *testing.T) {
	whole := copyCSV([]*string{new("a"), new("b,c")}) + copyCSV([]*string{new("=x"), new("")})
	for cut := range len(whole) {
		if cut > 0 && whole[cut-1] == '\n' {
			continue // between two records: a shorter but well-formed stream
		}
		if _, _, err := convert(whole[:cut]); !errors.Is(err, errMalformedCopy) && cut > 0 {
			t.Errorf("cut at %d (%q): %v, want malformed", cut, whole[:cut], err)
		}
	}
	for _, bad := range []string{"\"a\"b\n", "\"\"x\n"} {
		if _, _, err := convert(bad); !errors.Is(err, errMalformedCopy) {
			t.Errorf("%q: %v, want malformed", bad, err)
		}
	}
}
