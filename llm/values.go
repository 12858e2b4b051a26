package llm

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Number reads a field value as a number. Values come from the store
// (json.Number) or from hand-built facts (float64, int, numeric strings).
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}
