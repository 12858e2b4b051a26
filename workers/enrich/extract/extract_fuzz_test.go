package extract

import (
	"net/http"
	"net/url"
	"testing"
	"unicode/utf8"
)

// Any bytes served as a page: Page never panics, every link it follows is
// on the page's own site, and every finding has a field and valid UTF-8.
// Inputs that once failed stay in testdata/fuzz/FuzzPage as seeds.
func FuzzPage(f *testing.F) {
	for _, s := range []string{
		`<html><head><meta property="og:description" content="We ship"><script type="application/ld+json">{"@type":"Organization","name":"Acme","foundingDate":"1999","numberOfEmployees":{"value":250}}</script></head><body><a href="/about">About</a><a href="https://other.example/contact">x</a></body></html>`,
		`<div itemscope itemtype="https://schema.org/Organization"><span itemprop="telephone">+1 555 0100</span></div>`,
		`<meta name="generator" content="WordPress 6.4"><script src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>`,
		`<script type="application/ld+json">[{"@graph":[{"@type":"LocalBusiness","address":{"streetAddress":"1 Main"}}]}]</script>`,
		"\xff\xfe<\x00h\x00t\x00m\x00l\x00>", `<a href="javascript:alert(1)">`, `<<<<>>>>`,
	} {
		f.Add([]byte(s), "text/html; charset=utf-8")
	}
	base, _ := url.Parse("https://acme.example/")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		h := http.Header{"Content-Type": []string{contentType}}
		res := Page(base, h, body)
		for _, l := range res.Links {
			if l.Hostname() != base.Hostname() {
				t.Fatalf("follows a link off the site: %s", l)
			}
		}
		for _, fd := range res.Findings {
			ok := fd.Field != ""
			switch v := fd.Value.(type) {
			case string:
				ok = ok && utf8.ValidString(v)
			case []string:
				for _, s := range v {
					ok = ok && utf8.ValidString(s)
				}
			case int:
			default:
				ok = false
			}
			if !ok {
				t.Fatalf("finding %+v (value %T)", fd, fd.Value)
			}
		}
	})
}
