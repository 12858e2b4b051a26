package extract

import (
	_ "embed"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"go.yaml.in/yaml/v3"
)

//go:embed technologies.yaml
var technologiesYAML []byte

// Technology is one detected technology.
type Technology struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Version  string `json:"version,omitempty"`
	Evidence string `json:"evidence"` // the marker that matched
}

// Label is the technology as a proposal lists it: "WordPress 6.4.2".
func (t Technology) Label() string {
	if t.Version == "" {
		return t.Name
	}
	return t.Name + " " + t.Version
}

type fingerprint struct {
	Name     string            `yaml:"name"`
	Category string            `yaml:"category"`
	Meta     map[string]string `yaml:"meta"`
	Scripts  []string          `yaml:"scripts"`
	Links    []string          `yaml:"links"`
	Inline   []string          `yaml:"inline"`
	DOM      []string          `yaml:"dom"`
	Headers  map[string]string `yaml:"headers"`
	Cookies  []string          `yaml:"cookies"`

	meta    map[string]*regexp.Regexp
	scripts []*regexp.Regexp
	links   []*regexp.Regexp
	inline  []*regexp.Regexp
	headers map[string]*regexp.Regexp
}

type mailRule struct {
	Suffix   string `yaml:"suffix"`
	Provider string `yaml:"provider"`
}

type fingerprintFile struct {
	Technologies []*fingerprint `yaml:"technologies"`
	Mail         []mailRule     `yaml:"mail"`
}

var (
	loadOnce sync.Once
	table    fingerprintFile
	loadErr  error
)

// Fingerprints is the technology table, compiled once.
func fingerprints() (fingerprintFile, error) {
	loadOnce.Do(func() { table, loadErr = compile(technologiesYAML) })
	return table, loadErr
}

func compile(data []byte) (fingerprintFile, error) {
	var f fingerprintFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("technologies.yaml: %w", err)
	}
	re := func(name, s string) (*regexp.Regexp, error) {
		r, err := regexp.Compile("(?i)" + s)
		if err != nil {
			return nil, fmt.Errorf("technologies.yaml: %s: %w", name, err)
		}
		return r, nil
	}
	list := func(name string, ss []string) ([]*regexp.Regexp, error) {
		out := make([]*regexp.Regexp, 0, len(ss))
		for _, s := range ss {
			r, err := re(name, s)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	kv := func(name string, m map[string]string) (map[string]*regexp.Regexp, error) {
		out := map[string]*regexp.Regexp{}
		for k, s := range m {
			r, err := re(name, s)
			if err != nil {
				return nil, err
			}
			out[strings.ToLower(k)] = r
		}
		return out, nil
	}
	var err error
	for _, fp := range f.Technologies {
		if fp.Name == "" || fp.Category == "" {
			return f, fmt.Errorf("technologies.yaml: an entry lacks a name or category: %+v", fp)
		}
		if fp.scripts, err = list(fp.Name, fp.Scripts); err != nil {
			return f, err
		}
		if fp.links, err = list(fp.Name, fp.Links); err != nil {
			return f, err
		}
		if fp.inline, err = list(fp.Name, fp.Inline); err != nil {
			return f, err
		}
		if fp.meta, err = kv(fp.Name, fp.Meta); err != nil {
			return f, err
		}
		if fp.headers, err = kv(fp.Name, fp.Headers); err != nil {
			return f, err
		}
		for _, sel := range fp.DOM {
			s, _, _ := strings.Cut(sel, "@")
			if _, err := cascadia.Compile(s); err != nil {
				return f, fmt.Errorf("technologies.yaml: %s: selector %q: %w", fp.Name, s, err)
			}
		}
	}
	return f, nil
}

// version is the first non-empty capture group of m.
func version(m []string) string {
	for _, g := range m[1:] {
		if g != "" {
			return strings.TrimSuffix(g, ".")
		}
	}
	return ""
}

// detectHeaders matches response headers and Set-Cookie names.
func detectHeaders(h http.Header) []Technology {
	f, err := fingerprints()
	if err != nil || h == nil {
		return nil
	}
	var cookies []string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		cookies = append(cookies, c.Name)
	}
	var out []Technology
	for _, fp := range f.Technologies {
		for name, r := range fp.headers {
			for _, v := range h.Values(name) {
				if m := r.FindStringSubmatch(v); m != nil {
					out = mergeTech(out, []Technology{{Name: fp.Name, Category: fp.Category, Version: version(m), Evidence: "header " + name + ": " + clip(v, 80)}})
				}
			}
		}
		for _, prefix := range fp.Cookies {
			for _, c := range cookies {
				if strings.HasPrefix(strings.ToLower(c), strings.ToLower(prefix)) {
					out = mergeTech(out, []Technology{{Name: fp.Name, Category: fp.Category, Evidence: "cookie " + c}})
				}
			}
		}
	}
	return out
}

// detectDocument matches script and link URLs, inline scripts, meta tags
// and DOM selectors.
func detectDocument(doc *goquery.Document, _ []byte) []Technology {
	f, err := fingerprints()
	if err != nil {
		return nil
	}
	var scripts, links, inline []string
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src, ok := s.Attr("src"); ok {
			scripts = append(scripts, src)
		} else if t := s.Text(); len(t) > 0 {
			inline = append(inline, t)
		}
	})
	doc.Find("link[href]").Each(func(_ int, s *goquery.Selection) {
		href, _ := s.Attr("href")
		links = append(links, href)
	})
	meta := map[string][]string{}
	doc.Find("meta[name][content]").Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		c, _ := s.Attr("content")
		meta[strings.ToLower(n)] = append(meta[strings.ToLower(n)], c)
	})
	var out []Technology
	found := func(fp *fingerprint, v, evidence string) {
		out = mergeTech(out, []Technology{{Name: fp.Name, Category: fp.Category, Version: v, Evidence: clip(evidence, 120)}})
	}
	for _, fp := range f.Technologies {
		for name, r := range fp.meta {
			for _, c := range meta[name] {
				if m := r.FindStringSubmatch(c); m != nil {
					found(fp, version(m), "meta "+name+": "+c)
				}
			}
		}
		match := func(res []*regexp.Regexp, values []string, kind string) {
			for _, r := range res {
				for _, v := range values {
					if m := r.FindStringSubmatch(v); m != nil {
						ev := kind + " " + v
						if kind == "inline script" {
							ev = kind + " " + m[0]
						}
						found(fp, version(m), ev)
					}
				}
			}
		}
		match(fp.scripts, scripts, "script")
		match(fp.links, links, "link")
		match(fp.inline, inline, "inline script")
		for _, sel := range fp.DOM {
			s, attr, _ := strings.Cut(sel, "@")
			if m := doc.Find(s).First(); m.Length() > 0 {
				v := ""
				if attr != "" {
					v, _ = m.Attr(attr)
				}
				found(fp, v, "element "+s)
			}
		}
	}
	return out
}

// mergeTech adds add to have, one entry per technology: a version found
// anywhere is kept.
func mergeTech(have, add []Technology) []Technology {
	for _, t := range add {
		i := slices.IndexFunc(have, func(h Technology) bool { return h.Name == t.Name })
		switch {
		case i < 0:
			have = append(have, t)
		case have[i].Version == "" && t.Version != "":
			have[i].Version = t.Version
		}
	}
	return have
}

// MailProvider names the email provider of MX hosts, or "" when no rule
// matches.
func MailProvider(hosts []string) string {
	f, err := fingerprints()
	if err != nil {
		return ""
	}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		for _, r := range f.Mail {
			if h == r.Suffix || strings.HasSuffix(h, "."+r.Suffix) {
				return r.Provider
			}
		}
	}
	return ""
}
