// Package sites serves fixture company websites for enrichment tests,
// the demo (`make run`) and `crmq bench enrich`: a site with JSON-LD
// (northwind), one with only meta tags and text (bluefern), a WordPress
// site with Google Analytics and HubSpot (pressly), one whose robots.txt
// disallows everything (closed), and generated ones: a 50 MB page
// (Huge) and a page nested too deep to parse (Deep).
package sites

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed data
var data embed.FS

// Names are the fixture sites held as files.
func Names() []string {
	entries, _ := fs.ReadDir(data, "data")
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// Handler serves the named site: "/" is index.html, "/about" and
// "/about/" are about.html; robots.txt is served when the site has one
// (404 otherwise); headers.txt holds response headers, one per line.
func Handler(name string) http.Handler {
	root := "data/" + name
	headers := http.Header{}
	if b, err := data.ReadFile(root + "/headers.txt"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
				headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.Trim(path.Clean(r.URL.Path), "/")
		file := root + "/" + p + ".html"
		switch {
		case p == "" || p == ".":
			file = root + "/index.html"
		case p == "robots.txt":
			file = root + "/robots.txt"
		case p == "headers":
			http.NotFound(w, r)
			return
		}
		b, err := data.ReadFile(file)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		for k, vs := range headers {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		if p == "robots.txt" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		_, _ = w.Write(b)
	})
}

// Huge serves a home page whose head holds JSON-LD naming Giant Corp,
// followed by filler up to 50 MB.
func Huge() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>Giant</title><script type="application/ld+json">`+
			`{"@context":"https://schema.org","@type":"Corporation","name":"Giant Corp","foundingDate":"1970"}</script></head><body>`)
		chunk := []byte(strings.Repeat("<p>more of the same</p>\n", 4096))
		for n := 0; n < 50<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
}

// Deep serves a home page nested deeper than an HTML parser takes (600
// open elements), with JSON-LD naming Deep Nest Ltd.
func Deep() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>Deep</title><script type="application/ld+json">`+
			`{"@context":"https://schema.org","@type":"Organization","name":"Deep Nest Ltd","telephone":"+1 555 0100"}</script></head><body>`)
		fmt.Fprint(w, strings.Repeat("<div>", 600), "bottom", strings.Repeat("</div>", 600), "</body></html>")
	})
}
