package enrich_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/workers/enrich"
	"github.com/crmq/crmq/workers/enrich/extract"
	"github.com/crmq/crmq/workers/enrich/fetch"
)

// want is an expected best finding: its value and source.
type want struct {
	value  any
	source string
}

func checkSite(t *testing.T, site enrich.Site, wants map[string]want) {
	t.Helper()
	for field, w := range wants {
		got, ok := site.Best[field]
		if !ok {
			t.Errorf("%s: not found (best %v)", field, site.Best)
			continue
		}
		if !equalValue(got.Value, w.value) || got.Source != w.source {
			t.Errorf("%s: %#v from %s (%s), want %#v from %s", field, got.Value, got.Source, got.Evidence, w.value, w.source)
		}
		if got.URL == "" || got.Confidence <= 0 {
			t.Errorf("%s: no URL or confidence: %+v", field, got)
		}
	}
}

func equalValue(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestASiteWithJSONLDGivesItsOrganisation(t *testing.T) {
	f := newFixtures(t)
	site, err := f.crawler(t).Crawl(context.Background(), 1, f.urls["northwind"])
	if err != nil {
		t.Fatal(err)
	}
	checkSite(t, site, map[string]want{
		extract.Name:          {"Northwind Traders", extract.SourceJSONLD},
		extract.LegalName:     {"Northwind Traders GmbH", extract.SourceJSONLD},
		extract.Description:   {"Importer and wholesale distributor of specialty foods for independent retailers.", extract.SourceJSONLD},
		extract.Industry:      {"Wholesale Trade", extract.SourceJSONLD},
		extract.Employees:     {240, extract.SourceJSONLD}, // the about page's "250 people" is text, trusted less
		extract.SizeBand:      {"201-500", extract.SourceJSONLD},
		extract.FoundedYear:   {1994, extract.SourceJSONLD},
		extract.Phone:         {"+49 40 555 0100", extract.SourceJSONLD},
		extract.Email:         {"info@northwind.example", extract.SourceJSONLD},
		extract.Street:        {"Speicherstadt 12", extract.SourceJSONLD},
		extract.City:          {"Hamburg", extract.SourceJSONLD},
		extract.Region:        {"HH", extract.SourceJSONLD},
		extract.Postcode:      {"20457", extract.SourceJSONLD},
		extract.Country:       {"DE", extract.SourceJSONLD},
		extract.LinkedIn:      {"https://www.linkedin.com/company/northwind-traders", extract.SourceJSONLD},
		extract.Twitter:       {"https://twitter.com/northwindtraders", extract.SourceJSONLD},
		extract.Facebook:      {"https://www.facebook.com/northwindtraders", extract.SourceJSONLD},
		extract.EmailProvider: {"Google Workspace", extract.SourceDNS},
		extract.Technologies:  {[]string{"Bootstrap 5.3.2", "jsDelivr"}, extract.SourceHTML},
	})
	if len(site.Pages) != 3 {
		t.Fatalf("pages %v, want home, about and contact (not the other host's)", site.Pages)
	}
	for _, p := range site.Pages {
		if strings.Contains(p, "elsewhere") {
			t.Fatalf("followed a link off the site: %v", site.Pages)
		}
	}
}

func TestASiteWithOnlyMetaTagsAndTextGivesWhatItsTextSays(t *testing.T) {
	f := newFixtures(t)
	site, err := f.crawler(t).Crawl(context.Background(), 1, f.urls["bluefern"])
	if err != nil {
		t.Fatal(err)
	}
	checkSite(t, site, map[string]want{
		extract.Name:          {"Blue Fern Bakery", extract.SourceOpenGraph},
		extract.Description:   {"Sourdough, pastries and coffee from a neighbourhood bakery in Leeds.", extract.SourceOpenGraph},
		extract.Twitter:       {"https://x.com/bluefernbakery", extract.SourceMeta},
		extract.Facebook:      {"https://www.facebook.com/bluefernbakery", extract.SourceText},
		extract.Street:        {"14 Kirkgate, Leeds LS1 6BY, United Kingdom", extract.SourceText},
		extract.FoundedYear:   {2009, extract.SourceText},
		extract.Employees:     {12, extract.SourceText},
		extract.SizeBand:      {"11-50", extract.SourceText},
		extract.Phone:         {"+44 113 496 0123", extract.SourceText},
		extract.Email:         {"hello@bluefern.example", extract.SourceText},
		extract.EmailProvider: {"Zoho Mail", extract.SourceDNS},
		// No structured industry: the offline provider's keyword classifier.
		extract.Industry: {"Food & Beverage", extract.SourceLLM},
	})
	if c := site.Best[extract.Industry].Confidence; c >= site.Best[extract.Name].Confidence {
		t.Fatalf("a classified industry (%v) is trusted no less than a tag (%v)", c, site.Best[extract.Name].Confidence)
	}
	if _, ok := site.Best[extract.LinkedIn]; ok {
		t.Fatal("an Instagram link read as LinkedIn")
	}
}

func TestAWordPressSiteWithAnalyticsAndHubSpotIsFingerprinted(t *testing.T) {
	f := newFixtures(t)
	site, err := f.crawler(t).Crawl(context.Background(), 1, f.urls["pressly"])
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]extract.Technology{}
	for _, tech := range site.Technologies {
		byName[tech.Name] = tech
	}
	for name, version := range map[string]string{
		"WordPress": "6.4.2", "Google Analytics": "", "HubSpot": "", "jQuery": "3.7.1",
		"Nginx": "1.24.0", "PHP": "8.2.12", "Cloudflare": "",
	} {
		got, ok := byName[name]
		if !ok {
			t.Errorf("%s not detected (got %v)", name, site.Technologies)
			continue
		}
		if got.Version != version {
			t.Errorf("%s version %q, want %q", name, got.Version, version)
		}
		if got.Evidence == "" || got.Category == "" {
			t.Errorf("%s: no evidence or category: %+v", name, got)
		}
	}
	if len(byName) != 7 {
		t.Errorf("detected %d technologies, want exactly the 7 the site shows: %v", len(byName), site.Technologies)
	}
	checkSite(t, site, map[string]want{
		extract.EmailProvider: {"Microsoft 365", extract.SourceDNS},
		extract.FoundedYear:   {2015, extract.SourceText},
		extract.Employees:     {35, extract.SourceText},
		extract.Industry:      {"Marketing & Advertising", extract.SourceLLM},
		extract.LinkedIn:      {"https://www.linkedin.com/company/pressly-studio/", extract.SourceText},
	})
}

func TestCrawlFailuresCarryTheirReason(t *testing.T) {
	f := newFixtures(t)
	c := f.crawler(t)
	for site, reason := range map[string]fetch.Reason{
		"closed":   fetch.ReasonRobots,
		"metadata": fetch.ReasonRefused,
		"silent":   fetch.ReasonTimeout,
	} {
		_, err := c.Crawl(context.Background(), 1, f.urls[site])
		if got := fetch.ReasonOf(err); got != reason {
			t.Errorf("%s: reason %q (%v), want %q", site, got, err, reason)
		}
	}
	loop := strings.Replace(f.urls["northwind"], "northwind.test", "loopback.test", 1)
	if _, err := c.Crawl(context.Background(), 1, loop); fetch.ReasonOf(err) != fetch.ReasonRefused {
		t.Errorf("a name resolving to 127.0.0.1, not allowed: %v", err)
	}
}

func TestAFiftyMegabyteHomePageStillGivesWhatItsFirstTwoMegabytesHold(t *testing.T) {
	f := newFixtures(t)
	site, err := f.crawler(t).Crawl(context.Background(), 1, f.urls["huge"])
	if err != nil {
		t.Fatal(err)
	}
	checkSite(t, site, map[string]want{
		extract.Name:        {"Giant Corp", extract.SourceJSONLD},
		extract.FoundedYear: {1970, extract.SourceJSONLD},
	})
}

func TestAPageTooDeepToParseStillGivesItsJSONLD(t *testing.T) {
	f := newFixtures(t)
	site, err := f.crawler(t).Crawl(context.Background(), 1, f.urls["deep"])
	if err != nil {
		t.Fatal(err)
	}
	checkSite(t, site, map[string]want{
		extract.Name:  {"Deep Nest Ltd", extract.SourceJSONLD},
		extract.Phone: {"+1 555 0100", extract.SourceJSONLD},
	})
	if len(site.Skipped) == 0 || !strings.Contains(site.Skipped[0], "512") {
		t.Fatalf("the unparsed page is not noted: %v", site.Skipped)
	}
}

func TestASiteWithNothingToReadFindsNothing(t *testing.T) {
	f := newFixtures(t)
	f.serve(t, "empty", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><head><title>Coming soon</title></head><body><div></div></body></html>")
	}))
	c := f.crawler(t)
	a, _ := fetch.ParseAllow("empty.test")
	c.Fetch = fetch.New(fetch.Config{Allow: a, Resolver: f.dns.Resolver(), HostDelay: time.Millisecond})
	site, err := c.Crawl(context.Background(), 1, f.urls["empty"])
	if !errors.Is(err, enrich.ErrNothingFound) || len(site.Pages) != 1 {
		t.Fatalf("err %v, pages %v, best %v", err, site.Pages, site.Best)
	}
}
