// Package extract reads firmographics and technographics out of fetched
// pages: schema.org JSON-LD and microdata, OpenGraph and meta tags, the
// text of the home, about and contact pages, and technology fingerprints
// kept as data (technologies.json). HTML is parsed with goquery (the
// HTML5 tree builder), never matched with regular expressions for its
// structure; regular expressions only read values out of text (a year, a
// phone number) and fingerprint markers out of URLs and headers.
package extract

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
)

// Fields an enrichment may propose.
const (
	Name          = "name"
	LegalName     = "legal_name"
	Description   = "description"
	Industry      = "industry"
	Employees     = "employees"
	SizeBand      = "size_band"
	FoundedYear   = "founded_year"
	Phone         = "phone"
	Email         = "email"
	Street        = "street"
	City          = "city"
	Region        = "region"
	Postcode      = "postcode"
	Country       = "country"
	LinkedIn      = "linkedin"
	Twitter       = "twitter"
	Facebook      = "facebook"
	Technologies  = "technologies"
	EmailProvider = "email_provider"
	Website       = "website"
)

// Sources say how a value was found.
const (
	SourceJSONLD    = "json-ld"
	SourceMicrodata = "microdata"
	SourceOpenGraph = "opengraph"
	SourceMeta      = "meta"
	SourceText      = "page text"
	SourceHTML      = "html"
	SourceDNS       = "dns"
	SourceLLM       = "llm"
	SourceContacts  = "contacts"
)

// Confidence of a value by its source: structured data the site wrote
// for machines first, then tags, then text read by patterns, then a
// model's guess.
var Confidence = map[string]float64{
	SourceJSONLD:    0.95,
	SourceMicrodata: 0.9,
	SourceDNS:       0.9,
	SourceOpenGraph: 0.8,
	SourceMeta:      0.75,
	SourceHTML:      0.7,
	SourceText:      0.6,
	SourceContacts:  0.5,
	SourceLLM:       0.4,
}

// Finding is one value found for a field, with where and how.
type Finding struct {
	Field      string  `json:"field"`
	Value      any     `json:"value"` // string, int or []string
	URL        string  `json:"url"`
	Source     string  `json:"source"`
	Confidence float64 `json:"confidence"`
	Evidence   string  `json:"evidence,omitempty"`
}

// PageResult is what one page gave.
type PageResult struct {
	Findings     []Finding
	Technologies []Technology
	Links        []*url.URL // same-site about and contact pages worth reading
	Text         string     // visible text, for classification
	Unparsed     string     // why the HTML could not be parsed, when it could not
}

// Page reads one fetched page. Body is the (possibly cut) response body.
// A page whose HTML cannot be parsed (x/net/html refuses more than 512
// open elements) still gives its JSON-LD, found by a byte scan, and its
// header and cookie fingerprints.
func Page(u *url.URL, header http.Header, body []byte) PageResult {
	var res PageResult
	res.Technologies = detectHeaders(header)
	r, err := charset.NewReader(bytes.NewReader(body), header.Get("Content-Type"))
	if err != nil {
		r = bytes.NewReader(body)
	}
	doc, err := goquery.NewDocumentFromReader(r)
	if err != nil {
		res.Unparsed = err.Error()
		for _, block := range scanJSONLD(body) {
			res.Findings = append(res.Findings, jsonLD(u, block)...)
		}
		return res
	}
	doc.Find(`script[type="application/ld+json"]`).Each(func(_ int, s *goquery.Selection) {
		res.Findings = append(res.Findings, jsonLD(u, []byte(s.Text()))...)
	})
	res.Findings = append(res.Findings, microdata(u, doc)...)
	res.Findings = append(res.Findings, metaTags(u, doc)...)
	text := visibleText(doc)
	res.Text = text
	res.Findings = append(res.Findings, pageText(u, doc, text)...)
	res.Technologies = mergeTech(res.Technologies, detectDocument(doc, body))
	res.Links = siteLinks(u, doc)
	return res
}

// scanJSONLD finds the JSON-LD blocks of a page too deep to parse, by
// their script tags' bytes. Used only when the tree cannot be built.
func scanJSONLD(body []byte) [][]byte {
	var out [][]byte
	lower := bytes.ToLower(body)
	for {
		i := bytes.Index(lower, []byte("application/ld+json"))
		if i < 0 {
			return out
		}
		open := bytes.IndexByte(lower[i:], '>')
		if open < 0 {
			return out
		}
		start := i + open + 1
		end := bytes.Index(lower[start:], []byte("</script"))
		if end < 0 {
			return out
		}
		out = append(out, body[start:start+end])
		lower, body = lower[start+end:], body[start+end:]
	}
}

// visibleText is the page's text without scripts, styles and templates,
// text nodes joined by a space (so "<h1>About</h1><p>Founded" keeps its
// words apart) and runs of space collapsed.
func visibleText(doc *goquery.Document) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "noscript", "template", "svg", "head":
				return
			}
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range doc.Nodes {
		walk(n)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// siteLinks are the same-host links whose path or text says about,
// company, team or contact, in page order, without repeats.
func siteLinks(base *url.URL, doc *goquery.Document) []*url.URL {
	var out []*url.URL
	seen := map[string]bool{base.Path: true}
	doc.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		href, _ := a.Attr("href")
		u, err := base.Parse(strings.TrimSpace(href))
		if err != nil || !strings.EqualFold(u.Host, base.Host) || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		u.Fragment, u.RawQuery = "", ""
		key := strings.ToLower(u.Path + " " + a.Text())
		if !strings.Contains(key, "about") && !strings.Contains(key, "contact") && !strings.Contains(key, "company") &&
			!strings.Contains(key, "team") && !strings.Contains(key, "who-we-are") && !strings.Contains(key, "impressum") {
			return
		}
		if seen[u.Path] {
			return
		}
		seen[u.Path] = true
		out = append(out, u)
	})
	return out
}
