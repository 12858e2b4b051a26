package summary

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
	"time"
)

// scanNumbers finds what the regular expression of numbers and dates finds.
func TestScanNumbersMatchesTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?`)
	alphabet := []byte("0123456789.-,: aZ")
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		var got []string
		scanNumbers(string(b), func(s string) { got = append(got, s) })
		if want := re.FindAllString(string(b), -1); !slices.Equal(got, want) {
			t.Fatalf("%q: scan %q, regexp %q", b, got, want)
		}
	}
}

// utcStamp reads the store's timestamps as time.Parse does, and leaves
// every other form to it.
func TestUTCStampMatchesTimeParse(t *testing.T) {
	for _, s := range []string{"2025-06-02T09:30:00.000000Z", "2025-06-02T09:30:00Z", "2024-02-29T23:59:59.5Z",
		"2025-12-31T00:00:00.123456789Z"} {
		got, ok := utcStamp(s)
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, time.Parse %v %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"2025-02-30T00:00:00Z", "2025-06-02T09:30:00+02:00", "2025-06-02", "2025-13-01T00:00:00Z",
		"2025-06-02T24:00:00Z", "2025-06-02T09:30:00.Z", "x025-06-02T09:30:00Z"} {
		if _, ok := utcStamp(s); ok {
			t.Errorf("%s read as a UTC stamp", s)
		}
	}
}
