package summary

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// Field values come from store.Record (json.Number for numbers, RFC 3339
// strings for timestamps) or from hand-built graphs (float64, int); these
// helpers read either.

func text(v any) string { return llm.Text(v) }

// when reads a date ("2006-01-02") or an RFC 3339 timestamp. The store's
// own UTC form ("2006-01-02T15:04:05.000000Z", every activity's
// occurred_at, read several times per summary) is read digit by digit.
func when(v any) (time.Time, bool) {
	s := text(v)
	if s == "" {
		return time.Time{}, false
	}
	if t, ok := utcStamp(s); ok {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// Figures are rendered as json.Number so the prompt and any text copied
// from it show the same digits: percents with at most one decimal, money
// with two.
func percent(part, whole float64) json.Number {
	p := math.Round(part/whole*1000) / 10
	return json.Number(strconv.FormatFloat(p, 'f', -1, 64))
}

func money(v float64) json.Number {
	return json.Number(strconv.FormatFloat(math.Round(v*100)/100, 'f', 2, 64))
}

func lower(v any) string { return strings.ToLower(strings.TrimSpace(text(v))) }

// stage is where the deal r's stage leaves it (crm.Stage, the rule the
// store's SQL and the offline provider apply too).
func stage(r store.GraphRecord) crm.Outcome { return crm.Stage(text(r.Fields["stage"])) }

// isDone: the record's status ends it (crm.Done).
func isDone(r store.GraphRecord) bool { return crm.Done(text(r.Fields["status"])) }

// utcStamp reads "2006-01-02T15:04:05Z" with an optional fraction of up to
// nine digits; false for anything else (time.Parse then decides).
func utcStamp(s string) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if rest := s[19 : len(s)-1]; rest != "" {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		f, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(rest) {
			f *= 10
		}
		nsec = f
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC)
	if t.Day() != d { // 2025-02-30 and the like
		return time.Time{}, false
	}
	return t, true
}
