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

// when reads a date ("2006-01-02") or an RFC 3339 timestamp.
func when(v any) (time.Time, bool) {
	s := text(v)
	if s == "" {
		return time.Time{}, false
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
