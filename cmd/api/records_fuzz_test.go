package main

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/crmq/crmq/store"
)

// The body decoder of PUT /v1/modules/{module}/records takes any bytes as
// a JSON array or as NDJSON: it never panics, what it refuses is a 4xx
// problem (never a 500), and it never hands on more than a batch.
// Inputs that once failed stay in testdata/fuzz/FuzzReadRows as seeds.
func FuzzReadRows(f *testing.F) {
	for _, s := range []string{
		`[{"external_id":"a"},{"external_id":"b"}]`, `[]`, `[1,`, `{"external_id":"a"}`, `[{}] [{}]`,
		"{\"external_id\":\"a\"}\n\n{bad\n{\"external_id\":\"b\"}", "\xef\xbb\xbf[{}]", `[` + string(bytes.Repeat([]byte(`{},`), 5)) + `{}]`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		r := httptest.NewRequest("PUT", "/v1/modules/accounts/records", bytes.NewReader(body))
		if ndjson {
			r.Header.Set("Content-Type", "application/x-ndjson")
		}
		rows, err := readRows(r)
		if err != nil {
			w := httptest.NewRecorder()
			(&server{log: quiet}).fail(w, r, err)
			if w.Code < 400 || w.Code >= 500 || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("refused with %d %s (%v): want a 4xx problem", w.Code, w.Body, err)
			}
			return
		}
		if len(rows) == 0 || len(rows) > store.MaxBatchRows {
			t.Fatalf("%d rows", len(rows))
		}
	})
}
