// Package enrich is the enrichment task family: enrich:record crawls one
// account's website into a proposal per field, enrich:bulk enriches many
// accounts, writing only their empty fields.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/workers/enrich/extract"
	"github.com/crmq/crmq/workers/enrich/fetch"
)

// MaxPages is how many pages of one site a crawl reads: the home page and
// up to four about and contact pages found from its links.
const MaxPages = 5

// Crawler reads a site into findings.
type Crawler struct {
	Fetch    *fetch.Client
	Resolver *net.Resolver // MX lookups; nil: the system resolver
	Provider llm.Provider  // classifies industry and size band when the site states neither; nil: skipped
}

// Site is what a crawl found.
type Site struct {
	Home         string                     `json:"home"`
	Pages        []string                   `json:"pages"`
	Skipped      []string                   `json:"skipped,omitempty"` // pages not read, with why
	Best         map[string]extract.Finding `json:"best"`
	Technologies []extract.Technology       `json:"technologies"`
}

// ErrNothingFound: the site was read but gave no value for any field.
var ErrNothingFound = errors.New("nothing found")

// Crawl reads website's home page, then its about and contact pages, and
// picks the best value per field. The home page's failure is the
// crawl's; a later page's is noted and skipped.
func (c Crawler) Crawl(ctx context.Context, orgID int64, website string) (Site, error) {
	home, err := normalise(website)
	if err != nil {
		return Site{}, &fetch.Error{Reason: fetch.ReasonRefused, URL: website, Err: err}
	}
	site := Site{Home: home.String(), Best: map[string]extract.Finding{}}
	var findings []extract.Finding
	var text []string
	queue := []*url.URL{home}
	seen := map[string]bool{}
	for len(queue) > 0 && len(site.Pages) < MaxPages {
		u := queue[0]
		queue = queue[1:]
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		p, err := c.Fetch.Get(ctx, u.String())
		if err == nil && (p.Status < 200 || p.Status > 299) {
			err = &fetch.Error{Reason: fetch.ReasonUnreachable, URL: u.String(), Err: fmt.Errorf("answered %d", p.Status), Transient: p.Status >= 500}
		}
		if err != nil {
			if len(site.Pages) == 0 {
				return site, err
			}
			site.Skipped = append(site.Skipped, err.Error())
			continue
		}
		site.Pages = append(site.Pages, p.URL.String())
		r := extract.Page(p.URL, p.Header, p.Body)
		if r.Unparsed != "" {
			site.Skipped = append(site.Skipped, p.URL.String()+": HTML not parsed ("+r.Unparsed+"); JSON-LD and headers read")
		}
		findings = append(findings, r.Findings...)
		site.Technologies = mergeTech(site.Technologies, r.Technologies)
		text = append(text, r.Text)
		if len(site.Pages) == 1 {
			queue = append(queue, r.Links...)
		}
	}
	if len(site.Technologies) > 0 {
		labels := make([]string, len(site.Technologies))
		for i, t := range site.Technologies {
			labels[i] = t.Label()
		}
		findings = append(findings, extract.Finding{Field: extract.Technologies, Value: labels, URL: site.Home,
			Source: extract.SourceHTML, Confidence: extract.Confidence[extract.SourceHTML], Evidence: techEvidence(site.Technologies)})
	}
	if f, ok := c.mailProvider(ctx, home.Hostname()); ok {
		findings = append(findings, f)
	}
	site.Best = best(findings)
	deriveSizeBand(site.Best)
	c.classify(ctx, orgID, site.Best, strings.Join(text, "\n"), site.Home)
	if len(site.Best) == 0 {
		return site, ErrNothingFound
	}
	return site, nil
}

// normalise makes a website field a URL: "acme.com" -> "https://acme.com/".
func normalise(website string) (*url.URL, error) {
	w := strings.TrimSpace(website)
	if w == "" {
		return nil, errors.New("no website")
	}
	if !strings.Contains(w, "://") {
		w = "https://" + w
	}
	u, err := url.Parse(w)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: only http and https are fetched", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("website has no host")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.Fragment = ""
	return u, nil
}

// best keeps per field the finding of highest confidence; on a tie the
// first found (the home page before the others).
func best(fs []extract.Finding) map[string]extract.Finding {
	out := map[string]extract.Finding{}
	for _, f := range fs {
		if cur, ok := out[f.Field]; !ok || f.Confidence > cur.Confidence {
			out[f.Field] = f
		}
	}
	return out
}

func mergeTech(have, add []extract.Technology) []extract.Technology {
	for _, t := range add {
		i := slices.IndexFunc(have, func(h extract.Technology) bool { return h.Name == t.Name })
		switch {
		case i < 0:
			have = append(have, t)
		case have[i].Version == "" && t.Version != "":
			have[i].Version = t.Version
		}
	}
	return have
}

func techEvidence(ts []extract.Technology) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, t.Name+" ("+t.Category+"): "+t.Evidence)
	}
	s := strings.Join(parts, "; ")
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

// mailProvider reads the domain's MX records. A bare host's domain is
// itself; "www." is dropped.
func (c Crawler) mailProvider(ctx context.Context, host string) (extract.Finding, bool) {
	domain := strings.TrimPrefix(strings.ToLower(host), "www.")
	if net.ParseIP(domain) != nil {
		return extract.Finding{}, false
	}
	r := c.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	mx, err := r.LookupMX(ctx, domain+".")
	if err != nil || len(mx) == 0 {
		return extract.Finding{}, false
	}
	hosts := make([]string, 0, len(mx))
	for _, m := range mx {
		if m.Host == "." { // RFC 7505 null MX: the domain takes no mail
			return extract.Finding{}, false
		}
		hosts = append(hosts, strings.TrimSuffix(m.Host, "."))
	}
	provider := extract.MailProvider(hosts)
	if provider == "" {
		provider = "other (" + hosts[0] + ")"
	}
	return extract.Finding{Field: extract.EmailProvider, Value: provider, URL: "dns:" + domain,
		Source: extract.SourceDNS, Confidence: extract.Confidence[extract.SourceDNS], Evidence: "MX " + strings.Join(hosts, ", ")}, true
}
