package export

import "fmt"

// The CSV is RFC 4180: fields separated by commas, records ended by CRLF,
// a field quoted (its quotes doubled) when it holds a comma, a quote, CR
// or LF. It is written by hand rather than with encoding/csv because the
// cells arrive as bytes borrowed from the driver and are appended to a
// chunk buffer without a string copy each.

// bom is the UTF-8 byte-order mark the excel option writes first.
const bom = "\xEF\xBB\xBF"

// text is a cell's bytes, as the driver gives them or as a header is.
type text interface{ ~string | ~[]byte }

// appendRow appends one CSV record of driver values (string, []byte or
// nil for none) to buf.
func appendRow(buf []byte, cells []any) []byte {
	for i, c := range cells {
		if i > 0 {
			buf = append(buf, ',')
		}
		switch v := c.(type) {
		case string:
			buf = appendCell(buf, v)
		case []byte:
			buf = appendCell(buf, v)
		case nil:
		default:
			buf = appendCell(buf, fmt.Sprint(v))
		}
	}
	return append(buf, '\r', '\n')
}

// appendRecord appends one CSV record of cells to buf.
func appendRecord[C text](buf []byte, cells []C) []byte {
	for i, c := range cells {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCell(buf, c)
	}
	return append(buf, '\r', '\n')
}

// appendCell appends one field, neutralised and quoted as needed.
//
// A cell that a spreadsheet would read as a formula (it starts with =, +,
// -, @, tab or CR) gets a leading apostrophe, which spreadsheets show as
// text and do not run (the usual defence against CSV injection). A plain
// number such as -12.5 or +3 is left alone: it cannot be a formula, and
// prefixing it would turn every negative amount into text.
func appendCell[C text](buf []byte, c C) []byte {
	neutral := len(c) > 0 && formulaStart(c[0]) && !isNumber(c)
	quote := false
	for i := 0; i < len(c); i++ {
		if b := c[i]; b == ',' || b == '"' || b == '\r' || b == '\n' {
			quote = true
			break
		}
	}
	if !quote && !neutral {
		return append(buf, c...)
	}
	if quote {
		buf = append(buf, '"')
	}
	if neutral {
		buf = append(buf, '\'')
	}
	if !quote {
		return append(buf, c...)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if b == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, b)
	}
	return append(buf, '"')
}

func formulaStart(b byte) bool {
	return b == '=' || b == '+' || b == '-' || b == '@' || b == '\t' || b == '\r'
}

// isNumber: an optional sign, digits with at most one decimal point, and
// an optional exponent; nothing else.
func isNumber[C text](c C) bool {
	i := 0
	if i < len(c) && (c[i] == '+' || c[i] == '-') {
		i++
	}
	digits, dot := 0, false
	for ; i < len(c); i++ {
		if c[i] >= '0' && c[i] <= '9' {
			digits++
		} else if c[i] == '.' && !dot {
			dot = true
		} else {
			break
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(c) && (c[i] == 'e' || c[i] == 'E') {
		i++
		if i < len(c) && (c[i] == '+' || c[i] == '-') {
			i++
		}
		start := i
		for i < len(c) && c[i] >= '0' && c[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(c)
}
