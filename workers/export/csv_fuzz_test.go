package export

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// Any three cells written by the CSV writer read back with encoding/csv
// as the same three cells, except that a cell a spreadsheet would run as a
// formula comes back behind one apostrophe; no cell reads back starting
// with a formula character unless it is a plain number. The same cells as
// COPY writes them, converted by pgCSV in two pieces cut anywhere, are
// byte for byte what the writer writes. Inputs that once failed stay in
// testdata/fuzz/FuzzCSVRecord as seeds.
func FuzzCSVRecord(f *testing.F) {
	for _, s := range [][3]string{
		{"plain", "with,comma", `with "quote"`},
		{"=SUM(A1:A9)", "+1", "-12.5"},
		{"@cmd", "\tTab", "\rCR"},
		{"line\nbreak", "", "1e5"},
		{"-", "+", "x\r\ny"},
	} {
		f.Add(s[0], s[1], s[2], uint(7))
	}
	f.Fuzz(func(t *testing.T, a, b, c string, cut uint) {
		cells := []string{a, b, c}
		out := appendRecord(nil, cells)
		r := csv.NewReader(bytes.NewReader(out))
		r.FieldsPerRecord = 3
		got, err := r.Read()
		if err != nil {
			t.Fatalf("%q written as %q does not read back: %v", cells, out, err)
		}
		for i, cell := range cells {
			// encoding/csv reads a quoted CRLF as LF, as RFC 4180 readers may.
			want := string(bytes.ReplaceAll([]byte(cell), []byte("\r\n"), []byte("\n")))
			back := got[i]
			if len(cell) > 0 && formulaStart(cell[0]) && !isNumber(cell) {
				if len(back) == 0 || back[0] != '\'' {
					t.Fatalf("formula cell %q read back as %q", cell, back)
				}
				back = back[1:]
			}
			if back != want {
				t.Fatalf("cell %q read back as %q (record %q)", cell, got[i], out)
			}
		}
		stream := copyCSV([]*string{&a, &b, &c})
		conv, rows, err := convert(stream, int(cut%uint(len(stream)+1)))
		if err != nil || rows != 1 || conv != string(out) {
			t.Fatalf("COPY's %q converted to %q (%d rows, %v), the writer writes %q", stream, conv, rows, err, out)
		}
	})
}
