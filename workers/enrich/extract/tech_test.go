package extract

import (
	"net/http"
	"net/url"
	"testing"
)

func TestTheFingerprintTableCoversEveryCategoryTheIssueNames(t *testing.T) {
	f, err := fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Technologies) < 100 {
		t.Fatalf("%d technologies, want at least 100", len(f.Technologies))
	}
	per := map[string]int{}
	names := map[string]bool{}
	for _, fp := range f.Technologies {
		if names[fp.Name] {
			t.Errorf("%s listed twice", fp.Name)
		}
		names[fp.Name] = true
		per[fp.Category]++
		if len(fp.Meta)+len(fp.Scripts)+len(fp.Links)+len(fp.Inline)+len(fp.DOM)+len(fp.Headers)+len(fp.Cookies) == 0 {
			t.Errorf("%s has no marker", fp.Name)
		}
	}
	for _, c := range []string{"cms", "ecommerce", "analytics", "tag_manager", "marketing_automation", "chat",
		"js_framework", "cdn", "hosting", "payments", "consent"} {
		if per[c] < 3 {
			t.Errorf("category %s has %d technologies", c, per[c])
		}
	}
}

func TestABrokenFingerprintIsRefusedWhenTheTableLoads(t *testing.T) {
	for _, bad := range []string{
		"technologies:\n  - {name: X, category: cms, scripts: ['(']}\n",
		"technologies:\n  - {name: X, category: cms, dom: ['[[']}\n",
		"technologies:\n  - {name: X}\n",
	} {
		if _, err := compile([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestEmailProvidersAreNamedByTheirMXHosts(t *testing.T) {
	for hosts, want := range map[string]string{
		"aspmx.l.google.com.":                  "Google Workspace",
		"acme-com.mail.protection.outlook.com": "Microsoft 365",
		"mx2.zoho.eu":                          "Zoho Mail",
		"mx.example.net":                       "",
		"notgoogle.com":                        "",
		"mxa-001.pphosted.com":                 "Proofpoint",
	} {
		if got := MailProvider([]string{hosts}); got != want {
			t.Errorf("%s: %q, want %q", hosts, got, want)
		}
	}
}

func TestVersionsAreReadWhereThePageShowsThem(t *testing.T) {
	u, _ := url.Parse("https://shop.example/")
	page := `<html ng-version="17.1.0"><head>
<meta name="generator" content="Drupal 10 (https://www.drupal.org)">
<script src="https://code.jquery.com/jquery-3.6.0.min.js"></script>
<script src="https://js.stripe.com/v3/"></script>
<script src="https://cdn.shopify.com/s/files/x.js"></script>
<script>window.intercomSettings = {app_id: "x"};</script>
</head><body><div id="app"></div></body></html>`
	h := http.Header{"Server": {"Microsoft-IIS/10.0"}, "Set-Cookie": {"OptanonConsent=x; Path=/"}}
	got := map[string]string{}
	for _, tech := range Page(u, h, []byte(page)).Technologies {
		got[tech.Name] = tech.Version
	}
	want := map[string]string{"Angular": "17.1.0", "Drupal": "10", "jQuery": "3.6.0", "Stripe": "3", "Shopify": "",
		"Intercom": "", "Microsoft IIS": "10.0", "OneTrust": ""}
	for name, v := range want {
		if gv, ok := got[name]; !ok || gv != v {
			t.Errorf("%s: %q (found %v), want %q", name, gv, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want only %v", got, want)
	}
}
