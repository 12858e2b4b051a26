package extract

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/PuerkitoBio/goquery"
)

// microdata reads the first schema.org organisation marked up with
// itemscope/itemtype, its properties and its address's.
func microdata(u *url.URL, doc *goquery.Document) []Finding {
	var out []Finding
	doc.Find("[itemscope][itemtype]").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		t, _ := s.Attr("itemtype")
		t = t[strings.LastIndexByte(t, '/')+1:]
		if !orgTypes[strings.ToLower(t)] {
			return true
		}
		prop := func(name string) string {
			p := s.Find(`[itemprop="` + name + `"]`).First()
			if p.Length() == 0 {
				return ""
			}
			for _, attr := range []string{"content", "datetime", "href"} {
				if v, ok := p.Attr(attr); ok {
					return strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(v, "mailto:"), "tel:"))
				}
			}
			return strings.Join(strings.Fields(p.Text()), " ")
		}
		add := func(field string, value any, name string) {
			if s, ok := value.(string); ok && s == "" {
				return
			}
			out = append(out, Finding{Field: field, Value: value, URL: u.String(), Source: SourceMicrodata,
				Confidence: Confidence[SourceMicrodata], Evidence: t + "." + name})
		}
		add(Name, prop("name"), "name")
		add(LegalName, prop("legalName"), "legalName")
		add(Description, clip(prop("description"), 1000), "description")
		add(Phone, prop("telephone"), "telephone")
		add(Email, prop("email"), "email")
		add(Street, prop("streetAddress"), "streetAddress")
		add(City, prop("addressLocality"), "addressLocality")
		add(Region, prop("addressRegion"), "addressRegion")
		add(Postcode, prop("postalCode"), "postalCode")
		add(Country, prop("addressCountry"), "addressCountry")
		if y := yearOf(prop("foundingDate")); y > 0 {
			add(FoundedYear, y, "foundingDate")
		}
		if n, ok := employeesOf(prop("numberOfEmployees")); ok {
			add(Employees, n, "numberOfEmployees")
		}
		s.Find(`[itemprop="sameAs"]`).Each(func(_ int, a *goquery.Selection) {
			href, _ := a.Attr("href")
			if f := socialField(href); f != "" {
				add(f, href, "sameAs")
			}
		})
		return false
	})
	return out
}

// metaTags reads OpenGraph properties (including the business and
// contact ones of the original OpenGraph vocabulary) and the description
// and twitter:site meta tags.
func metaTags(u *url.URL, doc *goquery.Document) []Finding {
	var out []Finding
	add := func(field, value, source, tag string) {
		value = strings.TrimSpace(value)
		if value == "" {
			return
		}
		out = append(out, Finding{Field: field, Value: value, URL: u.String(), Source: source,
			Confidence: Confidence[source], Evidence: tag})
	}
	og := map[string]string{
		"og:site_name": Name, "og:description": Description, "og:email": Email, "og:phone_number": Phone,
		"og:street-address": Street, "og:locality": City, "og:region": Region, "og:postal-code": Postcode,
		"og:country-name":                      Country,
		"business:contact_data:street_address": Street, "business:contact_data:locality": City,
		"business:contact_data:region": Region, "business:contact_data:postal_code": Postcode,
		"business:contact_data:country_name": Country, "business:contact_data:email": Email,
		"business:contact_data:phone_number": Phone,
	}
	doc.Find("meta").Each(func(_ int, m *goquery.Selection) {
		content, _ := m.Attr("content")
		prop, _ := m.Attr("property")
		name, _ := m.Attr("name")
		prop, name = strings.ToLower(prop), strings.ToLower(name)
		if f, ok := og[prop]; ok {
			if f == Description {
				content = clip(content, 1000)
			}
			add(f, content, SourceOpenGraph, prop)
			return
		}
		switch name {
		case "description":
			add(Description, clip(content, 1000), SourceMeta, "meta description")
		case "twitter:site":
			if h := strings.TrimPrefix(strings.TrimSpace(content), "@"); h != "" && !strings.ContainsAny(h, "/ ") {
				add(Twitter, "https://x.com/"+h, SourceMeta, "twitter:site")
			}
		case "application-name":
			add(Name, content, SourceMeta, "application-name")
		}
	})
	return out
}

var (
	foundedRE   = regexp.MustCompile(`(?i)\b(?:founded|established|incorporated|started|since)\b(?:\s+\w+){0,3}?\s+(?:in\s+)?((?:1[6-9]|20)\d{2})\b`)
	employeesRE = regexp.MustCompile(`(?i)\b(\d{1,3}(?:[,.]\d{3})+|\d{1,6})\+?\s+(?:employees|people|staff|team members|colleagues)\b`)
	teamOfRE    = regexp.MustCompile(`(?i)\bteam of\s+(\d{1,3}(?:,\d{3})+|\d{1,6})\b`)
	phoneRE     = regexp.MustCompile(`\+?\d[\d\s().-]{7,18}\d`)
)

// pageText reads values out of text and links: mailto and tel links,
// social profile links, the address element, and sentences such as
// "founded in 1998" or "120 employees".
func pageText(u *url.URL, doc *goquery.Document, text string) []Finding {
	var out []Finding
	add := func(field string, value any, evidence string) {
		out = append(out, Finding{Field: field, Value: value, URL: u.String(), Source: SourceText,
			Confidence: Confidence[SourceText], Evidence: clip(evidence, 200)})
	}
	doc.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		href, _ := a.Attr("href")
		href = strings.TrimSpace(href)
		lower := strings.ToLower(href)
		switch {
		case strings.HasPrefix(lower, "mailto:"):
			addr := href[len("mailto:"):]
			if i := strings.IndexByte(addr, '?'); i >= 0 {
				addr = addr[:i]
			}
			if strings.Contains(addr, "@") {
				add(Email, addr, "mailto link")
			}
		case strings.HasPrefix(lower, "tel:"):
			if p := strings.TrimSpace(href[len("tel:"):]); phoneRE.MatchString(p) {
				add(Phone, p, "tel link")
			}
		default:
			if f := socialField(href); f != "" {
				add(f, href, "link to the profile")
			}
		}
	})
	if a := doc.Find("address").First(); a.Length() > 0 {
		if s := strings.Join(strings.Fields(a.Text()), " "); len(s) > 5 && len(s) < 300 {
			add(Street, s, "address element")
		}
	}
	if m := foundedRE.FindStringSubmatch(text); m != nil {
		y, _ := strconv.Atoi(m[1])
		add(FoundedYear, y, m[0])
	}
	if m := employeesRE.FindStringSubmatch(text); m != nil {
		if n, err := strconv.Atoi(strings.NewReplacer(",", "", ".", "").Replace(m[1])); err == nil && n > 0 {
			add(Employees, n, m[0])
		}
	} else if m := teamOfRE.FindStringSubmatch(text); m != nil {
		if n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); err == nil && n > 0 {
			add(Employees, n, m[0])
		}
	}
	if doc.Find(`meta[name="description"], meta[property="og:description"]`).Length() == 0 {
		// No description tag: the first paragraph long enough to say
		// something.
		doc.Find("main p, article p, body p").EachWithBreak(func(_ int, p *goquery.Selection) bool {
			s := strings.Join(strings.Fields(p.Text()), " ")
			if len(s) >= 80 {
				add(Description, clip(s, 1000), "first paragraph")
				return false
			}
			return true
		})
	}
	return out
}
