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

// bareAmounts reads amounts as the regular expressions it replaces did:
// the currency code before an amount and the thousands separators go.
func TestBareAmountsMatchesTheRegexps(t *testing.T) {
	grouped := regexp.MustCompile(`(\d),(\d{3})\b`)
	currency := regexp.MustCompile(`\b[A-Z]{3} (-?\d)`)
	bare := func(text string) string {
		text = currency.ReplaceAllString(text, "$1")
		for next := grouped.ReplaceAllString(text, "$1$2"); next != text; next = grouped.ReplaceAllString(text, "$1$2") {
			text = next
		}
		return text
	}
	alphabet := []byte("0123456789,,, -.USDEaz_")
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		b := make([]byte, r.IntN(30))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := bareAmounts(string(b)), bare(string(b)); got != want {
			t.Fatalf("%q: %q, the regexps %q", b, got, want)
		}
	}
	for _, s := range []string{"USD 130,745.76", "worth EUR -1,234,567.00 in all", "aUSD 5", "USD 12,3456", "1,234,567"} {
		if got, want := bareAmounts(s), bare(s); got != want {
			t.Errorf("%q: %q, the regexps %q", s, got, want)
		}
	}
}

// A word written as a name inside a sentence must be one the facts
// write (in any case); the first word of a sentence, words in capitals,
// one-letter words and calendar names are left alone.
func TestInventedName(t *testing.T) {
	known := &factIndex{words: map[string]bool{}}
	scanFacts(`{"name":"Northwind Traders","first_name":"Zoë","note":"moving to the north office","title":"VP Sales"}`,
		func(string) {}, func(w string, _ bool) { known.words[w] = true })
	for text, want := range map[string]string{
		"Northwind Traders is healthy.":                   "",
		"Zoë signed; Zoë leads the project.":              "",
		"The team moves to the North office.":             "",
		"Call the VP Sales on Tuesday, or in September.":  "",
		"KPIs and CEO sign-off: I agree.":                 "",
		"Escalate: Priority is high. Renewal in January.": "",
		"Meet Northwind and Globex.":                      "Globex",
		"The sponsor is Zoë Quinlan.":                     "Quinlan",
		"Ask Zoë Ortega (VP Sales).":                      "Ortega",
		"Renewal with “Northwind Traders” — Ángel joins.": "",
		"Renewal with Northwind, run by Ángel.":           "Ángel",
	} {
		if got := inventedName(text, known); got != want {
			t.Errorf("%q: invented %q, want %q", text, got, want)
		}
	}
}
