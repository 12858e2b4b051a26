package export

import "errors"

// The CSV is RFC 4180: fields separated by commas, records ended by CRLF,
// a field quoted (its quotes doubled) when it holds a comma, a quote, CR
// or LF. The header is written here (appendRecord); the rows come from
// Postgres's COPY ... TO STDOUT (FORMAT csv), which quotes the same way,
// and pass through pgCSV, which ends records with CRLF instead of LF,
// writes an empty string as an empty field and neutralises formulas. So a
// row reads exactly as appendRecord would write its cells.

// bom is the UTF-8 byte-order mark the excel option writes first.
const bom = "\xEF\xBB\xBF"

// text is a cell's bytes, as the driver gives them or as a header is.
type text interface{ ~string | ~[]byte }

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

// errMalformedCopy: the COPY stream is not CSV as Postgres writes it.
var errMalformedCopy = errors.New("malformed CSV from COPY")

// pgCSV states, between two bytes of the COPY stream.
const (
	fieldStart  = iota // before a field's first byte
	unquoted           // in an unquoted field, written as it comes
	pending            // in an unquoted field that starts like a formula, held until its end
	openQuote          // after a quoted field's opening quote, nothing written yet
	openQuotes         // after `""` at a field's start: an empty field or an escaped quote
	quoted             // in a quoted field, written as it comes
	quotedQuote        // after a quote inside a quoted field: an escaped quote or the end
)

// pgCSV turns the bytes of COPY ... TO STDOUT (FORMAT csv) into the
// export's CSV, appending to buf, whatever way the stream is cut into
// pieces. Postgres quotes a field exactly when appendCell does (it holds
// a comma, a quote, CR or LF), plus an empty string, which is written
// here as an empty field; records end with LF, written here as CRLF (a
// quoted LF stays as it is, as appendCell leaves it). A field a
// spreadsheet would run as a formula gets appendCell's apostrophe: an
// unquoted one is held until its end to see whether it is a plain number;
// a quoted one never is.
type pgCSV struct {
	buf   []byte
	state int
	held  []byte // the pending field
	rows  int64  // records ended
	mid   bool   // bytes of a record not yet ended were seen
}

func (c *pgCSV) write(p []byte) error {
	buf, st := c.buf, c.state
	// delim writes the comma or record end b that ends a field.
	delim := func(b byte) {
		if b == ',' {
			buf = append(buf, ',')
		} else {
			buf = append(buf, '\r', '\n')
			c.rows++
		}
		st = fieldStart
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch st {
		case fieldStart:
			switch {
			case b == '"':
				st = openQuote
			case b == ',' || b == '\n':
				delim(b)
			case formulaStart(b):
				c.held = append(c.held[:0], b)
				st = pending
			default:
				st = unquoted
				i-- // the unquoted run starts at b
			}
		case unquoted: // copy the run up to the field's end in one append
			j := i
			for j < len(p) && p[j] != ',' && p[j] != '\n' {
				j++
			}
			buf = append(buf, p[i:j]...)
			if i = j; j < len(p) {
				delim(p[j])
			}
		case pending:
			if b != ',' && b != '\n' {
				c.held = append(c.held, b)
				continue
			}
			if !isNumber(c.held) {
				buf = append(buf, '\'')
			}
			buf = append(buf, c.held...)
			delim(b)
		case openQuote:
			if b == '"' {
				st = openQuotes
				continue
			}
			buf = append(buf, '"')
			if formulaStart(b) {
				buf = append(buf, '\'')
			}
			buf = append(buf, b)
			st = quoted
		case openQuotes, quotedQuote:
			switch {
			case b == '"' && st == openQuotes: // the field starts with an escaped quote
				buf = append(buf, '"', '"', '"')
				st = quoted
			case b == '"': // an escaped quote
				buf = append(buf, '"')
				st = quoted
			case b == ',' || b == '\n': // the field's end (after `""`: an empty string)
				delim(b)
			default:
				return errMalformedCopy
			}
		case quoted:
			j := i
			for j < len(p) && p[j] != '"' {
				j++
			}
			buf = append(buf, p[i:j]...)
			if j < len(p) {
				buf = append(buf, '"')
				st = quotedQuote
			}
			i = j
		}
	}
	c.buf, c.state = buf, st
	if len(p) > 0 {
		c.mid = !(st == fieldStart && p[len(p)-1] == '\n')
	}
	return nil
}

// end checks that the stream ended between two records: a COPY cut short
// never reads as a complete file.
func (c *pgCSV) end() error {
	if c.state != fieldStart || c.mid {
		return errMalformedCopy
	}
	return nil
}
